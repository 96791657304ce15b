"""Moved: `RoleConfig` to `aloe_bench.models.role_config`, ALOE's `RunConfig` (and its constants) to
`aloe_bench.tasks.aloe.config`; these names stay importable from here for existing callers."""

from aloe_bench.models.role_config import RoleConfig
from aloe_bench.tasks.aloe.config import CONTROLS, DISCLOSURES, PAPER_MODEL, RunConfig

__all__ = ["CONTROLS", "DISCLOSURES", "PAPER_MODEL", "RoleConfig", "RunConfig"]

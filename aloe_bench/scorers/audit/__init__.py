"""Auditing the simulated user: persona facts, the disclosure curve, role and consistency checks.

`audit_run(DIR)` audits a finished run (no model-under-test or simulator calls) and records
results.json `audit` + `simulator-*` warnings and DIR/audit.jsonl; `aloe-bench audit` is its CLI.
"""

from aloe_bench.scorers.audit.engine import AUDIT_FILE, AuditOptions, audit_run

__all__ = ["AUDIT_FILE", "AuditOptions", "audit_run"]

"""`aloe-bench view`: self-contained HTML reports of run directories.

Other commands that change a run directory call `write_run_report(run_dir)` at their end.
"""

from aloe_bench.reports.viewer.page import (
    REPORT_FILE,
    build_report,
    render_page,
    report_after_command,
    write_run_report,
)
from aloe_bench.reports.viewer.payload import build_payload

__all__ = [
    "REPORT_FILE",
    "build_payload",
    "build_report",
    "render_page",
    "report_after_command",
    "write_run_report",
]

"""Old name of `aloe_bench.tasks` (the task packages); its modules stay importable for existing callers."""

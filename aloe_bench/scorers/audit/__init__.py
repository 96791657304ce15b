"""Auditing the simulated user: persona facts, the disclosure curve, role and consistency checks.

The audit of a finished run as a whole (`audit_run`, `aloe-bench audit`) is the ALOE task's use of
the engine's annotation run kind: `aloe_bench.tasks.aloe.audit` over `aloe_bench.engine.annotate`.
"""

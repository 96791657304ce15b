"""Auditing the simulated user: persona facts, the disclosure curve, role and consistency checks.

The audit of a finished run as a whole (`audit_run`, `aloe-bench audit`) is a run kind of the ALOE
task: `aloe_bench.tasks.aloe.audit`.
"""

"""Bridges to other harnesses (lm-eval)."""

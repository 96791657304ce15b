"""The command line: the top layer. Every `aloe-bench` subcommand lives here; nothing else imports it."""

from aloe_bench.cli.main import main

__all__ = ["main"]

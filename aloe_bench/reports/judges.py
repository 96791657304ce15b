"""Judges whose scores carry no signal: reports name them, and the board keeps their runs apart.

Its own module so the leaderboard and the report pages both read it without importing each other.
"""

from __future__ import annotations

# Judge spec -> what it is (see README: the embedded model cannot judge).
NOISE_JUDGES = {"embedded": "the embedded SmolLM2-135M model"}

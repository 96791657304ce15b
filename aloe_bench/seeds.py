"""Seeds for every sampled call, derived rather than drawn, so any call can be repeated on its own."""

from __future__ import annotations

import hashlib


def seed32(*parts: object) -> int:
    """A stable 32-bit seed from any parts (Python's hash() is salted per process)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little")


def request_seed(run_seed: int, conversation_id: str, turn: int, role: str, attempt: int = 0) -> int:
    """One seed per (run seed, persona, turn, role, attempt): the same persona opens the same way for
    every model under test, and a conversation does not depend on which others ran beside it."""
    return seed32(run_seed, conversation_id, turn, role, attempt)

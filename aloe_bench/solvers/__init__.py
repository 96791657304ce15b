"""Stage 2, how a transcript is produced: the K-turn rollout (simulated user <-> model under test)."""

"""Stage 5, the run log: the run directory's files (results.json, conversations.jsonl, journal),
written atomically with the modes the umask allows, and the provenance they record."""

"""Stage 1, the data: persona sets (ALOE) and Multifaceted Bench instances."""

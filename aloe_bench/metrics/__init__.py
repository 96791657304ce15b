"""Stage 4, the figures: ALOE curve metrics with bootstrap CIs, judge reliability and validity,
headroom, agreement with human labels."""

"""Stage 6, what people read: end-of-run summary, leaderboard, compare, gap, plots, the HTML viewer."""

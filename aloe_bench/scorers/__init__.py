"""Stage 3, scoring: judge protocols and score parsing, rubric grading, the simulator audit."""

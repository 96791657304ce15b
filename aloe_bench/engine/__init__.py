"""The engine: run configuration, the task registry, the loop every run kind goes through,
progress and run plans."""

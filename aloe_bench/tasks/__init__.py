"""The tasks: one package each (its config, dataset binding, solver, scorers and metrics)."""

"""aloe-train: grow personas, generate tree-structured preference conversations, train with SFT and
DPO (TRL), and score the trained checkpoints against their base with aloe-bench."""

__version__ = "0.1.0"

"""ALOE bench: does a chat model learn the person it is talking to?

The data path, as the modules name it: personas -> rollout (simulated user <-> model under test)
-> judge -> metrics -> report.
"""

__version__ = "0.1.0"

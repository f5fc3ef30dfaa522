"""The contracts between stages: topic names, event models, API models. No I/O."""

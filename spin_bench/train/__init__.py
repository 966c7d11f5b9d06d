"""The training loop (schedule, evaluation, checkpoints, logging, the training clock), the
experiment that wires dataset, models and algorithm together, and run provenance."""

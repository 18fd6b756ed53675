"""tlt-train: Train a model from an experiment spec."""

__version__ = "0.1.0"

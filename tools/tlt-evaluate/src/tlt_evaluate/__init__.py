"""tlt-evaluate: Evaluate a trained model."""

__version__ = "0.1.0"

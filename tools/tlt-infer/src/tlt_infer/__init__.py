"""tlt-infer: Run inference with a trained model."""

__version__ = "0.1.0"

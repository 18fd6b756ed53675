"""tlt-prune: Prune a trained model's filters."""

__version__ = "0.1.0"

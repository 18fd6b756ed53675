"""tlt-export: Export a trained model to an encrypted ONNX .etlt."""

__version__ = "0.1.0"

"""tlt-converter: Build a TensorRT engine (or an onnxruntime model) from an .etlt."""

__version__ = "0.1.0"

"""Run models: Keras (.tlt), onnxruntime (.etlt/.onnx/engines), TensorRT. Each backend imports its
framework lazily, so ``libtlt.runtime`` itself is light."""

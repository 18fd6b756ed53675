"""Quantization-Aware Training (000 §8.1), generic over architectures.

How a QAT run is put together, and why:

* The model keeps being an ordinary float Keras model (:mod:`libtlt.qat.rewrite`). Its ReLU activations
  become ReLU6 (except in the output layers), a real change of the network that stays in every saved file.
* Training runs a *twin* of that model which calls the very same layer objects (so the weights, batch-norm
  statistics, regularizers and optimizer slots are shared) with two additions from
  :mod:`libtlt.qat.fake_quant`: every weighted layer but the output layers sees its kernel fake-quantized
  (symmetric int8, one scale per output channel, ``max|w| / 127``) and its input activation fake-quantized
  by an :class:`~libtlt.qat.fake_quant.ActivationQuantizer` whose range (amax) is a moving average of the
  batches' ``max|x|``. Gradients pass straight through the rounding.
* Saving writes the float model, never the twin: ``.tlt`` files load in every tool without custom
  layers, prune and export like any other model, and the learned ranges travel in the metadata as
  ``metadata["qat"]["ranges"]``: Keras layer name (the layer whose output feeds the quantized layer;
  ``input_1`` style names for the graph input) → amax. Keras names are stable across conversions,
  ONNX tensor names are not known before export, so tlt-export translates them to its graph's tensor
  names (``tlt_export.qat_names``) when it writes the cal.bin.
* Resuming rebuilds the twin from the checkpoint's float model and stored ranges, so QAT continues with
  the ranges it had learned.

This matches where TensorRT puts Q/DQ nodes for a QAT graph: on the inputs of the convolutions and
matrix products (i.e. after the fused conv → bias → BN → activation sequences and on the graph input),
never on the output regression layers, which run in float.

Modules: ``fake_quant`` (the op and layers), ``rewrite`` (ReLU6 and the twin), ``metadata`` (the saved
record, importable without TensorFlow).
"""

"""Spec files: protobuf schemas (``protos/``), the loader (text format and YAML) and validation helpers.

Never imports TensorFlow.
"""

from libtlt.spec.loader import LoadedSpec, load_spec, load_spec_text

__all__ = ["LoadedSpec", "load_spec", "load_spec_text"]

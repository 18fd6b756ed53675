"""libtlt: the kernel shared by every tlt tool (specs, model files, dataset I/O, registry)."""

import os as _os

__version__ = "0.1.0"

# TensorFlow turns its oneDNN kernels on by default only on some CPUs (e.g. with AVX-512); without them
# a channels_first convolution (the NCHW heads TLT's models end in) has no CPU kernel and fails at run
# time. Every tool imports libtlt before TensorFlow, so asking for oneDNN here makes models run the same
# on every x86 CPU. A value the user set is kept.
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

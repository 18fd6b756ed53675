"""libtlt: the kernel shared by every tlt tool (specs, model files, dataset I/O, registry)."""

__version__ = "0.1.0"

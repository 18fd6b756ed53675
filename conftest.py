"""Test-session setup shared by tests/ and tools/*/tests.

Some test modules import Keras before libtlt; libtlt asks TensorFlow for its oneDNN kernels (see
libtlt/__init__.py) and that only works before TensorFlow is imported, so ask here too.
"""

import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

"""Image classification: backbones with a softmax head (000 §7.1, 003)."""

"""File formats tlt reads and writes. Never imports TensorFlow (tools on a Jetson use it)."""

"""FasterRCNN: two-stage detector with RPN, RoI crop-and-resize and an RCNN head (000 §7.3, 002)."""

"""YOLOv3: three-scale anchor detector (000 §7.7); spec validation in validation.py."""

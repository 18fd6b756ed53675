"""RetinaNet: FPN detector trained with focal loss (000 §7.6, §7.8); spec validation in validation.py."""

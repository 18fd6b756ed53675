"""MaskRCNN: FPN two-stage detector with a mask head, trained on COCO records (000 §7.9, 004)."""

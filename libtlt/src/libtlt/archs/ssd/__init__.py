"""SSD: single-shot multibox detector (000 §7.4); spec validation in validation.py."""

"""DetectNet_v2: grid-based coverage + bbox detector (000 §7.2); spec validation in validation.py."""

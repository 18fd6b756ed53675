"""DSSD: SSD with deconvolution prediction modules (000 §7.5); spec validation in validation.py."""

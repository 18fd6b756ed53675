"""Architectures: everything specific to one meta-architecture, behind libtlt.registry."""

"""Backends under their historical import paths (``doqu.ext.<name>``)."""

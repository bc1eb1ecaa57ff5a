"""A Python 3 client for Tokyo Tyrant's binary protocol."""

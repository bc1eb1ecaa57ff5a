"""Alias of :mod:`doqu_tyrant.storage` (the old ``doqu.ext.tokyo_tyrant.storage`` path)."""

from doqu_tyrant.storage import StorageAdapter

__all__ = ["StorageAdapter"]

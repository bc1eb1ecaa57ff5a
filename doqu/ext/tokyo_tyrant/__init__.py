"""Alias of :mod:`doqu_tyrant`, so ``{"backend": "doqu.ext.tokyo_tyrant"}`` keeps working."""

from doqu_tyrant import QueryAdapter, StorageAdapter

__all__ = ["QueryAdapter", "StorageAdapter"]

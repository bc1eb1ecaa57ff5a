"""Alias of :mod:`doqu_tyrant.query` (the old ``doqu.ext.tokyo_tyrant.query`` path)."""

from doqu_tyrant.query import QueryAdapter

__all__ = ["QueryAdapter"]

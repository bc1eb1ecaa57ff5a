"""doqu_tyrant: the Tokyo Tyrant backend for doqu.

``doqu.get_db({"backend": "doqu_tyrant", "host": ..., "port": ...})`` builds a
:class:`StorageAdapter` (:mod:`doqu_tyrant.storage`); queries are
:class:`QueryAdapter` objects (:mod:`doqu_tyrant.query`).

The Tyrant client (:mod:`doqu_tyrant.tyrant`) and the bundled server
(:mod:`doqu_tyrant.server`) work on their own: the backend's names are
imported on first access, so importing those never imports doqu.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from doqu_tyrant.converters import converter_manager
    from doqu_tyrant.lookups import lookup_manager
    from doqu_tyrant.query import QueryAdapter
    from doqu_tyrant.storage import StorageAdapter

__all__ = ["QueryAdapter", "StorageAdapter", "converter_manager", "lookup_manager"]

_LAZY = {
    "StorageAdapter": "doqu_tyrant.storage",
    "QueryAdapter": "doqu_tyrant.query",
    "converter_manager": "doqu_tyrant.converters",
    "lookup_manager": "doqu_tyrant.lookups",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'doqu_tyrant' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])

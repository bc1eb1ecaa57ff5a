"""Small helpers shared by the doqu core: key normalisation, dotted imports, emptiness."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["import_object", "is_empty", "normalize_key"]


def normalize_key(key: object) -> str:
    """Return a primary key as text.

    Keys are text everywhere (an ``int`` key becomes ``"5"``, UTF-8 ``bytes`` are
    decoded), so a key handed back by one call is always accepted by the next.
    ``None``, ``bool`` and other types are refused with ``TypeError``.
    """
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        raise TypeError(f"a primary key must be text or an integer, not {key!r}")
    if isinstance(key, int):
        return str(key)
    if isinstance(key, (bytes, bytearray, memoryview)):
        try:
            return bytes(key).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"a primary key must be valid UTF-8: {bytes(key)!r}") from exc
    raise TypeError(f"a primary key must be text or an integer, not {type(key).__name__}")


def import_object(path: str) -> Any:
    """Import ``"package.module"`` or ``"package.module.attr"`` (or ``"package.module:attr"``).

    A module path gives the module; otherwise the last dotted part is looked up
    on the module named by the rest. Raises ``ImportError`` when neither works.
    """
    if ":" in path:
        module_name, _, attr = path.partition(":")
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj
    try:
        return importlib.import_module(path)
    except ModuleNotFoundError as exc:
        module_name, dot, attr = path.rpartition(".")
        if not dot or exc.name not in (path, None):
            raise
        module = importlib.import_module(module_name)
        try:
            return getattr(module, attr)
        except AttributeError:
            raise ImportError(f"module {module_name!r} has no attribute {attr!r}") from None


def is_empty(value: object) -> bool:
    """True for the values a user means by "not filled in": ``None`` and ``""``."""
    return value is None or (isinstance(value, str) and value == "")

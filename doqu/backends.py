"""Finding a backend from a settings dict: by import path or ``db_backends`` entry point."""

from __future__ import annotations

import importlib
from importlib import metadata
from types import ModuleType
from typing import Any

from doqu.backend_base import BaseStorageAdapter

__all__ = [
    "BackendNotFound",
    "ENTRY_POINT_GROUP",
    "ImproperlyConfigured",
    "available_backends",
    "get_db",
    "load_backend",
]

#: Entry-point group in which installed packages announce their backends.
ENTRY_POINT_GROUP = "db_backends"


class ImproperlyConfigured(ValueError):
    """The settings do not describe a usable backend."""


class BackendNotFound(ImproperlyConfigured):
    """No importable module and no installed entry point has the backend's name."""


def available_backends() -> dict[str, str]:
    """Installed backends: entry-point name → what it points at (``module[:attr]``)."""
    return {ep.name: ep.value for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def _installed_listing() -> str:
    backends = available_backends()
    if not backends:
        return f"no backends are installed (entry-point group {ENTRY_POINT_GROUP!r} is empty)"
    listed = ", ".join(f"{name} ({target})" for name, target in sorted(backends.items()))
    return f"installed backends: {listed}"


def load_backend(name: str) -> type[BaseStorageAdapter]:
    """The ``StorageAdapter`` class of the backend called ``name``.

    ``name`` is first looked up among the installed ``db_backends`` entry
    points, then imported as a dotted module path. Import errors raised
    *inside* an existing backend module propagate unchanged.
    """
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name == name:
            return _adapter_of(entry_point.load(), f"entry point {name!r} ({entry_point.value})")
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if name == missing or name.startswith(missing + "."):
            raise BackendNotFound(
                f"unknown backend {name!r}: it is neither an importable module nor a "
                f"{ENTRY_POINT_GROUP!r} entry point; {_installed_listing()}"
            ) from exc
        raise
    return _adapter_of(module, f"module {name!r}")


def _adapter_of(target: Any, origin: str) -> type[BaseStorageAdapter]:
    adapter = getattr(target, "StorageAdapter", None) if isinstance(target, ModuleType) else target
    if not (isinstance(adapter, type) and issubclass(adapter, BaseStorageAdapter)):
        raise ImproperlyConfigured(
            f"backend {origin} provides no StorageAdapter subclass of "
            f"doqu.backend_base.BaseStorageAdapter"
        )
    return adapter


def get_db(settings_dict: dict[str, Any] | None = None, **overrides: Any) -> BaseStorageAdapter:
    """Build a connected storage adapter from settings.

    ``settings_dict`` and ``overrides`` (which win) are merged; the
    ``"backend"`` key names the backend -- a ``db_backends`` entry-point name
    (``"doqu_tyrant"``), a dotted module path (``"doqu.ext.tokyo_tyrant"``), a
    backend module or a ``StorageAdapter`` class -- and every other key is
    passed to its ``StorageAdapter`` as a keyword argument. The caller's dict
    is not modified.
    """
    settings = dict(settings_dict or {})
    settings.update(overrides)
    if "backend" not in settings:
        raise ImproperlyConfigured(f"settings have no 'backend' key; {_installed_listing()}")
    backend = settings.pop("backend")
    if isinstance(backend, str):
        adapter = load_backend(backend)
    else:
        adapter = _adapter_of(backend, repr(backend))
    return adapter(**settings)

"""The migration page keeps up with the pyrant package."""

from __future__ import annotations

from pathlib import Path

import pyrant
from pyrant.query import Condition, Query

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _section() -> str:
    text = (DOCS / "migration.rst").read_text()
    start = text.index("Keep using pyrant\n-----------------\n")
    return text[start:text.index("\n-----", start + 40)]


def test_every_lookup_is_listed() -> None:
    section = _section()
    for name in Condition.LOOKUP_DEFINITIONS:
        if name is not None:
            assert f"``{name}``" in section, name


def test_every_public_method_is_listed() -> None:
    section = _section()
    for cls in (pyrant.Tyrant, Query):
        for name in vars(cls):
            if not name.startswith("_") and name not in ("from_client", "close"):
                assert f"``{name}``" in section or f"``{name}(" in section, (cls, name)

"""What the distribution tells installers and type checkers."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

import pytest

SUPPORTED = ("3.10", "3.11", "3.12", "3.13")


@pytest.mark.parametrize("package", ["doqu", "doqu_tyrant"])
def test_packages_carry_py_typed(package: str) -> None:
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.origin is not None
    assert (Path(spec.origin).parent / "py.typed").is_file()


def test_metadata_lists_the_supported_pythons() -> None:
    meta = importlib.metadata.metadata("doqu-tyrant")
    assert meta["Requires-Python"] == ">=3.10"
    classifiers = meta.get_all("Classifier") or []
    for version in SUPPORTED:
        assert f"Programming Language :: Python :: {version}" in classifiers
    assert "Typing :: Typed" in classifiers

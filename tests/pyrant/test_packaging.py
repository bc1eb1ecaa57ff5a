"""pyrant ships in the distribution, typed."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_pyrant_carries_py_typed() -> None:
    spec = importlib.util.find_spec("pyrant")
    assert spec is not None and spec.origin is not None
    assert (Path(spec.origin).parent / "py.typed").is_file()


def test_pyrant_is_built_and_type_checked() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    wheel = re.search(r"\[tool\.hatch\.build\.targets\.wheel\]\npackages = \[(.*)\]", text)
    mypy = re.search(r"\[tool\.mypy\][^\[]*?packages = \[(.*)\]", text)
    assert wheel and '"pyrant"' in wheel.group(1)
    assert mypy and '"pyrant"' in mypy.group(1)

"""Helpers for the command-line tests: run ``python -m doqu_tyrant`` for real."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

Run = Callable[..., subprocess.CompletedProcess]


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "doqu_tyrant", *args]


def cli_env(url: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("TYRANT_URL", None)
    if url is not None:
        env["TYRANT_URL"] = url
    return env


@pytest.fixture
def run_cli() -> Run:
    """``run_cli(*args, url=..., input=b"...")`` → CompletedProcess (bytes out/err)."""

    def run(*args: str, url: str | None = None, input: bytes | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            cli_command(*args), input=input, capture_output=True, env=cli_env(url),
            timeout=timeout, cwd=ROOT,
        )  # fmt: skip

    return run

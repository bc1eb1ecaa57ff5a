"""The bundled server in its own process, for the benchmark scripts."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def server_env() -> dict[str, str]:
    """The environment for child processes: this checkout importable, no TYRANT_URL."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("TYRANT_URL", None)
    return env


@contextmanager
def bundled_server(name: str) -> Iterator[str]:
    """``python -m doqu_tyrant.server`` on a free port; yields its ``tyrant://`` URL.

    ``name`` is a database path (a relative one lands in a temporary directory
    removed afterwards) or ``*``/``+`` for an on-memory database.
    """
    with tempfile.TemporaryDirectory() as directory:
        path = name if name in ("*", "+") else os.path.join(directory, name)
        proc = subprocess.Popen(
            [sys.executable, "-m", "doqu_tyrant.server", "--port", "0", path],
            stdout=subprocess.PIPE, env=server_env(), cwd=directory)
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().decode().strip()
            if not line.startswith("listening on "):
                raise SystemExit(f"the server did not start: {line!r}")
            yield "tyrant://" + line[len("listening on "):]
        finally:
            proc.terminate()
            proc.wait(30)
            if proc.stdout is not None:
                proc.stdout.close()

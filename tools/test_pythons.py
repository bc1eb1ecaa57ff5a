"""Run the test suite on every supported Python found on this machine.

``make test`` runs the suite on the default interpreter first, then calls
this script for the others (``--exclude`` names the default's version).
Each interpreter gets a virtualenv of its own under ``.venvs/`` with the
project installed (editable) and its test extras; it is rebuilt when
``pyproject.toml`` changes. An interpreter that is not on the machine is
skipped with a printed line; one that is there but fails (to build its
virtualenv or to pass the suite) fails the run.

Interpreters are looked for as ``python3.X`` on ``PATH`` and under pyenv's
``versions/`` folder (``$PYENV_ROOT``, default ``~/.pyenv``).
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

SUPPORTED = ("3.10", "3.11", "3.12", "3.13")
ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / ".venvs"


def version_of(python: str) -> str | None:
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out or None


def find(version: str) -> str | None:
    """A working interpreter of ``version`` (e.g. ``"3.12"``), or None."""
    candidates = []
    on_path = shutil.which(f"python{version}")
    if on_path:
        candidates.append(on_path)
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    pattern = os.path.join(pyenv_root, "versions", f"{version}.*", "bin", f"python{version}")
    candidates += sorted(glob.glob(pattern), reverse=True)
    for python in candidates:
        if version_of(python) == version:
            return python
    return None


def stamp() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def venv_for(version: str, python: str) -> Path:
    """The virtualenv of ``version``, built (or rebuilt) when needed."""
    venv = VENVS / f"py{version}"
    marker = venv / ".doqu-tyrant-stamp"
    py = venv / "bin" / "python"
    if py.exists() and marker.exists() and marker.read_text() == stamp():
        return venv
    print(f"-- building {venv.relative_to(ROOT)} with {python}", flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "-e", f"{ROOT}[test]"], check=True)
    marker.write_text(stamp())
    return venv


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exclude", action="append", default=[],
                        help="a version already tested (the default interpreter's)")
    parser.add_argument("pytest_args", nargs="*", help="passed on to pytest")
    args = parser.parse_args()
    results: list[tuple[str, str]] = []
    for version in SUPPORTED:
        if version in args.exclude:
            continue
        python = find(version)
        if python is None:
            print(f"-- Python {version}: not found on this machine, skipped", flush=True)
            results.append((version, "skipped (not installed)"))
            continue
        try:
            venv = venv_for(version, python)
        except subprocess.CalledProcessError as exc:
            print(f"-- Python {version}: cannot build its virtualenv: {exc}", flush=True)
            results.append((version, "FAILED (virtualenv)"))
            continue
        print(f"-- Python {version} ({python}): running the suite", flush=True)
        started = time.monotonic()
        rc = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pytest", *(args.pytest_args or ["-q"])],
            cwd=ROOT,
        ).returncode
        took = time.monotonic() - started
        results.append((version, f"{'passed' if rc == 0 else 'FAILED'} in {took:.0f} s"))
    print("-- other interpreters: " + "; ".join(f"{v}: {r}" for v, r in results), flush=True)
    return 1 if any("FAILED" in r for _, r in results) else 0


if __name__ == "__main__":
    sys.exit(main())

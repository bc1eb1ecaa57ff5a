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

``--jobs N`` runs up to N interpreters at once (give each fewer pytest
workers): each one's output then goes to ``.venvs/py3.X.log``, a line is
printed as each finishes, and the end of the log of one that failed is
printed after it. The suite waits on sockets and child processes much of the
time, so interpreters side by side fill the idle cores one alone leaves.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

SUPPORTED = ("3.10", "3.11", "3.12", "3.13")
ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / ".venvs"
#: Lines of a failed interpreter's log printed after its summary line.
LOG_TAIL = 200


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


def venv_for(version: str, python: str, out: TextIO | None = None) -> Path:
    """The virtualenv of ``version``, built (or rebuilt) when needed; the
    build's output goes to ``out`` (default: this process's)."""
    venv = VENVS / f"py{version}"
    marker = venv / ".doqu-tyrant-stamp"
    py = venv / "bin" / "python"
    if py.exists() and marker.exists() and marker.read_text() == stamp():
        return venv
    print(f"-- building {venv.relative_to(ROOT)} with {python}", file=out or sys.stdout,
          flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    err = subprocess.STDOUT if out else None
    subprocess.run([python, "-m", "venv", str(venv)], check=True, stdout=out, stderr=err)
    pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "-e", f"{ROOT}[test]"], check=True, stdout=out, stderr=err)
    marker.write_text(stamp())
    return venv


def test_one(version: str, python: str, pytest_args: list[str],
             out: TextIO | None = None) -> str:
    """Build the virtualenv of ``version`` and run the suite there; the result
    line ("passed in 12 s", "FAILED ..."). Output goes to ``out`` (default:
    this process's)."""
    try:
        venv = venv_for(version, python, out)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"-- Python {version}: cannot build its virtualenv: {exc}", file=out or sys.stdout,
              flush=True)
        return "FAILED (virtualenv)"
    print(f"-- Python {version} ({python}): running the suite", file=out or sys.stdout,
          flush=True)
    started = time.monotonic()
    rc = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pytest", *(pytest_args or ["-q"])],
        cwd=ROOT, stdout=out, stderr=subprocess.STDOUT if out else None,
    ).returncode
    took = time.monotonic() - started
    return f"{'passed' if rc == 0 else 'FAILED'} in {took:.0f} s"


def test_side_by_side(found: list[tuple[str, str]], pytest_args: list[str],
                      jobs: int) -> dict[str, str]:
    """:func:`test_one` for each of ``found``, up to ``jobs`` at once, each into
    its log; a line as each finishes (and a failed one's log tail)."""
    results: dict[str, str] = {}
    queue = list(found)
    lock = threading.Lock()
    VENVS.mkdir(exist_ok=True)

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                version, python = queue.pop(0)
            log = VENVS / f"py{version}.log"
            with open(log, "w") as out:
                result = test_one(version, python, pytest_args, out)
            with lock:
                results[version] = result
                print(f"-- Python {version} ({python}): {result}; output in "
                      f"{log.relative_to(ROOT)}", flush=True)
                if "FAILED" in result:
                    lines = log.read_text(errors="replace").splitlines()
                    print(f"-- the last {min(LOG_TAIL, len(lines))} lines of "
                          f"{log.relative_to(ROOT)}:", flush=True)
                    print("\n".join(lines[-LOG_TAIL:]), flush=True)

    print(f"-- Python {', '.join(v for v, _ in found)}: running the suite, "
          f"{min(jobs, len(found))} at a time", flush=True)
    threads = [threading.Thread(target=worker) for _ in range(min(jobs, len(found)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exclude", action="append", default=[],
                        help="a version already tested (the default interpreter's)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="interpreters tested at once (default 1: one after the other, "
                        "output printed as it comes)")
    parser.add_argument("pytest_args", nargs="*", help="passed on to pytest")
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    results: dict[str, str] = {}
    found: list[tuple[str, str]] = []
    for version in SUPPORTED:
        if version in args.exclude:
            continue
        python = find(version)
        if python is None:
            print(f"-- Python {version}: not found on this machine, skipped", flush=True)
            results[version] = "skipped (not installed)"
        else:
            found.append((version, python))
    if args.jobs == 1 or len(found) < 2:
        for version, python in found:
            results[version] = test_one(version, python, args.pytest_args)
    else:
        results.update(test_side_by_side(found, args.pytest_args, args.jobs))
    ordered = [(v, results[v]) for v in SUPPORTED if v in results]
    print("-- other interpreters: " + "; ".join(f"{v}: {r}" for v, r in ordered), flush=True)
    return 1 if any("FAILED" in r for _, r in ordered) else 0


if __name__ == "__main__":
    sys.exit(main())

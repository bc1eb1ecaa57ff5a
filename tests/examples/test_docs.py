"""The documentation keeps up with the code it describes.

Every Python sample (``.. code-block:: python`` in ``docs/*.rst``, fenced
``python`` blocks in the README) runs, page by page in one namespace, against
a fresh bundled server with warnings as errors: a sample that leaves a
connection open fails with its ``ResourceWarning``. The samples connect to
port 1978; the test runs them on a free port instead. Fragments meant only to
be read go in plain ``::`` blocks.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from doqu_tyrant import cli
from doqu_tyrant.lookups import lookup_manager
from doqu_tyrant.tyrant.query import LOOKUPS
from tests.conftest import ServerFactory

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"


def rst_samples(text: str) -> list[str]:
    """The bodies of the ``.. code-block:: python`` directives, dedented."""
    lines = text.splitlines()
    samples: list[str] = []
    i = 0
    while i < len(lines):
        if lines[i].strip() != ".. code-block:: python":
            i += 1
            continue
        i += 1
        while i < len(lines) and lines[i].strip().startswith(":"):
            i += 1  # directive options
        body: list[str] = []
        while i < len(lines) and (not lines[i].strip() or lines[i][:1] in (" ", "\t")):
            body.append(lines[i])
            i += 1
        indent = min(len(b) - len(b.lstrip()) for b in body if b.strip())
        samples.append("\n".join(b[indent:] for b in body).strip() + "\n")
    return samples


def markdown_samples(text: str) -> list[str]:
    return [m.group(1) for m in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M)]


def _pages() -> dict[str, list[str]]:
    pages = {p.name: rst_samples(p.read_text()) for p in sorted(DOCS.glob("*.rst"))}
    pages["README.md"] = markdown_samples(README.read_text())
    return {name: samples for name, samples in pages.items() if samples}


PAGES = _pages()

RUNNER = """
import gc
namespace = {"__name__": "__main__"}
for number, code in enumerate(SAMPLES, 1):
    exec(compile(code, f"<{PAGE} sample {number}>", "exec"), namespace)
namespace.clear()
del namespace
gc.collect()
"""


def test_the_samples_are_found() -> None:
    assert {"README.md", "index.rst", "getting-started.rst", "databases.rst"} <= set(PAGES)
    assert sum(len(samples) for samples in PAGES.values()) >= 8


@pytest.mark.parametrize("page", sorted(PAGES))
def test_samples_run_and_close_their_connections(page: str, server_factory: ServerFactory,
                                                 tmp_path: Path) -> None:
    server = server_factory("table")
    samples = [re.sub(r"\b1978\b", str(server.port), code) for code in PAGES[page]]
    script = f"SAMPLES = {samples!r}\nPAGE = {page!r}\n" + RUNNER
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run([sys.executable, "-X", "dev", "-W", "error", "-c", script],
                          capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, f"{page}:\n{done.stdout}\n{done.stderr}"
    assert "Warning" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr


def test_every_backend_lookup_is_documented():
    text = (DOCS / "lookups.rst").read_text()
    for operation in lookup_manager.operations:
        assert f"``{operation}``" in text, operation


def test_every_client_lookup_is_documented():
    text = (DOCS / "lookups.rst").read_text()
    documented_as_group = {"streq", "strinc", "strbw", "strew", "strand", "stror", "stroreq",
                           "strrx", "numeq", "numgt", "numge", "numlt", "numle", "numbt",
                           "numoreq", "ftsph", "ftsand", "ftsor", "ftsex", "fts_all",
                           "fts_any", "fts_ex"}
    for name in LOOKUPS:
        if name not in documented_as_group:
            assert f"``{name}``" in text, name


def test_exit_statuses_are_documented():
    text = (DOCS / "cli.rst").read_text()
    for name in dir(cli):
        if name.startswith("EXIT_"):
            assert f"   * - {getattr(cli, name)}\n" in text, name


def test_every_subcommand_is_documented():
    text = (DOCS / "cli.rst").read_text()
    parser = cli.build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for command in commands:
        assert f"\n{command}\n{'-' * len(command)}\n" in text, command

"""The documentation keeps up with the code it describes."""

from __future__ import annotations

from pathlib import Path

from doqu_tyrant import cli
from doqu_tyrant.lookups import lookup_manager
from doqu_tyrant.tyrant.query import LOOKUPS

DOCS = Path(__file__).resolve().parents[2] / "docs"


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

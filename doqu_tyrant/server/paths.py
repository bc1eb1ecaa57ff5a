"""Database names as ttserver takes them: ``people.tct#bnum=1000000#idx=age:dec``.

Tokyo Cabinet ignores what it does not understand in a name: an unknown
parameter, a parameter of another kind of database, ``bnum=abc`` or an
index of an unknown type are dropped without a word, and a database tuned
otherwise than asked is created. :func:`parse_path` checks every part
against what the kind of database accepts (facts from the abstract database
API's documentation) and raises ``ValueError`` naming the part.
:func:`open_database` opens the checked name without waiting for another
process's lock and turns the library's failures into messages that say why.
"""

from __future__ import annotations

import errno
import os
import re
import weakref
from dataclasses import dataclass

from .cabinet import Cabinet

__all__ = ["DatabasePath", "DatabaseInUse", "SUFFIXES", "parse_path", "open_database"]

# Suffix (lower case) -> kind, as tcadbopen chooses it.
SUFFIXES: dict[str, str] = {
    ".tch": "hash", ".hdb": "hash",
    ".tcb": "B+ tree", ".bdb": "B+ tree",
    ".tcf": "fixed-length", ".fdb": "fixed-length",
    ".tct": "table", ".tdb": "table",
}  # fmt: skip
MEMORY = {"*": "on-memory hash", "+": "on-memory tree"}

# The tuning parameters each kind accepts.
PARAMETERS: dict[str, tuple[str, ...]] = {
    "on-memory hash": ("bnum", "capnum", "capsiz"),
    "on-memory tree": ("capnum", "capsiz"),
    "hash": ("mode", "bnum", "apow", "fpow", "opts", "rcnum", "xmsiz", "dfunit"),
    "B+ tree": ("mode", "lmemb", "nmemb", "bnum", "apow", "fpow", "opts", "lcnum", "ncnum",
                "xmsiz", "dfunit"),
    "fixed-length": ("mode", "width", "limsiz"),
    "table": ("mode", "bnum", "apow", "fpow", "opts", "rcnum", "lcnum", "ncnum", "xmsiz",
              "dfunit", "idx"),
}

# A number as the library reads it: digits, an optional fraction, an optional
# binary multiplier (k = 1024, m, g, t, p, e).
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?[kmgtpe]?\Z", re.IGNORECASE)
_MODE_LETTERS = "wrctef"  # writer, reader, create, truncate, no lock, no-wait lock
_OPTS_LETTERS = "ldbt"  # large, Deflate, BZIP2, TCBS
_INDEX_KINDS = {
    "lexical": "lex", "lex": "lex", "str": "lex", "0": "lex",
    "decimal": "dec", "dec": "dec", "num": "dec", "1": "dec",
    "token": "tok", "tok": "tok", "2": "tok",
    "qgram": "qgr", "qgr": "qgr", "fts": "qgr", "3": "qgr",
}  # fmt: skip


class DatabaseInUse(OSError):
    """Another process (a bundled server or a ttserver) holds the database's lock."""


@dataclass(frozen=True)
class DatabasePath:
    """A checked database name."""

    name: str  #: as given
    path: str  #: the file ("*"/"+" for on-memory databases)
    kind: str  #: "hash", "B+ tree", "fixed-length", "table", "on-memory hash"/"tree"
    params: tuple[tuple[str, str], ...]  #: (lower-case name, value) in order

    @property
    def in_memory(self) -> bool:
        return self.path in MEMORY

    @property
    def mode(self) -> str:
        """The ``mode`` parameter (Tokyo Cabinet's default: ``wc``)."""
        for name, value in reversed(self.params):
            if name == "mode":
                return value.lower()
        return "wc"

    def no_wait_name(self) -> str:
        """The name to open so that a lock held elsewhere fails the open at once
        (mode letter ``f``) instead of blocking it forever."""
        if self.in_memory or "e" in self.mode or "f" in self.mode:
            return self.name
        parts = [f"{n}={v}" for n, v in self.params if n != "mode"]
        return "#".join([self.path, *parts, f"mode={self.mode}f"])


def _kinds_text() -> str:
    return ("'.tch' (hash), '.tcb' (B+ tree), '.tcf' (fixed-length), '.tct' (table), "
            "'*' (on-memory hash) or '+' (on-memory tree)")


def parse_path(name: str | os.PathLike[str]) -> DatabasePath:
    """Check a database name; ``ValueError`` names what the library would ignore."""
    text = os.fspath(name)
    if not text:
        raise ValueError(f"the database path is empty; give a file ending in {_kinds_text()}")
    if "\0" in text:
        raise ValueError("the database path contains a NUL character")
    path, *parts = text.split("#")
    kind = MEMORY.get(path) or SUFFIXES.get(os.path.splitext(path)[1].lower())
    if kind is None:
        raise ValueError(f"{path!r} selects no kind of database: the name must end in "
                         f"{_kinds_text()}")
    accepted = PARAMETERS[kind]
    params: list[tuple[str, str]] = []
    seen: set[str] = set()
    for part in parts:
        key, sep, value = part.partition("=")
        lowered = key.lower()
        if not sep or not key:
            raise ValueError(f"tuning parameter {part!r} of {text!r}: expected NAME=VALUE")
        if lowered not in accepted:
            article = "an" if kind[0] in "aeiou" else "a"
            raise ValueError(
                f"tuning parameter {key!r} is unknown to {article} {kind} database (accepted: "
                f"{', '.join(accepted)})"
            )
        if lowered in seen and lowered != "idx":
            raise ValueError(f"tuning parameter {key!r} is given twice")
        seen.add(lowered)
        _check_value(lowered, key, value)
        params.append((lowered, value))
    return DatabasePath(text, path, kind, tuple(params))


def _check_value(name: str, key: str, value: str) -> None:
    if not value:
        raise ValueError(f"tuning parameter {key!r} has no value")
    if name == "mode":
        wrong = sorted({ch for ch in value.lower() if ch not in _MODE_LETTERS})
        if wrong:
            raise ValueError(f"mode={value!r}: unknown letter {''.join(wrong)!r} (w writer, "
                             "r reader, c create, t truncate, e no lock, f no-wait lock)")
    elif name == "opts":
        wrong = sorted({ch for ch in value.lower() if ch not in _OPTS_LETTERS})
        if wrong:
            raise ValueError(f"opts={value!r}: unknown letter {''.join(wrong)!r} (l large, "
                             "d Deflate, b BZIP2, t TCBS)")
    elif name == "idx":
        column, colon, itype = value.partition(":")
        if not colon:
            raise ValueError(f"idx={value!r}: expected idx=COLUMN:TYPE, e.g. idx={value}:lex")
        if not column:
            raise ValueError(f"idx={value!r}: the column name is empty")
        if itype.lstrip("+").lower() not in _INDEX_KINDS:
            raise ValueError(f"idx={value!r}: unknown index type {itype!r} (lexical/lex, "
                             "decimal/dec, token/tok or qgram/qgr)")
    elif not _NUMBER.match(value):
        raise ValueError(f"{key}={value!r} is not a number (digits, optionally with a "
                         "k/m/g suffix: 1024, 64m)")


def _location_problem(db: DatabasePath) -> str | None:
    """Why the file cannot be opened, found before the library tries."""
    if db.in_memory:
        return None
    path = db.path
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.exists(directory):
        return f"the directory {directory!r} does not exist"
    if not os.path.isdir(directory):
        return f"{directory!r} is not a directory"
    if os.path.isdir(path):
        return f"{path!r} is a directory, not a database file"
    mode = db.mode
    writer = "w" in mode
    if os.path.exists(path):
        wanted = os.R_OK | (os.W_OK if writer else 0)
        if not os.access(path, wanted):
            need = "read and write" if writer else "read"
            return f"permission denied: this user may not {need} {path!r}"
    elif not writer or "c" not in mode:
        return f"{path!r} does not exist (mode={mode} does not create it)"
    elif not os.access(directory, os.W_OK | os.X_OK):
        return f"permission denied: this user may not create files in {directory!r}"
    return None


def open_database(db: DatabasePath, factory: type[Cabinet] = Cabinet) -> Cabinet:
    """Open a checked name without waiting for locks; ``OSError`` says why it failed
    (:class:`DatabaseInUse` when another process holds the file). ``factory``:
    the class to open it with (the server's is :class:`~.durable.DurableCabinet`)."""
    problem = _location_problem(db)
    if problem is not None:
        raise OSError(f"cannot open the database {db.path!r}: {problem}")
    real = None if db.in_memory else os.path.realpath(db.path)
    try:
        cabinet = factory(db.no_wait_name())
    except OSError as exc:
        code = exc.errno
        here = _open_here.get(real) if real is not None else None
        if here is not None and not here.closed:
            raise DatabaseInUse(
                f"the database {db.path!r} is already open in this process (another Server "
                "serves it); stop that one first"
            ) from None
        if code in (errno.EAGAIN, errno.EACCES) and os.path.exists(db.path) and os.access(
            db.path, os.R_OK | (os.W_OK if "w" in db.mode else 0)
        ):
            raise DatabaseInUse(
                f"the database {db.path!r} is in use by another server (a bundled server "
                "or ttserver holds its lock); stop that one first, or serve a copy"
            ) from None
        if code == errno.EINVAL:
            why = f"it is not a {db.kind} database file, or it is damaged"
        elif code == errno.ENOENT:
            why = "a file or directory is missing"
        elif code:
            why = os.strerror(code).lower()
        else:
            why = "Tokyo Cabinet refused it"
        raise OSError(f"cannot open the database {db.path!r}: {why}") from None
    if real is not None:
        _open_here[real] = cabinet
    return cabinet


# Files this process has open (Tokyo Cabinet refuses a second open in one
# process with EINVAL, which would otherwise read as a damaged file).
_open_here: weakref.WeakValueDictionary[str, Cabinet] = weakref.WeakValueDictionary()

"""What makes a request one that aborts a real ttserver (spec §10), as data.

The builders of :mod:`.commands` attach a :class:`Risk` to every write that
may be such a request (a :class:`GuardedCmd`); the clients check it
against their knowledge of the table's indexes (:mod:`.indexes`) before
sending. Inputs that abort whatever the database holds (MISC ``iterinit``
with an empty key) are refused here at once. No I/O happens in this module.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from itertools import accumulate
from typing import TYPE_CHECKING, NamedTuple

from .errors import TyrantUnsafeWrite

if TYPE_CHECKING:
    from .commands import Cmd

__all__ = ["Risk", "GuardedCmd", "guarded", "batch_empty_columns", "empty_columns",
           "maybe_empty", "misc_risk", "parse_index_code", "PUTSHL_ON_TABLE"]

# Index kinds of ``setindex`` (spec §6.5.5).
INDEX_LEXICAL = 0
INDEX_DECIMAL = 1
INDEX_TOKEN = 2
INDEX_QGRAM = 3
INDEX_OPTIMIZE = 9998
INDEX_VOID = 9999
INDEX_KEEP = 1 << 24

INDEX_KINDS: dict[str, int] = {
    "lexical": INDEX_LEXICAL, "lex": INDEX_LEXICAL, "str": INDEX_LEXICAL,
    "decimal": INDEX_DECIMAL, "dec": INDEX_DECIMAL, "num": INDEX_DECIMAL,
    "token": INDEX_TOKEN, "tok": INDEX_TOKEN,
    "qgram": INDEX_QGRAM, "qgr": INDEX_QGRAM, "fts": INDEX_QGRAM,
    "optimize": INDEX_OPTIMIZE, "opt": INDEX_OPTIMIZE,
    "void": INDEX_VOID, "null": INDEX_VOID, "drop": INDEX_VOID,
}


#: Why PUTSHL is refused on a table database.
PUTSHL_ON_TABLE = (
    "putshl on a table database: it cuts the serialised record blindly and can store an "
    "empty value in an indexed column, which aborts a real ttserver; use table_put or "
    "table_putcat for table records"
)


class Risk(NamedTuple):
    """Why a write may abort a real ttserver (spec §10), for the client to check.

    ``empty``: (primary key, column) pairs written with an empty value (an
    abort if the column has a lexical or decimal index); ``records``: (key,
    value) pairs of binary writes whose value, on a table database, is a
    serialised record (checked like ``empty`` once the database is known to
    be a table); ``table``: why the request aborts any table database;
    ``setindex``: (column, kind code) pairs being indexed (an abort if the
    kind is lexical/decimal and some record has an empty value there; the
    client learns the kind when the call succeeds; code -1: not a valid kind).
    """

    command: str
    empty: tuple[tuple[bytes, bytes], ...] = ()
    records: tuple[tuple[bytes, bytes], ...] = ()
    table: str = ""
    setindex: tuple[tuple[bytes, int], ...] = ()


class GuardedCmd(tuple):  # type: ignore[type-arg]
    """A :data:`Cmd` (same five fields) carrying the :class:`Risk` to check first."""

    risk: Risk


def guarded(cmd: Cmd, risk: Risk) -> Cmd:
    """``cmd`` carrying ``risk``."""
    out = GuardedCmd(cmd)
    out.risk = risk
    return out  # type: ignore[return-value]


def empty_columns(pk: bytes, args: list[bytes]) -> tuple[tuple[bytes, bytes], ...]:
    """(pk, column) of every empty value in a flat ``name, value, ...`` list."""
    it = iter(args)
    return tuple((pk, name) for name, value in zip(it, it) if not value)


# Columns with a name and a value: what the scan of batch_empty_columns skips in C
# (at most so many at a time, which bounds the regex engine's stack: a few hundred KiB).
_FULL_COLUMNS = rb"[^\0]+\0[^\0]+(?:\0|\Z)"
_SKIP_AT_ONCE = 1024


def batch_empty_columns(values: list[bytes], nuls: list[int]) -> tuple[dict[bytes, int], int]:
    """Over many serialised records (spec §5.1; ``nuls``: each one's count of NUL
    bytes, odd, or 0 for an empty record): each column written empty → the
    position of the first record doing so, and the position of the first record
    with an empty column name (-1: none).

    The records are read as one: joined by NUL bytes, their names and values
    still alternate, so a regular expression skips whole columns in C --
    those with a name and a value, and those already known to be written empty
    -- and Python only looks at the first empty value of each column (and at
    each empty name). A record at a time cost a few microseconds each.
    """
    present = None
    if 0 in nuls:  # an empty record has no NUL to pair: those are left out
        present = [i for i, data in enumerate(values) if data]
        values = [values[i] for i in present]
    blob = b"\0".join(values)
    if b"\0\0" not in blob and blob[:1] != b"\0" and blob[-1:] != b"\0":
        return {}, -1  # no empty name or value anywhere
    ends = list(accumulate(map((1).__add__, map(len, values))))  # record i: bytes < ends[i]
    first: dict[bytes, int] = {}
    bad = -1
    skip = _skipping(())
    pos, size, find = 0, len(blob), blob.find
    while True:
        pos = skip.match(blob, pos).end()  # type: ignore[union-attr]
        if pos >= size:
            break
        # a column the pattern does not skip: an empty name, or a new empty value
        name_end = find(b"\0", pos)
        value_end = find(b"\0", name_end + 1)
        if value_end < 0:
            value_end = size
        if name_end == pos and bad < 0:
            bad = bisect_right(ends, pos)
        if value_end == name_end + 1:
            name = blob[pos:name_end]
            if name not in first:
                first[name] = bisect_right(ends, pos)
                skip = _skipping(tuple(first))
        pos = value_end + 1
    if present is not None:
        first = {column: present[i] for column, i in first.items()}
        bad = present[bad] if bad >= 0 else -1
    return first, bad


def _skipping(empty: tuple[bytes, ...]) -> re.Pattern[bytes]:
    """A pattern matching columns with a name and a value, or with one of the
    names ``empty`` and no value (``re`` caches the compiled patterns)."""
    known = b"".join(b"|" + re.escape(name) + rb"\0(?:\0|\Z)" for name in empty if name)
    return re.compile(b"(?:" + _FULL_COLUMNS + known + b"){0,%d}" % _SKIP_AT_ONCE)


def maybe_empty(data: bytes) -> bool:
    """Whether a serialised record (spec §5.1) may hold an empty column value."""
    return b"\0\0" in data or data[-1:] == b"\0"


def parse_index_code(text: bytes) -> int:
    """A ``setindex`` kind as Tokyo Cabinet reads it from text (name or C-style
    number, ``+`` = keep); -1 when the server refuses it."""
    text = text.split(b"\0", 1)[0]
    keep = 0
    if text[:1] == b"+":
        keep, text = INDEX_KEEP, text[1:]
    named = INDEX_KINDS.get(text.decode("latin-1").lower())
    if named is not None and text.lower() != b"drop":
        return named | keep
    body = text.strip(bytes(range(1, 33)))
    whole, _, fraction = body.partition(b".")
    negative = whole[:1] == b"-"
    digits = whole[1:] if negative else whole
    if not (digits.isdigit() or (not digits and fraction.isdigit())) or (
        fraction and not fraction.isdigit()
    ):
        return -1
    value = int(digits or b"0") * (-1 if negative else 1) % (1 << 64)
    value = (value + (1 << 31)) % (1 << 32) - (1 << 31)  # a C int
    return value | keep if value >= 0 else -1


def misc_risk(name: bytes, args: list[bytes]) -> Risk | None:
    """What of a raw MISC call may abort a real ttserver (spec §10)."""
    what = f"misc {name.decode('latin-1')}"
    if name == b"iterinit":
        if args and not args[0]:
            raise TyrantUnsafeWrite(
                "misc iterinit with an empty start key aborts a real ttserver (hash and table "
                "databases); call it without arguments to start at the first key"
            )
        return None
    if name in (b"put", b"putkeep", b"putcat"):
        if not args:
            return None
        if not args[0]:
            return Risk(what, table=f"{what} with an empty primary key aborts a real ttserver "
                        "on a table database")
        empty = empty_columns(args[0], args[1:])
        return Risk(what, empty=empty) if empty else None
    if name == b"putlist":
        pairs = list(zip(args[0::2], args[1::2]))
        if any(not pk for pk, _ in pairs):
            return Risk(what, table=f"{what} with an empty primary key aborts a real ttserver "
                        "on a table database")
        records = tuple((pk, data) for pk, data in pairs if data and maybe_empty(data))
        return Risk(what, records=records) if records else None
    if name == b"setindex":
        return Risk(what, setindex=tuple((col, parse_index_code(kind))
                                         for col, kind in zip(args[0::2], args[1::2])))
    return None

"""What a client knows about the table's indexes, and the spec §10 check it feeds.

A real ttserver on Debian's Tokyo Cabinet (built with assertions) aborts the
whole server process when a write stores an **empty value in a column with
a lexical or decimal index**, or when ``setindex`` builds such an index over
a column where some record holds an empty value (spec §10). Whether a write
is one of those depends on the server's indexes, so each client keeps a
:class:`TableIndexes` (shared by its connection pool) and checks every write
that carries an empty value before sending it.

The knowledge comes from three places:

* the client's own ``setindex`` calls (the kind it set, or none after
  ``void``);
* the planner explanation (``hint``) of the client's queries, which names
  the index a condition used (``using an index: "city" asc (STREQ)``);
* a **probe**: one ``search`` per column with a condition that each index
  kind serves natively (lexical ``STREQ``, decimal ``NUMGE``, token
  ``STROR``, q-gram ``FTSPH``) and ``setlimit 0``: the server plans the
  query, names the index it would use, and stops before reading a record,
  so a probe costs O(1) on the server whatever the table's size. Probes of
  many columns go out pipelined in one round trip. A probe is a read: it
  can never be a §10 request, and it is kept out of the update log.

What is learned is trusted for :attr:`TableIndexes.ttl` seconds (1 s by
default), then asked again the next time it matters: an index that *another*
client creates is seen within that time. A write sent in that window can
still meet an index the client has not seen; ``forget()`` (``Tyrant.
forget_indexes()``) drops everything at once, e.g. right after creating
indexes from elsewhere.

This module does no I/O: :func:`check` is a generator that yields the
requests the client must send (each list in one round trip) and receives
their results; the blocking and asyncio clients drive it.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Generator, Iterable
from typing import Any

from . import commands as c
from . import protocol as p
from .errors import TyrantUnsafeWrite

__all__ = [
    "KINDS",
    "ORDERED",
    "TableIndexes",
    "check",
    "column_name",
    "kind_from_hint",
    "kinds_plan",
    "kinds_result",
    "learn_results",
    "note_hint",
    "probe",
    "empty_values",
]

#: The kinds :meth:`TableIndexes.kind` reports ("ordered": a lexical or decimal
#: index that a query hint named without telling which).
KINDS = ("lexical", "decimal", "token", "qgram", "ordered")
#: Index kinds that Tokyo Cabinet cannot build over an empty value.
ORDERED = frozenset({"lexical", "decimal", "ordered"})

_KIND_OF_CODE = {c.INDEX_LEXICAL: "lexical", c.INDEX_DECIMAL: "decimal",
                 c.INDEX_TOKEN: "token", c.INDEX_QGRAM: "qgram", c.INDEX_VOID: None}


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


#: What :meth:`TableIndexes.kind` returns for a column it knows nothing (fresh) about.
UNKNOWN: Any = _Unknown()
#: A probe's answer when the database is not a table (it has no indexes).
NOT_TABLE: Any = type("_NotTable", (), {"__repr__": lambda self: "NOT_TABLE"})()

# The probe: one condition served natively by each kind, and "return nothing".
_PROBE_OPS = (b"0", b"10", b"5", b"15")  # STREQ, NUMGE, STROR, FTSPH
_LIMIT_NONE = b"setlimit\x000\x000"
_NOIDX_STREQ = b"%d" % (1 << 25)  # STREQ with the "no index" flag: a record scan
_HINT_LINE = re.compile(
    rb'^(?:\[\d+\] )?using an (?:auxiliary )?index: "(.*)" (asc|desc|skip|inverted) '
    rb"\(([^)]*)\)$"
)


def kind_from_hint(direction: bytes, ops: bytes) -> str:
    """The index kind a hint line's ``<direction> (<ops>)`` implies."""
    if direction == b"inverted":
        return "qgram" if ops.startswith(b"FTS") else "token"
    if ops.startswith(b"NUM"):
        return "decimal"
    if ops.startswith(b"STR"):
        return "lexical"
    return "ordered"  # "(all)" or "(order)": a B+ tree index of either kind


def hint_indexes(text: bytes) -> dict[bytes, str]:
    """Columns and index kinds named by a planner explanation."""
    found: dict[bytes, str] = {}
    for line in text.split(b"\n"):
        m = _HINT_LINE.match(line)
        if m is not None:
            found.setdefault(m.group(1), kind_from_hint(m.group(2), m.group(3)))
    return found


# -- probe commands (no I/O) -----------------------------------------------------------------


def _probe_reply(reply: p.Reply, column: bytes) -> Any:
    if not reply.ok:
        return NOT_TABLE  # search fails on every database that is not a table
    items: list[bytes] = reply.value  # type: ignore[assignment]
    if not items or not items[-1].startswith(c.HINT_PREFIX):
        return "ordered"  # no planner explanation: assume the worst
    text = items[-1][len(c.HINT_PREFIX):]
    prefix = b'using an index: "' + column + b'" '
    for line in text.split(b"\n"):
        if line.startswith(prefix):
            direction, _, rest = line[len(prefix):].partition(b" (")
            return kind_from_hint(direction, rest.rstrip(b")"))
    return None


def probe(column: bytes) -> c.Cmd:
    """A search that names the index of ``column`` and reads no record (see module doc)."""
    args = [b"hint", *(b"addcond\0%s\0%s\0x" % (column, op) for op in _PROBE_OPS), _LIMIT_NONE]
    return (p.encode_misc(b"search", args, p.MISC_NOULOG), p.MISC, _probe_reply, column, True)


def _empty_values_reply(reply: p.Reply, _: Any) -> Any:
    if not reply.ok:
        return NOT_TABLE
    items: list[bytes] = reply.value  # type: ignore[assignment]
    return items[0] if items else None


def empty_values(column: bytes) -> c.Cmd:
    """A search for one record with an empty value in ``column`` (its key, or None)."""
    args = [b"addcond\0%s\0%s\0" % (column, _NOIDX_STREQ), b"setlimit\x001\x000"]
    return (p.encode_misc(b"search", args, p.MISC_NOULOG), p.MISC, _empty_values_reply, None,
            True)


# -- the knowledge ---------------------------------------------------------------------------


class TableIndexes:
    """A client's knowledge of the server's table indexes (thread-safe).

    ``ttl``: seconds a learned fact is trusted (None: until :meth:`forget`).
    ``checks``: set it to False to send writes unchecked -- only for a server
    that does not abort (the bundled one answers failure instead), or to
    replay traffic known to be safe.
    """

    def __init__(self, ttl: float | None = 1.0) -> None:
        self.ttl = ttl
        self.checks = True
        self._kinds: dict[bytes, tuple[str | None, float]] = {}
        self._table: tuple[bool, float] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<TableIndexes {self.known()!r}>"

    def _fresh(self, since: float) -> bool:
        return self.ttl is None or time.monotonic() - since < self.ttl

    def kind(self, column: bytes) -> Any:
        """``"lexical"``, ``"decimal"``, ``"token"``, ``"qgram"``, ``"ordered"``, None
        (no index), or :data:`UNKNOWN` (nothing fresh is known)."""
        table, entry, ttl = self._table, self._kinds.get(column), self.ttl
        if entry is None and table is None:
            return UNKNOWN
        now = time.monotonic()
        if table is not None and table[0] is False and (ttl is None or now - table[1] < ttl):
            return None
        if entry is None or (ttl is not None and now - entry[1] >= ttl):
            return UNKNOWN
        return entry[0]

    def safe(self, risks: list[c.Risk]) -> bool:
        """Whether ``risks`` are known to be harmless without asking anything
        (the common case: empty values only in columns known to be fine)."""
        for risk in risks:
            if risk.table or risk.records or risk.setindex:
                return False
            for _, column in risk.empty:
                kind = self.kind(column)
                if kind is UNKNOWN or kind in ORDERED:
                    return False
        return True

    def table(self) -> bool | None:
        """Whether the database is a table (None: not known)."""
        entry = self._table
        if entry is None or not self._fresh(entry[1]):
            return None
        return entry[0]

    def known(self) -> dict[bytes, str | None]:
        """The fresh facts: column → kind."""
        with self._lock:
            return {col: kind for col, (kind, since) in self._kinds.items()
                    if self._fresh(since)}

    def learn(self, column: bytes, kind: str | None) -> None:
        now = time.monotonic()
        with self._lock:
            self._kinds[column] = (kind, now)
            self._table = (True, now)

    def learn_answer(self, column: bytes, answer: Any) -> Any:
        """Record a probe's answer; return the kind it means (None off tables)."""
        if answer is NOT_TABLE:
            with self._lock:
                self._table = (False, time.monotonic())
            return None
        self.learn(column, answer)
        return answer

    def learn_hint(self, text: str | bytes) -> None:
        """Learn from a query's planner explanation (only indexes it names)."""
        data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
        for column, kind in hint_indexes(data).items():
            if kind == "ordered" and self.kind(column) in ("lexical", "decimal"):
                continue  # "(all)" confirms what is known without telling more
            self.learn(column, kind)

    def learn_setindex(self, column: bytes, code: int, ok: bool) -> None:
        """After a ``setindex`` call: the kind it set, or forget what it may have changed."""
        base = code & ~c.INDEX_KEEP if code >= 0 else -1
        if ok and base in _KIND_OF_CODE:
            self.learn(column, _KIND_OF_CODE[base])
        elif not (ok and base == c.INDEX_OPTIMIZE):
            self.forget([column])

    def forget(self, columns: Iterable[bytes] | None = None) -> None:
        """Forget some columns (or everything): they are probed again when it matters."""
        with self._lock:
            if columns is None:
                self._kinds.clear()
                self._table = None
            else:
                for column in columns:
                    self._kinds.pop(column, None)


def note_hint(client: object, hint: str | bytes | None) -> None:
    """Let ``client`` learn from a query's hint (clients without knowledge ignore it)."""
    if hint:
        book = getattr(client, "indexes", None)
        if isinstance(book, TableIndexes):
            book.learn_hint(hint)


def column_name(column: object) -> bytes:
    """A column name as the server sees it ("" is the primary key)."""
    data = c.to_bytes(column, "column name")
    if b"\0" in data:
        raise ValueError(f"column name {data!r} contains a NUL byte")
    return data


def kinds_plan(book: TableIndexes, columns: Iterable[Any]) -> tuple[
        list[Any], list[bytes], dict[bytes, Any], list[bytes]]:
    """For ``index_kinds``: the columns given, their names, what is known of them
    and the names to probe."""
    if isinstance(columns, (str, bytes, bytearray, memoryview)):
        raise TypeError("index_kinds() takes an iterable of column names, not a single "
                        f"{type(columns).__name__}")
    given = list(columns)
    names = [column_name(col) for col in given]
    known = {n: book.kind(n) for n in names}
    unknown = [n for n, kind in known.items() if kind is UNKNOWN or kind == "ordered"]
    return given, names, known, unknown


def kinds_result(book: TableIndexes, given: list[Any], names: list[bytes],
                 known: dict[bytes, Any], unknown: list[bytes],
                 answers: list[Any]) -> dict[Any, str | None]:
    for n, answer in zip(unknown, answers):
        known[n] = book.learn_answer(n, answer)
    return {col: known[n] for col, n in zip(given, names)}


# -- the check -------------------------------------------------------------------------------


def _index_name(column: bytes) -> bytes:
    return column.split(b"\0", 1)[0]  # the library matches columns as C strings


def _show(data: bytes) -> str:
    """A name for messages: its text when it is UTF-8, else the bytes' repr."""
    try:
        return repr(data.decode())
    except UnicodeDecodeError:
        return repr(data)


def _empty_error(risk: c.Risk, pk: bytes, column: bytes, kind: str) -> TyrantUnsafeWrite:
    which = "a lexical or decimal" if kind == "ordered" else f"a {kind}"
    return TyrantUnsafeWrite(
        f"{risk.command}: column {_show(column)} of record {_show(pk)} is empty, and the "
        f"table has {which} index on that column; Tokyo Cabinet cannot index an empty value "
        "(a real ttserver aborts), so nothing was sent. Leave the column out, or store a "
        "non-empty value"
    )


def _record_empties(risk: c.Risk) -> list[tuple[c.Risk, bytes, bytes]]:
    out: list[tuple[c.Risk, bytes, bytes]] = []
    for key, data in risk.records:
        parts = data.split(b"\0")
        it = iter(parts)  # a dangling name is dropped by zip
        out.extend((risk, key, _index_name(col)) for col, val in zip(it, it) if col and not val)
    return out


def check(book: TableIndexes, risks: list[c.Risk]) -> Generator[list[c.Cmd], list[Any], None]:
    """Raise :class:`~.errors.TyrantUnsafeWrite` (a ``ValueError``) for the first of
    ``risks`` that is a §10 input.

    Yields lists of requests to send first (probes, and a search for empty
    values before a lexical/decimal ``setindex``), each in one round trip,
    and receives their parsed results. What the probes answer is learned
    by ``book``, and used for this check even when ``book.ttl`` is 0.
    """
    if not book.checks or not risks or book.safe(risks):
        return
    empty = [(risk, pk, _index_name(col)) for risk in risks for pk, col in risk.empty]
    indexing = [(risk, col, code) for risk in risks for col, code in risk.setindex
                if code >= 0 and code & ~c.INDEX_KEEP in (c.INDEX_LEXICAL, c.INDEX_DECIMAL)]
    answered: dict[bytes, Any] = {}
    table = book.table()

    def ask(columns: list[bytes]) -> list[c.Cmd]:
        return [probe(col) for col in columns]

    def learn(columns: list[bytes], answers: list[Any]) -> bool | None:
        nonlocal table
        for column, answer in zip(columns, answers):
            answered[column] = book.learn_answer(column, answer)
            table = answer is not NOT_TABLE
        return table

    def known(column: bytes) -> bool:
        """Whether the kind of ``column`` is known, noting it for this check."""
        if column not in answered:
            kind = book.kind(column)
            if kind is UNKNOWN:
                return False
            answered[column] = kind
        return True

    columns = list(dict.fromkeys(col for _, _, col in empty if not known(col)))
    if not columns and table is None and any(r.table or r.records for r in risks):
        columns = [b""]  # any probe tells whether the database is a table
    questions = ask(columns) + [empty_values(col) for _, col, _ in indexing]
    found: list[Any] = []
    if questions:
        answers = yield questions
        learn(columns, answers)
        found = answers[len(columns):]
        if any(answer is NOT_TABLE for answer in found):
            table = False
            book.learn_answer(b"", NOT_TABLE)
    if table is False:
        return  # nothing aborts a database that is not a table
    for risk in risks:
        if risk.table:
            raise TyrantUnsafeWrite(risk.table + "; nothing was sent")
    records = [item for risk in risks for item in _record_empties(risk)]
    if records:
        columns = list(dict.fromkeys(col for _, _, col in records if not known(col)))
        if columns:
            learn(columns, (yield ask(columns)))
            if table is False:
                return
        empty.extend(records)
    for risk, pk, column in empty:
        kind = answered.get(column, "ordered")  # (always there: "ordered" to be safe)
        if kind in ORDERED:
            raise _empty_error(risk, pk, column, kind)
    for (risk, column, code), key in zip(indexing, found):
        if key is not None and key is not NOT_TABLE:
            kind = "lexical" if code & ~c.INDEX_KEEP == c.INDEX_LEXICAL else "decimal"
            raise TyrantUnsafeWrite(
                f"{risk.command}: record {_show(key)} (and maybe others) has an empty value "
                f"in column {_show(column)}; building a {kind} index over an empty value aborts "
                "a real ttserver, so nothing was sent. Fill or remove those values first"
            )


def learn_results(book: TableIndexes, cmds: list[c.Cmd], results: list[Any]) -> None:
    """After sending: learn what successful (or failed) ``setindex`` calls changed,
    and forget columns whose refused write held an empty value."""
    for cmd, result in zip(cmds, results):
        if cmd.__class__ is c.Batch:
            risk = cmd.risk  # type: ignore[attr-defined]
            if risk is None:
                continue
            failed = result.error is not None or False in result  # any of them
        elif cmd.__class__ is c.GuardedCmd:
            risk = cmd.risk  # type: ignore[attr-defined]
            failed = isinstance(result, BaseException) or result is False
        else:
            continue
        if not failed and not risk.setindex:
            continue
        for column, code in risk.setindex:
            book.learn_setindex(_index_name(column), code, not failed)
        if failed and (risk.empty or risk.records):
            book.forget([_index_name(col) for _, col in risk.empty]
                        + [col for _, _, col in _record_empties(risk)])

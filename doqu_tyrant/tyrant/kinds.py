"""What kind of database a server holds, and the commands that depend on it.

A Tyrant server serves one database. STAT's ``type`` names its kind (spec
§3): ``"table"`` for a ``.tct`` file, otherwise a *key-value* kind:
``"hash"`` (``.tch``), ``"B+ tree"`` (``.tcb``), ``"fixed-length"``
(``.tcf``), ``"on-memory hash"`` (``*``) or ``"on-memory tree"`` (``+``).

Both clients ask once (the first time an operation needs it), remember the
answer and then build these requests with it:

==================  ===============================  ==============================
operation           table database                   key-value database
==================  ===============================  ==============================
``t[k]``            MISC ``get`` → ``dict`` of text  GET → ``bytes``
``t[k] = v``        MISC ``put`` of a mapping        PUT of ``str``/``bytes``
``del t[k]``        MISC ``out``                     OUT
``iter(t)``         a ``search``: ``str`` keys       FWMKEYS: ``bytes`` keys
``putlist(items)``  MISC ``putlist`` of records      MISC ``putlist`` of values
``getlist(keys)``   MISC ``getlist`` → records       MGET → ``{key: value}``
``outlist(keys)``   MISC ``outlist``                 MISC ``outlist``
==================  ===============================  ==============================

What cannot work on the kind at hand raises :class:`~.errors.TyrantKindError`
before anything is sent: a record (a mapping) stored in a key-value database
would be kept as a meaningless value, and ``t.table`` and queries exist only
for tables. Pipelines do not ask: their ``putlist``/``getlist``/``outlist``
and ``pl[k] = record`` are the table forms; ``mput``/``mget``/``mout`` are
the key-value ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from . import commands as c
from . import protocol as p
from .errors import TyrantKindError

__all__ = [
    "TABLE",
    "HASH",
    "BTREE",
    "FIXED",
    "MEMORY_HASH",
    "MEMORY_TREE",
    "KEY_VALUE_KINDS",
    "describe",
    "is_table",
    "require_table",
]

TABLE = "table"
HASH = "hash"
BTREE = "B+ tree"
FIXED = "fixed-length"
MEMORY_HASH = "on-memory hash"
MEMORY_TREE = "on-memory tree"
KEY_VALUE_KINDS = frozenset({HASH, BTREE, FIXED, MEMORY_HASH, MEMORY_TREE})

# FWMKEYS of a fixed-length database reads its prefix as an ID interval (§3.1).
_ALL_KEYS = {FIXED: b"[min,max]"}


def kind_of(stat: Mapping[str, str]) -> str:
    """The kind named by a STAT report (``""`` when it names none)."""
    return stat.get("type", "")


def is_table(kind: str) -> bool:
    """Whether ``kind`` gets the table layer (an unknown kind is taken for a table,
    which is what a server that does not say is most likely to hold)."""
    return kind not in KEY_VALUE_KINDS


def describe(kind: str) -> str:
    """``"a table database"``, ``"an on-memory hash database"``, ..."""
    if not kind:
        return "a database of unknown kind"
    article = "an" if kind[0] in "aeiouAEIOU" else "a"
    return f"{article} {kind} database"


def require_table(kind: str, what: str) -> None:
    """Raise :class:`TyrantKindError` unless ``kind`` is a table."""
    if not is_table(kind):
        raise TyrantKindError(
            f"{what} needs a table database, but the server holds {describe(kind)}; "
            "use get/put (t[key], putlist of values, mget) for key-value data", kind)


def _kv_only(kind: str, key: object, value: object) -> TyrantKindError:
    return TyrantKindError(
        f"cannot store a {type(value).__name__} under {c.shown(key)}: the server holds "
        f"{describe(kind)}, which keeps one value (str or bytes) per key; records of "
        "columns need a table database (a .tct file)", kind)


def _table_only(kind: str, key: object, value: object) -> TyrantKindError:
    return TyrantKindError(
        f"cannot store a {type(value).__name__} under {c.shown(key)}: the server holds "
        f"{describe(kind)}, whose records are mappings of column names to values", kind)


def check_item(value: object) -> None:
    """Refuse, before the kind is known, what no kind can store under one key."""
    if not isinstance(value, (Mapping, str, bytes, bytearray, memoryview)):
        raise TypeError(f"t[key] = ... stores a record (a dict, on a table database) or a "
                        f"value (str or bytes), not {type(value).__name__}")


# -- requests by kind: each returns a Cmd of :mod:`.commands` --------------------------------


def item_get(kind: str, key: c.Key) -> c.Cmd:
    """``t[key]``: the record (table) or the value; None when missing."""
    return c.table_get(key) if is_table(kind) else c.get(key)


def item_set(kind: str, key: c.Key, value: Any) -> c.Cmd:
    """``t[key] = value``: a record (mapping) for a table, else a str/bytes value."""
    record = isinstance(value, Mapping)
    if is_table(kind):
        if not record:
            raise _table_only(kind, key, value)
        return c.table_put(key, value)
    if record:
        raise _kv_only(kind, key, value)
    return c.put(key, value)


def item_del(kind: str, key: c.Key) -> c.Cmd:
    """``del t[key]``: True when it was removed, False when missing."""
    return c.table_out(key) if is_table(kind) else c.out(key)


class BulkPut:
    """A MISC ``putlist`` request, built (and so validated) before the kind is
    known: the table form when the values are mappings (records), the
    key-value form when they are str or bytes."""

    __slots__ = ("cmd", "records", "first")

    def __init__(self, items: Any) -> None:
        pairs: Any = items if isinstance(items, Mapping) else list(c.pairs_arg(items, "records"))
        self.first = next(iter(c.pairs_arg(pairs, "records")), None)
        self.records = self.first is not None and isinstance(self.first[1], Mapping)
        self.cmd = c.putlist(pairs) if self.records or self.first is None else c.mput(pairs)

    def for_kind(self, kind: str) -> c.Cmd:
        """The request, if its form fits ``kind``; else :class:`TyrantKindError`."""
        if self.first is not None and self.records != is_table(kind):
            key, value = self.first
            raise (_kv_only if self.records else _table_only)(kind, key, value)
        return self.cmd


def getlist(kind: str, keys: Iterable[c.Key], raw: bool) -> c.Cmd:
    """The existing records (table) or values (key-value, one MGET) among ``keys``."""
    return c.getlist(keys, raw=raw) if is_table(kind) else c.mget(keys)


def outlist(kind: str, keys: Iterable[c.Key]) -> c.Cmd:
    """Remove many keys in one MISC ``outlist`` (missing ones are ignored)."""
    return c.outlist(keys) if is_table(kind) else c.mout(keys)


def all_keys_frame(kind: str) -> bytes:
    """The FWMKEYS request listing every key of a key-value database."""
    return p.encode_fwmkeys(_ALL_KEYS.get(kind, b""), -1)

"""Commands as data: argument checks, one request frame, and a reply parser.

Every public command of :class:`~doqu_tyrant.tyrant.client.Tyrant`,
:class:`~doqu_tyrant.tyrant.aio.AsyncTyrant` and their pipelines is built here
exactly once. A builder validates its arguments (raising ``TypeError`` /
``ValueError`` before anything is sent), encodes the request with
:mod:`.protocol`, and returns a :data:`Cmd`::

    (frame, command code, parser, parser argument, idempotent)

The I/O shells send ``frame``, feed the reply to ``parser(reply, arg)`` and
return what it returns. ``idempotent`` marks reads that may be retried on a
fresh connection. No I/O happens in this module.

A write that a real ttserver may abort on (spec §10: an empty value in a
column with a lexical or decimal index, and a few other inputs) is returned
as a :class:`GuardedCmd`: the same five fields plus a :class:`Risk` that the
client checks against its knowledge of the table's indexes
(:mod:`.indexes`) before sending anything. Inputs that abort whatever the
database holds are refused here at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import chain, repeat
from operator import is_, itemgetter
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias

from . import protocol as p
from .errors import EKEEP, EMISC, ENOREC, TyrantCommandError, TyrantDecodeError, TyrantError
from .regex import REGEX_FUNCTIONS, check_misc
from .risks import INDEX_DECIMAL as INDEX_DECIMAL
from .risks import (
    INDEX_KEEP,
    INDEX_KINDS,
    INDEX_OPTIMIZE,
    INDEX_VOID,
    PUTSHL_ON_TABLE,
    Risk,
    batch_empty_columns,
    empty_columns,
    guarded,
    maybe_empty,
    misc_risk,
)
from .risks import INDEX_LEXICAL as INDEX_LEXICAL
from .risks import INDEX_QGRAM as INDEX_QGRAM
from .risks import INDEX_TOKEN as INDEX_TOKEN
from .risks import GuardedCmd as GuardedCmd

Key: TypeAlias = "str | bytes | bytearray | memoryview"
Record: TypeAlias = (
    "Mapping[str, str | bytes] | Mapping[bytes, str | bytes] | Mapping[str | bytes, str | bytes]"
)
Parser: TypeAlias = Callable[[p.Reply, Any], Any]
Cmd: TypeAlias = "tuple[bytes, int, Parser, Any, bool]"

INT32_MAX = (1 << 31) - 1
INT32_MIN = -(1 << 31)
HINT_PREFIX = b"\0\0[[HINT]]\n"

# MISC functions that only read: safe to retry on a fresh connection.
READ_ONLY_MISC = frozenset({b"get", b"getlist", b"getpart", b"regex", b"range", b"error"})


# ---------------------------------------------------------------------------
# Argument conversion


def to_bytes(value: object, what: str) -> bytes:
    """``str`` (encoded as UTF-8) or a bytes-like object as ``bytes``."""
    tp = type(value)
    if tp is bytes:
        return value  # type: ignore[return-value]
    if tp is str:
        try:
            return value.encode()  # type: ignore[attr-defined, no-any-return]
        except UnicodeEncodeError as exc:
            raise _unencodable(value, what, exc) from None  # type: ignore[arg-type]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return to_bytes(str.__str__(value), what)
    raise TypeError(f"{what} must be str or bytes, not {tp.__name__}")


def shown(value: object, limit: int = 60) -> str:
    """``repr(value)``, shortened for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _unencodable(text: str, what: str, exc: UnicodeEncodeError) -> ValueError:
    return ValueError(f"{what} {shown(text)} cannot be encoded as UTF-8: it contains the lone "
                      f"surrogate {text[exc.start]!r} at position {exc.start}")


def _escaped(text: str, what: str) -> bytes:
    # Keys read from the server are decoded with surrogateescape (decode_key):
    # encoding them back the same way gives the stored bytes.
    text = str.__str__(text)
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as exc:
        raise _unencodable(text, what, exc) from None


def _sized(value: object, what: str) -> bytes:
    data = to_bytes(value, what)
    if len(data) > p.MAX_LENGTH:
        raise ValueError(f"{what} is {len(data)} bytes; the server accepts at most {p.MAX_LENGTH}")
    return data


def key_bytes(key: object, what: str = "key") -> bytes:
    """A key-value key or value: any bytes, size-checked. Text is UTF-8, with
    ``surrogateescape`` (so a table key read back as text finds its record)."""
    tp = type(key)
    if tp is bytes:
        if len(key) <= p.MAX_LENGTH:  # type: ignore[arg-type]
            return key  # type: ignore[return-value]
    elif tp is str and len(key) <= 1 << 20:  # type: ignore[arg-type]
        try:
            return key.encode()  # type: ignore[attr-defined, no-any-return]
        except UnicodeEncodeError:
            pass
    if isinstance(key, str):
        key = _escaped(key, what)
    return _sized(key, what)


def pk_bytes(pk: object, what: str = "primary key") -> bytes:
    """A table primary key: not empty, no NUL byte."""
    if type(pk) is str:
        if pk and "\0" not in pk and len(pk) <= 1 << 20:  # fast path
            try:
                return pk.encode()
            except UnicodeEncodeError:
                pass
    elif type(pk) is bytes and pk and b"\0" not in pk and len(pk) <= p.MAX_LENGTH:
        return pk
    if isinstance(pk, str):
        pk = _escaped(pk, what)
    data = _sized(pk, what)
    if not data:
        raise ValueError(f"{what} must not be empty")
    if b"\0" in data:
        raise ValueError(f"{what} {data!r} contains a NUL byte")
    return data


def column_bytes(name: object, what: str = "column name") -> bytes:
    data = _sized(name, what)
    if not data:
        raise ValueError(f"{what} must not be empty")
    if b"\0" in data:
        raise ValueError(f"{what} {data!r} contains a NUL byte")
    return data


def serialize_text_record(record: object) -> bytes | None:
    """The serialised record (:func:`serialize_record`) when it is a dict whose
    every name and value is a valid ``str`` -- no NUL inside, encodable, within
    the size limit: the common case, checked in bulk; None otherwise (the
    careful path then decides)."""
    if type(record) is not dict or "" in record:
        return None
    try:
        text = "\0".join(chain.from_iterable(record.items()))
    except TypeError:  # a non-str name or value
        return None
    if text.count("\0") != 2 * len(record) - 1:  # NUL inside a name or value
        return None
    try:
        data = text.encode()
    except UnicodeEncodeError:
        return None
    return data if len(data) <= p.MAX_LENGTH else None



def record_args(record: object, pk: bytes) -> list[bytes]:
    """A table record as the flat ``name, value, ...`` list, validated."""
    if record:
        data = serialize_text_record(record)
        if data is not None:
            return data.split(b"\0")
    if not isinstance(record, Mapping):
        raise TypeError(
            f"record of {pk!r} must be a mapping of column names to values, "
            f"not {type(record).__name__}"
        )
    out: list[bytes] = []
    for name, value in record.items():
        name_b = column_bytes(name, f"column name in record {pk!r}")
        value_b = _sized(value, f"column {name_b!r} of record {pk!r}")
        if b"\0" in value_b:
            raise ValueError(f"column {name_b!r} of record {pk!r} contains a NUL byte")
        out.append(name_b)
        out.append(value_b)
    return out


def serialize_record(record: object, pk: bytes) -> bytes:
    """A table record serialised as ``name\\0value\\0...`` (spec §5.1)."""
    if record:
        data = serialize_text_record(record)
        if data is not None:
            return data
    return b"\0".join(record_args(record, pk))


def _int_arg(value: object, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not lo <= value <= hi:
        raise ValueError(f"{what} must be between {lo} and {hi}, got {value}")
    return value


def _keys_list(keys: object, what: str, convert: Callable[[object, str], bytes]) -> list[bytes]:
    if isinstance(keys, (str, bytes, bytearray, memoryview)):
        raise TypeError(f"{what} must be an iterable of keys, not a single {type(keys).__name__}")
    if not isinstance(keys, Iterable):
        raise TypeError(f"{what} must be an iterable of keys, not {type(keys).__name__}")
    out = [convert(k, f"{what}[{i}]") for i, k in enumerate(keys)]
    if len(out) > p.MAX_COUNT:
        raise ValueError(f"{what} has {len(out)} keys; the server accepts at most {p.MAX_COUNT}")
    return out


def pairs_arg(items: object, what: str) -> Iterable[tuple[Any, Any]]:
    """``items`` (a mapping, or an iterable of ``(key, value)`` pairs) as pairs;
    anything else raises ``TypeError`` naming ``what``."""
    if isinstance(items, Mapping):
        return items.items()
    if isinstance(items, (str, bytes, bytearray, memoryview)) or not isinstance(items, Iterable):
        raise TypeError(f"{what} must be a mapping or an iterable of (key, value) pairs, "
                        f"not {type(items).__name__}")
    return _checked_pairs(items, what)


def _checked_pairs(items: Iterable[Any], what: str) -> Iterator[tuple[Any, Any]]:
    for i, pair in enumerate(items):
        if type(pair) is not tuple or len(pair) != 2:
            if isinstance(pair, (str, bytes, bytearray, memoryview, Mapping)) or not isinstance(
                    pair, (tuple, list)) or len(pair) != 2:
                raise TypeError(f"{what}[{i}] must be a (key, value) pair, not "
                                f"{type(pair).__name__} {shown(pair)}")
        yield pair[0], pair[1]


def _name(name: object, what: str) -> bytes:
    data = _sized(name, what)
    if len(data) >= p.MAX_NAME:
        raise ValueError(f"{what} must be shorter than {p.MAX_NAME} bytes")
    return data


# ---------------------------------------------------------------------------
# Decoding of table data


def decode_key(data: bytes) -> str:
    """A primary key as text; bytes that are not UTF-8 are kept as surrogates
    (``surrogateescape``), so one odd key never hides the others and the text
    names the same record when given back (:func:`pk_bytes`)."""
    return data.decode("utf-8", "surrogateescape")


def decode_text(data: bytes, key: bytes, column: bytes | None) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise TyrantDecodeError(key, column) from None


def decode_serialized(data: bytes, key: bytes) -> dict[str, str]:
    """A serialised record (spec §5.1) as text columns."""
    if not data:
        return {}
    try:
        parts = data.decode().split("\0")
    except UnicodeDecodeError:
        return decode_record(p.unpack_record(data), key)
    it = iter(parts)
    return dict(zip(it, it))


def decode_record(pairs: dict[bytes, bytes], key: bytes) -> dict[str, str]:
    """Columns as text; an invalid column raises :class:`TyrantDecodeError`."""
    try:
        return {n.decode(): v.decode() for n, v in pairs.items()}
    except UnicodeDecodeError:
        for n, v in pairs.items():
            decode_text(n, key, n)
            decode_text(v, key, n)
        raise  # pragma: no cover - one of the above raises


def pairs_to_dict(items: list[bytes], key: bytes) -> dict[bytes, bytes]:
    """A flat ``name, value, ...`` list as a dict (MISC ``get`` of a table)."""
    if len(items) % 2:
        raise TyrantError(
            f"reply for {key!r} is not a table record ({len(items)} elements); "
            "is this a table database?"
        )
    it = iter(items)
    return dict(zip(it, it))


def strip_hint(items: list[bytes]) -> str | None:
    """Remove the planner explanation a ``hint`` search appends; return its text."""
    if items and items[-1].startswith(HINT_PREFIX):
        return items.pop()[len(HINT_PREFIX):].decode("utf-8", "replace")
    return None


# ---------------------------------------------------------------------------
# Reply parsers: parser(reply, arg) -> value or raise


def _fail(name: str, code: int = EMISC) -> TyrantCommandError:
    return TyrantCommandError(name, code)


def _status(reply: p.Reply, name: str) -> None:
    if not reply.ok:
        raise _fail(name)


def _flag(reply: p.Reply, name: str) -> bool:
    return reply.ok


def _value_or_default(reply: p.Reply, default: Any) -> Any:
    return reply.value if reply.ok else default


def _value(reply: p.Reply, name: str) -> Any:
    if reply.ok:
        return reply.value
    raise _fail(name)


_COUNTER_FAILURES = {
    "addint": "the record holds no 4-byte integer, or the sum overflowed to INT32_MIN",
    "adddouble": "the record holds no 8-byte real number, or the number or the sum is NaN",
}


def _counter(reply: p.Reply, name: str) -> Any:
    if reply.ok:
        return reply.value
    raise TyrantCommandError(name, EKEEP, f"{name} failed: {_COUNTER_FAILURES[name]}")


def _mget(reply: p.Reply, _: Any) -> dict[bytes, bytes]:
    # ttserver's MGET never fails; the bundled server refuses one whose reply
    # would exceed its memory budget, which must not read as "none found".
    if not reply.ok:
        raise _fail("mget")
    return dict(reply.value)  # type: ignore[call-overload]


def _list(reply: p.Reply, _: Any) -> list[bytes]:
    return reply.value if reply.ok else []  # type: ignore[return-value]


def _stat(reply: p.Reply, _: Any) -> dict[str, str]:
    if not reply.ok:
        raise _fail("stat")
    return p.parse_stat(reply.value)  # type: ignore[arg-type]


def _iternext(reply: p.Reply, _: Any) -> bytes | None:
    return reply.value if reply.ok else None  # type: ignore[return-value]


def _misc(reply: p.Reply, name: bytes) -> list[bytes]:
    if reply.ok:
        return reply.value  # type: ignore[return-value]
    code = EKEEP if name == b"putkeep" else ENOREC if name in (b"out", b"get") else EMISC
    raise TyrantCommandError(f"misc {name.decode('latin-1')}", code)


def _table_get(reply: p.Reply, arg: tuple[bytes, Any, bool]) -> Any:
    pk, default, raw = arg
    if not reply.ok:
        return default
    items: list[bytes] = reply.value  # type: ignore[assignment]
    if not raw and not len(items) % 2:
        try:
            texts = [item.decode() for item in items]
        except UnicodeDecodeError:
            pass
        else:
            it = iter(texts)
            return dict(zip(it, it))
    pairs = pairs_to_dict(items, pk)
    return pairs if raw else decode_record(pairs, pk)


def _getlist(reply: p.Reply, raw: bool) -> dict:
    if not reply.ok:
        raise _fail("misc getlist")
    items: list[bytes] = reply.value  # type: ignore[assignment]
    it = iter(items)
    if raw:
        return {pk: p.unpack_record(data) for pk, data in zip(it, it)}
    out: dict = {}
    for pk, data in zip(it, it):
        out[decode_key(pk)] = decode_serialized(data, pk)
    return out


def _genuid(reply: p.Reply, _: Any) -> int:
    if not reply.ok or not reply.value:
        raise _fail("misc genuid")
    return int(reply.value[0])  # type: ignore[index]


def _setindex(reply: p.Reply, keep: bool) -> bool:
    if reply.ok:
        return True
    if keep:
        return False
    raise TyrantCommandError("misc setindex", EMISC,
                             "setindex failed (no such index to optimize/remove, invalid kind, "
                             "or not a table database)")


def _table_flag(reply: p.Reply, _: Any) -> bool:
    return reply.ok


def _table_status(reply: p.Reply, name: str) -> None:
    if not reply.ok:
        raise _fail(name)


# ---------------------------------------------------------------------------
# Builders: one per command. Each returns a Cmd.


def _binary_write(cmd: Cmd, name: str, key: bytes, value: bytes) -> Cmd:
    """A key-value write; on a table database its value is a record to check."""
    if maybe_empty(value):
        return guarded(cmd, Risk(name, records=((key, value),)))
    return cmd


_enc_put = p.encode_put
_enc_key = p.encode_key


def put(key: Key, value: Key) -> Cmd:
    k, v = key_bytes(key), key_bytes(value, "value")
    return _binary_write((_enc_put(k, v, p.PUT), p.PUT, _status, "put", False), "put", k, v)


def putkeep(key: Key, value: Key) -> Cmd:
    k, v = key_bytes(key), key_bytes(value, "value")
    cmd = (_enc_put(k, v, p.PUTKEEP), p.PUTKEEP, _flag, "putkeep", False)
    return _binary_write(cmd, "putkeep", k, v)


def putcat(key: Key, value: Key) -> Cmd:
    k, v = key_bytes(key), key_bytes(value, "value")
    cmd = (_enc_put(k, v, p.PUTCAT), p.PUTCAT, _status, "putcat", False)
    return _binary_write(cmd, "putcat", k, v)


def putshl(key: Key, value: Key, width: int) -> Cmd:
    w = _int_arg(width, "width", 0, INT32_MAX)
    k = key_bytes(key)
    if not k:
        # ttserver aborts on PUTSHL with an empty key to a table (spec §10).
        raise ValueError("key of putshl must not be empty")
    frame = p.encode_putshl(k, key_bytes(value, "value"), w)
    return guarded((frame, p.PUTSHL, _status, "putshl", False),
                   Risk("putshl", table=PUTSHL_ON_TABLE))


def putnr(key: Key, value: Key) -> Cmd:
    k, v = key_bytes(key), key_bytes(value, "value")
    return _binary_write((_enc_put(k, v, p.PUTNR), p.PUTNR, _status, "putnr", False), "putnr",
                         k, v)


def out(key: Key) -> Cmd:
    return (_enc_key(p.OUT, key_bytes(key)), p.OUT, _flag, "out", False)


def get(key: Key, default: Any = None) -> Cmd:
    return (_enc_key(p.GET, key_bytes(key)), p.GET, _value_or_default, default, True)


def mget(keys: Iterable[Key]) -> Cmd:
    return (p.encode_mget(_keys_list(keys, "keys", key_bytes)), p.MGET, _mget, None, True)


def vsiz(key: Key, default: Any = None) -> Cmd:
    return (_enc_key(p.VSIZ, key_bytes(key)), p.VSIZ, _value_or_default, default, True)


def iterinit() -> Cmd:
    return (p.encode_simple(p.ITERINIT), p.ITERINIT, _status, "iterinit", True)


def iternext() -> Cmd:
    return (p.encode_simple(p.ITERNEXT), p.ITERNEXT, _iternext, None, False)


def fwmkeys(prefix: Key = b"", max: int | None = None) -> Cmd:
    limit = -1 if max is None else _int_arg(max, "max", INT32_MIN, INT32_MAX)
    frame = p.encode_fwmkeys(key_bytes(prefix, "prefix"), limit)
    return (frame, p.FWMKEYS, _list, None, True)


def addint(key: Key, num: int = 0) -> Cmd:
    n = _int_arg(num, "num", INT32_MIN, INT32_MAX)
    return (p.encode_addint(key_bytes(key), n), p.ADDINT, _counter, "addint", False)


def adddouble(key: Key, num: float = 0.0) -> Cmd:
    if isinstance(num, bool) or not isinstance(num, (int, float)):
        raise TypeError(f"num must be a number, not {type(num).__name__}")
    value = float(num)  # NaN travels as the C client sends it; the server refuses it
    frame = p.encode_adddouble(key_bytes(key), value)  # ValueError when out of range
    return (frame, p.ADDDOUBLE, _counter, "adddouble", False)


def ext(name: Key, key: Key = b"", value: Key = b"", *, lock_record: bool = False,
        lock_global: bool = False) -> Cmd:
    opts = (p.EXT_LOCKREC if lock_record else 0) | (p.EXT_LOCKGLB if lock_global else 0)
    frame = p.encode_ext(_name(name, "function name"), key_bytes(key), key_bytes(value, "value"),
                         opts)
    return (frame, p.EXT, _value, "ext", False)


def call_func(func: Key, key: Key = b"", value: Key = b"", record_locking: bool = False,
              global_locking: bool = False) -> Cmd:
    """pyrant's spelling of :func:`ext`: the lock options as positional flags."""
    for flag, what in ((record_locking, "record_locking"), (global_locking, "global_locking")):
        if flag not in (True, False) or not isinstance(flag, int):
            raise TypeError(f"{what} must be True or False, not {type(flag).__name__} "
                            f"{shown(flag)}")
    return ext(func, key, value, lock_record=bool(record_locking),
               lock_global=bool(global_locking))


def sync() -> Cmd:
    return (p.encode_simple(p.SYNC), p.SYNC, _status, "sync", False)


def optimize(params: Key = b"") -> Cmd:
    frame = p.encode_path(p.OPTIMIZE, _sized(params, "params"))
    return (frame, p.OPTIMIZE, _status, "optimize", False)


def vanish() -> Cmd:
    return (p.encode_simple(p.VANISH), p.VANISH, _status, "vanish", False)


def copy(path: Key) -> Cmd:
    return (p.encode_path(p.COPY, _sized(path, "path")), p.COPY, _status, "copy", False)


def restore(path: Key, ts: int = 0, *, check: bool = False) -> Cmd:
    t = _int_arg(ts, "ts", 0, (1 << 64) - 1)
    frame = p.encode_restore(_sized(path, "path"), t, p.REPL_CHECK if check else 0)
    return (frame, p.RESTORE, _status, "restore", False)


def setmst(host: Key = b"", port: int = 0, ts: int = 0, *, check: bool = False) -> Cmd:
    prt = _int_arg(port, "port", 0, 65535)
    t = _int_arg(ts, "ts", 0, (1 << 64) - 1)
    frame = p.encode_setmst(_sized(host, "host"), prt, t, p.REPL_CHECK if check else 0)
    return (frame, p.SETMST, _status, "setmst", False)


def rnum() -> Cmd:
    return (p.encode_simple(p.RNUM), p.RNUM, _value, "rnum", True)


def size() -> Cmd:
    return (p.encode_simple(p.SIZE), p.SIZE, _value, "size", True)


def stat() -> Cmd:
    return (p.encode_simple(p.STAT), p.STAT, _stat, None, True)


def misc(name: Key, args: Iterable[Key] = (), opts: int = 0) -> Cmd:
    name_b = _name(name, "function name")
    args_b = _keys_list(args, "args", _sized)
    o = _int_arg(opts, "opts", 0, 0xFFFFFFFF)
    if name_b in REGEX_FUNCTIONS:
        check_misc(name_b, args_b)  # a regular expression that would stall the server
    if name_b in (b"search", b"metasearch"):
        read = not any(a.split(b"\0", 1)[0] in (b"out", b"remove") for a in args_b)
    else:
        read = name_b in READ_ONLY_MISC
    cmd = (p.encode_misc(name_b, args_b, o), p.MISC, _misc, name_b, read)
    risk = misc_risk(name_b, args_b)
    return cmd if risk is None else guarded(cmd, risk)


def mput(items: Mapping[Any, Key] | Iterable[tuple[Any, Key]]) -> Cmd:
    """Store many key-value pairs in one round trip (MISC ``putlist``)."""
    args: list[bytes] = []
    for key, value in pairs_arg(items, "items"):
        if isinstance(value, Mapping):
            raise TypeError(f"value of key {shown(key)} is a {type(value).__name__}: a "
                            "key-value database stores one value (str or bytes) per key; "
                            "records of columns need a table database")
        args.append(key_bytes(key, "key in items"))
        args.append(key_bytes(value, f"value of key {shown(key)}"))
    if len(args) > p.MAX_COUNT:
        raise ValueError(f"items has {len(args) // 2} entries; at most {p.MAX_COUNT // 2} fit "
                         "in one request")
    cmd = (p.encode_misc(b"putlist", args, 0), p.MISC, _table_status, "misc putlist", False)
    risk = misc_risk(b"putlist", args)  # (on a table, the values are records)
    return cmd if risk is None else guarded(cmd, risk)


def mout(keys: Iterable[Key]) -> Cmd:
    """Remove many keys in one round trip (MISC ``outlist``; missing ones are ignored)."""
    args = _keys_list(keys, "keys", key_bytes)
    return (p.encode_misc(b"outlist", args, 0), p.MISC, _table_status, "misc outlist", False)


# Table layer -----------------------------------------------------------------


_TABLE_WRITES = {b"put": "table_put", b"putkeep": "table_putkeep", b"putcat": "table_putcat"}


def _table_write(name: bytes, pk: Key, record: Record, parse: Parser, arg: Any) -> Cmd:
    pkb = pk_bytes(pk)
    args = record_args(record, pkb)
    cmd = (p.encode_misc(name, [pkb, *args], 0), p.MISC, parse, arg, False)
    if b"" in args:  # an empty value (names are never empty)
        return guarded(cmd, Risk(_TABLE_WRITES[name], empty_columns(pkb, args)))
    return cmd


def table_put(pk: Key, record: Record) -> Cmd:
    return _table_write(b"put", pk, record, _table_status, "misc put")


def table_putkeep(pk: Key, record: Record) -> Cmd:
    return _table_write(b"putkeep", pk, record, _table_flag, None)


def table_putcat(pk: Key, record: Record) -> Cmd:
    return _table_write(b"putcat", pk, record, _table_status, "misc putcat")


def table_out(pk: Key) -> Cmd:
    frame = p.encode_misc(b"out", [pk_bytes(pk)], 0)
    return (frame, p.MISC, _table_flag, None, False)


def table_get(pk: Key, default: Any = None, *, raw: bool = False) -> Cmd:
    pkb = pk_bytes(pk)
    frame = p.encode_misc(b"get", [pkb], p.MISC_NOULOG)
    return (frame, p.MISC, _table_get, (pkb, default, raw), True)


def getlist(pks: Iterable[Key], *, raw: bool = False) -> Cmd:
    keys = _keys_list(pks, "pks", pk_bytes)
    return (p.encode_misc(b"getlist", keys, p.MISC_NOULOG), p.MISC, _getlist, raw, True)


def putlist(records: Mapping[Any, Record] | Iterable[tuple[Any, Record]]) -> Cmd:
    args: list[bytes] = []
    empty: list[tuple[bytes, bytes]] = []
    for pk, record in pairs_arg(records, "records"):
        pkb = pk_bytes(pk, "primary key in records")
        data = serialize_record(record, pkb)
        args.append(pkb)
        args.append(data)
        if data and (b"\0\0" in data or data[-1] == 0):
            empty.extend(empty_columns(pkb, data.split(b"\0")))
    if len(args) > p.MAX_COUNT:
        raise ValueError(f"records has {len(args) // 2} entries; at most {p.MAX_COUNT // 2} fit "
                         "in one request")
    cmd = (p.encode_misc(b"putlist", args, 0), p.MISC, _table_status, "misc putlist", False)
    return guarded(cmd, Risk("putlist", empty=tuple(empty))) if empty else cmd


def outlist(pks: Iterable[Key]) -> Cmd:
    keys = _keys_list(pks, "pks", pk_bytes)
    return (p.encode_misc(b"outlist", keys, 0), p.MISC, _table_status, "misc outlist", False)


def index_kind(kind: int | str) -> int:
    if isinstance(kind, str):
        try:
            return INDEX_KINDS[kind.lower()]
        except KeyError:
            raise ValueError(
                f"unknown index kind {kind!r}; use one of {', '.join(sorted(INDEX_KINDS))}"
            ) from None
    if isinstance(kind, bool) or not isinstance(kind, int):
        raise TypeError(f"index kind must be a name or an int, not {type(kind).__name__}")
    if kind not in (0, 1, 2, 3, INDEX_OPTIMIZE, INDEX_VOID):
        raise ValueError(f"unknown index kind {kind}")
    return kind


def setindex(column: Key, kind: int | str, *, keep: bool = False) -> Cmd:
    name = _sized(column, "column")  # "" (the primary key) is accepted by the server
    if b"\0" in name:
        raise ValueError(f"column {name!r} contains a NUL byte")
    code = index_kind(kind) | (INDEX_KEEP if keep else 0)
    frame = p.encode_misc(b"setindex", [name, b"%d" % code], 0)
    return guarded((frame, p.MISC, _setindex, keep, False),
                   Risk("setindex", setindex=((name, code),)))


_GENUID: Cmd = (p.GENUID_FRAME, p.MISC, _genuid, None, False)


def genuid() -> Cmd:
    return _GENUID


# Batches -------------------------------------------------------------------


class Batch(tuple):  # type: ignore[type-arg]
    """Many requests of one command as one pipeline entry.

    The five fields of a :data:`Cmd`: the frame holding all ``size``
    requests, their command, a parser taking the list of their replies and
    returning a :class:`BatchResults`, its argument, and whether they are
    idempotent; ``risk``: a :class:`Risk` covering all of them, or None.
    Encoding the frames in one pass and decoding the replies in one pass
    costs a fraction of ``size`` single commands.
    """

    size: int
    risk: Risk | None


class BatchResults(list):  # type: ignore[type-arg]
    """The results of a :class:`Batch`, one per request, in order; ``error`` is
    the first failure (an exception, also in its place), None if none failed."""

    error: TyrantError | None = None


BatchParser: TypeAlias = "Callable[[list[p.Reply], Any], BatchResults]"


def _batch(cmd: tuple[bytes, int, BatchParser, Any, bool], size: int,
           risk: Risk | None = None) -> Cmd:
    out = Batch(cmd)
    out.size = size
    out.risk = risk
    return out  # type: ignore[return-value]


def _genuids(replies: list[p.Reply], _: Any) -> BatchResults:
    try:  # every reply one number: the common case, in one pass
        return BatchResults(map(int, [reply[1][0] for reply in replies]))  # type: ignore[index]
    except (TypeError, IndexError):
        pass
    results = BatchResults()
    for reply in replies:
        try:
            results.append(_genuid(reply, None))
        except TyrantError as exc:
            results.append(exc)
            if results.error is None:
                results.error = exc
    return results


def _flags(replies: list[p.Reply], _: Any) -> BatchResults:
    return BatchResults(map(_first, replies))


def _statuses(replies: list[p.Reply], name: str) -> BatchResults:
    results = BatchResults(map(_none_if_ok, replies))
    if False in results:
        for i, ok in enumerate(results):
            if ok is False:
                results[i] = exc = _fail(name)
                if results.error is None:
                    results.error = exc
    return results


def _none_if_ok(reply: p.Reply) -> None | bool:
    return None if reply[0] else False


_first = itemgetter(0)


def genuids(count: int) -> Cmd:
    """``count`` new numbers from the table's ID sequence, as one :class:`Batch`."""
    n = _int_arg(count, "count", 0, p.MAX_COUNT)
    return _batch((p.GENUID_FRAME * n, p.MISC, _genuids, None, False), n)


class Scan(NamedTuple):
    """Serialised table records checked and scanned once (:func:`scan_serialized`):
    ``values`` the records, ``nuls`` each one's count of NUL bytes, ``empty`` each
    column written empty → the position of the first record doing so, ``bad`` the
    position of the first record with an empty column name (-1: none)."""

    values: list[bytes]
    nuls: list[int]
    empty: dict[bytes, int]
    bad: int


def scan_serialized(values: list[bytes]) -> Scan:
    """Check serialised records (names and values pair up) and find their empty
    columns; a caller that has to look at them before it has their keys hands the
    result to :func:`table_put_many` / :func:`table_putkeep_many`, which then
    frame the same records without reading them again."""
    nuls = _check_serialized(None, values)
    return Scan(values, nuls, *batch_empty_columns(values, nuls))


def scanned(values: list[bytes], scan: Scan | None) -> Scan:
    """``scan`` if it is of these very record objects, in order; else their
    :func:`scan_serialized`."""
    if scan is not None and covers(scan, values):
        return scan
    return scan_serialized(values)


def covers(scan: Scan, values: list[Any]) -> bool:
    """Whether ``scan`` is of these very record objects, in order."""
    return len(scan.values) == len(values) and all(map(is_, values, scan.values))


def _table_writes(records: object, command: int, name: str, parse: BatchParser, arg: Any,
                  idempotent: bool, scan: Scan | None) -> Cmd:
    keys: list[bytes] | None = None
    values: list[Any] = []
    if type(records) is dict:
        values = list(records.values())
        keys = _text_pks(list(records))
    if keys is not None and scan is not None and covers(scan, values):  # scanned already
        empty, bad = scan.empty, scan.bad
    else:
        if keys is not None and set(map(type, values)) <= {bytes}:  # serialised already
            nuls = _check_serialized(keys, values)
        else:
            keys, values = [], []
            for pk, record in pairs_arg(records, "records"):
                pkb = pk_bytes(pk, "primary key in records")
                keys.append(pkb)
                values.append(record if record.__class__ is bytes
                              else serialize_record(record, pkb))
            nuls = _check_serialized(keys, values)
        # column written empty -> the first record doing so; a record with an empty name
        empty, bad = batch_empty_columns(values, nuls)
    if bad >= 0:
        raise ValueError(f"record of {keys[bad]!r}: {shown(values[bad])} has an empty column "
                         "name")
    frame = p.encode_puts(keys, values, command)
    risk = Risk(name, empty=tuple((keys[i], col) for col, i in empty.items())) if empty else None
    return _batch((frame, command, parse, arg, idempotent), len(keys), risk)


def _text_pks(pks: list[Any]) -> list[bytes] | None:
    """:func:`pk_bytes` of each of ``pks`` when all are ``str`` (checked in bulk);
    None to check them one by one."""
    try:
        text = "\0".join(pks)
    except TypeError:
        return None
    if not text or text.count("\0") != len(pks) - 1 or "\0\0" in text or text[0] == "\0" \
            or text[-1] == "\0" or not text.isascii():
        return None  # (an empty or non-ASCII key, a NUL in one: the careful path)
    data = text.encode()
    return data.split(b"\0") if len(data) <= p.MAX_LENGTH else None


def _check_serialized(keys: list[bytes] | None, values: list[bytes]) -> list[int]:
    """Refuse a serialised record whose names and values do not pair up (named by
    its key, or its position without ``keys``); each record's count of NUL bytes
    (odd, or 0 for an empty record)."""
    counts = list(map(bytes.count, values, repeat(b"\0")))
    if 0 in map(int.__and__, counts, repeat(1)):
        for i, (data, nuls) in enumerate(zip(values, counts)):
            if data and not nuls % 2:
                what = f"of {keys[i]!r}" if keys is not None else str(i)
                raise ValueError(f"record {what}: {shown(data)} is not a serialised "
                                 "record (name\\0value\\0...: an odd number of NUL bytes)")
    return counts


def table_put_many(records: Mapping[Any, Record | bytes] | Iterable[tuple[Any, Record | bytes]],
                   scan: Scan | None = None) -> Cmd:
    """Table records (``{pk: record}`` or pairs) each written with a binary PUT of the
    serialised record (what :func:`table_put` stores), as one :class:`Batch`. A
    record given as ``bytes`` is taken as serialised already (spec §5.1); ``scan``:
    their :func:`scan_serialized`, used only if it is of these very records (a
    ``dict`` whose values, in order, are the objects scanned)."""
    return _table_writes(records, p.PUT, "table_put_many", _statuses, "put", True, scan)


def table_putkeep_many(records: Mapping[Any, Record | bytes]
                       | Iterable[tuple[Any, Record | bytes]], scan: Scan | None = None) -> Cmd:
    """Like :func:`table_put_many`, with PUTKEEP: each result is whether the
    record was stored (False: the key exists, or the server refused it)."""
    return _table_writes(records, p.PUTKEEP, "table_putkeep_many", _flags, None, False, scan)


#: Builders by method name, aliases included (used by the pipelines).
BUILDERS: dict[str, Callable[..., Cmd]] = {
    "put": put, "putkeep": putkeep, "putcat": putcat, "putshl": putshl, "putnr": putnr,
    "out": out, "get": get, "mget": mget, "vsiz": vsiz, "iterinit": iterinit,
    "iternext": iternext, "fwmkeys": fwmkeys, "addint": addint, "adddouble": adddouble,
    "ext": ext, "call_func": call_func, "mput": mput, "mout": mout,
    "sync": sync, "optimize": optimize, "vanish": vanish, "copy": copy,
    "restore": restore, "setmst": setmst, "rnum": rnum, "size": size, "stat": stat,
    "misc": misc, "table_put": table_put, "table_putkeep": table_putkeep,
    "table_putcat": table_putcat, "table_out": table_out, "table_get": table_get,
    "getlist": getlist, "putlist": putlist, "outlist": outlist, "setindex": setindex,
    "genuid": genuid, "genuids": genuids, "table_put_many": table_put_many,
    "table_putkeep_many": table_putkeep_many,
}
ALIASES: dict[str, str] = {
    "multi_get": "getlist", "multi_set": "putlist", "multi_del": "outlist",
    "prefix_keys": "fwmkeys", "get_stats": "stat", "generate_key": "genuid",
    "get_size": "vsiz", "concat": "putcat", "clear": "vanish",
}


# ---------------------------------------------------------------------------
# Pipelines: queued commands, one frame, results in order


def pipeline_frame(cmds: list[Cmd]) -> tuple[bytes, list[int]]:
    """All queued requests as one frame, and their command codes (a
    :class:`Batch` gives its command ``size`` times)."""
    commands: list[int] = []
    append = commands.append
    for cmd in cmds:
        if cmd.__class__ is Batch:
            commands += repeat(cmd[1], cmd.size)  # type: ignore[attr-defined]
        else:
            append(cmd[1])
    return b"".join([cmd[0] for cmd in cmds]), commands


def pipeline_results(cmds: list[Cmd], replies: list[p.Reply], raise_on_error: bool) -> list[Any]:
    """Parse each reply with its command's parser; a failure becomes its
    exception (raised after all were parsed when ``raise_on_error``). A
    :class:`Batch` takes its ``size`` replies and gives one
    :class:`BatchResults`."""
    results: list[Any] = []
    first_error: TyrantError | None = None
    pos = 0
    for cmd in cmds:
        if cmd.__class__ is Batch:
            end = pos + cmd.size  # type: ignore[attr-defined]
            batch = cmd[2](replies[pos:end], cmd[3])
            pos = end
            results.append(batch)
            if first_error is None:
                first_error = batch.error
            continue
        try:
            results.append(cmd[2](replies[pos], cmd[3]))
        except TyrantError as exc:
            results.append(exc)
            if first_error is None:
                first_error = exc
        pos += 1
    if raise_on_error and first_error is not None:
        raise first_error
    return results


def raise_first_error(results: list[Any]) -> list[Any]:
    """``results``, unless one is a :class:`TyrantError` (or a :class:`BatchResults`
    holding one): then the first is raised."""
    for result in results:
        if isinstance(result, TyrantError):
            raise result
        if result.__class__ is BatchResults and result.error is not None:
            raise result.error
    return results


def risks(cmds: list[Cmd]) -> list[Risk]:
    """The :class:`Risk` of every command (or batch) of ``cmds`` that carries one."""
    return [cmd.risk for cmd in cmds  # type: ignore[attr-defined, misc]
            if cmd.__class__ is GuardedCmd or cmd.__class__ is Batch and cmd.risk is not None]


class PipelineBase:
    """The command queue shared by the blocking and the asyncio pipelines.

    Has one method per command of the clients (aliases included), each
    validating its arguments at once and returning the pipeline.
    """

    def __init__(self) -> None:
        self._cmds: list[Cmd] = []

    def _take(self) -> list[Cmd]:
        cmds = self._cmds
        self._cmds = []
        return cmds

    def reset(self) -> None:
        """Forget the queued commands."""
        self._cmds = []

    def __len__(self) -> int:
        return len(self._cmds)

    def __bool__(self) -> bool:
        return True

    def __setitem__(self, pk: Key, record: Record) -> None:
        self._cmds.append(table_put(pk, record))

    if TYPE_CHECKING:  # the generated command methods below

        def __getattr__(self, name: str) -> Callable[..., Any]: ...


def _queued(name: str, builder: Callable[..., Cmd]) -> Callable[..., Any]:
    def method(self: PipelineBase, *args: Any, **kwargs: Any) -> PipelineBase:
        self._cmds.append(builder(*args, **kwargs))
        return self

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"Queue ``{builder.__name__}``; see the client method of that name."
    return method


for _method, _builder in BUILDERS.items():
    setattr(PipelineBase, _method, _queued(_method, _builder))
for _alias, _target in ALIASES.items():
    setattr(PipelineBase, _alias, _queued(_alias, BUILDERS[_target]))
del _method, _builder, _alias, _target

"""The export format: one JSON object per line.

A table record is ``{"key": "u1", "record": {"name": "Alice", "age": "30"}}``
with its columns in stored order; a key-value record is ``{"key": ...,
"value": ...}``. When the key, a column name or a value is not valid UTF-8,
the line carries ``"encoding": "base64"`` and then every one of them is
base64 of the raw bytes, so any database survives ``export | import`` byte
for byte.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

__all__ = ["LineError", "record_to_json", "value_to_json", "parse_line"]

_FIELDS_TABLE = ("key", "record", "encoding")
_FIELDS_KV = ("key", "value", "encoding")
_BOM = b"\xef\xbb\xbf"


class LineError(ValueError):
    """One input line of ``import`` cannot be imported as it stands."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# The json module's own string encoder (C-accelerated), as ``json.dumps(...,
# ensure_ascii=False)`` uses it: export lines are built from it directly.
_quote = json.encoder.encode_basestring  # type: ignore[attr-defined]


def record_to_json(key: bytes, record: dict[bytes, bytes]) -> str:
    """One export line (without newline) for a table record given as bytes."""
    q = _quote
    try:
        columns = ",".join([q(n.decode()) + ":" + q(v.decode()) for n, v in record.items()])
        return '{"key":' + q(key.decode()) + ',"record":{' + columns + "}}"
    except UnicodeDecodeError:
        obj = {
            "key": _b64(key),
            "record": {_b64(name): _b64(value) for name, value in record.items()},
            "encoding": "base64",
        }
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def value_to_json(key: bytes, value: bytes) -> str:
    """One export line (without newline) for a key-value record."""
    try:
        obj: dict[str, Any] = {"key": key.decode(), "value": value.decode()}
    except UnicodeDecodeError:
        obj = {"key": _b64(key), "value": _b64(value), "encoding": "base64"}
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's members as a dict; a name given twice is an error (the
    json module would keep the last one without a word)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise LineError(f"the name {name!r} occurs twice in one JSON object")
            seen.add(name)
    return obj


_decode = json.JSONDecoder(object_pairs_hook=_unique).decode


def _hint(value: Any) -> str:
    """How to write a non-string JSON value as the text doqu would store."""
    if value is None:
        return '; doqu stores None as an empty value: write ""'
    if value is True or value is False:
        return f'; doqu stores {value} as "{int(value)}": write "{int(value)}"'
    if isinstance(value, (int, float)):
        return f"; write it as {json.dumps(json.dumps(value))}"
    return "; write the text doqu stores for it"


def _check_encodable(value: Any) -> None:
    """Refuse text that cannot be stored as UTF-8 (a lone surrogate like ``"\\ud800"``)."""
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            raise LineError(f"{value[:40]!r} contains a lone surrogate (\\ud800-\\udfff), "
                            "which is not text that UTF-8 can store") from None
    elif isinstance(value, dict):
        for name, item in value.items():
            _check_encodable(name)
            _check_encodable(item)


def _text_field(obj: dict[str, Any], name: str, what: str, b64: bool) -> str | bytes:
    value = obj[name] if name in obj else None
    if not isinstance(value, str):
        got = "nothing" if name not in obj else f"{type(value).__name__} {value!r}"[:60]
        raise LineError(f"{what} must be a JSON string, got {got}")
    if not b64:
        return value
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise LineError(f"{what} is not valid base64: {value[:40]!r}") from None


def parse_line(line: bytes, table: bool = True, first: bool = False) -> tuple[str | bytes, Any]:
    """Validate one import line; return ``(key, record)`` (``(key, value)`` when
    ``table`` is false). ``first``: the file's first line, which may start
    with a UTF-8 byte-order mark. Raises :class:`LineError` saying what is
    wrong."""
    if first and line.startswith(_BOM):
        line = line[len(_BOM) :]
    try:
        obj = _decode(line.decode())
    except UnicodeDecodeError as exc:
        raise LineError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except LineError:
        raise
    except ValueError as exc:
        raise LineError(f"not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise LineError(f"expected a JSON object, got {type(obj).__name__}")
    if b"\\ud" in line or b"\\uD" in line:  # a \uD800-\uDFFF escape: maybe a lone surrogate
        _check_encodable(obj)
    fields = _FIELDS_TABLE if table else _FIELDS_KV
    for name in obj:
        if name not in fields:
            if name == ("value" if table else "record"):
                kind = "table" if table else "key-value"
                raise LineError(
                    f"field {name!r} does not fit a {kind} database "
                    f"(expected the fields {', '.join(fields)})"
                )
            raise LineError(f"unknown field {name!r} (expected {', '.join(fields)})")
    encoding = obj.get("encoding")
    if encoding not in (None, "base64"):
        raise LineError(f"unknown encoding {encoding!r} (only \"base64\" is known)")
    b64 = encoding == "base64"
    key = _text_field(obj, "key", "the key", b64)
    if not key:
        raise LineError("the key is empty")
    if table and ("\0" in key if isinstance(key, str) else b"\0" in key):
        raise LineError("the key contains a NUL character")
    if not table:
        return key, _text_field(obj, "value", "the value", b64)
    record = obj.get("record")
    if not isinstance(record, dict):
        got = "nothing" if "record" not in obj else type(record).__name__
        raise LineError(f"the record must be a JSON object of column: value, got {got}")
    if not b64:
        for name, value in record.items():
            if not name:
                raise LineError("a column name is empty")
            if not isinstance(value, str):
                raise LineError(
                    f"column {name!r} must be a string, got {type(value).__name__} "
                    f"{json.dumps(value)[:40]}{_hint(value)}"
                )
            if "\0" in name or "\0" in value:
                raise LineError(f"column {name!r} contains a NUL character")
        return key, record
    out: dict[bytes, bytes] = {}
    for name in record:
        name_b = _text_field({"n": name}, "n", "a column name", True)
        value_b = _text_field(record, name, f"column {name!r}", True)
        assert isinstance(name_b, bytes) and isinstance(value_b, bytes)
        if not name_b:
            raise LineError("a column name is empty")
        if b"\0" in name_b or b"\0" in value_b:
            raise LineError(f"column {name_b!r} contains a NUL byte")
        if name_b in out:  # two base64 spellings of one name
            raise LineError(f"column {name_b!r} occurs twice in the record")
        out[name_b] = value_b
    return key, out

"""Decoding raw table records, tolerant of columns that are not valid UTF-8.

A record is decoded in one go when it is valid UTF-8 (the common, fast
case). Otherwise every name and value is decoded on its own and the ones
that fail stay ``bytes``: the record still loads and the bad column is
visible as bytes (a ``str`` field then warns naming it, see
:mod:`doqu_tyrant.converters`). Primary keys are decoded with
``surrogateescape`` so that any stored key can be handed back to the server
unchanged (:func:`key_bytes`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from doqu.utils import normalize_key

__all__ = [
    "decode_pairs",
    "key_bytes",
    "key_text",
    "parse_column",
    "parse_columns",
    "parse_item",
    "parse_serialized",
]

Record = dict[Any, Any]


def key_text(raw: bytes) -> str:
    """A primary key from the wire as text (undecodable bytes kept as surrogates)."""
    return raw.decode("utf-8", "surrogateescape")


def key_bytes(key: object) -> bytes:
    """A primary key (text or int) as the bytes the server stores; refuses empty/NUL keys."""
    text = key if type(key) is str else normalize_key(key)
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"primary key {text!r} cannot be encoded as UTF-8: it contains the lone "
            f"surrogate {text[exc.start]!r} at position {exc.start}"
        ) from None
    if data and b"\0" not in data:
        return data
    if not data:
        raise ValueError("a primary key must not be empty")
    raise ValueError(f"primary key {text!r} contains a NUL byte")


def _lenient(part: bytes) -> str | bytes:
    try:
        return part.decode()
    except UnicodeDecodeError:
        return part


def _pairs(parts: list[Any]) -> Record:
    it = iter(parts)
    return dict(zip(it, it))


def parse_serialized(data: bytes) -> Record:
    """``name\\0value\\0…`` (a record as GETLIST returns it) → dict."""
    if not data:
        return {}
    try:
        return _pairs(data.decode().split("\0"))
    except UnicodeDecodeError:
        return _pairs([_lenient(p) for p in data.split(b"\0")])


def parse_item(element: bytes) -> tuple[str, Record]:
    """``\\0pk\\0name\\0value…`` (a search result with ``get``) → (key, record)."""
    try:
        parts: list[Any] = element.decode().split("\0")
    except UnicodeDecodeError:
        raw = element.split(b"\0")
        parts = ["", key_text(raw[1]) if len(raw) > 1 else ""]
        parts += [_lenient(p) for p in raw[2:]]
    it = iter(parts)
    next(it)  # the empty text before the leading NUL
    key = next(it, "")
    return key, dict(zip(it, it))


def parse_column(element: bytes) -> str | bytes:
    """The value of a one-column ``get`` element (``name\\0value``)."""
    value = element.split(b"\0", 1)[1] if b"\0" in element else b""
    return _lenient(value)


def parse_columns(element: bytes) -> Record:
    """A ``get`` element with named columns (``name\\0value\\0…``) → dict."""
    return parse_serialized(element)


def decode_pairs(pairs: Mapping[bytes, bytes]) -> Record:
    """A raw record (bytes names and values) decoded, keeping undecodable parts as bytes."""
    try:
        return {name.decode(): value.decode() for name, value in pairs.items()}
    except UnicodeDecodeError:
        return {_lenient(name): _lenient(value) for name, value in pairs.items()}

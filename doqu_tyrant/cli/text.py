"""Keys and values as text on a terminal, reversibly.

Tokyo Tyrant keys and values are bytes. For text output (``get``, the
``query`` table, ``query --keys``) they are shown as UTF-8 where they are
printable UTF-8, and escaped where not: a byte that is not UTF-8 as ``\\xHH``,
a newline, tab or carriage return as ``\\n``, ``\\t``, ``\\r``, any other
unprintable character as the ``\\xHH`` of its UTF-8 bytes, and a backslash as
``\\\\``. The escaped form is unambiguous, and :func:`unescape` (what
``get --escaped`` and ``put --escaped`` apply to their arguments) gives the
original bytes back.
"""

from __future__ import annotations

from typing import IO

__all__ = ["escape", "unescape", "cell", "print_table"]

_NAMED = {"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_UNNAMED = {ord("\\"): 0x5C, ord("n"): 0x0A, ord("t"): 0x09, ord("r"): 0x0D}
_HEX = b"0123456789abcdefABCDEF"
CELL_WIDTH = 40


def escape(data: bytes) -> str:
    """``data`` as printable text that :func:`unescape` turns back into ``data``."""
    text = data.decode("utf-8", "surrogateescape")
    if text.isprintable() and "\\" not in text:
        return text
    out: list[str] = []
    append = out.append
    for ch in text:
        named = _NAMED.get(ch)
        if named is not None:
            append(named)
        elif "\udc80" <= ch <= "\udcff":  # a byte that is not UTF-8
            append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif ch.isprintable():
            append(ch)
        else:
            append("".join(f"\\x{b:02x}" for b in ch.encode()))
    return "".join(out)


def unescape(data: bytes) -> bytes:
    """The bytes an escaped text stands for; ``ValueError`` on a malformed escape."""
    if b"\\" not in data:
        return data
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        b = data[i]
        if b != 0x5C:
            out.append(b)
            i += 1
            continue
        nxt = data[i + 1] if i + 1 < n else None
        if nxt in _UNNAMED:
            out.append(_UNNAMED[nxt])
            i += 2
        elif nxt == ord("x") and i + 3 < n and data[i + 2] in _HEX and data[i + 3] in _HEX:
            out.append(int(data[i + 2 : i + 4], 16))
            i += 4
        else:
            shown = data[i : i + 4].decode("utf-8", "replace")
            raise ValueError(
                f"bad escape {shown!r} at position {i}: the escaped form knows \\\\ \\n \\t "
                "\\r and \\xHH (write \\\\ for a backslash)"
            )
    return bytes(out)


def cell(data: bytes, width: int = CELL_WIDTH) -> str:
    """A value for one table cell: escaped, shortened to ``width`` characters."""
    text = escape(data)
    if len(text) > width:
        text = text[: width - 1] + "…"
    return text


def print_table(rows: list[tuple[bytes, dict[bytes, bytes]]], out: IO[str]) -> None:
    """Records as aligned columns under a ``key`` header, every column that occurs."""
    columns: dict[bytes, None] = {}
    for _, record in rows:
        for name in record:
            columns.setdefault(name, None)
    header = ["key", *(cell(name) for name in columns)]
    lines = [header] + [
        [cell(pk)] + [cell(record.get(name, b"")) for name in columns] for pk, record in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for n, line in enumerate(lines):
        out.write("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() + "\n")
        if n == 0:
            out.write("  ".join("-" * w for w in widths) + "\n")

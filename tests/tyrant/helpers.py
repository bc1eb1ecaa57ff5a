"""Test helpers: a loopback listener that records requests and replays answers,
and a translator from raw ``search`` arguments to query-builder calls."""

from __future__ import annotations

import queue
import re
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from doqu_tyrant.tyrant.query import BaseQuery

# ---------------------------------------------------------------------------
# A real socket that answers with recorded bytes


class ReplayListener:
    """Accepts connections on 127.0.0.1; for each scripted exchange it reads the
    expected number of request bytes, records them and sends the scripted reply.

    ``exchange(n, reply)`` scripts the next exchange (of whatever connection
    is open); ``recorded()`` returns what the server received for it.
    """

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = f"tyrant://127.0.0.1:{self.port}"
        self.script: queue.Queue[tuple[int, bytes]] = queue.Queue()
        self.records: queue.Queue[bytes] = queue.Queue()
        self.connections = 0
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        with conn:
            while not self._closed:
                try:
                    expected, reply = self.script.get(timeout=0.2)
                except queue.Empty:
                    continue
                data = b""
                try:
                    while len(data) < expected:
                        chunk = conn.recv(1 << 20)
                        if not chunk:
                            break
                        data += chunk
                except OSError:
                    pass
                self.records.put(data)
                if len(data) < expected:
                    return
                conn.sendall(reply)

    def exchange(self, expected: int, reply: bytes) -> None:
        self.script.put((expected, reply))

    def recorded(self, timeout: float = 5.0) -> bytes:
        return self.records.get(timeout=timeout)

    def close(self) -> None:
        self._closed = True
        self.sock.close()


# ---------------------------------------------------------------------------
# search arguments -> query builder

_ORDER_NAMES = {"STRASC": 0, "STR": 0, "ASC": 0, "STRDESC": 1, "DESC": 1, "NUMASC": 2,
                "NUM": 2, "NUMDESC": 3}
_MSTYPE_NAMES = {"UNION": 0, "OR": 0, "ISECT": 1, "INTERSECTION": 1, "AND": 1, "DIFF": 2,
                 "DIFFERENCE": 2, "ANDNOT": 2, "NOT": 2}
_LOOKUP_OF_OP = {0: "eq", 1: "contains", 2: "startswith", 3: "endswith", 4: "all", 5: "any",
                 6: "in", 7: "regex", 8: "numeq", 9: "gt", 10: "gte", 11: "lt", 12: "lte",
                 13: "between", 14: "numoreq", 15: "search", 16: "search_all",
                 17: "search_any", 18: "search_expr"}
_NEG = 1 << 24
_NOIDX = 1 << 25


def _atoi(text: str) -> int:
    text = text.lstrip(" \t\n\r\f\v")
    sign = 1
    if text[:1] in "+-" and text:
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    digits = ""
    for ch in text:
        if not ch.isdigit():
            break
        digits += ch
    return sign * int(digits) if digits else 0


def _canonical_int(text: str) -> int | None:
    try:
        value = int(text)
    except ValueError:
        return None
    return value if str(value) == text else None


def _typed(text: str) -> Any:
    """A typed value whose formatting by the builder gives back ``text`` exactly."""
    value = _canonical_int(text)
    if value is not None:
        return value
    try:
        real = float(text)
    except ValueError:
        return text
    return real if repr(real) == text else text


@dataclass
class _Sub:
    conds: list[tuple[str, str, str]] = field(default_factory=list)
    order: tuple[str, str] | None = None
    limit: tuple[str, str] | None = None


@dataclass
class Translated:
    query: BaseQuery
    action: str  # keys | items | values | count | out | outcount | outitems | outvalues
    compound: bool


def _condition(q: BaseQuery, col: str, op_text: str, expr: str) -> BaseQuery | None:
    """Apply one addcond the way the server reads it; None = condition dropped."""
    from doqu_tyrant.tyrant.query import parse_op

    stripped = op_text.strip()
    number = int(stripped) if re.fullmatch(r"-?[0-9]+", stripped) else None
    if number is not None:
        if number < 0:
            return None  # the server ignores negative operators
        if (number & ~(_NEG | _NOIDX)) > 18:
            return q.none()  # kept by the server, matches nothing
        code = number
    else:
        try:
            code = parse_op(op_text)
        except ValueError:
            return None  # unknown operator name: the server drops the condition
        # text form: exercise the builder with the name itself
        return q.condition(col, op_text, expr)
    base = code & ~(_NEG | _NOIDX)
    negate = bool(code & _NEG)
    noidx = bool(code & _NOIDX)
    if "__" in col:
        return q.condition(col, code, expr)
    lookup = _LOOKUP_OF_OP[base]
    value: Any = expr
    if base == 7 and expr.startswith("*"):
        lookup, value = "iregex", expr[1:]
    elif base == 0:
        value = expr  # text: STREQ
    elif base == 8:
        typed = _typed(expr)
        if not isinstance(typed, str):
            lookup, value = "eq", typed  # a number: eq picks NUMEQ
    elif base in (9, 10, 11, 12):
        value = _typed(expr)
    elif base == 13:
        bounds = expr.split(" ")
        if len(bounds) == 2 and all(_canonical_int(b) is not None for b in bounds):
            value = (int(bounds[0]), int(bounds[1]))
    elif base == 6:
        tokens = expr.split(",")
        if expr and all(t and all(ord(ch) > 0x20 for ch in t) for t in tokens):
            value = tokens  # a list joins with commas: the same bytes
    key = f"{col}__{lookup}" + ("__noidx" if noidx else "")
    method = q.exclude if negate else q.filter
    return method(**{key: value})


def _apply_order(q: BaseQuery, order: tuple[str, str] | None) -> BaseQuery:
    if order is None:
        return q
    col, kind_text = order
    kind = _canonical_int(kind_text)
    if kind is None:
        kind = _ORDER_NAMES.get(kind_text.upper())
    if kind is None or not 0 <= kind <= 3:
        return q.order_by(None)  # unknown type: no ordering
    return q.order_by(("-" if kind in (1, 3) else "") + col, numeric=kind >= 2)


def _apply_limit(q: BaseQuery, limit: tuple[str, str] | None) -> BaseQuery:
    if limit is None:
        return q
    max_, skip = _atoi(limit[0]), _atoi(limit[1])
    return q.limit(None if max_ < 0 else max_, max(skip, 0))


def translate(client: Any, args: list[list[str]]) -> Translated:
    """The builder query (and the result method) equivalent to a ``search``
    argument list, following the server's rules for odd input."""
    subs = [_Sub()]
    columns: list[str] | None = None
    out = count = False
    mstype = 0
    for arg in args:
        if not arg or not arg[0]:
            continue
        name, rest = arg[0], arg[1:]
        cur = subs[-1]
        if name in ("addcond", "cond"):
            if len(rest) >= 3:
                cur.conds.append((rest[0], rest[1], rest[2]))
        elif name in ("setorder", "order"):
            if len(rest) >= 2:
                cur.order = (rest[0], rest[1])
        elif name in ("setlimit", "limit", "setmax", "max"):
            if rest:
                cur.limit = (rest[0], rest[1] if len(rest) > 1 else "0")
        elif name in ("get", "columns"):
            columns = (columns or []) + rest
        elif name in ("out", "remove"):
            out = True
        elif name == "count":
            count = True
        elif name == "next":
            subs.append(_Sub())
        elif name == "mstype":
            if rest:
                number = _canonical_int(rest[0])
                mstype = number if number is not None else _MSTYPE_NAMES.get(rest[0].upper(), 0)
        # hint and unknown directives: nothing to build
    queries = []
    for i, sub in enumerate(subs):
        q: BaseQuery = client.query
        for col, op, expr in sub.conds:
            nq = _condition(q, col, op, expr)
            if nq is not None:
                q = nq
        if len(subs) == 1 or i > 0:
            q = _apply_order(q, sub.order)
            q = _apply_limit(q, sub.limit)
        queries.append(q)
    if len(subs) == 1:
        query = queries[0]
    elif mstype not in (0, 1, 2):
        query = queries[0].none()
    else:
        combine = {0: BaseQuery.union, 1: BaseQuery.intersect, 2: BaseQuery.minus}[mstype]
        query = combine(queries[0], *queries[1:])
        query = _apply_limit(_apply_order(query, subs[0].order), subs[0].limit)
    if columns:
        query = query.columns(*columns)
    if out:
        action = "outcount" if count else ("outitems" if columns is not None else "out")
    elif count:
        action = "count"
    elif columns is not None:
        action = "values" if columns else "items"
    else:
        action = "keys"
    return Translated(query, action, len(subs) > 1 and mstype in (0, 1, 2))

"""A loopback proxy that stops the requests that abort a real ttserver (spec §10).

``Section10Proxy(upstream, ordered={"city"})`` listens on 127.0.0.1 and
relays every connection to ``upstream`` (``(host, port)``). Each request
from a client is decoded with the codec and judged, *before* it is
forwarded, by a deliberately simple reading of the spec's table, written
independently of the client's own checks:

* MISC ``put``/``putkeep``/``putcat`` with an empty primary key, or a
  ``putlist`` holding one;
* binary PUTSHL with an empty key;
* MISC ``iterinit`` with an empty key argument;
* any write that stores an empty value in a column of ``ordered`` (the
  columns with a lexical or decimal index: the ones given, plus those a
  ``setindex`` through the proxy made lexical/decimal; a ``void`` removes
  them) -- MISC put/putkeep/putcat/putlist, binary PUT/PUTKEEP/PUTCAT/PUTNR
  of a serialised record, and PUTSHL (its result computed from the stored
  record, read on a side connection);
* ``setindex`` lexical/decimal on a column where a record holds an empty
  value (asked on a side connection).

A request judged fatal is **not forwarded**: it is appended to
``violations`` and the client's connection is closed (what the server's
death would look like), so even an external ttserver behind the proxy is
never sent one. ``requests`` counts what was forwarded.

``cut`` (optional) is called with every request before it is judged; when it
returns True the proxy drops that connection there (both sides closed, the
request not forwarded): a real broken connection at an exact point.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Callable, Iterable

from doqu_tyrant.tyrant import protocol as p

__all__ = ["Section10Proxy"]

_ORDERED_NAMES = {b"lexical", b"lex", b"str", b"decimal", b"dec", b"num"}
_VOID_NAMES = {b"void", b"null"}
_NUMBER = re.compile(rb"\s*(-?\d+)")


def _setindex_kind(text: bytes) -> str:
    text = text.split(b"\0", 1)[0].lstrip(b"+").lower()
    if text in _ORDERED_NAMES:
        return "ordered"
    if text in _VOID_NAMES:
        return "void"
    m = _NUMBER.match(text)
    if m is None:
        return "other"
    code = int(m.group(1)) & ~(1 << 24)
    return "ordered" if code in (0, 1) else "void" if code == 9999 else "other"


def _pairs(items: list[bytes]) -> list[tuple[bytes, bytes]]:
    it = iter(items)
    return list(zip(it, it))


class Section10Proxy:
    def __init__(self, upstream: tuple[str, int], ordered: Iterable[str | bytes] = (),
                 cut: Callable[[p.Request], bool] | None = None) -> None:
        self.upstream = upstream
        self.cut = cut
        self.ordered = {c.encode() if isinstance(c, str) else c for c in ordered}
        self.violations: list[str] = []
        self.requests = 0
        self._lock = threading.Lock()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"tyrant://127.0.0.1:{self.port}"
        self._closed = False
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._sock.close()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.close()

    def __enter__(self) -> Section10Proxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- relaying ----------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=30)
            except OSError:  # the server is gone: so is this connection
                client.close()
                continue
            self._conns += [client, server]
            threading.Thread(target=self._requests, args=(client, server), daemon=True).start()
            threading.Thread(target=self._replies, args=(server, client), daemon=True).start()

    def _replies(self, server: socket.socket, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := server.recv(1 << 16):
                client.sendall(data)
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_WR)

    def _requests(self, client: socket.socket, server: socket.socket) -> None:
        decoder = p.RequestDecoder()
        try:
            while data := client.recv(1 << 16):
                decoder.feed(data)
                while (event := decoder.next_event()) is not None:
                    if self.cut is not None and isinstance(event, p.Request) and self.cut(event):
                        client.close()
                        server.close()
                        return
                    fatal = (self._judge(event) if isinstance(event, p.Request)
                             else f"not a well-formed request: {event!r}")
                    if fatal:
                        with self._lock:
                            self.violations.append(fatal)
                        client.close()
                        server.close()
                        return
                    with self._lock:
                        self.requests += 1
                    server.sendall(p.encode_request(event))
        except OSError:
            pass
        with contextlib.suppress(OSError):
            server.shutdown(socket.SHUT_WR)

    # -- the oracle --------------------------------------------------------------------------

    def _side(self, frame: bytes) -> p.Reply:
        """One request on a connection of the proxy's own (not through the judge)."""
        command = frame[1]
        decoder = p.ReplyDecoder()
        decoder.expect(command)
        with socket.create_connection(self.upstream, timeout=30) as sock:
            sock.sendall(frame)
            while (reply := decoder.next_reply()) is None:
                chunk = sock.recv(1 << 16)
                assert chunk, "the upstream server closed a side connection"
                decoder.feed(chunk)
        return reply

    def _empty_in_ordered(self, columns: list[tuple[bytes, bytes]]) -> bytes | None:
        for name, value in columns:
            if not value and name.split(b"\0", 1)[0] in self.ordered:
                return name
        return None

    def _judge(self, request: p.Request) -> str | None:
        command, args = request
        if command == p.MISC:
            return self._judge_misc(*args)
        if command in (p.PUT, p.PUTKEEP, p.PUTCAT, p.PUTNR):
            key, value = args
            column = self._empty_in_ordered(_pairs(value.split(b"\0")) if value else [])
            return f"binary write of {key!r} empties {column!r}" if column else None
        if command == p.PUTSHL:
            key, value, width = args
            if not key:
                return "PUTSHL with an empty key"
            old = self._side(p.encode_key(p.GET, key))
            new = (old.value if old.ok else b"") + value  # type: ignore[operator]
            if old.ok:
                new = new[-width:] if width else b""
            column = self._empty_in_ordered(_pairs(new.split(b"\0")) if new else [])
            return f"PUTSHL of {key!r} empties {column!r}" if column else None
        return None

    def _judge_misc(self, name: bytes, opts: int, args: list[bytes]) -> str | None:
        if name == b"iterinit" and args and not args[0]:
            return "misc iterinit with an empty key"
        if name in (b"put", b"putkeep", b"putcat") and args:
            if not args[0]:
                return f"misc {name.decode()} with an empty primary key"
            column = self._empty_in_ordered(_pairs(args[1:]))
            return f"misc {name.decode()} of {args[0]!r} empties {column!r}" if column else None
        if name == b"putlist":
            for pk, data in _pairs(args):
                if not pk:
                    return "misc putlist with an empty primary key"
                column = self._empty_in_ordered(_pairs(data.split(b"\0")) if data else [])
                if column:
                    return f"misc putlist record {pk!r} empties {column!r}"
            return None
        if name == b"setindex":
            for column, kind in _pairs(args):
                column = column.split(b"\0", 1)[0]
                what = _setindex_kind(kind)
                if what == "ordered":
                    query = [b"addcond\0%s\0%d\0" % (column, 1 << 25), b"setlimit\x001"]
                    found = self._side(p.encode_misc(b"search", query, p.MISC_NOULOG))
                    if found.ok and found.value:
                        return f"setindex {kind!r} on {column!r}, which has empty values"
                    self.ordered.add(column)
                else:
                    self.ordered.discard(column)
        return None

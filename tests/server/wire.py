"""A raw Tyrant connection for server tests: the codec over a plain socket.

The client library is tested elsewhere; these tests drive the server with
exact bytes, so they use only :mod:`doqu_tyrant.tyrant.protocol`.
"""

from __future__ import annotations

import select
import socket
import time
from typing import Any

from doqu_tyrant.tyrant import protocol as p


def parse_url(url: str) -> tuple[str, int]:
    """``tyrant://host:port`` → (host, port)."""
    rest = url.split("://", 1)[-1]
    host, _, port = rest.rpartition(":")
    return host.strip("[]"), int(port)


class Wire:
    """One TCP connection; ``call`` sends a frame and decodes its reply."""

    def __init__(self, address: tuple[str, int] | str | Any, timeout: float = 10.0) -> None:
        if isinstance(address, str):
            address = parse_url(address)
        elif not isinstance(address, tuple):
            address = (address.host, address.port)
        self.sock = socket.create_connection(address, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.decoder = p.ReplyDecoder()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- raw bytes ---------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv_exact(self, n: int, timeout: float | None = None) -> bytes:
        """Exactly ``n`` bytes, or fewer if the connection closes or time runs out."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        buf = bytearray()
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not self._readable(left):
                break
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                break
            buf += chunk
        return bytes(buf)

    def recv_for(self, seconds: float) -> bytes:
        """Everything that arrives within ``seconds`` (stops early at EOF)."""
        deadline = time.monotonic() + seconds
        buf = bytearray()
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self._readable(left):
                break
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            buf += chunk
        return bytes(buf)

    def _readable(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.sock], [], [], timeout)
        return bool(ready)

    def closed_within(self, seconds: float) -> bool:
        """True if the server closes the connection within ``seconds`` (and sends nothing)."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self._readable(left):
                return False
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return True
            if not chunk:
                return True
            raise AssertionError(f"unexpected bytes before close: {chunk.hex()}")

    def silent_for(self, seconds: float) -> bool:
        """True if nothing arrives and the connection stays open for ``seconds``."""
        return not self._readable(seconds)

    # -- codec -------------------------------------------------------------------------------

    def call(self, frame: bytes) -> p.Reply:
        """Send one request frame and return its decoded reply."""
        return self.pipeline([frame])[0]

    def pipeline(self, frames: list[bytes]) -> list[p.Reply]:
        """Send several frames and return their decoded replies in order (PUTNR included).

        Replies are read while the frames are still going out (a server that
        stops reading a connection whose replies pile up must not deadlock
        the test), and the timeout bounds each wait for progress, not the
        whole exchange, so a long pipeline on a busy machine is not a hang.
        """
        decoder = self.decoder
        request_decoder = p.RequestDecoder()
        data = b"".join(frames)
        request_decoder.feed(data)
        while (event := request_decoder.next_event()) is not None:
            assert isinstance(event, p.Request), event
            decoder.expect(event.command)
        view = memoryview(data)
        replies: list[p.Reply] = []
        sock = self.sock
        sock.setblocking(False)
        try:
            while decoder.pending or view:
                reply = decoder.next_reply()
                if reply is not None:
                    replies.append(reply)
                    continue
                readable, writable, _ = select.select([sock], [sock] if view else [], [],
                                                      self.timeout)
                if not readable and not writable:
                    raise TimeoutError(f"no progress for {self.timeout}s")
                if writable:
                    try:
                        view = view[sock.send(view[:1 << 20]):]
                    except BlockingIOError:
                        pass
                if readable:
                    try:
                        chunk = sock.recv(1 << 20)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        raise ConnectionError("server closed the connection")
                    decoder.feed(chunk)
        finally:
            sock.settimeout(self.timeout)
        return replies

    # -- shortcuts ---------------------------------------------------------------------------

    def put(self, key: bytes, value: bytes) -> bool:
        return self.call(p.encode_put(key, value)).ok

    def get(self, key: bytes) -> bytes | None:
        reply = self.call(p.encode_key(p.GET, key))
        return reply.value if reply.ok else None  # type: ignore[return-value]

    def rnum(self) -> int:
        value = self.call(p.encode_simple(p.RNUM)).value
        assert isinstance(value, int)
        return value

    def misc(self, name: bytes, args: list[bytes], opts: int = 0) -> list[bytes] | None:
        reply = self.call(p.encode_misc(name, args, opts))
        return reply.value if reply.ok else None  # type: ignore[return-value]

    def stat(self) -> dict[str, str]:
        value = self.call(p.encode_simple(p.STAT)).value
        assert isinstance(value, bytes)
        return p.parse_stat(value)

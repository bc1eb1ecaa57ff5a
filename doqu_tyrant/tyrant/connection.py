"""One blocking connection to a Tyrant server: the request path of :class:`~.client.Tyrant`.

Every call has one deadline, ``timeout`` seconds from its start, that covers
connecting, sending and receiving: a server that trickles its reply byte by
byte cannot stretch a call beyond it. (A streamed reply, :meth:`Connection.stream`,
has the deadline for each chunk instead: the time between two chunks handed
to the caller, not counting the caller's own time between them.)

The socket is non-blocking; waits are ``poll`` calls bounded by what is
left of the deadline. Before each request the socket is polled once without
waiting: anything readable then -- the server closed or reset the connection,
or sent bytes nobody asked for (a duplicated or stray reply) -- means the
connection is out of step or gone, so it is discarded and a fresh one is
opened before the request goes out. Bytes found after a complete reply make
the call fail with :class:`~.errors.TyrantProtocolError`. Either way a reply
is never matched to the wrong request.

After a timeout, a protocol error or any interruption mid-exchange the
socket is closed, never reused. An exception that is not an I/O error
(``KeyboardInterrupt``, ``SystemExit``, ``GeneratorExit``, ...) closes the
socket too and propagates unchanged; I/O errors become
:class:`~.errors.TyrantConnectionError` or :class:`~.errors.TyrantTimeout`.
"""

from __future__ import annotations

import math
import select
import socket
import time
from collections.abc import Iterator

from . import protocol as p
from .errors import (
    ERECV,
    TyrantCommandError,
    TyrantConnectError,
    TyrantConnectionError,
    TyrantError,
    TyrantProtocolError,
    TyrantTimeout,
)

__all__ = ["Connection"]

_RECV_SIZE = 262144
_SEND_CHUNK = 1 << 20
_EMPTY = bytearray()
_PUTNR = p.PUTNR
_OK_NONE = p.Reply(True, None)
_decode_reply = p.decode_reply
_monotonic = time.monotonic
_POLLIN = select.POLLIN
_POLLOUT = select.POLLOUT
_READABLE = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP


def _ms(seconds: float) -> int:
    """A poll timeout in whole milliseconds, rounded up (so a wait never ends early)."""
    return max(0, math.ceil(seconds * 1000))


class Connection:
    """One TCP connection to a Tyrant server, opened lazily.

    ``timeout`` (seconds, None: no limit) is the deadline of each call;
    connecting is bounded by ``connect_timeout`` as well. A request goes out
    as one frame; replies are decoded from a preallocated receive buffer.
    ``health_check_interval`` is accepted for compatibility: every request
    now checks its socket first.
    """

    __slots__ = ("host", "port", "timeout", "connect_timeout", "health_check_interval",
                 "_sock", "_poll", "_poll_now", "_decoder", "_buf", "_view", "_started",
                 "_wait_ms")

    #: Poll the socket before each request (benchmarks turn it off to measure its cost).
    check_stray = True

    def __init__(self, host: str = "127.0.0.1", port: int = 1978,
                 timeout: float | None = None, connect_timeout: float | None = None,
                 health_check_interval: float = 0.05) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.connect_timeout = timeout if connect_timeout is None else connect_timeout
        self.health_check_interval = health_check_interval
        self._sock: socket.socket | None = None
        self._poll = select.poll()
        self._poll_now = self._poll.poll
        self._decoder = p.ReplyDecoder()
        self._buf = _EMPTY  # allocated on first connect
        self._view = memoryview(_EMPTY)
        self._started = 0.0
        self._wait_ms = -1 if timeout is None else _ms(timeout)

    def __repr__(self) -> str:
        state = "open" if self._sock is not None else "closed"
        return f"<Connection {self.host}:{self.port} {state}>"

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def deadline(self) -> float | None:
        """When the call under way (or the last one) must be over; None: never."""
        return None if self.timeout is None else self._started + self.timeout

    def _deadline(self, given: float | None) -> float | None:
        return given if given is not None or self.timeout is None \
            else self._started + self.timeout

    def connect(self, deadline: float | None = None) -> socket.socket:
        """Open the socket (closing any previous one), by ``deadline`` if given."""
        self.close()
        wait = self.connect_timeout
        if deadline is not None:
            left = max(deadline - _monotonic(), 0.0)
            wait = left if wait is None else min(wait, left)
        try:
            sock = socket.create_connection((self.host, self.port), wait)
        except TimeoutError:
            err = TyrantTimeout(
                f"connecting to {self.host}:{self.port} timed out after {wait:.3g} s")
            err.request_sent = False
            raise err from None
        except OSError as exc:
            raise TyrantConnectError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # pragma: no cover - not a TCP socket
            pass
        sock.setblocking(False)
        if not self._buf:
            self._buf = bytearray(_RECV_SIZE)
            self._view = memoryview(self._buf)
        self._poll = select.poll()
        self._poll.register(sock, _POLLIN)
        self._poll_now = self._poll.poll
        self._sock = sock
        self._decoder = p.ReplyDecoder()
        return sock

    def close(self) -> None:
        sock = self._sock
        if sock is not None:
            self._sock = None
            try:
                sock.close()
            except OSError:  # pragma: no cover
                pass

    def forget(self) -> None:
        """Drop the socket without closing it (a forked child must not touch it)."""
        self._sock = None

    # -- the parts of a call ------------------------------------------------------------

    def _ready(self, deadline: float | None) -> socket.socket:
        """The socket to send on: connected, with nothing unexpected to read."""
        sock = self._sock
        if sock is None:
            return self.connect(deadline)
        if self.check_stray and self._poll.poll(0):
            # Readable before we asked anything: EOF, a reset, or bytes nobody
            # asked for. The stream is not fit for a request either way.
            return self.connect(deadline)
        return sock

    def _send(self, sock: socket.socket, frame: bytes | memoryview, sent: int,
              deadline: float | None) -> None:
        """Send the rest of ``frame`` from ``sent`` on, waiting for room as needed."""
        view = memoryview(frame)
        size = len(view)
        poll = self._poll
        poll.modify(sock, _POLLOUT)
        try:
            while sent < size:
                wait = -1 if deadline is None else _ms(deadline - _monotonic())
                if not poll.poll(wait):
                    raise TimeoutError
                try:
                    sent += sock.send(view[sent : sent + _SEND_CHUNK])
                except BlockingIOError:
                    pass
        finally:
            poll.modify(sock, _POLLIN)

    def _wait(self, deadline: float | None) -> None:
        """Until the socket is readable; TimeoutError at ``deadline``."""
        wait = -1 if deadline is None else _ms(deadline - _monotonic())
        if not self._poll.poll(wait):
            raise TimeoutError

    def _timed_out(self) -> TyrantTimeout:
        self.close()
        return TyrantTimeout(
            f"no reply from {self.host}:{self.port} within {self.timeout} s; "
            "the connection was closed"
        )

    def _failed(self, exc: OSError, sent: bool) -> TyrantError:
        """The error to raise for an I/O error; the socket is closed."""
        if isinstance(exc, TimeoutError):
            return self._timed_out()
        self.close()
        err = TyrantConnectionError(f"connection to {self.host}:{self.port} failed: {exc}")
        err.request_sent = sent
        return err

    def _eof(self) -> TyrantConnectionError:
        err = TyrantConnectionError(
            f"connection to {self.host}:{self.port} closed by the server (code {ERECV})"
        )
        err.request_sent = True
        return err

    # -- calls ----------------------------------------------------------------------------

    def request(self, frame: bytes, command: int, deadline: float | None = None) -> p.Reply:
        """Send one request and return its decoded reply.

        ``deadline`` (a :func:`time.monotonic` time) bounds the call instead
        of ``timeout`` from now: a retry passes the first attempt's.
        """
        self._started = _monotonic()
        # Until something waits (connecting, a full send buffer) or the
        # caller passes a deadline, the first wait for the reply is simply
        # ``timeout``: no clock arithmetic on the common path.
        fresh = deadline is None
        sent = False
        try:
            sock = self._sock
            if sock is None or (self.check_stray and self._poll_now(0)):
                # Readable before we asked anything: EOF, a reset, or bytes
                # nobody asked for. Not fit for a request either way.
                deadline = self._deadline(deadline)
                sock = self.connect(deadline)
                fresh = False
            size = len(frame)
            try:
                n = sock.send(frame)
            except BlockingIOError:
                n = 0
            if n < size:
                deadline = self._deadline(deadline)
                self._send(sock, frame, n, deadline)
                fresh = False
            sent = True
            if command == _PUTNR:
                return _OK_NONE
            if fresh:
                if not self._poll_now(self._wait_ms):
                    raise TimeoutError
            else:
                self._wait(deadline)
            n = sock.recv_into(self._buf)
            if not n:
                raise self._eof()
            data = self._view[:n]
            # Fast path: the whole reply in the first chunk (stateless decode).
            done = _decode_reply(command, data)
            if done is not None:
                if done[1] != n:
                    raise TyrantProtocolError(
                        f"{n - done[1]} bytes from the server after a complete reply")
                return done[0]
            decoder = self._decoder
            decoder.expect(command)
            decoder.feed(data)
            reply = decoder.next_reply()
            deadline = self._deadline(deadline)
            while reply is None:
                self._wait(deadline)
                try:
                    n = sock.recv_into(self._buf)
                except BlockingIOError:
                    continue
                if not n:
                    raise self._eof()
                decoder.feed(self._view[:n])
                reply = decoder.next_reply()
            if decoder.buffered:
                raise TyrantProtocolError(
                    f"{decoder.buffered} bytes from the server after a complete reply")
            return reply
        except TyrantError:
            self.close()
            raise
        except OSError as exc:
            # A frame that did not get out whole cannot have been executed.
            raise self._failed(exc, sent) from exc
        except BaseException:
            self.close()
            raise

    def request_many(self, frame: bytes, commands: list[int]) -> list[p.Reply]:
        """Send several requests written as one frame; return all their replies.

        Replies are read while the frame is still going out, so a pipeline of
        any size cannot deadlock on full socket buffers. The deadline covers
        the whole pipeline.
        """
        self._started = _monotonic()
        deadline = None if self.timeout is None else self._started + self.timeout
        replies: list[p.Reply] = []
        total = len(commands)
        view = memoryview(frame)
        size = len(view)
        sent = 0
        try:
            sock = self._ready(deadline)
            decoder = self._decoder
            decoder.expect_many(commands)
            buf = self._buf
            poll = self._poll
            while True:
                if len(replies) < total:
                    replies += decoder.next_replies()  # what is decodable already
                if sent == size and len(replies) == total:
                    break
                poll.modify(sock, _POLLIN | _POLLOUT if sent < size else _POLLIN)
                wait = -1 if deadline is None else _ms(deadline - _monotonic())
                events = poll.poll(wait)
                if not events:
                    raise TimeoutError
                mask = events[0][1]
                if mask & _POLLOUT and sent < size:
                    try:
                        sent += sock.send(view[sent : sent + _SEND_CHUNK])
                    except BlockingIOError:
                        pass
                if mask & _READABLE:
                    try:
                        n = sock.recv_into(buf)
                    except BlockingIOError:
                        continue
                    if not n:
                        raise self._eof()
                    decoder.feed(self._view[:n])
            poll.modify(sock, _POLLIN)
            if decoder.buffered:
                raise TyrantProtocolError(
                    f"{decoder.buffered} bytes from the server after the last reply")
        except TyrantError:
            self.close()
            raise
        except OSError as exc:
            raise self._failed(exc, sent > 0) from exc
        except BaseException:
            self.close()
            raise
        return replies

    def stream(self, frame: bytes, command: int, name: str) -> Iterator[list]:
        """Send a request with a list reply; yield its elements chunk by chunk
        as they arrive. A failure status raises :class:`TyrantCommandError`.

        ``timeout`` bounds the wait for each chunk (from the request, then
        from each time the caller asks for the next one). Abandoning the
        iteration closes the connection (the rest of the reply is still on
        its way).
        """
        self._started = _monotonic()
        timeout = self.timeout
        deadline = None if timeout is None else self._started + timeout
        sent = False
        done = False
        try:
            sock = self._ready(deadline)
            try:
                n = sock.send(frame)
            except BlockingIOError:
                n = 0
            if n < len(frame):
                self._send(sock, frame, n, deadline)
            sent = True
            decoder = self._decoder
            decoder.expect(command)
            while True:
                reply = decoder.next_reply()
                if reply is not None:
                    break
                items = decoder.take_items()
                if items:
                    yield items
                    if timeout is not None:
                        deadline = _monotonic() + timeout
                self._wait(deadline)
                try:
                    n = sock.recv_into(self._buf)
                except BlockingIOError:
                    continue
                if not n:
                    raise self._eof()
                decoder.feed(self._view[:n])
            done = True
            if decoder.buffered:
                raise TyrantProtocolError(
                    f"{decoder.buffered} bytes from the server after a complete reply")
        except TyrantError:
            self.close()
            raise
        except OSError as exc:
            raise self._failed(exc, sent) from exc
        except BaseException:
            self.close()
            raise
        finally:
            if not done:
                self.close()
        if not reply.ok:
            raise TyrantCommandError(name)
        if reply.value:
            yield reply.value  # type: ignore[misc]

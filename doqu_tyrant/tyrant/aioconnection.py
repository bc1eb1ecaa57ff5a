"""Connections of the asyncio client and their pool: the request path of :class:`~.aio.AsyncTyrant`.

A connection has at most one *batch* in flight, and writes the next only
once every reply of the batch is in. A batch is one request, an explicit
pipeline, or the requests of several tasks queued while the previous batch
was out (written in one go, like a pipeline, and answered together). A
reply can then never be read as the answer to a request sent after it,
even when a broken proxy or a confused server sends bytes nobody asked
for. Those are caught three ways: bytes arriving while nothing is asked
discard the connection at once; bytes left over after the last reply of a
batch fail the batch (:class:`~.errors.TyrantProtocolError`) and discard
the connection; and the socket is polled once, without waiting, before
each batch is written (which also notices a server that closed the
connection while the event loop was not running). Requests still queued
when a connection is discarded were never sent: they go out again on
another connection.

A timeout or an interruption discards the connection (a cancelled request
that shares its batch with others leaves it to finish: its reply is read
and dropped; one still queued is just not sent). The pool opens at most
``size`` connections per event loop; beyond them requests queue on the
least busy one. The client owns each socket: when the event loop that made
them finishes (``asyncio.run`` shuts down its asynchronous generators) its
connections are closed then, not left to the garbage collector; those of a
loop found closed later are closed on the next use of the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
from collections import deque
from collections.abc import AsyncGenerator

from . import protocol as p
from .aiotimeout import within
from .errors import (
    TyrantConnectError,
    TyrantConnectionError,
    TyrantPoolTimeout,
    TyrantProtocolError,
    TyrantTimeout,
)

__all__ = ["AsyncConnection", "AsyncConnectionPool", "Waiter"]

_QUEUE_HIGH = 16  # stream chunks buffered before reading pauses
MAX_BATCH = 64  # requests queued on one connection for its next batch


def conn_error(message: str, sent: bool) -> TyrantConnectionError:
    err = TyrantConnectionError(message)
    err.request_sent = sent
    return err


class Waiter:
    """One caller's request(s) in a batch: ``count`` replies to collect."""

    __slots__ = ("count", "replies", "future", "queue", "frame", "commands")

    def __init__(self, count: int, future: asyncio.Future, queue: asyncio.Queue | None,
                 frame: bytes, commands: list[int]) -> None:
        self.count = count
        self.replies: list[p.Reply] = []
        self.future = future
        self.queue = queue
        self.frame = frame
        self.commands = commands


class AsyncConnection(asyncio.Protocol):
    """One connection over a socket this client owns; one batch at a time."""

    #: Poll the socket before each batch (benchmarks turn it off to measure its cost).
    check_stray = True

    def __init__(self, pool: AsyncConnectionPool | None, name: str, sock: socket.socket) -> None:
        self.name = name
        self.sock = sock
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.decoder = p.ReplyDecoder()
        self.waiters: list[Waiter] = []  # the batch in flight
        self.closed = False
        self._pool = pool
        self._current = 0  # index of the waiter the next reply belongs to
        self._next: list[Waiter] = []  # queued for the next batch
        self._flushing = False  # the next batch goes out at the next turn of the loop
        self._paused = False
        self._poll = select.poll()
        self._poll.register(sock.fileno(), select.POLLIN)

    # -- asyncio.Protocol ------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.decoder.feed(data)
        self._dispatch()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(conn_error(f"connection to {self.name} closed"
                              + (f": {exc}" if exc else " by the server"), True))

    # -- requests ---------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """A batch is in flight or about to be written."""
        return bool(self.waiters) or self._flushing

    @property
    def streaming(self) -> bool:
        """A streamed reply is in flight: nothing may queue behind it."""
        waiters = self.waiters
        return bool(waiters) and waiters[0].queue is not None

    @property
    def load(self) -> int:
        """Requests in flight or queued here."""
        return len(self.waiters) + len(self._next)

    def fit(self) -> bool:
        """Whether the connection may carry a new batch: open, and nothing
        readable on it (else it is aborted: EOF, a reset or stray bytes)."""
        transport = self.transport
        if self.closed or transport is None or transport.is_closing():
            self.closed = True
            return False
        if self.check_stray and self._poll.poll(0):
            self.abort()
            return False
        return True

    def send(self, frame: bytes, commands: list[int],
             queue: asyncio.Queue | None = None) -> Waiter:
        """Write a request (one frame of ``len(commands)`` requests), or queue
        it for the next batch while one is in flight; its waiter.

        Raises :class:`TyrantConnectionError` with ``request_sent`` False when
        the connection is unfit.
        """
        if self.closed:
            raise conn_error(f"connection to {self.name} is closed", False)
        waiter = Waiter(len(commands), self.loop.create_future(), queue, frame, commands)
        if self.waiters or self._flushing:
            self._next.append(waiter)
            return waiter
        if not self.fit():
            raise conn_error(f"connection to {self.name} was closed or out of step", False)
        self._write([waiter])
        return waiter

    def _write(self, batch: list[Waiter]) -> None:
        decoder = self.decoder
        for waiter in batch:
            for command in waiter.commands:
                decoder.expect(command)
        self.waiters = batch
        assert self.transport is not None
        self.transport.write(batch[0].frame if len(batch) == 1
                             else b"".join([w.frame for w in batch]))
        if batch[0].commands[0] == p.PUTNR:
            self._dispatch()  # needs no bytes

    def _dispatch(self) -> None:
        decoder = self.decoder
        waiters = self.waiters
        try:
            if not waiters:
                if decoder.buffered:
                    raise TyrantProtocolError(
                        f"{decoder.buffered} bytes from {self.name} nobody asked for")
                return
            count = len(waiters)
            current = self._current
            while current < count:
                waiter = waiters[current]
                reply = decoder.next_reply()
                if reply is None:
                    if waiter.queue is not None:
                        items = decoder.take_items()
                        if items:
                            self._push(waiter.queue, items)
                    self._current = current
                    return
                waiter.replies.append(reply)
                if len(waiter.replies) == waiter.count:
                    current += 1
            if decoder.buffered:
                raise TyrantProtocolError(
                    f"{decoder.buffered} bytes from {self.name} after a complete reply")
        except TyrantProtocolError as exc:
            self.abort(exc)
            return
        self.waiters = []
        self._current = 0
        if self._paused and self.transport is not None:  # a stream filled its queue
            self._paused = False
            self.transport.resume_reading()
        for waiter in waiters:
            if waiter.queue is not None:
                self._push(waiter.queue, waiter.replies[-1])
            if not waiter.future.done():
                waiter.future.set_result(waiter.replies)
        if self._next:
            # Others queued meanwhile: write their batch at the next turn of
            # the loop, after the callers just answered (woken first) had a
            # chance to queue their next requests too.
            self._flushing = True
            self.loop.call_soon(self._flush)
        elif self._pool is not None:
            self._pool.release(self)

    def _flush(self) -> None:
        """Write the queued requests as the next batch."""
        self._flushing = False
        batch = [w for w in self._next if not w.future.done()]  # cancelled: not sent
        self._next = []
        if self.closed:
            self._fail_queued(batch)
        elif batch:
            if self.fit():
                self._write(batch)
            else:
                self._fail_queued(batch)
        elif self._pool is not None:
            self._pool.release(self)

    def abandon(self, waiter: Waiter) -> None:
        """``waiter``'s caller gave up (cancelled, interrupted): discard the
        connection, unless other callers share the batch (then its reply is
        read and dropped). A queued request is simply not sent."""
        if waiter in self.waiters and (len(self.waiters) == 1 or waiter.queue is not None):
            self.abort()

    def _push(self, queue: asyncio.Queue, item: object) -> None:
        queue.put_nowait(item)
        if queue.qsize() >= _QUEUE_HIGH and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def resume(self, queue: asyncio.Queue) -> None:
        if self._paused and queue.qsize() < _QUEUE_HIGH // 2 and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()

    def _fail(self, exc: BaseException) -> None:
        self.closed = True
        waiters, self.waiters = self.waiters, []
        queued, self._next = self._next, []
        for waiter in waiters:
            if waiter.queue is not None:
                waiter.queue.put_nowait(exc)
            if not waiter.future.done():
                waiter.future.set_exception(exc)
                waiter.future.exception()  # mark retrieved: the caller may be gone
        self._fail_queued(queued)
        if self._pool is not None:
            self._pool.discard(self)

    def _fail_queued(self, queued: list[Waiter]) -> None:
        """Requests that were never written: they may go out elsewhere."""
        for waiter in queued:
            err = conn_error(f"connection to {self.name} was closed before the request "
                             "was sent", False)
            if waiter.queue is not None:
                waiter.queue.put_nowait(err)
            if not waiter.future.done():
                waiter.future.set_exception(err)
                waiter.future.exception()

    def abort(self, exc: BaseException | None = None) -> None:
        """Close at once; pending requests fail with ``exc``."""
        self.closed = True
        if self.transport is not None and not self.loop.is_closed():
            self.transport.abort()
        else:
            self.sock.close()
        self._fail(exc or conn_error(f"connection to {self.name} was closed", True))

    def close_socket(self) -> None:
        """Close the socket of a connection whose event loop is closed (its
        transport cannot schedule anything any more)."""
        self.closed = True
        # What the transport would have done in its loop: close the socket and
        # let go of it (else it warns about an unclosed transport when collected).
        lost = getattr(self.transport, "_call_connection_lost", None)
        if lost is not None:
            with contextlib.suppress(Exception):
                lost(None)
        self.sock.close()


class AsyncConnectionPool:
    """At most ``size`` connections per event loop, shared by its tasks.

    ``connect_timeout`` bounds opening one; ``timeout`` (the pool timeout)
    the wait for a connection of its own that a streamed reply needs, after
    which :class:`TyrantPoolTimeout` is raised.
    """

    def __init__(self, host: str, port: int, size: int = 8,
                 connect_timeout: float | None = None,
                 pool_timeout: float | None = 20.0) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"pool_size must be a positive int, got {size!r}")
        self.host = host
        self.port = port
        self.size = size
        self.connect_timeout = connect_timeout
        self.timeout = pool_timeout
        self._conns: list[AsyncConnection] = []  # every open one
        # Idle connections, least recently used first: taking the one idle
        # longest gives stray bytes the most time to show before its check.
        self._idle: deque[AsyncConnection] = deque()
        self._opening = 0
        # tasks waiting for a connection of their own (streamed replies)
        self._waiting: deque[asyncio.Future[AsyncConnection | None]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._guard: AsyncGenerator[None, None] | None = None

    # -- event loops ---------------------------------------------------------------

    async def _check_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return
        # Connections belong to the loop that made them; a new loop starts
        # afresh (the old one's sockets are closed now, not at collection).
        self._drop_all()
        self._loop = loop
        guard = self._loop_guard()
        await guard.__anext__()  # registered with this loop's async generators
        self._guard = guard

    async def _loop_guard(self) -> AsyncGenerator[None, None]:
        """Suspended for the life of one event loop; its ``finally`` runs when
        the loop shuts down its asynchronous generators (``asyncio.run``)."""
        loop = asyncio.get_running_loop()
        try:
            yield
        finally:
            if self._loop is loop:
                self._drop_all()
                self._loop = None
                self._guard = None

    def _drop_all(self) -> None:
        conns, self._conns, self._idle = self._conns, [], deque()
        for conn in conns:
            if conn.loop.is_closed():
                conn.close_socket()
            else:
                conn.abort()
        for future in self._waiting:
            if not future.done() and not future.get_loop().is_closed():
                future.set_result(None)
        self._waiting.clear()
        self._opening = 0

    # -- connections -----------------------------------------------------------------

    async def _open(self, timeout: float | None) -> AsyncConnection:
        loop = asyncio.get_running_loop()
        name = f"{self.host}:{self.port}"
        wait = self.connect_timeout
        if timeout is not None:
            wait = timeout if wait is None else min(wait, timeout)
        try:
            return await within(self._connect(loop, name), wait, AsyncConnection.abort)
        except asyncio.TimeoutError:
            err = TyrantTimeout(f"connecting to {name} timed out after {wait:.3g} s")
            err.request_sent = False
            raise err from None
        except OSError as exc:
            raise TyrantConnectError(f"cannot connect to {name}: {exc}") from exc

    async def _connect(self, loop: asyncio.AbstractEventLoop, name: str) -> AsyncConnection:
        addresses = _numeric(self.host, self.port)
        if addresses is None:
            infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
            addresses = [(family, addr) for family, _t, _p, _n, addr in infos]
        error: OSError | None = None
        for family, addr in addresses:
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setblocking(False)
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                await loop.sock_connect(sock, addr)
                _, conn = await loop.create_connection(
                    lambda s=sock: AsyncConnection(self, name, s), sock=sock)  # type: ignore[misc]
                return conn
            except OSError as exc:
                sock.close()
                error = exc
            except BaseException:
                sock.close()
                raise
        raise error or OSError(f"no address for {self.host!r}")

    def take(self) -> AsyncConnection | None:
        """An idle connection of the running loop, at once, or None."""
        if self._loop is not asyncio.get_running_loop():
            return None
        idle = self._idle
        while idle:
            conn = idle.popleft()
            if not conn.closed:
                return conn
        return None

    def pick(self) -> AsyncConnection | None:
        """When every connection the pool may open is open and busy: the least
        busy one, to queue a request on for its next batch; else None."""
        if self._loop is not asyncio.get_running_loop():
            return None
        if len(self._conns) + self._opening < self.size:
            return None
        best: AsyncConnection | None = None
        least = MAX_BATCH
        for conn in self._conns:
            waiters = conn.waiters
            if conn.closed or (waiters and waiters[0].queue is not None):
                continue  # gone, or a streamed reply: nothing may queue behind it
            load = len(waiters) + len(conn._next)
            if load < least:
                best, least = conn, load
        return best

    async def acquire(self, timeout: float | None = None, *,
                      share: bool = True) -> AsyncConnection:
        """A connection to send a request on: an idle one, a new one while fewer
        than ``size`` are open, else (``share``) the least busy one, where the
        request waits for that connection's next batch. ``share=False`` (a
        streamed reply) waits, up to the pool timeout, for one of its own.
        ``timeout`` bounds connecting (with ``connect_timeout``)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            await self._check_loop()
        deadline = None if self.timeout is None else loop.time() + self.timeout
        while True:
            conn = self.take()
            if conn is not None:
                return conn
            if len(self._conns) + self._opening < self.size:
                self._opening += 1
                try:
                    conn = await self._open(timeout)
                finally:
                    self._opening -= 1
                if self._loop is not loop:  # the loop was shut down meanwhile
                    conn.abort()
                    raise conn_error("the event loop is shutting down", False)
                self._conns.append(conn)
                return conn
            if share:
                conn = self.pick()
                if conn is not None:
                    return conn
            got = await self._wait_for_release(loop, deadline)
            if got is not None and not got.closed and not got.busy:
                return got
            if loop is not self._loop:
                await self._check_loop()

    async def _wait_for_release(self, loop: asyncio.AbstractEventLoop,
                                deadline: float | None) -> AsyncConnection | None:
        """The connection :meth:`release` hands over, or None when one was closed."""
        future: asyncio.Future[AsyncConnection | None] = loop.create_future()
        timer = None
        if deadline is not None:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TyrantPoolTimeout(f"no free connection within {self.timeout} s "
                                        f"(pool_size={self.size})")
            timer = loop.call_later(remaining, expire, future)
        self._waiting.append(future)
        try:
            return await future
        except _PoolWaitExpired:
            raise TyrantPoolTimeout(f"no free connection within {self.timeout} s "
                                    f"(pool_size={self.size})") from None
        except BaseException:
            # cancelled just after a connection was handed over: pass it on
            if future.done() and not future.cancelled() and future.exception() is None:
                handed = future.result()
                if handed is not None and not handed.busy:
                    self.release(handed)
            raise
        finally:
            if timer is not None:
                timer.cancel()
            if not future.done() or future.cancelled():
                with contextlib.suppress(ValueError):
                    self._waiting.remove(future)

    def release(self, conn: AsyncConnection) -> None:
        """A connection has nothing in flight or queued: to the first task
        waiting for one, else to the idle ones."""
        if conn.closed or self._loop is not conn.loop:
            self.discard(conn)
            return
        waiting = self._waiting
        while waiting:
            future = waiting.popleft()
            if not future.done():
                future.set_result(conn)
                return
        self._idle.append(conn)

    def discard(self, conn: AsyncConnection) -> None:
        """Forget a closed connection; a waiting task may open another."""
        with contextlib.suppress(ValueError):
            self._conns.remove(conn)
        with contextlib.suppress(ValueError):
            self._idle.remove(conn)
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_result(None)
                return

    def close(self) -> None:
        """Close every connection; the pool stays usable and reconnects on demand."""
        conns, self._conns, self._idle = self._conns, [], deque()
        for conn in conns:
            if conn.loop.is_closed():
                conn.close_socket()
            else:
                conn.abort()


class _PoolWaitExpired(Exception):
    pass


def expire(future: asyncio.Future, error: type[Exception] = _PoolWaitExpired) -> None:
    """Fail ``future`` with ``error`` unless it is done (a deadline's timer)."""
    if not future.done():
        future.set_exception(error())


def _numeric(host: str, port: int) -> list[tuple[int, tuple]] | None:
    """The address of a numeric host without a resolver round trip, else None."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except (OSError, ValueError):
            continue
        return [(family, (host, port) if family == socket.AF_INET else (host, port, 0, 0))]
    return None

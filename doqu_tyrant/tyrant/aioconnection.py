"""Connections of the asyncio client and their pool: the request path of :class:`~.aio.AsyncTyrant`.

A connection carries one *batch* at a time and takes the next only once
every reply of the batch is in: a single request, an explicit pipeline, or
the requests of the tasks that were waiting for a connection when it came
free (written in one go, like a pipeline, and answered together). A reply
can then never be read as the answer to a request sent after it, even when
a broken proxy or a confused server sends bytes nobody asked for. Those are
caught three ways: bytes arriving while nothing is asked discard the
connection at once; bytes left over after the last reply of a batch fail
the batch (:class:`~.errors.TyrantProtocolError`) and discard the
connection; and the socket is polled once, without waiting, before each
batch is written (which also notices a server that closed the connection
while the event loop was not running).

A timeout or an interruption discards the connection (a cancelled request
that shares its batch with others leaves it to finish: its reply is read
and dropped). The pool opens at most ``size`` connections per event loop;
tasks beyond them wait, in order. The client owns each socket: when the
event loop that made them finishes (``asyncio.run`` shuts down its
asynchronous generators) its connections are closed then, not left to the
garbage collector; those of a loop found closed later are closed on the
next use of the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
from collections import deque
from collections.abc import AsyncGenerator

from . import protocol as p
from .errors import (
    TyrantConnectError,
    TyrantConnectionError,
    TyrantPoolTimeout,
    TyrantProtocolError,
    TyrantTimeout,
)

__all__ = ["AsyncConnection", "AsyncConnectionPool", "Waiter"]

_QUEUE_HIGH = 16  # stream chunks buffered before reading pauses
MAX_BATCH = 64  # waiting tasks that share one connection's next batch


def conn_error(message: str, sent: bool) -> TyrantConnectionError:
    err = TyrantConnectionError(message)
    err.request_sent = sent
    return err


class Waiter:
    """One caller's request(s) in a batch: ``count`` replies to collect."""

    __slots__ = ("count", "replies", "future", "queue")

    def __init__(self, count: int, future: asyncio.Future, queue: asyncio.Queue | None) -> None:
        self.count = count
        self.replies: list[p.Reply] = []
        self.future = future
        self.queue = queue


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
        self.waiters: list[Waiter] = []  # the batch in flight (or being gathered)
        self.closed = False
        self._pool = pool
        self._current = 0  # index of the waiter the next reply belongs to
        self._gathering = 0  # callers handed this connection for the next batch
        self._out: list[bytes] = []
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
        """A batch is in flight (or being gathered)."""
        return bool(self.waiters or self._gathering)

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
        """Write a request (one frame of ``len(commands)`` requests); its waiter.

        On a connection handed out for a shared batch the frame joins the
        batch, which is written once every caller it was handed to has sent
        (or at the next turn of the loop). Raises
        :class:`TyrantConnectionError` with ``request_sent`` False when the
        connection is unfit.
        """
        gathering = self._gathering
        if not gathering:
            if self.waiters:
                raise RuntimeError("a request is already in flight on this connection")
            if not self.fit():
                raise conn_error(f"connection to {self.name} was closed or out of step", False)
        elif self.closed:
            raise conn_error(f"connection to {self.name} is closed", False)
        decoder = self.decoder
        for command in commands:
            decoder.expect(command)
        waiter = Waiter(len(commands), self.loop.create_future(), queue)
        self.waiters.append(waiter)
        if gathering:
            self._out.append(frame)
            if len(self.waiters) >= gathering:
                self.flush()
            return waiter
        assert self.transport is not None
        self.transport.write(frame)
        if commands[0] == p.PUTNR:
            self._dispatch()
        return waiter

    def gather(self, callers: int) -> bool:
        """Prepare a shared batch for ``callers`` requests; False if unfit.
        The pool calls :meth:`flush` at the next turn of the loop, after
        the callers have run, in case some of them never send."""
        if not self.fit():
            return False
        self._gathering = callers
        return True

    def flush(self) -> None:
        """Write the batch gathered so far."""
        if not self._gathering:
            return
        self._gathering = 0
        out, self._out = self._out, []
        if self.closed:
            return
        if not out:  # every caller gave up before sending
            if self._pool is not None:
                self._pool.release(self)
            return
        assert self.transport is not None
        self.transport.write(out[0] if len(out) == 1 else b"".join(out))
        self._dispatch()  # PUTNR needs no bytes

    def _dispatch(self) -> None:
        decoder = self.decoder
        waiters = self.waiters
        try:
            if not waiters:
                if decoder.buffered:
                    raise TyrantProtocolError(
                        f"{decoder.buffered} bytes from {self.name} nobody asked for")
                return
            if self._gathering:
                return  # nothing is written yet
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
        if self._pool is not None:
            self._pool.release(self)

    def abandon(self, waiter: Waiter) -> None:
        """``waiter``'s caller gave up (cancelled, interrupted): discard the
        connection, unless other callers share the batch (then its reply is
        read and dropped)."""
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
        self._gathering = 0
        self._out = []
        for waiter in waiters:
            if waiter.queue is not None:
                waiter.queue.put_nowait(exc)
            if not waiter.future.done():
                waiter.future.set_exception(exc)
                waiter.future.exception()  # mark retrieved: the caller may be gone
        if self._pool is not None:
            self._pool.discard(self)

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
    """At most ``size`` connections per event loop, each used by one task at a time.

    ``connect_timeout`` bounds opening one; ``timeout`` (the pool timeout)
    the wait for a free one, after which :class:`TyrantPoolTimeout` is raised.
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
        # tasks waiting for a connection: (future, may share a batch)
        self._waiting: deque[tuple[asyncio.Future[AsyncConnection | None], bool]] = deque()
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
        for future, _ in self._waiting:
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
            return await asyncio.wait_for(self._connect(loop, name), wait)
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

    async def acquire(self, timeout: float | None = None, *,
                      share: bool = True) -> AsyncConnection:
        """A connection for one request; it comes back to the pool by itself
        once the reply is complete. ``share=False`` (a streamed reply) never
        shares a batch with other callers.

        Opens a new one while fewer than ``size`` exist, else waits up to
        the pool timeout. ``timeout`` bounds connecting (with ``connect_timeout``).
        """
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            await self._check_loop()
        conn = self.take()
        if conn is not None:
            return conn
        deadline = None if self.timeout is None else loop.time() + self.timeout
        while True:
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
            got = await self._wait_for_release(loop, deadline, share)
            if got is not None and not got.closed:
                return got
            # a connection was closed: room to open one, or the loop restarted
            if loop is not self._loop:
                await self._check_loop()

    async def _wait_for_release(self, loop: asyncio.AbstractEventLoop,
                                deadline: float | None, share: bool) -> AsyncConnection | None:
        """The connection :meth:`release` hands over, or None when one was closed."""
        future: asyncio.Future[AsyncConnection | None] = loop.create_future()
        timer = None
        if deadline is not None:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TyrantPoolTimeout(f"no free connection within {self.timeout} s "
                                        f"(pool_size={self.size})")
            timer = loop.call_later(remaining, _expire, future)
        entry = (future, share)
        self._waiting.append(entry)
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
                    self._waiting.remove(entry)

    def release(self, conn: AsyncConnection) -> None:
        """A connection's batch is complete: hand it to the tasks waiting (up
        to :data:`MAX_BATCH` of them share its next batch), else keep it idle."""
        if conn.closed or self._loop is not conn.loop:
            self.discard(conn)
            return
        waiting = self._waiting
        batch: list[asyncio.Future[AsyncConnection | None]] = []
        while waiting and len(batch) < MAX_BATCH:
            future, share = waiting[0]
            if future.done():
                waiting.popleft()
                continue
            if not share:
                if not batch:  # first in line: it gets the connection alone
                    waiting.popleft()
                    future.set_result(conn)
                    return
                break
            waiting.popleft()
            batch.append(future)
        if not batch:
            self._idle.append(conn)
            return
        if len(batch) > 1 and not conn.gather(len(batch)):
            for future in batch:  # unfit (and now discarded): each opens another
                future.set_result(None)
            return
        for future in batch:
            future.set_result(conn)
        if len(batch) > 1:
            conn.loop.call_soon(conn.flush)  # after the callers (woken first) have sent

    def discard(self, conn: AsyncConnection) -> None:
        """Forget a closed connection; a waiting task may open another."""
        with contextlib.suppress(ValueError):
            self._conns.remove(conn)
        with contextlib.suppress(ValueError):
            self._idle.remove(conn)
        while self._waiting:
            future, _ = self._waiting.popleft()
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


def _expire(future: asyncio.Future) -> None:
    if not future.done():
        future.set_exception(_PoolWaitExpired())


def _numeric(host: str, port: int) -> list[tuple[int, tuple]] | None:
    """The address of a numeric host without a resolver round trip, else None."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except (OSError, ValueError):
            continue
        return [(family, (host, port) if family == socket.AF_INET else (host, port, 0, 0))]
    return None

"""The accept loop: connection limit, and no spinning when descriptors run out.

asyncio's own accept loop logs a traceback for every failed ``accept()``
when the process is out of file descriptors, up to ``backlog`` times per
second, while the waiting clients hang. This one closes connections over
``--max-connections`` at once (the client sees the connection closed),
and on EMFILE/ENFILE writes one log line (at most one per
:data:`LOG_INTERVAL`), accepts and closes the waiting connections with a
descriptor kept in reserve for that, and pauses accepting for a moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import time
from collections.abc import Callable

log = logging.getLogger("doqu_tyrant.server")

__all__ = ["Acceptor"]

# Connections accepted per readiness event, so the loop stays fair.
ACCEPT_BATCH = 64
# Pause after running out of descriptors (doubling up to RETRY_MAX).
RETRY_MIN = 0.05
RETRY_MAX = 1.0
# Seconds between two log lines about the same trouble.
LOG_INTERVAL = 10.0

_OUT_OF_FDS = frozenset({errno.EMFILE, errno.ENFILE})
_OUT_OF_MEMORY = frozenset({errno.ENOBUFS, errno.ENOMEM})


class _RateLimited:
    """Logs one line per ``interval``, counting the ones it held back."""

    def __init__(self, interval: float = LOG_INTERVAL) -> None:
        self.interval = interval
        self.last = -interval
        self.held_back = 0

    def warning(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self.last < self.interval:
            self.held_back += 1
            return
        if self.held_back:
            message += " (%d similar events not logged)"
            args += (self.held_back,)
        self.last = now
        self.held_back = 0
        log.warning(message, *args)


class Acceptor:
    """Accepts on ``sock`` and hands each connection to ``factory``'s protocol.

    ``count()`` returns the number of connections being served; a new one
    beyond ``max_connections`` is closed as soon as it is accepted.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket,
                 factory: Callable[[], asyncio.Protocol], count: Callable[[], int],
                 max_connections: int) -> None:
        self.loop = loop
        self.sock = sock
        self.factory = factory
        self.count = count
        self.max_connections = max_connections
        self.refused = 0
        self._opening = 0
        self._fd = sock.fileno()
        self._reading = False
        self._retry = RETRY_MIN
        self._retry_handle: asyncio.TimerHandle | None = None
        self._closed = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._full = _RateLimited()
        self._no_fds = _RateLimited()
        self._reserve: int | None = None
        self._open_reserve()

    def start(self) -> None:
        if not self._reading and not self._closed:
            self.loop.add_reader(self._fd, self._on_readable)
            self._reading = True

    def close(self) -> None:
        """Stop accepting and close the listening socket."""
        self._closed = True
        if self._retry_handle is not None:
            self._retry_handle.cancel()
        if self._reading:
            self.loop.remove_reader(self._fd)
            self._reading = False
        for task in list(self._tasks):
            task.cancel()
        self.sock.close()
        if self._reserve is not None:
            os.close(self._reserve)
            self._reserve = None

    # -- accepting ----------------------------------------------------------------------

    def _on_readable(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno in _OUT_OF_FDS or exc.errno in _OUT_OF_MEMORY:
                    self._exhausted(exc)
                    return
                self._no_fds.warning("accept() failed: %s", exc)
                return
            self._retry = RETRY_MIN
            if self.count() + self._opening >= self.max_connections:
                self.refused += 1
                self._full.warning("connection limit (%d) reached; closing new connections",
                                   self.max_connections)
                _close_now(conn)
                continue
            self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        conn.setblocking(False)
        with contextlib.suppress(OSError):
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._opening += 1
        task = self.loop.create_task(self._connect(conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, conn: socket.socket) -> None:
        try:
            await self.loop.connect_accepted_socket(self.factory, conn)
        except BaseException:
            conn.close()
            raise
        finally:
            self._opening -= 1

    def _exhausted(self, exc: OSError) -> None:
        """Out of descriptors (or kernel memory): say so once, turn the waiting
        clients away, and pause accepting for a moment."""
        self._no_fds.warning("cannot accept connections: %s; %d open, pausing accept() "
                             "for %.2f s", exc.strerror or exc, self.count(), self._retry)
        if exc.errno in _OUT_OF_FDS and self._reserve is not None:
            os.close(self._reserve)
            self._reserve = None
            with contextlib.suppress(OSError):
                for _ in range(ACCEPT_BATCH):
                    conn, _addr = self.sock.accept()
                    self.refused += 1
                    _close_now(conn)
            self._open_reserve()
        if self._reading:
            self.loop.remove_reader(self._fd)
            self._reading = False
        self._retry_handle = self.loop.call_later(self._retry, self._resume)
        self._retry = min(self._retry * 2, RETRY_MAX)

    def _resume(self) -> None:
        self._retry_handle = None
        if self._reserve is None:
            self._open_reserve()
        self.start()

    def _open_reserve(self) -> None:
        with contextlib.suppress(OSError):
            self._reserve = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)


def _close_now(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.close()

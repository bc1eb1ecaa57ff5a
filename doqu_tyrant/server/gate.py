"""Keeps the event loop off the database while a long command runs.

A long command (SYNC, OPTIMIZE, VANISH, COPY, ``setindex`` ...) runs in the
worker pool, but Tokyo Cabinet holds its own lock while it works: a request
handled inline on the event loop would wait for that lock and stall every
connection, even one that only asks ``version``. So while such a command
runs the :class:`Gate` is *shut*: connections stop before their next
database request and wait (in order, reading paused) until it opens again;
everything else -- text commands, other connections' I/O -- carries on.

Long reads (a table search, see :mod:`.longreads`) and COPY of a hash or
table database shut it only for what Tokyo Cabinet would make wait (mode
:data:`READS`): reads are still answered inline, and more long reads may
start -- unless a request that is not a read waits already: then they wait
behind it, so that a stream of long reads cannot hold writes back forever.

All methods run on the event loop thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections import deque
from collections.abc import Callable

from doqu_tyrant.tyrant import protocol as p

log = logging.getLogger("doqu_tyrant.server")

OPEN = 0
READS = 1  # only read requests pass
SHUT = 2  # no database request passes

# What a waiting connection waits to do: an inline read, a long read (a job in
# READS mode), anything else.
READ, LONG, OTHER = 0, 1, 2

_READ_COMMANDS = frozenset({p.GET, p.MGET, p.VSIZ, p.RNUM, p.SIZE, p.STAT})
_READ_MISC = frozenset({b"get", b"getlist", b"getpart"})


def is_read(event: tuple, logged_misc: bool = False) -> bool:
    """Whether a decoded request (or run of requests) only reads records.

    ``logged_misc``: the server keeps an update log, so a MISC call without
    the no-log option is a write (it appends to the log).
    """
    cmd = event[0]
    if cmd in _READ_COMMANDS:
        return True
    if cmd == p.MISC and event.__class__ is p.Request:
        name, opts, args = event[1]
        if logged_misc and not opts & p.MISC_NOULOG:
            return False
        if name in _READ_MISC:
            return True
        # a table search is a read unless it removes what it finds ("out")
        return name in (b"search", b"metasearch") and not any(arg[:3] == b"out" for arg in args)
    return False


class Gate:
    """Who may touch the database from the event loop right now.

    ``logged_misc``: see :func:`is_read`.
    """

    __slots__ = ("mode", "logged_misc", "_waiting", "_others", "_reads", "_shuts")

    def __init__(self, logged_misc: bool = False) -> None:
        self.mode = OPEN
        self.logged_misc = logged_misc
        self._waiting: deque[tuple[Callable[[], None], int]] = deque()
        self._others = 0  # waiting connections whose next request is no read
        self._reads = 0  # jobs running in READS mode
        self._shuts = 0  # jobs running in SHUT mode

    def admits(self, event: tuple) -> bool:
        """Whether ``event`` may run inline now (call only when ``mode`` is not OPEN)."""
        return self.mode == READS and is_read(event, self.logged_misc)

    def kind_of(self, event: tuple | None) -> int:
        """:data:`READ` or :data:`OTHER`, for :meth:`wait`."""
        return READ if event is None or is_read(event, self.logged_misc) else OTHER

    def admits_long_read(self) -> bool:
        """Whether a long read may start now: the gate is open, or it lets reads
        through and nothing else waits."""
        return self.mode == OPEN or (self.mode == READS and not self._others)

    def wait(self, resume: Callable[[], None], kind: int = OTHER) -> None:
        """Call ``resume`` once the gate lets a request of ``kind`` through
        (waiting requests in arrival order)."""
        if kind == OTHER:
            self._others += 1
        self._waiting.append((resume, kind))

    def shut(self, mode: int = SHUT) -> None:
        """Count a job in that holds the gate in ``mode`` while it runs."""
        if mode == SHUT:
            self._shuts += 1
        elif mode == READS:
            self._reads += 1
        self._update()

    def open(self, mode: int = SHUT) -> None:
        """Count out a job of ``mode``; resume the waiting connections that may go on."""
        if mode == SHUT:
            self._shuts -= 1
        elif mode == READS:
            self._reads -= 1
        self._update()
        if self.mode != SHUT and self._waiting:
            self._release()

    def _update(self) -> None:
        self.mode = SHUT if self._shuts else READS if self._reads else OPEN

    def _passes(self, kind: int) -> bool:
        mode = self.mode
        if mode == OPEN:
            return True
        if mode == SHUT:
            return False
        return kind == READ or (kind == LONG and not self._others)

    def _release(self) -> None:
        """Resume, in order, the waiting connections the gate lets through now.
        One that has to wait again (or shuts the gate) is queued again where it
        was; the others keep their places."""
        waiting = list(self._waiting)
        self._waiting.clear()
        for resume, kind in waiting:
            if self._passes(kind):
                if kind == OTHER:
                    self._others -= 1
                resume()
            else:
                self._waiting.append((resume, kind))

    def run(self, loop: asyncio.AbstractEventLoop, executor: concurrent.futures.Executor,
            work: Callable[[], object], mode: int = SHUT,
            done: Callable[[asyncio.Future[object]], None] | None = None) -> None:
        """Hold the gate in ``mode``, run ``work`` in ``executor``, then let go of
        it and call ``done``."""
        self.shut(mode)
        future = loop.run_in_executor(executor, work)

        def finished(fut: asyncio.Future[object]) -> None:
            self.open(mode)
            if done is not None:
                done(fut)

        future.add_done_callback(finished)


class CommitTimer:
    """Calls a database's ``commit`` every ``interval`` seconds, through the gate.

    B+ tree writes stay in a transaction until a commit point; this bounds how
    much a kill -9 can cost (and how much the transaction holds in memory)
    for clients that never send SYNC.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, executor: concurrent.futures.Executor,
                 gate: Gate, commit: Callable[[], bool], interval: float) -> None:
        self.loop = loop
        self.executor = executor
        self.gate = gate
        self.commit = commit
        self.interval = interval
        self._handle: asyncio.TimerHandle | None = None
        self._running = False
        self._stopped = False

    def start(self) -> CommitTimer:
        self._arm(self.interval)
        return self

    def stop(self) -> None:
        self._stopped = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _arm(self, delay: float) -> None:
        if not self._stopped:
            self._handle = self.loop.call_later(delay, self._tick)

    def _tick(self) -> None:
        self._handle = None
        if self._stopped:
            return
        if self.gate.mode != OPEN:
            self.gate.wait(self._tick)  # a long command runs: next in line after it
            return
        self.gate.run(self.loop, self.executor, self._commit, SHUT, self._done)

    def _commit(self) -> object:
        try:
            if not self.commit():
                log.error("periodic commit failed")
        except Exception:
            log.exception("periodic commit failed")
        return None

    def _done(self, future: asyncio.Future[object]) -> None:
        self._arm(self.interval)

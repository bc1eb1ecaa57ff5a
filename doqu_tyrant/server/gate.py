"""Keeps the event loop off the database while a long command runs.

A long command (SYNC, OPTIMIZE, VANISH, COPY, ``setindex`` ...) runs in the
worker pool, but Tokyo Cabinet holds its own lock while it works: a request
handled inline on the event loop would wait for that lock and stall every
connection, even one that only asks ``version``. So while such a command
runs the :class:`Gate` is *shut*: connections stop before their next
database request and wait (in order, reading paused) until it opens again;
everything else -- text commands, other connections' I/O -- carries on.

COPY of a hash or table database shuts it only for writes (mode
:data:`READS`): the library lets reads proceed during a copy, so they are
still answered inline.

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

_READ_COMMANDS = frozenset({p.GET, p.MGET, p.VSIZ, p.RNUM, p.SIZE, p.STAT})
_READ_MISC = frozenset({b"get", b"getlist", b"getpart"})


def is_read(event: tuple) -> bool:
    """Whether a decoded request (or run of requests) only reads records."""
    cmd = event[0]
    if cmd in _READ_COMMANDS:
        return True
    if cmd == p.MISC and event.__class__ is p.Request:
        name, _opts, args = event[1]
        if name in _READ_MISC:
            return True
        # a table search is a read unless it removes what it finds ("out")
        return name == b"search" and not any(arg[:3] == b"out" for arg in args)
    return False


class Gate:
    """Who may touch the database from the event loop right now."""

    __slots__ = ("mode", "_waiting")

    def __init__(self) -> None:
        self.mode = OPEN
        self._waiting: deque[Callable[[], None]] = deque()

    def admits(self, event: tuple) -> bool:
        """Whether ``event`` may run inline now (call only when ``mode`` is not OPEN)."""
        return self.mode == READS and is_read(event)

    def wait(self, resume: Callable[[], None]) -> None:
        """Call ``resume`` once the gate opens again (in arrival order)."""
        self._waiting.append(resume)

    def shut(self, mode: int = SHUT) -> None:
        self.mode = mode

    def open(self) -> None:
        """Open, and resume waiting connections until one of them shuts it again."""
        self.mode = OPEN
        waiting = self._waiting
        while waiting and self.mode == OPEN:
            waiting.popleft()()

    def run(self, loop: asyncio.AbstractEventLoop, executor: concurrent.futures.Executor,
            work: Callable[[], object], mode: int = SHUT,
            done: Callable[[asyncio.Future[object]], None] | None = None) -> None:
        """Shut the gate, run ``work`` in ``executor``, then open it and call ``done``."""
        self.shut(mode)
        future = loop.run_in_executor(executor, work)

        def finished(fut: asyncio.Future[object]) -> None:
            self.open()
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
        if self.gate.mode != OPEN:
            self._arm(min(self.interval, 0.05))  # a long command runs: try again soon
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

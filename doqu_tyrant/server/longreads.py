"""Requests that may take long, and how they run without stalling the others.

The event loop answers most requests inline: a GET or an indexed search of a
small table costs microseconds, far less than handing it to a thread. A
request whose cost depends on the size of the database or of a value is
sent to the worker pool instead, as a :class:`Job`, while its connection
waits (its next requests are answered after it, in order). What the others
may do meanwhile is what Tokyo Cabinet allows beside it -- the job's gate
mode (see :mod:`.gate`):

* **a search** (MISC ``search``/``metasearch``) that holds a regular
  expression, or whose table is not small (see :data:`INLINE_WORK`): Tokyo Cabinet
  holds its reader lock for the whole search, so other reads run beside it
  (:data:`~.gate.READS`, through :meth:`.Cabinet.misc_shared`) and writes
  wait until it ends. A search with ``out`` removes what it finds: it is a
  write, and shuts the gate (:data:`~.gate.SHUT`), as does one that goes to
  the update log.
* **MISC regex and range**: scans of every key, without any lock held
  between records; run beside reads like a search (regular expressions can
  take time quadratic in a key's length, so ``regex`` always goes).
* **FWMKEYS** of a database that is not small: the library holds the
  database for the whole scan, so the gate is shut (non-database requests
  are still answered). A B+ tree finds a prefix in its index: with a limit
  of at most :data:`MANY_KEYS` keys it stays inline.
* **MGET and MISC getlist of more than** :data:`MANY_KEYS` **keys**: built
  in slices, each under the binding's lock for a moment, so nothing waits
  (:data:`~.gate.OPEN`); the memory budget room they may use is set aside
  while they run.
* **MISC putlist and outlist of more than** :data:`MANY_KEYS` **records**:
  writes that shut the gate.
* SYNC, OPTIMIZE, VANISH, COPY, RESTORE and the maintenance MISC functions,
  always (:data:`~.commands.SLOW_COMMANDS`), as before.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

from doqu_tyrant.tyrant import protocol as p
from doqu_tyrant.tyrant.protocol import REPLY_FAIL, REPLY_MISC_FAIL, Request
from doqu_tyrant.tyrant.regex import uses_regex

from .cabinet import ADBOBDB, ADBOTDB
from .commands import SLOW_MISC, Commands
from .gate import OPEN, READS, SHUT
from .limits import Budget, bounded_getlist, bounded_mget

__all__ = ["EXTENT_AGE", "INLINE_BYTES", "INLINE_WORK", "MANY_KEYS", "Job", "Planner"]

log = logging.getLogger("doqu_tyrant.server")

#: A search runs inline when the table's records times its arguments (each
#: a condition or setting, plus one) stay within this: a full scan of 8,192
#: records takes a few milliseconds on a shared two-core machine; a hand-off
#: to the worker pool costs some 50 µs.
INLINE_WORK = 8192
#: ... and the database file is no larger than this (big values cost time too).
INLINE_BYTES = 4 << 20
#: More keys than this in one MGET, getlist, putlist, outlist -- or a B+ tree
#: FWMKEYS limit above it -- go to the worker pool.
MANY_KEYS = 4096

#: How old the record count and size the decisions use may be, in seconds (the
#: database grows by a few thousand records in that time at most).
EXTENT_AGE = 0.05

_MISC = p.MISC
_monotonic = time.monotonic
_SEARCHES = frozenset({b"search", b"metasearch"})
_SCANS = frozenset({b"regex", b"range"})
_BULK_WRITES = frozenset({b"putlist", b"outlist"})
# the reads bounded by the memory budget: the bounded read, its name, its
# failure reply, and why a refused one was refused
_Bounded = tuple[Callable[..., "bytes | None"], str, bytes, str]
_MGET: _Bounded = (bounded_mget, "MGET", REPLY_FAIL, "its reply would exceed the memory budget")
_GETLIST: _Bounded = (bounded_getlist, "getlist", REPLY_MISC_FAIL,
                      "over the memory budget, or the engine failed")


class Job(NamedTuple):
    """Work for the worker pool: what it answers, and what it lets others do."""

    mode: int
    """The gate mode while it runs (:data:`~.gate.OPEN`, ``READS``, ``SHUT``)."""
    work: Callable[[], bytes]
    """Returns the reply; never raises."""
    reserved: int = 0
    """Bytes of the memory budget set aside until it ends."""


class Planner:
    """Decides, per request, between inline and the worker pool (one per server).

    ``guarded``: the memory safeguards are on (:class:`~.limits.Limits`);
    then MGET and getlist answers are built within the budget.
    """

    def __init__(self, commands: Commands, budget: Budget, guarded: bool = True) -> None:
        self.commands = commands
        self.db = commands.db
        self.budget = budget
        self.guarded = guarded
        self.table = self.db.omode == ADBOTDB
        self._last = (0, 0)
        self._read_at = -EXTENT_AGE - 1.0

    # -- the decision ---------------------------------------------------------------

    def plan(self, r: Request) -> Job | None:
        """The job for ``r``, or None to answer it inline with :meth:`answer`."""
        cmd = r[0]
        commands = self.commands
        if cmd == _MISC:
            name, opts, args = r[1]
            if name in _SEARCHES:
                if not self.table:
                    return None  # fails at once
                if self._small(len(args)) and not uses_regex(name, args):
                    return None
                return self._search(r, args)
            if name in SLOW_MISC:
                return Job(commands.gate_mode(r), partial(commands.execute, r))
            if name in _SCANS:
                return self._scan(r, name, args)
            if name == b"getlist" and len(args) > MANY_KEYS:
                return self._getlist(r, args)
            if name in _BULK_WRITES and len(args) > 2 * MANY_KEYS:
                return Job(SHUT, partial(commands.execute, r))
            return None
        if cmd == p.MGET:
            keys = r[1][0]
            if len(keys) > MANY_KEYS and self.guarded:
                room = self.budget.room()
                return Job(OPEN, partial(self._bounded, _MGET, keys, room), room)
            return None
        if cmd == p.FWMKEYS:
            return self._fwmkeys(r)
        if commands.is_slow(r):
            return Job(commands.gate_mode(r), partial(commands.execute, r))
        return None

    def _extent(self) -> tuple[int, int]:
        """The database's records and bytes, read at most every EXTENT_AGE s."""
        now = _monotonic()
        if now - self._read_at > EXTENT_AGE:
            self._last = self.db.extent()
            self._read_at = now
        return self._last

    def _small(self, args: int) -> bool:
        records, size = self._extent()
        return records * (args + 1) <= INLINE_WORK and size <= INLINE_BYTES

    def _shared(self, r: Request) -> Job:
        """A long MISC read: beside other reads, unless it writes to the update log."""
        commands = self.commands
        if commands.logs(r):
            return Job(SHUT, partial(commands.execute, r))
        return Job(READS, partial(commands.execute_shared, r))

    def _search(self, r: Request, args: list[bytes]) -> Job:
        """The job of a search that may take long."""
        if any(arg[:3] == b"out" for arg in args):
            return Job(SHUT, partial(self.commands.execute, r))
        return self._shared(r)

    def _scan(self, r: Request, name: bytes, args: list[bytes]) -> Job | None:
        if name == b"range" and self._small(1):
            return None
        return self._shared(r)

    def _fwmkeys(self, r: Request) -> Job | None:
        limit = r[1][1]
        if self.db.omode == ADBOBDB and 0 <= limit <= MANY_KEYS:
            return None  # a B+ tree walks its index from the prefix
        if self._small(1):
            return None
        return Job(SHUT, partial(self.commands.execute, r))

    def _getlist(self, r: Request, keys: list[bytes]) -> Job:
        commands = self.commands
        if not self.guarded or commands.logs(r):
            # one library call under the lock (and, logged, the write lock)
            return Job(SHUT, partial(commands.execute, r))
        room = self.budget.room()
        return Job(OPEN, partial(self._bounded, _GETLIST, keys, room), room)

    # -- answers --------------------------------------------------------------------

    def answer(self, r: Request, fd: int = -1) -> bytes:
        """The inline answer to a request :meth:`plan` left inline."""
        cmd = r[0]
        commands = self.commands
        if self.guarded:
            if cmd == p.MGET:
                return self._bounded(_MGET, r[1][0], self.budget.room(), fd)
            if cmd == p.MISC and r[1][0] == b"getlist" and not commands.logs(r):
                return self._bounded(_GETLIST, r[1][2], self.budget.room(), fd)
        return commands.execute(r)

    def _bounded(self, how: _Bounded, keys: list[bytes], room: int, fd: int = -1) -> bytes:
        """The reply of a read whose answer must fit in ``room`` bytes (see
        :mod:`.limits`), or ``how``'s failure reply."""
        read, name, fail, why = how
        try:
            reply = read(self.db, keys, room)
        except Exception:
            log.exception("%s failed", name)
            return fail
        if reply is None:
            log.info("fd %d: %s of %d keys refused: %s", fd, name, len(keys), why)
            return fail
        return reply

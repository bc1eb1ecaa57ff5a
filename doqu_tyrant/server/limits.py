"""What one client may cost the others: connections, idle time, memory.

:class:`Limits` holds the operator's settings (``--max-connections``,
``--idle-timeout``, ``--max-memory``). :class:`Budget` is the server-wide
account of the memory that requests and replies hold: every connection adds
the bytes its decoder buffers and the reply bytes its transport has not sent
yet. Replies that gather many records (MGET, MISC ``getlist``) are built in
growing slices and refused with a failure status as soon as they would take
more than the budget has left, so a few-kilobyte request naming a big
record a thousand times costs nothing; see :func:`bounded_mget` and
:func:`bounded_getlist`.
"""

from __future__ import annotations

import contextlib
import math
import resource
from dataclasses import dataclass

from doqu_tyrant.tyrant import protocol as p

from .cabinet import Cabinet

__all__ = [
    "DEFAULT_MAX_MEMORY", "DEFAULT_MAX_UNSENT", "Budget", "Limits",
    "bounded_getlist", "bounded_mget", "default_max_connections",
]  # fmt: skip

DEFAULT_MAX_MEMORY = 1 << 30
# Unsent reply bytes after which a connection's requests stop being read.
DEFAULT_MAX_UNSENT = 1 << 20
# Connections allowed when the descriptor limit leaves room for more.
DEFAULT_MAX_CONNECTIONS = 4096
# Descriptors kept free for the database, the update log, the log file, ...
FD_RESERVE = 64
# A frame or reply up to this size never waits for the budget.
SMALL = 1 << 16
# Slices of a bounded multi-record read: the first is one key, each next one
# at most twice as long (so an oversized answer is noticed after fetching at
# most about twice the budget left) and never longer than this.
MAX_SLICE = 4096


def default_max_connections() -> int:
    """:data:`DEFAULT_MAX_CONNECTIONS`, or fewer when the process may not open
    that many descriptors (keeping :data:`FD_RESERVE` of them, or a quarter
    of a small limit, free)."""
    limit = DEFAULT_MAX_CONNECTIONS
    with contextlib.suppress(ValueError, OSError):
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY:
            limit = min(limit, soft - min(FD_RESERVE, soft // 4))
    return max(limit, 1)


@dataclass
class Limits:
    """Per-server limits.

    ``max_connections``: connections served at once (None: see
    :func:`default_max_connections`); one more is accepted and closed at
    once. ``idle_timeout``: seconds a connection may stay without sending
    anything before it is closed (0: never). ``max_memory``: the
    :class:`Budget` in bytes. ``max_unsent``: reply bytes a connection may
    leave unread before its further requests wait. ``guarded=False``
    turns the memory safeguards off, to measure what they cost (benchmarks
    only).
    """

    max_connections: int | None = None
    idle_timeout: float = 0.0
    max_memory: int = DEFAULT_MAX_MEMORY
    max_unsent: int = DEFAULT_MAX_UNSENT
    guarded: bool = True

    def __post_init__(self) -> None:
        for name in ("max_connections", "max_memory", "max_unsent"):
            value = getattr(self, name)
            if value is None and name == "max_connections":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        timeout = self.idle_timeout
        if (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                or not math.isfinite(timeout) or timeout < 0):
            raise ValueError(f"idle_timeout must be a number of seconds >= 0, got {timeout!r}")

    def connection_limit(self) -> int:
        return self.max_connections if self.max_connections is not None \
            else default_max_connections()


class Budget:
    """Bytes held by all connections of one server, against ``limit``.

    ``held`` is the sum of what each connection last reported (see
    ``Connection._account``): buffered request bytes plus unsent reply
    bytes. Above half of the limit the server is *under pressure*: a GET
    checks the size of its value before reading it, and waits while other
    connections hold the memory it would need.
    """

    __slots__ = ("limit", "held", "pressure_at")

    def __init__(self, limit: int = DEFAULT_MAX_MEMORY) -> None:
        self.limit = limit
        self.held = 0
        self.pressure_at = limit // 2

    @property
    def pressure(self) -> bool:
        return self.held > self.pressure_at

    def room(self) -> int:
        """The largest reply gathering many records that may be built now: an
        eighth of the limit (building one blocks the event loop for as long
        as copying it takes), and no more than the memory left can hold twice
        (the records, then the reply made of them)."""
        return min(self.limit // 8, max(self.limit - self.held, 0) // 2)

    def admits(self, size: int) -> bool:
        """Whether a reply of ``size`` bytes may be built now."""
        return size <= SMALL or self.held + 2 * size <= self.limit


def _next_slice(done: int, biggest: int, used: int, room: int) -> int:
    """How many keys to fetch next: double the last slice while the room
    left would still hold that many of the biggest element seen."""
    fit = (room - used) // max(biggest, 1)
    return max(1, min(done * 2 if done else 1, fit, MAX_SLICE))


def bounded_mget(db: Cabinet, keys: list[bytes], room: int) -> bytes | None:
    """The MGET reply for ``keys``; None once it would exceed ``room`` bytes."""
    pairs: list[tuple[bytes, bytes]] = []
    append = pairs.append
    size = 5
    biggest = 0
    start = 0
    count = len(keys)
    step = 1
    getmany = db.getmany
    while start < count:
        part = keys[start : start + step]
        for key, value in zip(part, getmany(part)):
            if value is not None:
                n = 8 + len(key) + len(value)
                size += n
                if n > biggest:
                    biggest = n
                append((key, value))
        if size > room:
            return None
        start += len(part)
        step = _next_slice(start, biggest, size, room)
    return p.reply_pairs(pairs)


def bounded_getlist(db: Cabinet, keys: list[bytes], room: int) -> bytes | None:
    """The MISC ``getlist`` reply for ``keys`` (``db.misc("getlist")`` over
    slices of them, which answers the same: the pairs of the keys that
    exist, in order); None once it would exceed ``room`` bytes, or when the
    engine fails."""
    items: list[bytes] = []
    size = 5
    biggest = 0
    start = 0
    count = len(keys)
    step = 1
    misc = db.misc
    while start < count:
        part = keys[start : start + step]
        got = misc(b"getlist", part)
        if got is None:
            return None
        for item in got:
            n = 4 + len(item)
            size += n
            if n > biggest:
                biggest = n
        items += got
        if size > room:
            return None
        start += len(part)
        # a key's pair is two elements
        step = _next_slice(start, 2 * biggest, size, room)
    return p.reply_list(items)

"""A bounded, thread-safe pool of blocking connections.

The pool holds a fixed number of :class:`~.connection.Connection` objects, created
up front but connected lazily: a connection opens its socket on first use
and reopens it after it was discarded. Checking one out is a lock-free
``deque.pop()`` in the common case; only a caller that finds the pool empty
takes the lock and waits.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from .errors import TyrantPoolTimeout

__all__ = ["ConnectionPool"]


class _Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=_Closable)

_pools: weakref.WeakSet[ConnectionPool] = weakref.WeakSet()


class ConnectionPool(Generic[C]):
    """At most ``size`` connections, handed out one caller at a time.

    ``timeout`` bounds the wait for a free connection (None: wait forever);
    when it passes, :class:`TyrantPoolTimeout` is raised.
    """

    def __init__(self, factory: Callable[[], C], size: int = 8,
                 timeout: float | None = 20.0) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"pool_size must be a positive int, got {size!r}")
        self.size = size
        self.timeout = timeout
        self._factory = factory
        self._all: list[C] = [factory() for _ in range(size)]
        self._idle: deque[C] = deque(self._all)
        self._cond = threading.Condition(threading.Lock())
        self._waiters = 0
        _pools.add(self)

    def acquire(self) -> C:
        """Check a connection out; give it back with :meth:`release`."""
        try:
            return self._idle.pop()
        except IndexError:
            return self._acquire_slow()

    def _acquire_slow(self) -> C:
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        with self._cond:
            # Count ourselves as a waiter *before* looking again, so that a
            # release() that did not see us has already put its connection back.
            self._waiters += 1
            try:
                while True:
                    try:
                        return self._idle.pop()
                    except IndexError:
                        pass
                    if deadline is None:
                        self._cond.wait(1.0)
                        continue
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TyrantPoolTimeout(
                            f"no free connection within {self.timeout} s "
                            f"(pool_size={self.size}); raise pool_size or pool_timeout"
                        )
                    self._cond.wait(min(remaining, 1.0))
            finally:
                self._waiters -= 1

    def release(self, conn: C) -> None:
        self._idle.append(conn)
        if self._waiters:
            self.wake()

    def wake(self) -> None:
        """Tell one waiting caller that a connection was given back."""
        with self._cond:
            self._cond.notify()

    def close(self) -> None:
        """Close every socket; the pool stays usable and reconnects on demand."""
        for conn in self._all:
            conn.close()

    def _reset_after_fork(self) -> None:
        # A child must not share sockets with its parent: forget them unclosed.
        for conn in self._all:
            forget = getattr(conn, "forget", None)
            if forget is not None:
                forget()
        self._idle = deque(self._all)
        self._cond = threading.Condition(threading.Lock())
        self._waiters = 0


def _after_fork() -> None:
    for pool in list(_pools):
        pool._reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)

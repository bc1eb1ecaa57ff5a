"""``asyncio.wait_for`` without its lost cancellations.

Before Python 3.12, ``asyncio.wait_for`` returns the awaited result when that
completes in the same loop iteration in which the waiting task is cancelled,
and the cancellation is gone (CPython issue gh-86296). For a streamed read
that receives chunks all the time this is likely, not rare: Ctrl-C (which
``asyncio.run`` turns into one cancellation of the main task) or a
``task.cancel()`` was then ignored and the read went on to its end.

:func:`within` waits with ``asyncio.wait`` instead, which raises the
cancellation whatever the awaited future did meanwhile. From 3.12 on it is
``asyncio.wait_for`` itself.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["within"]

T = TypeVar("T")


async def _within(aw: Awaitable[T], timeout: float | None,
                  discard: Callable[[T], Any] | None = None) -> T:
    """The result of ``aw``, awaited for at most ``timeout`` seconds
    (:class:`asyncio.TimeoutError` after that, ``aw`` cancelled). If the caller
    is cancelled, ``aw`` is cancelled too, and a result it had produced all the
    same is passed to ``discard`` (to close a connection, say)."""
    future = asyncio.ensure_future(aw)
    try:
        done, _ = await asyncio.wait((future,), timeout=timeout)
    except BaseException:
        if future.done():
            if discard is not None and not future.cancelled() and future.exception() is None:
                discard(future.result())
        else:
            future.cancel()
        raise
    if not done:
        future.cancel()
        # let it finish (its clean-up runs); it may have completed meanwhile
        await asyncio.wait((future,))
        if future.cancelled():
            raise asyncio.TimeoutError
    return future.result()


if sys.version_info >= (3, 12):

    async def within(aw: Awaitable[T], timeout: float | None,
                     discard: Callable[[T], Any] | None = None) -> T:
        """:func:`asyncio.wait_for` (``discard`` is not needed: it never drops
        a cancellation)."""
        return await asyncio.wait_for(aw, timeout)

else:
    within = _within

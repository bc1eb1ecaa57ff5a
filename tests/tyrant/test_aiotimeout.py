"""doqu_tyrant.tyrant.aiotimeout.within: asyncio.wait_for without the lost
cancellation of Python 3.10/3.11 (the awaited future completing in the same
loop iteration as the cancellation)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from doqu_tyrant.tyrant.aiotimeout import _within, within

WAITS: list[Callable[..., Awaitable[Any]]] = [_within, within]


@pytest.mark.parametrize("wait", WAITS)
def test_a_cancellation_beside_the_result_is_kept(wait: Callable[..., Awaitable[Any]]) -> None:
    async def main() -> None:
        future = asyncio.get_running_loop().create_future()
        task = asyncio.ensure_future(wait(future, 10))
        await asyncio.sleep(0)  # the task waits now
        future.set_result("reply")  # the reply and the cancellation in one iteration
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_asyncio_wait_for_loses_it_before_3_12() -> None:
    """What the module is for: the same race through asyncio.wait_for."""
    async def main() -> object:
        future = asyncio.get_running_loop().create_future()
        task = asyncio.ensure_future(asyncio.wait_for(future, 10))
        await asyncio.sleep(0)
        future.set_result("reply")
        task.cancel()
        try:
            return await task
        except asyncio.CancelledError:
            return "cancelled"

    assert asyncio.run(main()) == ("cancelled" if sys.version_info >= (3, 12) else "reply")


def test_a_result_dropped_by_a_cancellation_is_discarded() -> None:
    discarded: list[str] = []

    async def main() -> None:
        ready = asyncio.Event()

        async def connect() -> str:
            await ready.wait()
            return "connection"

        inner = asyncio.ensure_future(connect())
        task = asyncio.ensure_future(_within(inner, 10, discarded.append))
        await asyncio.sleep(0)
        ready.set()
        await asyncio.sleep(0)  # the inner task finishes in this iteration ...
        task.cancel()  # ... and the caller is cancelled before it sees the result
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert discarded == ["connection"]


@pytest.mark.parametrize("wait", WAITS)
def test_timeout_and_result(wait: Callable[..., Awaitable[Any]]) -> None:
    async def main() -> None:
        never = asyncio.get_running_loop().create_future()
        with pytest.raises(asyncio.TimeoutError):
            await wait(never, 0.01)
        assert never.cancelled()

        async def quick() -> int:
            await asyncio.sleep(0)
            return 7

        assert await wait(quick(), 5) == 7
        assert await wait(quick(), None) == 7

    asyncio.run(main())

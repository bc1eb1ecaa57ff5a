"""Retrying as a wrapper, not a flag: opt in to retries of any command.

The clients themselves retry only what is certainly safe (a read whose
connection broke, a request that never left). :class:`RetryingClient` wraps
a :class:`~.client.Tyrant` or :class:`~.aio.AsyncTyrant` and retries *every*
command — writes included — on the errors you name::

    t = RetryingClient(Tyrant("db", 1978, timeout=2), attempts=3, retry_delay=0.1)
    t.put("k", "v")   # tried up to 3 times on connection errors and timeouts

A write retried after its reply was lost may be applied twice (``putcat``,
``addint``, ``putlist`` of appends…): use it for idempotent workloads.
Generators, queries and pipelines are returned unwrapped.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable
from typing import Any

from .errors import TyrantConnectionError, TyrantTimeout

__all__ = ["RetryingClient"]


class RetryingClient:
    """Proxy to ``client`` whose command methods retry on ``retry_for`` errors.

    ``attempts`` counts the first try; ``retry_delay`` seconds pass between
    tries; an error that is an instance of ``do_not_retry_for`` is raised at
    once.
    """

    def __init__(self, client: Any, attempts: int = 2, retry_delay: float = 0.0,
                 retry_for: tuple[type[BaseException], ...] = (TyrantConnectionError,
                                                             TyrantTimeout),
                 do_not_retry_for: tuple[type[BaseException], ...] = ()) -> None:
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ValueError(f"attempts must be a positive int, got {attempts!r}")
        self.client = client
        self.attempts = attempts
        self.retry_delay = retry_delay
        self.retry_for = retry_for
        self.do_not_retry_for = do_not_retry_for

    def __repr__(self) -> str:
        return f"<RetryingClient {self.client!r} attempts={self.attempts}>"

    def _should_retry(self, exc: BaseException, attempt: int) -> bool:
        return (attempt + 1 < self.attempts and isinstance(exc, self.retry_for)
                and not isinstance(exc, self.do_not_retry_for))

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.client, name)
        if name.startswith("_") or not callable(attr) or name in ("pipeline",):
            return attr
        if inspect.isgeneratorfunction(attr) or inspect.isasyncgenfunction(attr):
            return attr
        if inspect.iscoroutinefunction(attr):
            return self._wrap_async(attr)
        return self._wrap(attr)

    def _wrap(self, func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def call(*args: Any, **kwargs: Any) -> Any:
            attempt = 0
            while True:
                try:
                    return func(*args, **kwargs)
                except BaseException as exc:
                    if not self._should_retry(exc, attempt):
                        raise
                attempt += 1
                if self.retry_delay:
                    time.sleep(self.retry_delay)

        return call

    def _wrap_async(self, func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        async def call(*args: Any, **kwargs: Any) -> Any:
            attempt = 0
            while True:
                try:
                    return await func(*args, **kwargs)
                except BaseException as exc:
                    if not self._should_retry(exc, attempt):
                        raise
                attempt += 1
                if self.retry_delay:
                    import asyncio  # only async clients get here: no import for others

                    await asyncio.sleep(self.retry_delay)

        return call

    # Item access forwarded (with retries) for the blocking client's table layer.

    def __getitem__(self, pk: Any) -> Any:
        return self._wrap(self.client.__getitem__)(pk)

    def __setitem__(self, pk: Any, record: Any) -> None:
        self._wrap(self.client.__setitem__)(pk, record)

    def __delitem__(self, pk: Any) -> None:
        self._wrap(self.client.__delitem__)(pk)

    def __contains__(self, pk: Any) -> bool:
        return bool(self._wrap(self.client.__contains__)(pk))

    def __len__(self) -> int:
        return int(self._wrap(self.client.__len__)())

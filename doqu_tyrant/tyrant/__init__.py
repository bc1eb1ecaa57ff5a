"""A Python 3 client for Tokyo Tyrant's binary protocol.

* :class:`Tyrant` — blocking, thread-safe (bounded connection pool), every
  command, table records as dicts, native queries, pipelines;
* :class:`AsyncTyrant` — the same for asyncio;
* :class:`RetryingClient` — opt-in retries of any command;
* :class:`FailoverTyrant`, :class:`AsyncFailoverTyrant` — failover groups of
  servers (``Tyrant.from_url("tyrant://a:1978,b:1978")``);
* :class:`ShardedTyrant`, :class:`AsyncShardedTyrant` — one client over many
  servers, keys placed by a consistent-hash ring, table queries merged;
* :mod:`.protocol` — the sans-IO codec both clients (and the bundled server)
  use.

This package never imports doqu, and imports asyncio only when an asyncio
name is first used (a short-lived command line need not pay for it).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .client import DEFAULT_PORT, Connection, Pipeline, Table, Tyrant, parse_url
from .commands import (
    INDEX_DECIMAL,
    INDEX_KEEP,
    INDEX_LEXICAL,
    INDEX_OPTIMIZE,
    INDEX_QGRAM,
    INDEX_TOKEN,
    INDEX_VOID,
)
from .errors import (
    EINVALID,
    EKEEP,
    EMISC,
    ENOHOST,
    ENOREC,
    ERECV,
    EREFUSED,
    ESEND,
    TyrantCommandError,
    TyrantConnectError,
    TyrantConnectionError,
    TyrantDecodeError,
    TyrantError,
    TyrantKindError,
    TyrantPoolTimeout,
    TyrantProtocolError,
    TyrantTimeout,
    TyrantUncertainWriteError,
    TyrantUnsafeWrite,
)
from .failover import FailoverTyrant
from .pool import ConnectionPool
from .protocol import MISC_NOULOG
from .query import NEGATE, NOIDX, PK, AsyncQuery, BaseQuery, Op, Order, Query, SetOp
from .retry import RetryingClient
from .ring import HashRing
from .shard_pipeline import AsyncShardedPipeline, ShardedPipeline
from .sharding import ShardedTyrant

__all__ = [
    "Tyrant",
    "AsyncTyrant",
    "RetryingClient",
    "FailoverTyrant",
    "AsyncFailoverTyrant",
    "ShardedTyrant",
    "AsyncShardedTyrant",
    "ShardedPipeline",
    "AsyncShardedPipeline",
    "HashRing",
    "Connection",
    "ConnectionPool",
    "AsyncConnection",
    "AsyncConnectionPool",
    "Pipeline",
    "AsyncPipeline",
    "Table",
    "Query",
    "AsyncQuery",
    "BaseQuery",
    "Op",
    "Order",
    "SetOp",
    "PK",
    "NEGATE",
    "NOIDX",
    "MISC_NOULOG",
    "DEFAULT_PORT",
    "parse_url",
    "INDEX_LEXICAL",
    "INDEX_DECIMAL",
    "INDEX_TOKEN",
    "INDEX_QGRAM",
    "INDEX_OPTIMIZE",
    "INDEX_VOID",
    "INDEX_KEEP",
    "TyrantError",
    "TyrantConnectionError",
    "TyrantConnectError",
    "TyrantTimeout",
    "TyrantUncertainWriteError",
    "TyrantPoolTimeout",
    "TyrantProtocolError",
    "TyrantCommandError",
    "TyrantDecodeError",
    "TyrantKindError",
    "TyrantUnsafeWrite",
    "EINVALID",
    "ENOHOST",
    "EREFUSED",
    "ESEND",
    "ERECV",
    "EKEEP",
    "ENOREC",
    "EMISC",
]


if TYPE_CHECKING:
    from .aio import AsyncConnection, AsyncConnectionPool, AsyncPipeline, AsyncTyrant
    from .aio_failover import AsyncFailoverTyrant
    from .aio_sharding import AsyncShardedTyrant

_LAZY = {name: ".aio" for name in ("AsyncTyrant", "AsyncConnection", "AsyncConnectionPool",
                                    "AsyncPipeline")}
_LAZY["AsyncFailoverTyrant"] = ".aio_failover"
_LAZY["AsyncShardedTyrant"] = ".aio_sharding"


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])

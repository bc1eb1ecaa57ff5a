"""Failover groups: one client API over several Tyrant servers.

``Tyrant.from_url("tyrant://a:1978,b:1978")`` or ``Tyrant(servers=["a:1978",
"b:1978"])`` makes a :class:`FailoverTyrant`: a group *of* clients (one
:class:`~.client.Tyrant` per server) with the client's API. Every request
goes through :meth:`FailoverTyrant._run`, which picks a server and applies
these rules:

* Requests go to the **active** server (the first one at the start). The
  group stays on it as long as it answers; it moves only when it fails.
* A server **fails** when it cannot be reached, the connection drops or a
  reply does not come within ``timeout``. An answer, even a failure status,
  is not a failure. A failed server is skipped for ``retry_interval``
  seconds (doubling, up to ``max_retry_interval``, when it fails again soon
  after coming back), then tried again when a request needs it.
* **Reads** and **idempotent writes** (``put``, ``putnr``, ``out``,
  ``vanish``, ``sync``, ``optimize`` and MISC ``put``, ``out``,
  ``putlist``, ``outlist``, ``vanish``, ``sync``, ``optimize``,
  ``setindex``, ``search``/``metasearch``) that fail are sent to the next
  server. A repeated ``out`` may then answer "missing".
* **Other writes** (``putkeep``, ``putcat``, ``putshl``, ``addint``,
  ``adddouble``, ``ext``, ``genuid``, MISC ``putkeep``/``putcat``/…,
  ``iternext``, COPY, RESTORE, SETMST) go to the next server only when they
  certainly never reached the failed one; otherwise they raise
  :class:`~.errors.TyrantUncertainWriteError`: the write may or may not have
  been applied.
* One call tries each server at most once, each try bounded by the
  clients' ``connect_timeout``/``timeout``; when every server is marked
  failed, the one failed longest ago is tried (once).
* ``read_from="any"`` spreads reads over the servers in turn (for a master
  with replicas, which lag behind it); writes still go to the active one.

Pipelines count as one request (retried only if every command in them
may be); iteration (``iterkeys``, query iteration) moves to the next server
only before its first item.

``unique_ids=True`` (what the doqu backend uses) makes :meth:`genuid` safe
for generated keys across a failover: it is retried on the next server (a
number used up on the dead one is harmless), it never returns a number it
returned before, and on a server other than the first it first moves that
server's counter ``uid_gap`` numbers on, past numbers the failed master may
have handed out without replicating them yet.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from typing import Any, Generic, TypeVar

from . import commands as c
from . import protocol as p
from .client import Pipeline, Tyrant, parse_url
from .errors import (
    TyrantConnectionError,
    TyrantPoolTimeout,
    TyrantTimeout,
    TyrantUncertainWriteError,
)

__all__ = ["FailoverTyrant", "FailoverPipeline", "ServerGroup", "split_url", "servers_list"]

C = TypeVar("C")
R = TypeVar("R")

# How a failed request may be repeated on another server.
READ = 0  # a read: always
RETRY = 1  # an idempotent write: always
ONCE = 2  # anything else: only if it certainly never left

RETRIED_COMMANDS = frozenset({p.PUT, p.PUTNR, p.OUT, p.VANISH, p.SYNC, p.OPTIMIZE})
RETRIED_MISC = frozenset({
    b"put", b"out", b"putlist", b"outlist", b"vanish", b"sync", b"optimize", b"setindex",
    b"search", b"metasearch",
})  # fmt: skip

DEFAULT_RETRY_INTERVAL = 2.0
DEFAULT_MAX_RETRY_INTERVAL = 30.0
DEFAULT_UID_GAP = 1000
_UID_CHUNK = 10000  # genuid calls per pipeline when skipping numbers

#: Query options of a group URL (the rest belong to each server's client).
GROUP_OPTIONS: dict[str, Callable[[str], Any]] = {
    "retry_interval": float, "max_retry_interval": float, "read_from": str,
    "unique_ids": lambda v: v.lower() in ("1", "true", "yes", "on"), "uid_gap": int,
}  # fmt: skip


# -- classification --------------------------------------------------------------------------


def misc_name(frame: bytes) -> bytes:
    """The function name of an encoded MISC request."""
    size = int.from_bytes(frame[2:6], "big")
    return frame[14 : 14 + size]


def retry_kind(cmd: c.Cmd) -> int:
    """READ, RETRY or ONCE for one command (see the module docstring)."""
    frame, command, _parse, _arg, read = cmd
    if read:
        return READ
    if command in RETRIED_COMMANDS:
        return RETRY
    if command == p.MISC and misc_name(frame) in RETRIED_MISC:
        return RETRY
    return ONCE


def command_name(cmd: c.Cmd) -> str:
    frame, command = cmd[0], cmd[1]
    if command == p.MISC:
        return "misc " + misc_name(frame).decode("latin-1")
    return p.COMMANDS.get(command, f"0x{command:02x}")


def is_failure(exc: BaseException) -> bool:
    """Whether ``exc`` means the server failed (and another one should be tried)."""
    return isinstance(exc, (TyrantConnectionError, TyrantTimeout)) and not isinstance(
        exc, (TyrantPoolTimeout, TyrantUncertainWriteError)
    )


def uncertain(what: str, server: str, exc: BaseException) -> TyrantUncertainWriteError:
    return TyrantUncertainWriteError(
        f"{what} on {server}: {exc} — the request had been sent, so the write may or may "
        "not have been applied; it is not repeated on another server because applying it "
        "twice would not be the same as once",
        what, server,
    )  # fmt: skip


# -- servers and URLs ------------------------------------------------------------------------


def servers_list(servers: Iterable[Any]) -> list[tuple[str, int]]:
    """``servers`` as ``(host, port)`` pairs: each ``"host:port"``, ``"host"``
    (port 1978), ``"tyrant://host:port"`` or a ``(host, port)`` pair."""
    if isinstance(servers, (str, bytes)):
        raise TypeError("servers must be a list of servers, not a single string "
                        "(use from_url for 'tyrant://a:1978,b:1978')")
    out: list[tuple[str, int]] = []
    for item in servers:
        if isinstance(item, str):
            text = item if "://" in item else f"tyrant://{item}"
            host, port, options = parse_url(text)
            if options:
                raise ValueError(f"server {item!r}: options belong to the group, not a server")
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            host, port = item
            if not isinstance(host, str) or not host:
                raise ValueError(f"server {item!r}: the host must be a non-empty str")
            if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
                raise ValueError(f"server {item!r}: the port must be an int from 1 to 65535")
        else:
            raise TypeError(f"a server is 'host:port' or (host, port), not {item!r}")
        if (host, port) in out:
            raise ValueError(f"server {host}:{port} is listed twice")
        out.append((host, port))
    if not out:
        raise ValueError("a failover group needs at least one server")
    return out


def is_group_url(url: str) -> bool:
    """Whether ``url`` names several servers (``tyrant://a:1978,b:1978``)."""
    netloc = url.split("://", 1)[-1].split("/", 1)[0].split("?", 1)[0]
    return "," in netloc


def split_url(url: str) -> tuple[list[tuple[str, int]], dict[str, Any], dict[str, Any]]:
    """``tyrant://a:1978,b:1978?timeout=5&retry_interval=1`` →
    (servers, client options, group options). Each server part is parsed
    by :func:`~.client.parse_url`."""
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, not {type(url).__name__}")
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a tyrant:// URL: {url!r}")
    netloc, query = rest, ""
    for mark in ("?", "/"):
        if mark in netloc:
            netloc, tail = netloc.split(mark, 1)
            query = tail.partition("?")[2] if mark == "/" else tail
            break
    group: dict[str, Any] = {}
    kept = []
    for item in query.split("&") if query else []:
        name, _, value = item.partition("=")
        if name in GROUP_OPTIONS:
            try:
                group[name] = GROUP_OPTIONS[name](value)
            except ValueError:
                raise ValueError(f"bad value {value!r} for {name} in {url!r}") from None
        else:
            kept.append(item)
    suffix = "?" + "&".join(kept) if kept else ""
    servers: list[tuple[str, int]] = []
    options: dict[str, Any] = {}
    for part in netloc.split(","):
        if not part:
            raise ValueError(f"empty server in {url!r}")
        host, port, options = parse_url(f"{scheme}://{part}{suffix}")
        servers.append((host, port))
    return servers_list(servers), options, group


# -- the policy ------------------------------------------------------------------------------


class _State:
    __slots__ = ("failures", "down_until", "interval", "up_since", "error")

    def __init__(self) -> None:
        self.failures = 0
        self.down_until = 0.0
        self.interval = 0.0
        self.up_since = 0.0
        self.error = ""


class ServerGroup(Generic[C]):
    """Which server to try, in which order; thread-safe and free of I/O.

    Shared by :class:`FailoverTyrant` and
    :class:`~.aio_failover.AsyncFailoverTyrant`.
    """

    def __init__(self, clients: Sequence[C], addresses: Sequence[tuple[str, int]], *,
                 retry_interval: float = DEFAULT_RETRY_INTERVAL,
                 max_retry_interval: float = DEFAULT_MAX_RETRY_INTERVAL,
                 read_from: str = "active") -> None:
        for name, value in (("retry_interval", retry_interval),
                            ("max_retry_interval", max_retry_interval)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a number of seconds ≥ 0, got {value!r}")
        if read_from not in ("active", "any"):
            raise ValueError(f"read_from must be 'active' or 'any', got {read_from!r}")
        self.clients = list(clients)
        self.addresses = [f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in addresses]
        self.retry_interval = float(retry_interval)
        self.max_retry_interval = max(float(max_retry_interval), self.retry_interval)
        self.read_from = read_from
        self.active = 0
        self.switches = 0  # how often the active server changed
        self._states = [_State() for _ in self.clients]
        self._next_read = 0
        self._lock = threading.Lock()

    def plan(self, kind: int) -> list[int]:
        """The servers to try for one request, in order."""
        now = time.monotonic()
        n = len(self.clients)
        with self._lock:
            if kind == READ and self.read_from == "any":
                start = self._next_read
                self._next_read = (start + 1) % n
            else:
                start = self.active
            order = [(start + k) % n for k in range(n)]
            states = self._states
            up = [i for i in order if states[i].down_until <= now]
            if up:
                return up
            return [min(order, key=lambda i: states[i].down_until)]

    def succeeded(self, i: int, kind: int) -> None:
        """Server ``i`` answered."""
        now = time.monotonic()
        with self._lock:
            state = self._states[i]
            if state.down_until:
                state.down_until = 0.0
                state.up_since = now
            elif state.failures and now - state.up_since >= state.interval:
                state.failures = 0  # stable again: the next failure starts the backoff anew
            if i != self.active and not (kind == READ and self.read_from == "any"):
                self.active = i
                self.switches += 1

    def failed(self, i: int, exc: BaseException) -> None:
        """Server ``i`` failed: skip it for a while, move the active server on."""
        now = time.monotonic()
        with self._lock:
            state = self._states[i]
            state.failures += 1
            state.interval = min(self.retry_interval * 2 ** (state.failures - 1),
                                 self.max_retry_interval)
            state.down_until = now + state.interval
            state.error = str(exc)
            if i == self.active:
                n = len(self.clients)
                for k in range(1, n):
                    j = (i + k) % n
                    if self._states[j].down_until <= now:
                        self.active = j
                        self.switches += 1
                        break

    def status(self) -> list[dict[str, Any]]:
        """Each server: ``address``, ``active``, ``down_for`` (seconds until it
        is tried again, 0 = usable) and its last ``error``."""
        now = time.monotonic()
        with self._lock:
            return [
                {"address": self.addresses[i], "active": i == self.active,
                 "down_for": max(s.down_until - now, 0.0), "error": s.error}
                for i, s in enumerate(self._states)
            ]  # fmt: skip

    def exhausted(self, what: str,
                  errors: list[tuple[int, BaseException]]) -> TyrantConnectionError:
        """The error when every server tried failed."""
        detail = "; ".join(f"{self.addresses[i]}: {exc}" for i, exc in errors)
        err = TyrantConnectionError(f"no server of the group could run {what} ({detail})")
        err.request_sent = any(getattr(exc, "request_sent", True) for _, exc in errors)
        return err


class UidGuard:
    """The bookkeeping of ``unique_ids`` (shared with the asyncio group)."""

    def __init__(self, gap: int) -> None:
        if isinstance(gap, bool) or not isinstance(gap, int) or gap < 0:
            raise ValueError(f"uid_gap must be an int ≥ 0, got {gap!r}")
        self.gap = gap
        self.high = 0  # the largest number handed out
        self.member: int | None = None  # the server that handed it out
        self._lock = threading.Lock()

    def needed(self, member: int, n: int) -> int:
        """How many numbers server ``member`` must skip after handing out ``n``."""
        with self._lock:
            switched = member != (0 if self.member is None else self.member)
            self.member = member
            need = max(self.high - n, 0) + self.gap if switched else 0
            if not switched and n <= self.high:
                need = self.high - n + 1
            return need

    def taken(self, n: int) -> None:
        with self._lock:
            self.high = max(self.high, n)

    def reset(self) -> None:
        with self._lock:
            self.high = 0


# -- the blocking group ----------------------------------------------------------------------


class FailoverTyrant(Tyrant):
    """A failover group of :class:`~.client.Tyrant` clients with their API.

    ``servers``: ``["host:port", ...]`` or ``[(host, port), ...]``, in order
    of preference. The other client options (``timeout``,
    ``connect_timeout``, ``pool_size`` …) apply to each server's client.
    ``retry_interval``, ``max_retry_interval``, ``read_from``,
    ``unique_ids``, ``uid_gap``: see the module docstring.
    :attr:`clients` are the member clients, :attr:`group` the policy
    (``group.status()`` reports each server).
    """

    def __init__(self, host: str | None = None, port: int | None = None,
                 timeout: float | None = None, *, servers: Iterable[Any],
                 connect_timeout: float | None = None, pool_size: int = 8,
                 pool_timeout: float | None = 20.0, retry_reads: bool = True,
                 health_check_interval: float = 0.05,
                 retry_interval: float = DEFAULT_RETRY_INTERVAL,
                 max_retry_interval: float = DEFAULT_MAX_RETRY_INTERVAL,
                 read_from: str = "active", unique_ids: bool = False,
                 uid_gap: int = DEFAULT_UID_GAP) -> None:
        if host is not None or port is not None:
            raise TypeError("give either host and port or servers=[...], not both")
        addresses = servers_list(servers)
        self.timeout = timeout
        self.retry_reads = retry_reads
        self.clients = [
            Tyrant(h, prt, timeout, connect_timeout=connect_timeout, pool_size=pool_size,
                   pool_timeout=pool_timeout, retry_reads=retry_reads,
                   health_check_interval=health_check_interval)
            for h, prt in addresses
        ]
        self.group: ServerGroup[Tyrant] = ServerGroup(
            self.clients, addresses, retry_interval=retry_interval,
            max_retry_interval=max_retry_interval, read_from=read_from)
        self.unique_ids = bool(unique_ids)
        self._uids = UidGuard(uid_gap)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> FailoverTyrant:
        """A group for ``tyrant://a:1978,b:1978?timeout=5&retry_interval=1``."""
        servers, parsed, group = split_url(url)
        parsed.update(group)
        parsed.update(options)
        return cls(servers=servers, **parsed)

    # The active server's address, as a single client has one.
    @property  # type: ignore[override]
    def host(self) -> str:
        return self.clients[self.group.active].host

    @host.setter
    def host(self, value: str) -> None:
        raise AttributeError("a failover group's host is its active server's")

    @property  # type: ignore[override]
    def port(self) -> int:
        return self.clients[self.group.active].port

    @port.setter
    def port(self, value: int) -> None:
        raise AttributeError("a failover group's port is its active server's")

    def __repr__(self) -> str:
        return f"<FailoverTyrant {', '.join(self.group.addresses)} active={self.host}:{self.port}>"

    def close(self) -> None:
        for client in self.clients:
            client.close()

    # -- the one request path ---------------------------------------------------------

    def _call(self, kind: int, what: str, fn: Callable[[Tyrant], R]) -> tuple[R, int]:
        """Run ``fn`` on the servers the policy picks; return its result and the server."""
        group = self.group
        errors: list[tuple[int, BaseException]] = []
        for i in group.plan(kind):
            try:
                result = fn(self.clients[i])
            except BaseException as exc:
                if not is_failure(exc):
                    raise
                group.failed(i, exc)
                if kind == ONCE and getattr(exc, "request_sent", True):
                    raise uncertain(what, group.addresses[i], exc) from exc
                errors.append((i, exc))
                continue
            group.succeeded(i, kind)
            return result, i
        raise group.exhausted(what, errors) from errors[-1][1]

    def _run(self, cmd: c.Cmd) -> Any:
        return self._call(retry_kind(cmd), command_name(cmd), lambda t: t._run(cmd))[0]

    def _stream(self, frame: bytes, command: int, name: str) -> Iterator[list]:
        return self._each_item(lambda t: t._stream(frame, command, name), name)

    @property
    def _pool(self) -> Any:  # type: ignore[override]
        raise AttributeError("a failover group has no pool of its own: requests go through "
                             "its _run/_stream (one of its clients')")

    def iterkeys(self, batch: int = 256) -> Generator[bytes, None, None]:
        """Every key of one server (see :meth:`Tyrant.iterkeys`); a failure after the
        first key raises."""
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be a positive int, got {batch!r}")
        return self._each_item(lambda t: t.iterkeys(batch), "iterkeys")

    def _each_item(self, make: Callable[[Tyrant], Iterator[Any]],
                   what: str) -> Generator[Any, None, None]:
        group = self.group
        errors: list[tuple[int, BaseException]] = []
        for i in group.plan(READ):
            started = False
            items = make(self.clients[i])
            try:
                for item in items:
                    started = True
                    yield item
            except BaseException as exc:
                close = getattr(items, "close", None)
                if close is not None:
                    close()
                if not is_failure(exc):
                    raise
                group.failed(i, exc)
                if started:
                    raise
                errors.append((i, exc))
                continue
            group.succeeded(i, READ)
            return
        raise group.exhausted(what, errors) from errors[-1][1]

    def putnr(self, key: c.Key, value: c.Key) -> None:
        """Store without an answer; moved to the next server if it could not be sent."""
        self._call(RETRY, "putnr", lambda t: t.putnr(key, value))

    def pipeline(self) -> FailoverPipeline:
        return FailoverPipeline(self)

    # -- generated numbers --------------------------------------------------------------

    def genuid(self) -> int:
        """A new number from the table's ID sequence (see ``unique_ids``)."""
        if not self.unique_ids:
            return self._run(c.genuid())  # type: ignore[no-any-return]
        uids = self._uids
        for _ in range(len(self.clients) + 1):
            n, member = self._call(RETRY, "misc genuid", lambda t: t._run(c.genuid()))
            need = uids.needed(member, n)
            if need:
                try:
                    n = self._skip_ids(self.clients[member], need)
                except BaseException as exc:
                    if not is_failure(exc):
                        raise
                    self.group.failed(member, exc)
                    continue
            uids.taken(n)
            return n
        raise TyrantConnectionError("genuid: the servers kept failing while numbers were skipped")

    def genuids(self, count: int) -> list[int]:
        """``count`` new numbers in one round trip; with ``unique_ids``, each as
        :meth:`genuid` would give it (numbers of a server the group has just
        moved to are skipped past the gap)."""
        if not self.unique_ids or not c.genuids(count).size:  # type: ignore[attr-defined]
            return super().genuids(count)
        uids = self._uids
        for _ in range(len(self.clients) + 1):
            numbers, member = self._call(RETRY, "misc genuid", lambda t: t.genuids(count))
            need = uids.needed(member, numbers[0])
            if need:  # the first number is suspect: skip, then take all anew
                client = self.clients[member]
                try:
                    if need > count:
                        self._skip_ids(client, need - count)
                    numbers = client.genuids(count)
                except BaseException as exc:
                    if not is_failure(exc):
                        raise
                    self.group.failed(member, exc)
                    continue
            uids.taken(numbers[-1])
            return numbers
        raise TyrantConnectionError("genuid: the servers kept failing while numbers were skipped")

    @staticmethod
    def _skip_ids(client: Tyrant, count: int) -> int:
        last = 0
        while count > 0:
            step = min(count, _UID_CHUNK)
            last = client.genuids(step)[-1]
            count -= step
        return last

    def vanish(self) -> None:
        """Remove every record (the ID sequence restarts at 1)."""
        self._run(c.vanish())
        self._uids.reset()


class FailoverPipeline(Pipeline):
    """A pipeline sent to one server of the group; repeated on the next one only
    if every queued command may be (see :mod:`.failover`)."""

    def __init__(self, client: FailoverTyrant) -> None:
        super().__init__(client)
        self._group = client

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        cmds = self._take()
        if not cmds:
            return []
        kind = max(retry_kind(cmd) for cmd in cmds)

        def run(client: Tyrant) -> list[Any]:
            pipe = client.pipeline()
            pipe._cmds = list(cmds)
            return pipe.execute(raise_on_error)

        return self._group._call(kind, f"a pipeline of {len(cmds)} commands", run)[0]


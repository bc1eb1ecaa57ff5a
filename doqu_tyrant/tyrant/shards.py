"""What the blocking and the asyncio sharded clients share: the shard list,
the ring, and how each command is split (no I/O).

A shard is given as

* a URL: ``"tyrant://host:1978"``, or a failover group
  ``"tyrant://a:1978,b:1978"`` (one shard served by several servers), with
  client options in the query string; ``"NAME=tyrant://..."`` names it;
* a mapping ``{"url": ..., "name": ..., "weight": ...}`` (or ``"client"``
  instead of ``"url"``: an already built client with the Tyrant API);
* a client object (named ``host:port`` from its attributes).

A shard's *name* places it on the ring (:mod:`.ring`): by default the
addresses of its URL, ``"host:port"`` (``"a:1978,b:1978"`` for a group), so
listing the shards in another order moves nothing; name shards explicitly
to be free to move a server to another address.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from . import commands as c
from . import kinds as k
from . import protocol as p
from .client import DEFAULT_PORT
from .errors import TyrantKindError
from .failover import is_group_url
from .indexes import ORDERED
from .ring import DEFAULT_VNODES, HashRing

__all__ = ["ShardSpec", "shard_specs", "ShardedBase", "url_name"]

T = TypeVar("T")

#: MISC functions routed by their first argument (a key).
ROUTED_MISC = frozenset({b"put", b"putkeep", b"putcat", b"out", b"get"})
#: MISC functions run on every shard.
EVERY_MISC = frozenset({b"setindex", b"vanish", b"sync", b"optimize"})
SEARCH_MISC = frozenset({b"search", b"metasearch"})


@dataclass(frozen=True)
class ShardSpec:
    """One shard: its ring name and weight, and a URL or a client."""

    name: str
    url: str | None = None
    client: Any = None
    weight: float = 1.0


def _host_port(part: str, url: str) -> str:
    part = part.strip()
    if part.startswith("["):
        host, sep, rest = part[1:].partition("]")
        if not sep:
            raise ValueError(f"unclosed '[' in {url!r}")
        host = f"[{host.lower()}]"
        port_text = rest[1:] if rest.startswith(":") else rest
    else:
        host, _, port_text = part.partition(":")
        host = host.lower()
    if not host:
        host = "127.0.0.1"
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"bad port {port_text!r} in {url!r}")
        port = int(port_text)
    else:
        port = DEFAULT_PORT
    return f"{host}:{port}"


def url_name(url: str) -> str:
    """The default ring name of a shard URL: its ``host:port`` list."""
    parts = urlsplit(url)
    if parts.scheme not in ("tyrant", "tt"):
        raise ValueError(f"not a tyrant:// URL: {url!r}")
    netloc = parts.netloc.rpartition("@")[2]
    if not netloc:
        raise ValueError(f"no host in {url!r}")
    return ",".join(_host_port(p, url) for p in netloc.split(","))


def _normalized(url: str) -> str:
    return url if "//" in url else "tyrant://" + url


def _weight(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 \
            or value == float("inf"):
        raise ValueError(f"weight of {what} must be a positive number, got {value!r}")
    return float(value)


def _spec(item: Any) -> ShardSpec:
    if isinstance(item, ShardSpec):
        return item
    if isinstance(item, str):
        label, text = "", item.strip()
        scheme_at = text.find("://")
        if "=" in text[:scheme_at if scheme_at >= 0 else len(text)]:
            label, text = (x.strip() for x in text.split("=", 1))
        text = _normalized(text)
        return ShardSpec(label or url_name(text), url=text)
    if isinstance(item, Mapping):
        unknown = set(item) - {"url", "client", "name", "weight"}
        if unknown:
            raise ValueError(f"unknown shard setting(s) {', '.join(sorted(unknown))} in "
                             f"{dict(item)!r}; use url (or client), name, weight")
        url, client = item.get("url"), item.get("client")
        if (url is None) == (client is None):
            raise ValueError(f"a shard needs exactly one of url and client: {dict(item)!r}")
        given = item.get("name")
        if url is not None:
            if not isinstance(url, str):
                raise TypeError(f"shard url must be text, not {type(url).__name__}")
            url = _normalized(url.strip())
            given = url_name(url) if given is None else given
        elif given is None:
            given = _client_name(client)
        if not isinstance(given, str) or not given:
            raise ValueError(f"shard name must be non-empty text, got {given!r}")
        weight = _weight(item.get("weight", 1.0), f"shard {given!r}")
        return ShardSpec(given, url=url, client=client, weight=weight)
    if hasattr(item, "misc") and hasattr(item, "genuid"):
        return ShardSpec(_client_name(item), client=item)
    raise TypeError(f"a shard is a URL, a mapping or a client, not {type(item).__name__}")


def _client_name(client: Any) -> str:
    host, port = getattr(client, "host", None), getattr(client, "port", None)
    if host is None or port is None:
        raise ValueError(f"name the shard of client {client!r}: {{'client': ..., 'name': ...}}")
    return f"{str(host).lower()}:{port}"


def shard_specs(shards: Iterable[Any]) -> list[ShardSpec]:
    """The shard list, checked: at least one, names unique."""
    if isinstance(shards, (str, bytes, Mapping)):
        raise TypeError("shards is a list of URLs, mappings or clients, not a single "
                        f"{type(shards).__name__}")
    specs = [_spec(item) for item in shards]
    if not specs:
        raise ValueError("at least one shard is needed")
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"shard names must be unique; repeated: {', '.join(dupes)} "
                         "(the same server listed twice?)")
    return specs


class ShardedBase:
    """The shard list, the ring and the splitting of keys; no I/O."""

    def __init__(self, shards: Iterable[Any], factory: Callable[..., Any], *,
                 vnodes: int = DEFAULT_VNODES, ring_version: int = 1,
                 options: Mapping[str, Any] | None = None) -> None:
        specs = shard_specs(shards)
        self.ring = HashRing([s.name for s in specs], [s.weight for s in specs],
                             vnodes=vnodes, version=ring_version)
        self.specs: tuple[ShardSpec, ...] = tuple(specs)
        clients = []
        try:
            for i, spec in enumerate(specs):
                if spec.client is not None:
                    clients.append(spec.client)
                    continue
                kwargs = dict(options or {})
                if i == 0 and spec.url is not None and is_group_url(spec.url):
                    # the key counter's group: generated keys stay unique across a failover
                    kwargs.setdefault("unique_ids", True)
                clients.append(factory(spec.url, **kwargs))
        except BaseException:
            for client in clients:
                if not any(client is s.client for s in specs):
                    _close_quietly(client)
            raise
        self._clients: list[Any] = clients

    @property
    def names(self) -> tuple[str, ...]:
        """The shards' ring names, in the order given."""
        return self.ring.names

    @property
    def shards(self) -> tuple[Any, ...]:
        """The shards' clients, in the order given."""
        return tuple(self._clients)

    @property
    def id_shard(self) -> str:
        """Name of the shard whose counter generates keys (:meth:`genuid`): the first."""
        return self.ring.names[0]

    @property
    def host(self) -> str:
        """The first shard's host (code written for one server reads ``host``)."""
        return str(getattr(self._clients[0], "host", self.names[0].rpartition(":")[0]))

    @property
    def port(self) -> int:
        """The first shard's port."""
        return int(getattr(self._clients[0], "port", self.names[0].rpartition(":")[2] or 0))

    def server_for(self, key: c.Key) -> str:
        """Name of the shard that holds ``key``."""
        return self.ring.name(c.key_bytes(key))

    def client_for(self, key: c.Key) -> Any:
        """The client of the shard that holds ``key``."""
        return self._clients[self.ring.node(c.key_bytes(key))]

    def _index(self, key: c.Key) -> int:
        return self.ring.node(c.key_bytes(key))

    def _group(self, items: Iterable[T], key: Callable[[T], bytes]) -> dict[int, list[T]]:
        """``items`` grouped by the index of the shard of ``key(item)``."""
        node = self.ring.node
        groups: dict[int, list[T]] = {}
        for item in items:
            groups.setdefault(node(key(item)), []).append(item)
        return groups

    def _split_bytes(self, keys: list[bytes]) -> dict[int, list[bytes]]:
        return self.ring.split(keys)

    def _putlist_groups(self, pairs: Iterable[tuple[Any, Any]], table: bool
                        ) -> dict[int, list[bytes]]:
        """Records (``table``) or key-value pairs as each shard's MISC ``putlist``
        arguments, all checked before anything is sent."""
        node = self.ring.node
        groups: dict[int, list[bytes]] = {}
        for key, value in pairs:
            if table:
                kb = c.pk_bytes(key, "primary key in records")
                data = c.serialize_record(value, kb)
            else:
                if isinstance(value, Mapping):
                    raise TypeError(f"value of key {c.shown(key)} is a {type(value).__name__}: "
                                    "a key-value database stores one value (str or bytes)")
                kb = c.key_bytes(key, "key in items")
                data = c.key_bytes(value, f"value of key {c.shown(key)}")
            groups.setdefault(node(kb), []).extend((kb, data))
        for args in groups.values():
            if len(args) > p.MAX_COUNT:
                raise ValueError(f"records has {len(args) // 2} entries for one shard; at most "
                                 f"{p.MAX_COUNT // 2} fit in one request")
        return groups

    @property
    def _kind(self) -> str | None:
        """The shards' common database kind, if every shard's client knows it."""
        known = {getattr(client, "_kind", None) for client in self._clients}
        return known.pop() if len(known) == 1 else None

    def _common_kind(self, kinds: list[str]) -> str:
        distinct = set(kinds)
        if len(distinct) == 1:
            return distinct.pop()
        listed = ", ".join(f"{n}: {k.describe(kind)}" for n, kind in zip(self.names, kinds))
        raise TyrantKindError(f"the shards hold different kinds of databases ({listed}); "
                              "shard only databases of one kind", kinds[0])

    @staticmethod
    def _index_kinds(answers: list[dict[Any, str | None]]) -> dict[Any, str | None]:
        """Each shard's index kinds combined: a record may land on any shard, so a
        lexical or decimal index on one shard counts (spec §10 safety)."""
        out: dict[Any, str | None] = {}
        for column in answers[0] if answers else ():
            kinds = [answer.get(column) for answer in answers]
            ordered = [kind for kind in kinds if kind in ORDERED]
            out[column] = ordered[0] if ordered else next((k for k in kinds if k), None)
        return out

    def _key_form(self, kind: str, found: Mapping[Any, Any], wanted: list[bytes]) -> dict:
        """``found`` (a bulk read's answer) in the order of ``wanted``."""
        text = k.is_table(kind)
        out: dict[Any, Any] = {}
        for key in wanted:
            form = c.decode_key(key) if text else key
            if form in found:
                out[form] = found[form]
            elif key in found:
                out[key] = found[key]
        return out

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {', '.join(self.names)}>"


def bulk_form(records: Any, kind: str) -> tuple[list[tuple[Any, Any]], bool]:
    """``records`` as pairs, and whether they are table records; refused with
    :class:`TyrantKindError` when their form does not fit ``kind``."""
    pairs = list(c.pairs_arg(records, "records"))
    if pairs:
        k.BulkPut(pairs[:1]).for_kind(kind)
    return pairs, k.is_table(kind)


def keys_arg(keys: object, what: str, convert: Callable[[object, str], bytes]) -> list[bytes]:
    """A list of keys, each converted and checked (before anything is sent)."""
    return c._keys_list(keys, what, convert)


def misc_parts(name: c.Key, args: Iterable[c.Key], opts: int) -> tuple[bytes, list[bytes], int]:
    """A MISC call's name, arguments and options, checked as the client checks them."""
    name_b = c._name(name, "function name")
    args_b = c._keys_list(args, "args", c._sized)
    return name_b, args_b, c._int_arg(opts, "opts", 0, 0xFFFFFFFF)


def pairs_arg(args: Sequence[bytes], what: str) -> list[tuple[bytes, bytes]]:
    if len(args) % 2:
        raise ValueError(f"{what} takes key, value pairs; got {len(args)} arguments")
    it = iter(args)
    return list(zip(it, it))


def _close_quietly(client: Any) -> None:
    close = getattr(client, "close", None)
    if close is not None:
        try:
            result = close()
            if hasattr(result, "close"):  # an un-awaited coroutine (async client)
                result.close()
        except Exception:  # pragma: no cover
            pass


def unsupported_misc(name: bytes) -> ValueError:
    return ValueError(
        f"misc {name.decode('latin-1')!r} has no meaning over shards; call it on one shard "
        "(t.shards[i]) — supported: search, metasearch, get/put/putkeep/putcat/out (routed by "
        "key), getlist/putlist/outlist (split), genuid (the first shard), setindex/vanish/"
        "sync/optimize (every shard)")

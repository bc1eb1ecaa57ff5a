"""The consistent-hash ring that places keys on shards (no I/O).

Where a key lives is a storage format: a client that placed records with one
function cannot find them with another. So the function is versioned and
version 1 is fixed forever:

* the **position** of a byte string is BLAKE2b with an 8-byte digest (RFC
  7693, no key, no salt), read as a big-endian unsigned 64-bit integer;
* a key's position is that of its bytes (``str`` keys as UTF-8), the same
  bytes the server stores;
* a shard named ``N`` (UTF-8) with weight ``w`` owns ``round(vnodes * w)``
  points, point ``i`` being the position of ``"N-i"`` (``i`` in decimal,
  from 0); ``vnodes`` is 512 unless configured otherwise;
* a key belongs to the shard owning the first point at or after the key's
  position, wrapping around after 2**64 - 1; points that coincide are
  ordered by shard name.

A shard is identified by its *name*, not its address, so a server can move
to another host without moving its records (name it explicitly). A future
function gets a new version number; the default stays 1.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from hashlib import blake2b

__all__ = ["HashRing", "RING_VERSIONS", "DEFAULT_VNODES", "position"]

#: Ring versions this module implements.
RING_VERSIONS = (1,)
#: Points per unit of weight.
DEFAULT_VNODES = 512
_MAX_POINTS = 1 << 20


def position(data: bytes) -> int:
    """The ring position (0 … 2**64 - 1) of ``data`` under version 1."""
    return int.from_bytes(blake2b(data, digest_size=8).digest(), "big")


class HashRing:
    """Shards ``names`` (with ``weights``, default 1 each) on a version-1 ring.

    ``node(key)`` is the index of the shard holding ``key`` (bytes).
    """

    __slots__ = ("names", "weights", "vnodes", "version", "_points", "_owners")

    def __init__(self, names: Sequence[str], weights: Sequence[float] | None = None, *,
                 vnodes: int = DEFAULT_VNODES, version: int = 1) -> None:
        if version not in RING_VERSIONS:
            raise ValueError(f"unknown ring version {version!r}; this library implements "
                             f"{', '.join(map(str, RING_VERSIONS))}")
        if isinstance(vnodes, bool) or not isinstance(vnodes, int) or vnodes < 1:
            raise ValueError(f"vnodes must be a positive int, got {vnodes!r}")
        names = list(names)
        if not names:
            raise ValueError("a ring needs at least one shard")
        for name in names:
            if not isinstance(name, str) or not name:
                raise ValueError(f"shard names must be non-empty text, got {name!r}")
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"shard names must be unique; repeated: {', '.join(dupes)}")
        if weights is None:
            weights = [1.0] * len(names)
        weights = list(weights)
        if len(weights) != len(names):
            raise ValueError(f"{len(weights)} weights for {len(names)} shards")
        points: list[tuple[int, str, int]] = []
        for index, (name, weight) in enumerate(zip(names, weights)):
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or \
                    not weight > 0 or weight == float("inf"):
                raise ValueError(f"weight of shard {name!r} must be a positive number, "
                                 f"got {weight!r}")
            count = max(1, round(vnodes * weight))
            if count > _MAX_POINTS:
                raise ValueError(f"weight {weight} of shard {name!r} needs {count} points; "
                                 f"at most {_MAX_POINTS} are allowed")
            prefix = name.encode() + b"-"
            points.extend((position(prefix + b"%d" % i), name, index) for i in range(count))
        points.sort()
        self.names = tuple(names)
        self.weights = tuple(float(w) for w in weights)
        self.vnodes = vnodes
        self.version = version
        self._points = [p for p, _, _ in points]
        self._owners = [i for _, _, i in points]

    def node(self, key: bytes) -> int:
        """Index (in ``names``) of the shard holding ``key``."""
        i = bisect.bisect_left(self._points, position(key))
        return self._owners[i] if i < len(self._owners) else self._owners[0]

    def name(self, key: bytes) -> str:
        """Name of the shard holding ``key``."""
        return self.names[self.node(key)]

    def split(self, keys: Iterable[bytes]) -> dict[int, list[bytes]]:
        """``keys`` grouped by shard index (order kept within each group)."""
        groups: dict[int, list[bytes]] = {}
        points, owners, size = self._points, self._owners, len(self._owners)
        for key in keys:
            i = bisect.bisect_left(points, position(key))
            owner = owners[i] if i < size else owners[0]
            group = groups.get(owner)
            if group is None:
                groups[owner] = [key]
            else:
                group.append(key)
        return groups

    def __repr__(self) -> str:
        return (f"<HashRing v{self.version} {len(self.names)} shards, "
                f"{len(self._points)} points>")

"""Moving records when the shard list changes (``doqu-tyrant rebalance``).

:func:`rebalance` reads every key of every *old* shard and moves the records
whose shard differs under the *new* list — only those: with consistent
hashing, adding a fifth shard to four moves about a fifth of the records,
all of them to the new shard.

Each batch of keys is moved in three steps, always in this order:

1. read the records from the old shard (``getlist``);
2. write them to their new shard (``putlist``, replacing what is there);
3. delete them from the old shard (``outlist``).

So it is safe to kill at any point (even SIGKILL): a record is always on its
old shard, or on both (killed between 2 and 3: the same record twice), or on
its new shard. A rerun reads the old shards again and moves what is still
there; a record found on both is copied again (the old copy is the one the
old layout serves) and deleted. There is no state file to lose: the keys
left on the old shards *are* the state, and a completed run leaves every
record on exactly its new shard. Run it again until it reports nothing moved
(``check=True`` only counts), and switch the clients to the new list after.

Records written *during* a rebalance: stop writers while it runs. A writer
still using the old list may update a record between its copy and its
removal (that update is lost); one already using the new list may write a
record that an older copy then overwrites. Readers see every record only
before and after: meanwhile a key lookup with the old list misses what has
moved, one with the new list what has not, and a query over the shards of
both may see a record twice (between its copy and its removal).

When the first shard changes, the key counter (:meth:`genuid`) moves too:
the new first shard's counter is advanced past the old one's first, so
generated keys stay unique. Renaming a shard (the same server under another
name) is refused: its records would be copied onto themselves and deleted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .protocol import MISC_NOULOG
from .shards import ShardedBase, url_name

__all__ = ["Report", "rebalance", "check_layouts"]

#: Bytes of records per ``putlist`` (far below the server's frame limit).
CHUNK_BYTES = 8 << 20
_COUNTER_STEP = 10_000


@dataclass
class Report:
    """What a rebalance did (or, with ``check``, would do)."""

    scanned: int = 0
    moved: int = 0
    moved_from: dict[str, int] = field(default_factory=dict)
    moved_to: dict[str, int] = field(default_factory=dict)
    ids_advanced: int = 0
    seconds: float = 0.0
    checked: bool = False

    @property
    def fraction(self) -> float:
        """Share of the scanned records that moved (or would move)."""
        return self.moved / self.scanned if self.scanned else 0.0


def _addresses(layout: ShardedBase) -> dict[str, str]:
    """address -> shard name, for every shard whose address is known."""
    out: dict[str, str] = {}
    for spec, client in zip(layout.specs, layout.shards):
        if spec.url is not None:
            addresses = url_name(spec.url).split(",")
        elif getattr(client, "host", None) is not None:
            addresses = [f"{str(client.host).lower()}:{client.port}"]
        else:
            addresses = []
        for address in addresses:
            out[address] = spec.name
    return out


def check_layouts(old: ShardedBase, new: ShardedBase) -> None:
    """Refuse a server that is one shard in ``old`` and another in ``new``."""
    before = _addresses(old)
    for address, name in _addresses(new).items():
        was = before.get(address)
        if was is not None and was != name:
            raise ValueError(
                f"the server {address} is shard {was!r} in the old list and {name!r} in the "
                "new one; a rebalance would copy its records onto themselves and delete them. "
                "Keep the shard's name (NAME=URL) when its address stays")


def _chunks(flat: list[bytes]) -> Iterator[list[bytes]]:
    start = size = 0
    for i in range(0, len(flat), 2):
        size += len(flat[i]) + len(flat[i + 1])
        if size > CHUNK_BYTES and i > start:
            yield flat[start:i]
            start, size = i, len(flat[i]) + len(flat[i + 1])
    if start < len(flat):
        yield flat[start:]


def advance_ids(old: ShardedBase, new: ShardedBase) -> int:
    """Advance the new first shard's key counter past the old first shard's;
    the number of IDs taken (0 when the first shard stays)."""
    if old.names[0] == new.names[0]:
        return 0
    target = old.shards[0].genuid()  # the next key the old layout would generate
    counter = new.shards[0]
    current = counter.genuid()
    taken = 1
    pipeline = getattr(counter, "pipeline", None)
    while current < target:
        step = min(target - current, _COUNTER_STEP)
        if pipeline is None:
            for _ in range(step):
                current = counter.genuid()
        else:
            with pipeline() as pl:
                for _ in range(step):
                    pl.genuid()
                current = pl.execute()[-1]
        taken += step
    return taken


def rebalance(old: Any, new: Any, *, batch: int = 1000, check: bool = False,
              progress: Callable[[Report, int], None] | None = None) -> Report:
    """Move every record of the shards of ``old`` (a :class:`~.sharding.ShardedTyrant`)
    whose shard is another under ``new``; see the module docs. ``check``:
    count, move nothing. ``progress(report, total)`` is called after each
    batch (``total``: records on the old shards when it started)."""
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive int, got {batch!r}")
    check_layouts(old, new)
    started = time.monotonic()
    report = Report(checked=check)
    total = sum(old._parallel([client.rnum for client in old.shards]))
    if not check:
        report.ids_advanced = advance_ids(old, new)
    lock = threading.Lock()
    target_of = {name: j for j, name in enumerate(new.names)}

    def drain(index: int) -> None:
        name, source = old.names[index], old.shards[index]
        stays = target_of.get(name)

        def flush(keys: list[bytes]) -> None:
            moved: dict[str, int] = {}
            for j, group in new.ring.split(keys).items():
                if j == stays:
                    continue
                if check:
                    count = len(group)
                else:
                    flat = source.misc(b"getlist", group, MISC_NOULOG)
                    for chunk in _chunks(flat):
                        new.shards[j].misc(b"putlist", chunk, 0)
                    if flat:
                        source.misc(b"outlist", flat[::2], 0)
                    count = len(flat) // 2
                moved[new.names[j]] = count
            with lock:
                report.scanned += len(keys)
                for target, count in moved.items():
                    report.moved += count
                    report.moved_to[target] = report.moved_to.get(target, 0) + count
                    report.moved_from[name] = report.moved_from.get(name, 0) + count
                if progress is not None:
                    progress(report, total)

        keys: list[bytes] = []
        for key in source.iterkeys(batch):
            keys.append(key)
            if len(keys) >= batch:
                flush(keys)
                keys = []
        if keys:
            flush(keys)

    old._parallel([lambda i=i: drain(i) for i in range(len(old.shards))])
    report.seconds = time.monotonic() - started
    return report

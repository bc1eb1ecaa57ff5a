"""64 clients × 1,000 mixed operations at once, every reply checked.

Each client works on its own keys (so a local model predicts every reply
exactly) plus one counter shared by all (ADDINT must be atomic: each client
sees strictly increasing sums, and the final sum counts every increment).
Clients pipeline random-sized batches, so ordering within a connection is
checked as well.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

from doqu_tyrant.tyrant import protocol as p
from tests.server.wire import Wire
from tests.servers import ServerProcess

ServerFactory = Callable[..., ServerProcess]

CLIENTS = 64
OPERATIONS = 1000


def client(address: tuple[str, int], cid: int, shared_seen: list[int], errors: list[str]) -> None:
    rng = random.Random(cid)
    model: dict[bytes, bytes] = {}
    counter = 0
    keys = [b"c%d:%d" % (cid, i) for i in range(12)]
    done = 0
    try:
        with Wire(address, timeout=60.0) as wire:
            while done < OPERATIONS:
                batch = min(rng.randint(1, 16), OPERATIONS - done)
                frames: list[bytes] = []
                checks: list[Callable[[p.Reply], bool]] = []
                for _ in range(batch):
                    frame, check, counter = operation(rng, cid, keys, model, counter,
                                                      shared_seen)
                    frames.append(frame)
                    checks.append(check)
                replies = wire.pipeline(frames)
                for frame, check, reply in zip(frames, checks, replies):
                    if not check(reply):
                        errors.append(f"client {cid}: {frame[:40].hex()} -> {reply}")
                        return
                done += batch
    except Exception as exc:  # reported by the test
        errors.append(f"client {cid}: {exc!r}")


def operation(rng: random.Random, cid: int, keys: list[bytes], model: dict[bytes, bytes],
              counter: int, shared_seen: list[int]
              ) -> tuple[bytes, Callable[[p.Reply], bool], int]:
    key = rng.choice(keys)
    value = b"%d" % rng.randrange(10**6)
    op = rng.randrange(11)
    if op == 0:
        model[key] = value
        return p.encode_put(key, value), lambda r: r.ok, counter
    if op == 1:
        ok = key not in model
        if ok:
            model[key] = value
        return p.encode_put(key, value, p.PUTKEEP), lambda r: r.ok is ok, counter
    if op == 2:
        model[key] = model.get(key, b"") + value
        return p.encode_put(key, value, p.PUTCAT), lambda r: r.ok, counter
    if op == 3:
        ok = model.pop(key, None) is not None
        return p.encode_key(p.OUT, key), lambda r: r.ok is ok, counter
    if op in (4, 5):
        want = model.get(key)
        return (p.encode_key(p.GET, key),
                lambda r: r == (p.Reply(False, None) if want is None else p.Reply(True, want)),
                counter)
    if op == 6:
        want = model.get(key)
        return (p.encode_key(p.VSIZ, key),
                lambda r: r == (p.Reply(False, None) if want is None else p.Reply(True, len(want))),
                counter)
    if op == 7:
        model[key] = value
        return p.encode_put(key, value, p.PUTNR), lambda r: r.ok, counter
    if op == 8:
        chosen = rng.sample(keys, 4)
        want_pairs = [(k, model[k]) for k in chosen if k in model]
        return p.encode_mget(chosen), lambda r: r == p.Reply(True, want_pairs), counter
    if op == 9:
        step = rng.randint(-5, 5)
        counter += step
        total = counter
        return (p.encode_addint(b"ctr%d" % cid, step),
                lambda r: r == p.Reply(True, total), counter)
    # the shared counter: sums seen by one client only grow
    def check_shared(r: p.Reply) -> bool:
        if not r.ok or not isinstance(r.value, int):
            return False
        ok = not shared_seen or r.value > shared_seen[-1]
        shared_seen.append(r.value)
        return ok

    return p.encode_addint(b"shared", 1), check_shared, counter


def test_64_clients_1000_mixed_operations(server_factory: ServerFactory) -> None:
    server = server_factory("hash")
    errors: list[str] = []
    seen: list[list[int]] = [[] for _ in range(CLIENTS)]
    threads = [
        threading.Thread(target=client, args=(server.address, cid, seen[cid], errors))
        for cid in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    increments = sum(len(s) for s in seen)
    with Wire(server.address) as wire:
        assert wire.get(b"shared") == increments.to_bytes(4, "little")
        all_sums = sorted(v for s in seen for v in s)
        assert all_sums == list(range(1, increments + 1))  # every sum handed out once

"""A dual master under load: the active server is killed (SIGKILL) while a
failover client writes 10,000 records with generated keys, then restarted.

Afterwards every write the client reported as done is on both servers, both
hold exactly the same records, and no generated key was handed out twice.
Once with the blocking client, once with the asyncio one."""

from __future__ import annotations

import asyncio
import random
import threading
from pathlib import Path

from doqu_tyrant.tyrant import AsyncTyrant, Tyrant, TyrantUncertainWriteError
from doqu_tyrant.tyrant.commands import serialize_record
from tests.replicas import dual_master, dump, wait_converged
from tests.servers import ServerProcess

WRITES = 10_000


class Outcome:
    def __init__(self) -> None:
        self.keys: list[int] = []  # every generated key, in the order handed out
        self.done: dict[bytes, int] = {}  # key → write reported as done
        self.uncertain: dict[bytes, int] = {}  # key → write that may or may not be stored
        self.lock = threading.Lock()


def check(a: ServerProcess, b: ServerProcess, outcome: Outcome, in_flight: int) -> None:
    assert wait_converged(a, b, 30), "the two masters did not converge"
    records = dump(a)
    assert records == dump(b)  # identical, record for record
    assert len(outcome.keys) == len(set(outcome.keys))  # no generated key used twice
    assert len(outcome.done) + len(outcome.uncertain) == WRITES
    for key, i in outcome.done.items():
        assert records.get(key) == serialize_record({"i": str(i)}, key), key
    phantom = set(records) - set(outcome.done) - set(outcome.uncertain)
    assert not phantom
    assert len(outcome.uncertain) <= in_flight  # only writes in flight when A died


class Killer:
    """Kills A when the writers reach a random write, restarts it a bit later."""

    def __init__(self, server: ServerProcess, rng: random.Random) -> None:
        self.server = server
        self.kill_at = rng.randrange(2000, 6000)
        self.restart_at = self.kill_at + 1500
        self.killed = threading.Event()
        self.restart = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def tick(self, i: int) -> None:
        if i == self.kill_at:
            self.killed.set()
        elif i == self.restart_at:
            self.restart.set()

    def _run(self) -> None:
        self.killed.wait(120)
        self.server.kill()
        self.restart.wait(120)
        self.server.start()

    def join(self) -> None:
        self.killed.set()
        self.restart.set()
        self.thread.join(60)


def test_blocking_client_through_a_kill_of_the_active_master(tmp_path: Path) -> None:
    a, b = dual_master(tmp_path, "table")
    outcome = Outcome()
    killer = Killer(a, random.Random())
    try:
        with Tyrant(servers=[a.address, b.address], timeout=5, unique_ids=True,
                    retry_interval=0.5) as g:
            for i in range(WRITES):
                killer.tick(i)
                key = g.genuid()
                outcome.keys.append(key)
                pk = str(key).encode()
                try:
                    assert g.table_putkeep(pk, {"i": str(i)})
                except TyrantUncertainWriteError:
                    outcome.uncertain[pk] = i
                else:
                    outcome.done[pk] = i
            assert (g.host, g.port) == b.address  # it moved, and stayed
        killer.join()
        check(a, b, outcome, in_flight=1)
    finally:
        killer.join()
        a.close()
        b.close()


def test_asyncio_client_through_a_kill_of_the_active_master(tmp_path: Path) -> None:
    a, b = dual_master(tmp_path, "table")
    outcome = Outcome()
    killer = Killer(a, random.Random())
    counter = iter(range(WRITES))

    async def writer(g: AsyncTyrant) -> None:
        for i in counter:
            killer.tick(i)
            key = await g.genuid()
            outcome.keys.append(key)
            pk = str(key).encode()
            try:
                assert await g.table_putkeep(pk, {"i": str(i)})
            except TyrantUncertainWriteError:
                outcome.uncertain[pk] = i
            else:
                outcome.done[pk] = i

    async def main() -> None:
        async with AsyncTyrant(servers=[a.address, b.address], timeout=5, unique_ids=True,
                               retry_interval=0.5) as g:
            await asyncio.gather(*(writer(g) for _ in range(4)))

    try:
        asyncio.run(main())
        killer.join()
        check(a, b, outcome, in_flight=4)
    finally:
        killer.join()
        a.close()
        b.close()

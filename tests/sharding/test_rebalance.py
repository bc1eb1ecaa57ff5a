"""Rebalancing: only the records whose shard changes move, every record ends on
exactly its new shard, and a rebalance killed at any point (SIGKILL of the
command) loses nothing and is finished by running it again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from doqu_tyrant.tyrant import ShardedTyrant
from doqu_tyrant.tyrant.rebalance import rebalance
from tests.conftest import ServerFactory
from tests.servers import ROOT, ServerProcess

RECORDS = {f"r{i}": {"n": str(i), "pad": "x" * (i % 50)} for i in range(3000)}


@pytest.fixture(scope="module")
def urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """Five bundled table servers for this module."""
    directory = tmp_path_factory.mktemp("rebalance")
    servers: list[ServerProcess] = []
    try:
        for i in range(5):
            servers.append(ServerProcess(str(directory / f"r{i}.tct")))
        yield [s.url for s in servers]
    finally:
        for server in servers:
            server.close()


@pytest.fixture
def layouts(urls: list[str]) -> Iterator[tuple[ShardedTyrant, ShardedTyrant]]:
    old, new = ShardedTyrant(urls[:4], timeout=20), ShardedTyrant(urls, timeout=20)
    new.vanish()
    old.putlist(RECORDS)
    yield old, new
    new.vanish()
    old.close()
    new.close()


def placement(layout: ShardedTyrant) -> dict[str, list[str]]:
    """key -> names of the shards that hold it (asking each shard)."""
    found: dict[str, list[str]] = {}
    for name, shard in zip(layout.names, layout.shards):
        for key in shard.query.keys():
            found.setdefault(key, []).append(name)
    return found


def assert_in_place(layout: ShardedTyrant) -> None:
    where = placement(layout)
    assert sorted(where) == sorted(RECORDS)  # nothing lost
    for key, names in where.items():
        assert names == [layout.server_for(key)], key  # exactly one copy, on its shard
    assert layout.getlist(list(RECORDS)) == RECORDS  # unchanged


def test_adding_a_shard_moves_about_a_fifth_to_it(
        layouts: tuple[ShardedTyrant, ShardedTyrant]) -> None:
    old, new = layouts
    before = placement(old)
    checked = rebalance(old, new, check=True)
    assert checked.moved and placement(old) == before  # a check moves nothing
    report = rebalance(old, new, batch=256)
    assert report.scanned == len(RECORDS)
    assert report.moved == checked.moved
    assert 0.14 <= report.fraction <= 0.26
    assert list(report.moved_to) == [new.names[4]]  # only to the new shard
    assert_in_place(new)
    moved = [k for k in RECORDS if new.server_for(k) != before[k][0]]
    assert len(moved) == report.moved and all(new.server_for(k) == new.names[4] for k in moved)
    again = rebalance(old, new)
    assert again.moved == 0 and again.scanned == len(RECORDS) - report.moved


def test_removing_a_shard_empties_it(urls: list[str]) -> None:
    old, new = ShardedTyrant(urls, timeout=20), ShardedTyrant(urls[1:], timeout=20)
    try:
        old.vanish()
        old.putlist(RECORDS)
        first = old.shards[0].rnum()
        report = rebalance(old, new)
        assert report.moved == first and old.shards[0].rnum() == 0
        assert_in_place(new)
    finally:
        old.vanish()
        old.close()
        new.close()


def test_the_key_counter_follows_the_first_shard(urls: list[str]) -> None:
    old = ShardedTyrant(urls[:2], timeout=20)
    new = ShardedTyrant([urls[2], *urls[:2]], timeout=20)
    try:
        old.vanish()
        new.vanish()
        for _ in range(1200):
            old.genuid()
        report = rebalance(old, new)
        assert report.ids_advanced >= 1200
        assert new.genuid() > 1200  # no generated key can repeat one already given
        assert rebalance(new, new).ids_advanced == 0
    finally:
        new.vanish()
        old.close()
        new.close()


def test_a_renamed_shard_is_refused(urls: list[str]) -> None:
    old = ShardedTyrant(urls[:2], timeout=5)
    new = ShardedTyrant([f"other={urls[0]}", urls[1]], timeout=5)
    try:
        with pytest.raises(ValueError, match="onto themselves"):
            rebalance(old, new)
        with pytest.raises(ValueError, match="batch"):
            rebalance(old, old, batch=0)
    finally:
        old.close()
        new.close()


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "doqu_tyrant", "rebalance", *args]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_killed_with_sigkill_and_run_again(layouts: tuple[ShardedTyrant, ShardedTyrant],
                                           urls: list[str], tmp_path: Path) -> None:
    old, new = layouts
    before = placement(old)
    args = ["--from", *urls[:4], "--to", *urls, "--batch", "3", "-q"]
    added = new.shards[4]
    for attempt in range(3):  # kill part-way: some records already on the new shard
        proc = subprocess.Popen(_command(*args), env=_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, cwd=tmp_path)
        deadline = time.monotonic() + 30
        while added.rnum() <= 30 * (attempt + 1) and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        assert proc.poll() is None, "the rebalance ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()  # type: ignore[union-attr]
        # nothing lost, whatever the moment: each record on its old or its new shard
        where = placement(new)
        assert sorted(where) == sorted(RECORDS)
        for key, names in where.items():
            assert set(names) <= {before[key][0], new.server_for(key)}
    done = subprocess.run(_command(*args[:-1]), env=_env(), capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("moved ")
    assert_in_place(new)
    check = subprocess.run(_command("--check", *args), env=_env(), capture_output=True,
                           text=True, cwd=tmp_path, timeout=60)
    assert check.returncode == 0 and check.stdout.startswith("would move 0 of")


def test_command_line_errors(urls: list[str], tmp_path: Path) -> None:
    bad = subprocess.run(_command("--from", "http://x", "--to", urls[0]), env=_env(),
                         capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith("doqu-tyrant: error: bad --from list")
    assert "Traceback" not in bad.stderr
    dead = subprocess.run(_command("--from", "tyrant://127.0.0.1:1", "--to", urls[0]),
                          env=_env(), capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert dead.returncode == 3 and "cannot be reached" in dead.stderr
    assert "Traceback" not in dead.stderr
    usage = subprocess.run(_command("--to", urls[0]), env=_env(), capture_output=True,
                           text=True, cwd=tmp_path, timeout=60)
    assert usage.returncode == 2 and "--from" in usage.stderr


def test_key_value_databases_move_too(server_factory: ServerFactory) -> None:
    first, second = server_factory("*"), server_factory("*")
    old = ShardedTyrant([first.url], timeout=20)
    new = ShardedTyrant([first.url, second.url], timeout=20)
    try:
        values = {f"k{i}".encode(): b"\0v%d" % i for i in range(500)}  # any bytes
        old.putlist(values)
        report = rebalance(old, new, batch=64)
        assert report.moved == new.shards[1].rnum() > 0
        for key, value in values.items():
            assert new.client_for(key).get(key) == value
        assert new.rnum() == len(values)
    finally:
        old.close()
        new.close()

"""The doqu backend over a failover group (a dual master): settings, saves
with generated keys through a kill of the active master."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import doqu
from doqu import Document
from doqu.backends import ImproperlyConfigured
from doqu_tyrant import StorageAdapter
from doqu_tyrant.tyrant import FailoverTyrant, TyrantUncertainWriteError
from tests.replicas import dual_master, wait_converged


class Note(Document):
    structure = {"text": str, "n": int}


def test_settings_make_a_group(tmp_path: Path) -> None:
    a, b = dual_master(tmp_path, "table")
    try:
        url = f"tyrant://{a.host}:{a.port},{b.host}:{b.port}?timeout=5&retry_interval=0.5"
        db = doqu.get_db({"backend": "doqu_tyrant", "url": url})
        client = db.client
        assert isinstance(client, FailoverTyrant) and client.unique_ids
        assert client.group.retry_interval == 0.5 and client.clients[1].timeout == 5.0
        pk = Note(text="hello", n=1).save(db)
        assert db.get(Note, pk)["text"] == "hello"
        assert db.connection.get_stats()["type"] == "table"  # pyrant over the group
        db.disconnect()
        by_list = StorageAdapter(servers=[a.address, f"{b.host}:{b.port}"], timeout=5)
        assert isinstance(by_list.client, FailoverTyrant)
        assert wait_converged(a, b)
        assert [d["n"] for d in by_list.find(Note)] == [1]
        by_list.disconnect()
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("settings, words", [
    ({"url": "tyrant://a:1,b:2", "servers": ["c:3"]}, "either in the url"),
    ({"url": "tyrant://a:1", "servers": ["c:3"]}, "not both"),
    ({"host": "a", "servers": ["c:3"]}, "host and port"),
])
def test_conflicting_settings_are_refused(settings: dict, words: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=words):
        StorageAdapter(**settings)


def test_saves_through_a_kill_keep_their_keys_unique(tmp_path: Path) -> None:
    a, b = dual_master(tmp_path, "table")
    try:
        db = StorageAdapter(servers=[a.address, b.address], timeout=5)
        saved: dict[str, int] = {}
        uncertain = 0
        for n in range(1500):  # (10,000 writes: tests/tyrant/test_failover_kill.py)
            if n == 600:
                threading.Thread(target=a.kill).start()
            if n == 1000:
                a.start()
            try:
                pk = Note(text=f"note {n}", n=n).save(db)
            except TyrantUncertainWriteError:
                uncertain += 1
                continue
            assert pk not in saved
            saved[pk] = n
        assert uncertain <= 1
        assert wait_converged(a, b, 30)
        for server in (a, b):
            other = StorageAdapter(url=f"tyrant://{server.host}:{server.port}", timeout=5)
            stored = {d.pk: d["n"] for d in other.find(Note)}
            assert {pk: stored.get(pk) for pk in saved} == saved
            other.disconnect()
        db.disconnect()
    finally:
        a.close()
        b.close()


def test_save_many_over_a_group_moves_on_from_a_dead_server(tmp_path: Path) -> None:
    """The first server is gone before the batch: save_many writes everything to
    the second, with keys that stay unique across the pair."""
    a, b = dual_master(tmp_path, "table")
    try:
        db = StorageAdapter(servers=[a.address, b.address], timeout=5)
        first = db.save_many([Note(text=f"a{i}", n=i) for i in range(50)])
        a.kill()
        docs = [Note(text=f"b{i}", n=i) for i in range(500)]
        keys = db.save_many(docs)
        assert [doc.pk for doc in docs] == keys
        assert len(set(keys) | set(first)) == 550
        with StorageAdapter(host=b.host, port=b.port, timeout=5) as only_b:
            stored = {d.pk: d["text"] for d in only_b.find(Note)}
        assert {k: stored.get(k) for k in keys} == {k: f"b{i}" for i, k in enumerate(keys)}
        db.disconnect()
    finally:
        a.close()
        b.close()

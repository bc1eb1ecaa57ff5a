"""Every script in examples/ runs and prints what it promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def run(name: str, *args: str) -> str:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
        env=env, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr
    return done.stdout


def test_every_example_is_tested():
    tested = {"documents.py", "client.py", "asyncio_client.py", "old_database.py"}
    owned_elsewhere = {"demo.py"}
    present = {p.name for p in EXAMPLES.glob("*.py")}
    assert present - owned_elsewhere == tested


def test_documents():
    out = run("documents.py")
    assert "saved 5 people" in out
    assert "get 1: Alice 30 1995-03-01 ['admin', 'dev']" in out
    assert "adults, oldest first: ['Dave', 'Carol', 'Alice', 'Eve']" in out
    assert "how many: 4" in out
    assert "not in Oslo: ['Dave', 'Eve']" in out
    assert "born in the 1990s: ['Alice', 'Eve']" in out
    assert "tagged dev: ['Alice', 'Carol', 'Eve']" in out
    assert "young or in Oslo: ['Alice', 'Bob', 'Carol', 'Eve']" in out
    assert "in Oslo but not young: ['Alice', 'Carol']" in out
    assert "get_or_create Bob: 17 found" in out
    assert "refused: age, name" in out
    assert "left: ['Alice', 'Bob', 'Carol', 'Eve']" in out


def test_client():
    out = run("client.py")
    assert "get: b'hello, world' | size: 12" in out
    assert "putkeep on an existing key: False" in out
    assert "counter: 5 6" in out
    assert "getlist: ['user:0001', 'user:0002'] | records: 1001" in out
    assert "pipelined 5000 writes, rnum now 6001" in out
    assert "events deleted: 5000" in out
    assert "using an index" in out
    assert "visits: 3" in out
    assert "server: table database with 1002 records" in out


def test_asyncio_client():
    out = run("asyncio_client.py")
    assert "tasks wrote 800 records; rnum = 800" in out
    assert "pipelined 1000 writes; rnum = 1800" in out
    assert "keys: ['p0000', 'p0001', 'p0002', 'p0003', 'p0004']" in out
    assert "streamed: ['w15:048', 'w15:049']" in out
    assert "deleted: 1000" in out


def test_old_database():
    out = run("old_database.py")
    assert "wrote legacy.tct with Tokyo Cabinet directly" in out
    assert ("1: Alice born=1980-03-01 joined=2009-06-15 10:30:00 score=0.333333333333 "
            "active=True balance=Decimal('1.50') tags=['admin', 'dev'] note=''") in out
    assert "3: Carol born=1992-01-01 joined=None score=7.0 active=None" in out
    assert "scored above 5, numerically: ['Bob', 'Carol']" in out
    assert "'score': '13.25'" in out and "'tags': 'ops'" in out
    assert "'legacy': 'kept as is'" in out
    assert "new key: 4 |" in out and "'born': '20010203'" in out


@pytest.mark.parametrize("name", ["documents.py", "asyncio_client.py", "old_database.py"])
def test_examples_against_a_given_server(server_factory, name):
    server = server_factory("table")
    out = run(name, "--url", server.url)
    assert out.strip()


def test_client_against_given_servers(server_factory):
    table = server_factory("table")
    memory = server_factory("*")
    out = run("client.py", "--url", table.url, "--kv-url", memory.url)
    assert "server: table database with 1002 records" in out

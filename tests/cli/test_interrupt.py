"""Ctrl-C (SIGINT) during export, query and import (issue 10, item 11).

A small loopback proxy in front of a real bundled server holds the server's
replies back on request, so the command is interrupted at a known point:
in the middle of a streamed export, or while a batch the server has stored
waits for its acknowledgement.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from doqu_tyrant.tyrant import Tyrant

from .conftest import cli_command, cli_env

BOUND = 30.0


class HoldingProxy:
    """Forwards loopback connections to ``target``; after :meth:`hold` (or once
    ``budget`` reply bytes went through) the server's replies are kept back
    until :meth:`release`."""

    def __init__(self, target: tuple[str, int], budget: int | None = None) -> None:
        self.target = target
        self.budget = budget
        self.forwarded = 0
        self.holding = threading.Event()
        self.held = threading.Event()  # some reply bytes are being kept back
        self.released = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"tyrant://127.0.0.1:{self.port}"
        self.sockets: list[socket.socket] = [self.listener]
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def hold(self) -> None:
        self.holding.set()

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.released.set()
        for sock in self.sockets:
            try:
                sock.close()
            except OSError:
                pass

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self.sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, replies: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if replies:
                    with self.lock:
                        if self.budget is not None and not self.holding.is_set():
                            room = self.budget - self.forwarded
                            if room <= 0:
                                self.holding.set()
                            elif len(data) > room:
                                dst.sendall(data[:room])
                                self.forwarded += room
                                data = data[room:]
                                self.holding.set()
                        if not self.holding.is_set() or self.released.is_set():
                            self.forwarded += len(data)
                            dst.sendall(data)
                            continue
                    self.held.set()
                    self.released.wait()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + BOUND
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def big_table(server_factory):
    server = server_factory("table")
    client = Tyrant.from_url(server.url, timeout=30)
    client.putlist({f"r{i:05d}": {"name": f"n{i}", "pad": "x" * 200} for i in range(4000)})
    yield server, client
    client.close()


@pytest.mark.parametrize("args", [["export", "-o", "OUT"], ["query", "--json"], ["export"]])
def test_ctrl_c_while_streaming(big_table, tmp_path: Path, args: list[str]) -> None:
    server, _ = big_table
    out = tmp_path / "existing.jsonl"
    out.write_text("precious\n")
    args = [str(out) if a == "OUT" else a for a in args]
    proxy = HoldingProxy((server.host, server.port), budget=100_000)
    try:
        proc = subprocess.Popen(cli_command(*args), env=cli_env(proxy.url), cwd=tmp_path,
                                stdout=subprocess.PIPE if "-o" not in args else
                                subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert proxy.held.wait(BOUND), "the export never started"
        time.sleep(0.2)  # the command is now blocked on the held reply
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=BOUND)
    finally:
        proxy.close()
    assert proc.returncode == 130, err
    assert err.decode().strip() == "doqu-tyrant: interrupted"
    assert out.read_text() == "precious\n"  # the existing file is untouched
    assert sorted(os.listdir(tmp_path)) == ["existing.jsonl"]  # no temporary file left


def lines(start: int, stop: int) -> bytes:
    return b"".join(json.dumps({"key": f"k{i}", "record": {"n": str(i)}}).encode() + b"\n"
                    for i in range(start, stop))


@pytest.mark.parametrize("source", ["stdin", "file"])
def test_ctrl_c_during_import_counts_what_the_server_acknowledged(
        server_factory, run_cli, tmp_path: Path, source: str) -> None:
    server = server_factory("table")
    target = Tyrant.from_url(server.url, timeout=30)
    proxy = HoldingProxy((server.host, server.port))
    fifo = tmp_path / "in.jsonl"
    try:
        if source == "stdin":
            proc = subprocess.Popen(cli_command("import", "--batch", "100"),
                                    env=cli_env(proxy.url), stdin=subprocess.PIPE,
                                    stderr=subprocess.PIPE)
            assert proc.stdin is not None
            feed = proc.stdin
        else:
            os.mkfifo(fifo)
            proc = subprocess.Popen(cli_command("import", str(fifo), "--batch", "100"),
                                    env=cli_env(proxy.url), stderr=subprocess.PIPE)
            feed = open(fifo, "wb")  # noqa: SIM115
        feed.write(lines(1, 501))  # five batches, all acknowledged
        feed.flush()
        wait_for(lambda: target.rnum() == 500, "500 records")
        time.sleep(0.3)
        proxy.hold()  # from now on the server's replies are kept back
        feed.write(lines(501, 701))  # batch 6 is stored, batch 7 waits for its reply
        feed.flush()
        wait_for(lambda: target.rnum() == 600, "600 records")
        assert proxy.held.wait(BOUND)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        proxy.release()  # the acknowledgement of batch 6 arrives after Ctrl-C
        _, err = proc.communicate(timeout=BOUND)
        feed.close()
    finally:
        proxy.close()
    text = err.decode()
    assert proc.returncode == 130, text
    stored = target.rnum()
    assert stored == 600
    assert "Traceback" not in text and len(text.strip().splitlines()) == 1
    assert f"imported {stored} records (every record through line {stored} of" in text
    if source == "stdin":
        assert f"send lines {stored + 1} onwards again" in text
    else:
        match = re.search(r"resume with: tail -n \+(\d+) (\S+) \| (.*)$", text.strip())
        assert match is not None, text
        assert int(match.group(1)) == stored + 1 and match.group(2) == str(fifo)
        assert match.group(3) == f"doqu-tyrant --url {proxy.url} import --batch 100"
        done = run_cli("import", url=server.url, input=lines(1, 701).split(b"\n", stored)[-1])
        assert done.returncode == 0, done.stderr
        assert target.rnum() == 700
    target.close()

"""A fault-injecting TCP proxy for client tests, on loopback.

``FaultProxy((host, port), seed=1)`` listens on a free loopback port and
relays every connection to the target. The bytes from the server to the
client pass through the faults set on :attr:`FaultProxy.faults` (changeable
at any time; they apply from the next chunk on):

* ``delay`` -- seconds to hold each chunk (before any of the others);
* ``split`` -- forward each chunk in pieces of 1 to ``split`` bytes;
* ``trickle`` -- forward one byte every ``trickle`` seconds;
* ``duplicate`` -- probability that a chunk is forwarded twice (in the same
  write when ``duplicate_apart`` is False, else as a second write);
* ``unsolicited`` -- probability of sending ``junk`` bytes nobody asked for
  right after a chunk (``unsolicited_after`` seconds after it, if set);
  :meth:`FaultProxy.settle` waits until such bytes have gone out;
* ``drop`` -- probability of closing both sides instead of forwarding a chunk;
* ``reset`` -- probability of resetting both sides (RST) instead.

Chance is drawn from one ``random.Random(seed)``, so a run is repeatable as
far as thread scheduling allows. ``stats`` counts what was injected.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from dataclasses import dataclass

__all__ = ["FaultProxy", "Faults"]


@dataclass
class Faults:
    delay: float = 0.0
    split: int = 0
    trickle: float = 0.0
    duplicate: float = 0.0
    duplicate_apart: bool = False
    unsolicited: float = 0.0
    unsolicited_after: float = 0.0
    junk: bytes = b"\x00\x00\x00\x00\x05hello"
    drop: float = 0.0
    reset: float = 0.0


@dataclass
class Stats:
    connections: int = 0
    chunks: int = 0
    duplicated: int = 0
    unsolicited: int = 0
    dropped: int = 0
    reset: int = 0


class FaultProxy:
    """Relays loopback connections to ``target``, injecting :class:`Faults`."""

    def __init__(self, target: tuple[str, int], faults: Faults | None = None,
                 seed: int = 0) -> None:
        self.target = target
        self.faults = faults or Faults()
        self.stats = Stats()
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._pending = 0  # unsolicited bytes decided on, not sent yet
        self._closed = False
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True, name="faultproxy")
        self._thread.start()

    @property
    def url(self) -> str:
        return f"tyrant://127.0.0.1:{self.port}"

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def chance(self, p: float) -> bool:
        if p <= 0:
            return False
        with self._lock:
            return self._random.random() < p

    def _pieces(self, n: int) -> int:
        with self._lock:
            return self._random.randint(1, n)

    # -- plumbing --------------------------------------------------------------------

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                sock.settimeout(None)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._track(sock)
            self.stats.connections += 1
            threading.Thread(target=self._pump_up, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump_down, args=(server, client), daemon=True).start()

    def _pump_up(self, client: socket.socket, server: socket.socket) -> None:
        """Client to server: relayed as is."""
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                server.sendall(data)
        except OSError:
            pass
        _shut(server)

    def _pump_down(self, server: socket.socket, client: socket.socket) -> None:
        """Server to client: where the faults are."""
        try:
            while True:
                data = server.recv(65536)
                if not data:
                    break
                self.stats.chunks += 1
                if not self._forward(data, server, client):
                    return
        except OSError:
            pass
        _shut(client)

    def _forward(self, data: bytes, server: socket.socket, client: socket.socket) -> bool:
        f = self.faults
        if f.delay:
            time.sleep(f.delay)
        if self.chance(f.reset):
            self.stats.reset += 1
            for sock in (client, server):
                _reset(sock)
            return False
        if self.chance(f.drop):
            self.stats.dropped += 1
            for sock in (client, server):
                _shut(sock)
                sock.close()
            return False
        if self.chance(f.duplicate):
            self.stats.duplicated += 1
            if f.duplicate_apart:
                self._send(client, data)
            else:
                data += data
        junk = f.junk if self.chance(f.unsolicited) else None
        if junk is not None:
            self.stats.unsolicited += 1
            with self._lock:
                self._pending += 1
        self._send(client, data)
        if junk is not None:
            if f.unsolicited_after:
                timer = threading.Timer(f.unsolicited_after, self._send_junk, (client, junk))
                timer.daemon = True
                timer.start()
            else:
                self._send_junk(client, junk)
        return True

    def _send_junk(self, client: socket.socket, junk: bytes) -> None:
        try:
            client.sendall(junk)
        except OSError:
            pass
        finally:
            with self._lock:
                self._pending -= 1

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until the unsolicited bytes decided on so far have been sent."""
        deadline = time.monotonic() + timeout
        while self._pending and time.monotonic() < deadline:
            time.sleep(0.001)

    def _send(self, client: socket.socket, data: bytes) -> None:
        f = self.faults
        if f.trickle:
            for i in range(len(data)):
                client.sendall(data[i : i + 1])
                time.sleep(f.trickle)
            return
        if f.split:
            pos = 0
            while pos < len(data):
                n = self._pieces(f.split)
                client.sendall(data[pos : pos + n])
                pos += n
                time.sleep(0)  # let the client read the piece
            return
        client.sendall(data)

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            _shut(sock)
            sock.close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _reset(sock: socket.socket) -> None:
    """Close with an RST. SHUT_RD first wakes the other pump, blocked in
    ``recv`` on this socket (until it lets go, closing sends nothing)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    sock.close()


# -- as a separate process --------------------------------------------------------------
#
# In the test's own process the proxy's threads compete with the client for
# the GIL, which can hold a duplicated chunk back for milliseconds; a proxy
# on the network sends it right after the original. ``ProxyProcess`` runs
# the proxy in a child process for the tests where that timing matters.


class ProxyProcess:
    """``python -m tests.faultproxy`` in a child process; ``stop()`` returns its stats."""

    def __init__(self, target: tuple[str, int], faults: Faults, seed: int = 0) -> None:
        import json
        import os
        import subprocess
        import sys
        from pathlib import Path

        root = Path(__file__).resolve().parent.parent
        env = dict(os.environ, PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        spec = json.dumps({"target": list(target), "seed": seed,
                           "faults": {k: (v.hex() if isinstance(v, bytes) else v)
                                      for k, v in vars(faults).items()}})
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.faultproxy", spec],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        if not line.startswith("listening on "):
            self.proc.kill()
            raise RuntimeError(f"the proxy did not start: {line!r}")
        self.port = int(line.rsplit(":", 1)[1])
        self.address = ("127.0.0.1", self.port)

    def stop(self) -> dict[str, int]:
        import json

        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.close()
            out = self.proc.stdout.read().decode()
            self.proc.wait(10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.proc.stdout.close()
        return json.loads(out) if out.strip() else {}

    def __enter__(self) -> ProxyProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.stop()


def _main(spec_text: str) -> None:
    import json
    import sys

    spec = json.loads(spec_text)
    raw = spec["faults"]
    raw["junk"] = bytes.fromhex(raw["junk"])
    proxy = FaultProxy(tuple(spec["target"]), Faults(**raw), seed=spec["seed"])
    print(f"listening on 127.0.0.1:{proxy.port}", flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    proxy.close()
    stats = {k: v for k, v in vars(proxy.stats).items() if isinstance(v, int)}
    print(json.dumps(stats), flush=True)


if __name__ == "__main__":
    import sys

    _main(sys.argv[1])

"""Start the bundled Tyrant server as a subprocess for tests.

``ServerProcess(path, **opts)`` runs ``python -m doqu_tyrant.server ... PATH``
on a free loopback port (or the ``port`` given), waits for its
``listening on HOST:PORT`` line and exposes ``host``, ``port`` and ``url``.
Options map to command-line flags: ``dump_dir="d"`` → ``--dump-dir d``,
``copy_commands=True`` → ``--copy-commands``, ``ulog=..., sid=1``, ``threads``,
``max_length``, ``frame_timeout``, ``pid``, ``log``. The server's stderr goes
to a file next to the database (``.stderr``), shown when it fails to start.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["KINDS", "ServerProcess", "db_path"]

ROOT = Path(__file__).resolve().parent.parent

# Database kinds by name, as server_factory accepts them.
KINDS = {
    "hash": ".tch",
    "btree": ".tcb",
    "fixed": ".tcf",
    "table": ".tct",
    "memhash": "*",
    "memtree": "+",
    "*": "*",
    "+": "+",
    # the names used by tests/conformance/transcripts.jsonl
    "memory-hash": "*",
    "memory-tree": "+",
}

START_TIMEOUT = 20.0
STOP_TIMEOUT = 20.0


def db_path(kind: str, directory: str | os.PathLike[str], name: str = "db") -> str:
    """A database path of ``kind`` inside ``directory`` (memory kinds: ``*``/``+``)."""
    suffix = KINDS[kind]
    if suffix in ("*", "+"):
        return suffix
    return str(Path(directory) / f"{name}{suffix}")


class ServerProcess:
    """One ``python -m doqu_tyrant.server`` subprocess; a context manager."""

    def __init__(self, path: str | os.PathLike[str], **opts: Any) -> None:
        self.path = os.fspath(path)
        self.opts = dict(opts)
        self.host = str(self.opts.pop("host", "127.0.0.1"))
        self.port = int(self.opts.pop("port", 0))
        self.proc: subprocess.Popen[bytes] | None = None
        self._own_workdir = self.path[:1] in ("*", "+")
        if self._own_workdir:
            self.workdir = tempfile.mkdtemp(prefix="tyrant-mem-")
        else:
            self.workdir = str(Path(self.path.split("#", 1)[0]).resolve().parent)
        self.stderr_path = os.path.join(
            self.workdir, f"{os.path.basename(self.path.split('#', 1)[0]) or 'mem'}"
            f".{os.getpid()}.{id(self)}.stderr"
        )
        self.start()

    # -- lifecycle ---------------------------------------------------------------------------

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "doqu_tyrant.server", "--host", self.host,
               "--port", str(self.port)]
        for name, value in self.opts.items():
            flag = "--" + name.replace("_", "-")
            if value is True:
                cmd.append(flag)
            elif value is False or value is None:
                continue
            else:
                cmd += [flag, os.fspath(value) if isinstance(value, os.PathLike) else str(value)]
        cmd.append(self.path)
        return cmd

    def start(self) -> None:
        """Start the process and wait until it listens."""
        os.makedirs(self.workdir, exist_ok=True)
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                self.command(), stdout=subprocess.PIPE, stderr=err, cwd=self.workdir, env=env
            )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT
        line = b""
        os.set_blocking(self.proc.stdout.fileno(), False)
        while time.monotonic() < deadline:
            chunk = self.proc.stdout.readline()
            if chunk:
                line += chunk
                if line.endswith(b"\n"):
                    break
            elif self.proc.poll() is not None:
                break
            else:
                time.sleep(0.01)
        text = line.decode(errors="replace").strip()
        if not text.startswith("listening on "):
            self.kill()
            raise RuntimeError(f"server did not start ({text!r}):\n{self.stderr()}")
        address = text[len("listening on ") :]
        host, _, port = address.rpartition(":")
        self.host = host.strip("[]")
        self.port = int(port)

    def stderr(self) -> str:
        try:
            return Path(self.stderr_path).read_text(errors="replace")
        except OSError:
            return ""

    @property
    def url(self) -> str:
        return f"tyrant://{self.host}:{self.port}"

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, wait, and assert a clean exit (status 0)."""
        proc = self.proc
        if proc is None:
            return 0
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"server did not stop on SIGTERM:\n{self.stderr()}") from None
        finally:
            self._close_pipes()
        assert code == 0, f"server exited with status {code}:\n{self.stderr()}"
        return code

    def kill(self) -> None:
        """SIGKILL: no chance to sync or close anything."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        self._close_pipes()

    def restart(self) -> None:
        """Stop (if running) and start again on the same port and database."""
        if self.running:
            self.stop()
        self.start()

    def _close_pipes(self) -> None:
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    def close(self) -> None:
        """Stop without asserting anything, and remove what this helper created."""
        try:
            if self.running:
                try:
                    self.stop()
                except AssertionError:
                    self.kill()
            else:
                self._close_pipes()
        finally:
            if self._own_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self.stop()
        finally:
            self.close()

    def __repr__(self) -> str:
        return f"<ServerProcess {self.path!r} {self.url}>"

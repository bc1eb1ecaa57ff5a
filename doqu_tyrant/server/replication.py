"""This server as a replication slave (SETMST): follow a master's update log.

The slave connects to the master, sends ``REPL ts sid`` and applies every
entry of the stream through :meth:`Commands.apply`, which also writes it to
the slave's own update log with the entry's origin server id. When the
connection fails it retries once per second from the last applied timestamp,
as ttserver does.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import struct
import time

from doqu_tyrant.tyrant import protocol as p

from .commands import Commands
from .ulog import decode_payload

log = logging.getLogger("doqu_tyrant.server")

RETRY_INTERVAL = 1.0
_ENTRY = struct.Struct(">QII")  # ts, sid, size after the 0xC9 byte


class Master:
    """A master being followed; STAT shows ``mhost``, ``mport``, ``rts``, ``delay``."""

    def __init__(self, host: str, port: int, ts: int, check: bool) -> None:
        self.host = host
        self.port = port
        self.rts = 0  # timestamp of the last applied entry
        self.start_ts = max(ts, 1)
        self.check = check
        self.task: asyncio.Task[None] | None = None
        self._last_seen = 0.0

    def delay(self) -> float:
        """Seconds since the master last told us anything (0 before that)."""
        return max(time.time() - self._last_seen, 0.0) if self._last_seen else 0.0


class Replicator:
    """Starts, replaces and stops the slave task for SETMST."""

    def __init__(
        self,
        commands: Commands,
        loop: asyncio.AbstractEventLoop,
        executor: concurrent.futures.Executor,
    ) -> None:
        self.commands = commands
        self.loop = loop
        self.executor = executor
        self.master: Master | None = None

    def set_master(self, host: str, port: int, ts: int, opts: int) -> None:
        """Follow ``host:port`` from ``ts`` on; an empty host stops replicating."""
        self.stop()
        if not host:
            return
        if self.commands.sid < 1:
            log.warning("SETMST %s:%d: this server has no --sid, so masters will refuse it",
                        host, port)
        master = Master(host, port, ts, bool(opts & p.REPL_CHECK))
        self.master = master
        self.commands.master = master
        master.task = self.loop.create_task(self._follow(master))

    def stop(self) -> None:
        master = self.master
        self.master = None
        self.commands.master = None
        if master is not None and master.task is not None:
            master.task.cancel()

    async def _follow(self, master: Master) -> None:
        while True:
            writer: asyncio.StreamWriter | None = None
            try:
                reader, writer = await asyncio.open_connection(master.host, master.port)
                ts = master.rts + 1 if master.rts else master.start_ts
                writer.write(p.encode_repl(ts, self.commands.sid))
                master_sid = struct.unpack(">I", await reader.readexactly(4))[0]
                master._last_seen = time.time()
                await self._apply_stream(master, reader, master_sid)
            except asyncio.CancelledError:
                raise
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                log.debug("replication from %s:%d: %s", master.host, master.port, exc)
            finally:
                if writer is not None:
                    writer.close()
            await asyncio.sleep(RETRY_INTERVAL)

    async def _apply_stream(
        self, master: Master, reader: asyncio.StreamReader, master_sid: int
    ) -> None:
        commands = self.commands
        max_length = commands.max_length
        while True:
            kind = await reader.readexactly(1)
            master._last_seen = time.time()
            if kind == p.REPL_KEEPALIVE:
                continue
            if kind[0] != p.ULOG_MAGIC:
                raise ValueError(f"unexpected byte 0x{kind[0]:02x} in the replication stream")
            ts, sid, size = _ENTRY.unpack(await reader.readexactly(_ENTRY.size))
            if size > 2 * max_length + (1 << 16):
                raise ValueError(f"replication entry of {size} bytes is too large")
            payload = await reader.readexactly(size)
            if sid == commands.sid:
                master.rts = ts
                continue  # our own write coming back
            decoded = decode_payload(payload, max_length)
            if decoded is None:
                log.warning("replication: skipping a malformed entry at ts %d", ts)
                master.rts = ts
                continue
            request, result = decoded
            ok = await self.loop.run_in_executor(
                self.executor, commands.apply, request, sid, master_sid
            )
            if master.check and ok != (result == 0):
                log.warning("replication: consistency check failed at ts %d", ts)
            master.rts = ts

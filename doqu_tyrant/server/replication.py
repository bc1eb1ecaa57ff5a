"""This server as a replica: follow a master's update log (``--master``, SETMST).

The replica connects to the master, sends ``REPL ts sid`` and applies every
entry of the stream through :meth:`Commands.replay`, which also writes it to
the replica's own update log with the entry's origin server id and the
master's id, so that a dual master (each server the master of the other)
does not echo writes back. When the connection fails it retries once per
second from where it stopped, as ttserver does.

Where it stopped is the *position* (:class:`~.rts.Position`): the newest
timestamp applied and how many entries with that timestamp were received.
With an ``--rts`` file it survives restarts, and every entry is applied
exactly once across a kill (see :mod:`.rts`): before an entry is applied its
position, the entry and (for the few writes that are not idempotent) the
record as it was are written to the pending file; at start-up
:meth:`Replicator.recover` completes an entry that was caught half-way,
before any client is served.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import struct
import threading
import time

from doqu_tyrant.tyrant import protocol as p
from doqu_tyrant.tyrant.errors import TyrantProtocolError

from .commands import Commands
from .rts import UNDO_NONE, Pending, Position, RtsFile
from .ulog import decode_payload
from .undo import restore, undo_for

log = logging.getLogger("doqu_tyrant.server")

RETRY_INTERVAL = 1.0  # seconds between connection attempts (ttserver: 1 s)
CONNECT_TIMEOUT = 10.0
STREAM_TIMEOUT = 30.0  # the master sends a keep-alive every second; silence this long = dead
READ_SIZE = 1 << 18
BATCH = 2048  # entries handed to one worker-thread call


class _Stopped(Exception):
    """The master was replaced or replication stopped while entries were pending."""


class Master:
    """A master being followed; STAT shows ``mhost``, ``mport``, ``rts``, ``delay``."""

    def __init__(self, replicator: Replicator, host: str, port: int, check: bool) -> None:
        self._replicator = replicator
        self.host = host
        self.port = port
        self.check = check
        self.cancelled = False
        self.fatal = False  # --rcc found an inconsistency: stopped until the next SETMST
        self.task: asyncio.Task[None] | None = None

    @property
    def rts(self) -> int:
        """Timestamp (µs) of the newest entry applied."""
        return self._replicator.position.ts

    def delay(self) -> float:
        """Seconds between now and the newest entry applied, as ttserver reports it
        (it grows while the master is idle)."""
        return max(time.time() - self.rts / 1e6, 0.0)


class Replicator:
    """Follows at most one master for one :class:`Commands`; owns the position."""

    def __init__(
        self,
        commands: Commands,
        loop: asyncio.AbstractEventLoop,
        executor: concurrent.futures.Executor,
        rts: RtsFile | None = None,
    ) -> None:
        self.commands = commands
        self.loop = loop
        self.executor = executor
        self.rts = rts
        self.master: Master | None = None
        self.position = Position()
        self.seq = 0  # entries applied (numbers the pending records)
        self._skip_ts = 0  # after a (re)connection: entries the master resends
        self._skip_left = 0
        self._lock: threading.RLock = commands.write_lock
        self._pending: Pending | None = None

    # -- start-up -----------------------------------------------------------------------

    def load(self) -> None:
        """Read the position file. Raises :class:`~.rts.RtsError` for a file
        that is not a position file."""
        if self.rts is not None:
            self.position, self.seq, self._pending = self.rts.load()

    def recover(self, committed: tuple[Position, int] | None = None) -> None:
        """Complete an entry a crash left half-applied (after :meth:`load`).

        ``committed``: the position a B+ tree database was rolled back to (see
        :mod:`.checkpoint`); replication resumes there instead, fetching the
        entries since then again, and the half-applied entry, rolled back too,
        is forgotten. Runs before the server takes requests.
        """
        if self.rts is None:
            return
        pending, self._pending = self._pending, None
        if committed is not None:
            if committed != (self.position, self.seq) or pending is not None:
                log.warning("replication: the database was rolled back to its last commit; "
                            "resuming after ts %d instead of %d", committed[0].ts,
                            self.position.ts)
            self.position, self.seq = committed
            self.rts.discard_pending()
            self.rts.commit(self.position, self.seq)
        elif pending is not None:
            self._complete(pending)

    def _complete(self, pending: Pending) -> None:
        commands = self.commands
        ulog = commands.ulog
        logged = (
            ulog is not None
            and pending.log_position is not None
            and ulog.position() > pending.log_position
        )
        if logged:
            how = "it had been applied"
        else:
            decoded = decode_payload(pending.payload, commands.max_length)
            if decoded is None:
                how = "its entry is malformed; skipped"
            else:
                # The entry may or may not have reached the database: put the
                # record back as it was (non-idempotent writes), then apply it.
                with self._lock:
                    restore(commands.db, pending.undo)
                commands.replay(decoded[0], pending.sid, pending.mid, _NO_JOURNAL)
                how = ("applied it again" if pending.undo.kind == UNDO_NONE
                       else "undid and reapplied it")
        log.warning("replication: the entry at ts %d was being applied when the server "
                    "stopped: %s", pending.position.ts, how)
        self.position, self.seq = pending.position, pending.seq
        assert self.rts is not None
        self.rts.commit(self.position, self.seq)

    # -- masters ------------------------------------------------------------------------

    def follow(self, host: str, port: int, check: bool = False) -> None:
        """Follow ``host:port`` from the current position (``--master``)."""
        self.stop()
        if self.commands.sid < 1:
            log.warning("replicating from %s:%d: this server has no --sid, so the master "
                        "will refuse it", host, port)
        master = Master(self, host, port, check)
        self.master = master
        self.commands.master = master
        master.task = self.loop.create_task(self._follow(master))

    def set_master(self, host: str, port: int, ts: int, opts: int) -> None:
        """SETMST: follow ``host:port`` after timestamp ``ts`` (0: from the current
        position); an empty host stops replicating. As in ttserver, a ``ts``
        replaces the position, so replication resumes with entries after it."""
        self.stop()
        if not host:
            return
        if ts > 0:
            with self._lock:
                self.position = Position(ts, None)
                self.seq += 1
                if self.rts is not None:
                    self.rts.commit(self.position, self.seq)
        self.follow(host, port, bool(opts & p.REPL_CHECK))

    def stop(self) -> None:
        master = self.master
        self.master = None
        self.commands.master = None
        if master is not None:
            master.cancelled = True
            if master.task is not None:
                master.task.cancel()

    def close(self) -> None:
        self.stop()
        if self.rts is not None:
            self.rts.close()

    # -- the stream ---------------------------------------------------------------------

    async def _follow(self, master: Master) -> None:
        failed = False
        while not master.cancelled and not master.fatal:
            writer: asyncio.StreamWriter | None = None
            try:
                reader, stream = await asyncio.wait_for(
                    asyncio.open_connection(master.host, master.port), CONNECT_TIMEOUT
                )
                writer = stream
                with self._lock:
                    position = self.position
                    self._skip_ts, self._skip_left = position.ts, position.skip()
                stream.write(p.encode_repl(position.request_ts(), self.commands.sid))
                try:
                    head = await asyncio.wait_for(reader.readexactly(4), STREAM_TIMEOUT)
                except asyncio.IncompleteReadError:
                    raise ConnectionError(
                        "the master closed the connection at once: it has no update log, "
                        f"or its server id is this one's ({self.commands.sid})") from None
                master_sid = struct.unpack(">I", head)[0]
                log.info("replicating from sid %d (%s:%d) after ts %d", master_sid,
                         master.host, master.port, position.ts)
                failed = False
                await self._stream(master, reader, master_sid)
            except asyncio.CancelledError:
                raise
            except _Stopped:
                return
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError,
                    TyrantProtocolError) as exc:
                level = logging.DEBUG if failed else logging.WARNING
                log.log(level, "replication from %s:%d: %s", master.host, master.port,
                        exc or type(exc).__name__)
                failed = True
            except Exception:
                log.exception("replication from %s:%d failed", master.host, master.port)
                failed = True
            finally:
                if writer is not None:
                    writer.close()
            await asyncio.sleep(RETRY_INTERVAL)

    async def _stream(self, master: Master, reader: asyncio.StreamReader,
                      master_sid: int) -> None:
        buf = bytearray()
        max_size = 2 * self.commands.max_length + (1 << 16)
        while True:
            chunk = await asyncio.wait_for(reader.read(READ_SIZE), STREAM_TIMEOUT)
            if not chunk:
                raise ConnectionError("the master closed the stream")
            buf += chunk
            entries, _keepalives, used = p.parse_repl_stream(buf, max_size)
            del buf[:used]
            for start in range(0, len(entries), BATCH):
                await self.loop.run_in_executor(
                    self.executor, self._apply, master, entries[start:start + BATCH], master_sid
                )
                if master.fatal:
                    return

    def _apply(self, master: Master, entries: list[p.ReplEntry], master_sid: int) -> None:
        """Apply entries in order (a worker thread). Raises :class:`_Stopped` once
        the master is replaced."""
        commands = self.commands
        own = commands.sid
        for ts, sid, payload in entries:
            with self._lock:
                if master.cancelled:
                    raise _Stopped
                if self._skip_left:
                    if ts == self._skip_ts:
                        self._skip_left -= 1
                        continue  # applied before the reconnection
                    self._skip_left = 0
                position = self.position.after(ts)
                decoded = None if sid == own else decode_payload(payload, commands.max_length)
                if decoded is None:
                    if sid != own:
                        log.warning("replication: skipping a malformed entry at ts %d", ts)
                    self.position = position  # our own write coming back, or garbage
                    continue
            request, result = decoded
            ok = commands.replay(request, sid, master_sid,
                                 _Journal(self, master, position, sid, master_sid, payload))
            if ok != (result == 0):
                if master.check:
                    master.fatal = True
                    log.error("replication from %s:%d stopped: the entry at ts %d %s here but "
                              "%s on the master (consistency check, --rcc)", master.host,
                              master.port, ts, "succeeded" if ok else "failed",
                              "failed" if ok else "succeeded")
                    return
                log.info("replication: the entry at ts %d %s here, unlike on the master",
                         ts, "succeeded" if ok else "failed")


class _Journal:
    """The bookkeeping of one entry (see :meth:`Commands.replay`)."""

    __slots__ = ("replicator", "master", "position", "sid", "mid", "payload", "seq")

    def __init__(self, replicator: Replicator, master: Master, position: Position, sid: int,
                 mid: int, payload: bytes) -> None:
        self.replicator = replicator
        self.master = master
        self.position = position
        self.sid = sid
        self.mid = mid
        self.payload = payload
        self.seq = 0

    def begin(self, request: p.Request, log_position: tuple[int, int] | None) -> None:
        replicator = self.replicator
        if self.master.cancelled:
            raise _Stopped
        self.seq = replicator.seq + 1
        rts = replicator.rts
        if rts is not None:
            rts.begin(Pending(self.seq, self.position, self.sid, self.mid, log_position,
                              undo_for(replicator.commands.db, request), self.payload))

    def commit(self) -> None:
        replicator = self.replicator
        replicator.position, replicator.seq = self.position, self.seq
        if replicator.rts is not None:
            replicator.rts.commit(self.position, self.seq)


class _NoJournal:
    def begin(self, request: p.Request, log_position: tuple[int, int] | None) -> None:
        pass

    def commit(self) -> None:
        pass


_NO_JOURNAL = _NoJournal()

"""What a B+ tree's commits record, so that a kill -9 leaves the database, its
update log and its replication position in agreement.

A B+ tree keeps its writes in a transaction until the next commit point
(:mod:`.durable`); a kill rolls it back to the last commit. The update log
and a replica's position file are written as each write is made, so after
the kill they run ahead of the database: a master's log holds writes its
database lost -- that its replicas may have received already, or will
receive -- and a replica's position counts entries whose effect was rolled
back, which it would never fetch again.

So every commit is *stamped* (:meth:`~.durable.DurableCabinet.stamp_commits`)
with the timestamp of the newest update-log entry the committed data holds
and with the replication position; the stamp lives in the database header
and is committed, or rolled back, with that data. At the next start after an
unclean shutdown, :meth:`Checkpoint.recover`:

* with an update log: applies again every entry of this server's own log
  newer than the stamp, without logging it a second time. The database then
  holds every write its log holds, as its replicas do or will, and as a
  RESTORE of the log would make it. (Cutting the log back instead would
  leave a replica that already had those entries with writes its master
  lacks.) A replica's position file stays right: it never counts an entry
  its log lacks.
* without one: hands the stamp's replication position to the
  :class:`~.replication.Replicator`, which fetches the rolled-back entries
  from the master again and applies them once.

Commit points take the commands' write lock, the one every logged write and
every replicated entry holds from its bookkeeping to its end, so a stamp
never describes a write halfway through (the whole-database writes that
commit in their course, SYNC, OPTIMIZE, VANISH, are idempotent). The stamp
names the update-log directory and the position file by a hash of their
paths: with another directory or file than at the commit, nothing is
replayed or taken over, and a warning says so.
"""

from __future__ import annotations

import logging
import os
import struct
import time
import zlib
from typing import NamedTuple

from doqu_tyrant.tyrant.errors import TyrantProtocolError

from .cabinet import Cabinet
from .commands import Commands
from .durable import DurableCabinet
from .replication import Replicator
from .rts import Position
from .ulog import LogReader, decode_payload

__all__ = ["Checkpoint", "Stamp", "decode_stamp", "encode_stamp"]

log = logging.getLogger("doqu_tyrant.server")

_MAGIC = b"DQck"
_VERSION = 1
_HAS_LOG = 1
_HAS_RTS = 2
# magic, version, flags, log id, log ts, rts id, rts ts, rts n, rts seq; then a CRC-32
_BODY = struct.Struct(">4sBBIQIQIQ")
_CRC = struct.Struct(">I")
_NO_COUNT = 0xFFFFFFFF


class Stamp(NamedTuple):
    """What one commit's data reflects."""

    log_id: int | None  # the update-log directory (None: no update log)
    log_ts: int  # timestamp of the newest log entry in the data (0: none)
    rts_id: int | None  # the replication position file (None: none)
    position: Position = Position()
    seq: int = 0


def encode_stamp(stamp: Stamp) -> bytes:
    flags = (_HAS_LOG if stamp.log_id is not None else 0) | (
        _HAS_RTS if stamp.rts_id is not None else 0)
    position = stamp.position
    body = _BODY.pack(_MAGIC, _VERSION, flags, stamp.log_id or 0, stamp.log_ts,
                      stamp.rts_id or 0, position.ts,
                      _NO_COUNT if position.n is None else position.n, stamp.seq)
    return body + _CRC.pack(zlib.crc32(body))


def decode_stamp(data: bytes) -> Stamp | None:
    """The stamp in ``data``, or None (never stamped, or by a newer format)."""
    size = _BODY.size
    if len(data) < size + _CRC.size or not data.startswith(_MAGIC):
        return None
    if _CRC.unpack_from(data, size)[0] != zlib.crc32(data[:size]):
        return None
    _magic, version, flags, log_id, log_ts, rts_id, ts, n, seq = _BODY.unpack_from(data)
    if version != _VERSION:
        return None
    return Stamp(log_id if flags & _HAS_LOG else None, log_ts,
                 rts_id if flags & _HAS_RTS else None,
                 Position(ts, None if n == _NO_COUNT else n), seq)


def path_id(path: str) -> int:
    """The identity a stamp gives a directory or file: a hash of its real path."""
    return zlib.crc32(os.fsencode(os.path.realpath(path)))


class Checkpoint:
    """Stamps the commits of a transactional database (see the module docstring)
    and recovers at start-up. A no-op for every other database."""

    def __init__(self, db: Cabinet, commands: Commands, replicator: Replicator) -> None:
        self.db = db
        self.commands = commands
        self.replicator = replicator
        ulog = commands.ulog
        rts = replicator.rts
        self._log_id = None if ulog is None else path_id(ulog.directory)
        self._rts_id = None if rts is None else path_id(rts.path)
        self._replayed_ts: int | None = None  # during the replay: the newest entry replayed
        self.replayed = 0
        """Update-log entries applied again at start-up."""
        self.active = isinstance(db, DurableCabinet) and db.transactional
        if isinstance(db, DurableCabinet) and self.active:
            db.stamp_commits(self.stamp, commands.write_lock)

    def stamp(self) -> bytes:
        """The stamp of the current state (called at each commit, write lock held)."""
        ulog = self.commands.ulog
        log_ts = self._replayed_ts
        if log_ts is None:
            log_ts = 0 if ulog is None else ulog.last_ts
        replicator = self.replicator
        return encode_stamp(Stamp(self._log_id, log_ts, self._rts_id, replicator.position,
                                  replicator.seq))

    def recover(self) -> tuple[Position, int] | None:
        """After an unclean shutdown, replay the update log's entries that the
        rollback took away; returns the replication position (and its
        sequence number) to resume from instead of the position file's, or
        None to keep the file's.

        Runs before :meth:`Commands.recover` and :meth:`Replicator.recover`,
        after :meth:`Replicator.load`, before any client is served.
        """
        db = self.db
        if not self.active or not isinstance(db, DurableCabinet) or not db.unclean:
            return None
        stamp = decode_stamp(db.committed_stamp)
        name = os.fsdecode(db.path)
        ulog = self.commands.ulog
        if ulog is not None:
            if stamp is not None and stamp.log_id == self._log_id:
                self._replay(ulog.directory, stamp.log_ts)
                return None
            log.warning("%s: its last commit does not say which entries of the update log "
                        "%s it holds (%s); the writes made since then are not replayed", name,
                        ulog.directory, "not stamped" if stamp is None else "another log")
        rts = self.replicator.rts
        if rts is None or not os.path.exists(rts.path):
            return None
        if stamp is None or stamp.rts_id != self._rts_id:
            log.warning("%s: its last commit does not record a position in %s; entries "
                        "applied since then may be missing", name, rts.path)
            return None
        return stamp.position, stamp.seq

    def _replay(self, directory: str, after: int) -> None:
        """Apply again the entries of ``directory`` newer than ``after``."""
        commands = self.commands
        start = time.perf_counter()
        count = differ = 0
        self._replayed_ts = after
        try:
            reader = LogReader(directory, after + 1, stop_at_end=True)
            while not reader.caught_up:
                for ts, _sid, _mid, payload in reader.read():
                    decoded = decode_payload(payload, commands.max_length)
                    if decoded is None:
                        log.warning("update log: skipping a malformed entry at ts %d", ts)
                    else:
                        request, result = decoded
                        if commands.reapply(request) != (result == 0):
                            differ += 1
                        count += 1
                    self._replayed_ts = ts
        except (OSError, TyrantProtocolError) as exc:
            log.error("update log %s: replaying it stopped at ts %d: %s", directory,
                      self._replayed_ts, exc)
        finally:
            self._replayed_ts = None
        self.replayed = count
        if count:
            log.warning("%s: applied again the %d update-log entries written after its last "
                        "commit (%.2f s)", os.fsdecode(self.db.path), count,
                        time.perf_counter() - start)
        if differ:
            log.warning("update log: %d replayed entries succeeded where they had failed, or "
                        "the other way round (writes made without logging them were lost)",
                        differ)

    def commit(self) -> None:
        """Commit what the recovery did (a no-op unless :attr:`active`)."""
        if self.active and isinstance(self.db, DurableCabinet) and not self.db.commit():
            log.error("committing the start-up recovery failed")

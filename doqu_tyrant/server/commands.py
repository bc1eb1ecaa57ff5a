"""Decoded requests → Tokyo Cabinet calls → reply bytes.

:class:`Commands` owns the server-wide state of one database: the
:class:`~doqu_tyrant.server.cabinet.Cabinet`, the STAT counters, the update
log and the COPY/RESTORE confinement. Its ``handlers`` list, indexed by the
command byte, holds the commands that run inline on the event loop;
``table`` holds every command (the connection sends the rare long ones,
see :data:`SLOW_COMMANDS`, to the worker pool). A handler takes the decoded
:class:`~doqu_tyrant.tyrant.protocol.Request` and returns the reply bytes.

Table semantics stay Tokyo Cabinet's: nothing here interprets records or
queries.
"""

from __future__ import annotations

import logging
import math
import os
import platform
import resource
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from doqu_tyrant.tyrant import protocol as p
from doqu_tyrant.tyrant.protocol import (
    REPLY_FAIL,
    REPLY_MISC_FAIL,
    REPLY_OK,
    Request,
    reply_bytes,
    reply_double,
    reply_i32,
    reply_list,
    reply_lists_of_one,
    reply_pairs,
    reply_statuses,
    reply_u32,
    reply_u64,
    reply_values,
)
from doqu_tyrant.tyrant.regex import REGEX_FUNCTIONS, RefusedRegex, check_misc

from . import ulog as ulogmod
from .cabinet import ADBOHDB, ADBOTDB, INT_MIN, Cabinet
from .gate import OPEN, READS, SHUT, Gate
from .preflight import copy_problem
from .undo import restore, undo_for

log = logging.getLogger("doqu_tyrant.server")

Handler = Callable[[Request], bytes]
RunHandler = Callable[[list[tuple], list[bytes]], None]

VERSION = "1.1.41"
LIBVER = "324"
PROTVER = "0.91"

# Work that always runs in the worker pool instead of inline on the event loop:
# rare, long, whole-database or file operations. Reads that may take long
# (searches of a large table, regular expressions, many keys) are sent there
# case by case: see .longreads.
SLOW_MISC = frozenset({b"optimize", b"vanish", b"sync", b"defrag", b"cacheclear", b"setindex"})
SLOW_COMMANDS = frozenset({p.SYNC, p.OPTIMIZE, p.VANISH, p.COPY, p.RESTORE})
# RESTORE replays many small writes, each under the database lock: it needs no gate.
_UNGATED = frozenset({p.RESTORE})

_COUNTED = [
    p.PUT, p.PUTKEEP, p.PUTCAT, p.PUTSHL, p.PUTNR, p.OUT, p.GET, p.MGET, p.VSIZ,
    p.ITERINIT, p.ITERNEXT, p.FWMKEYS, p.ADDINT, p.ADDDOUBLE, p.EXT, p.SYNC,
    p.OPTIMIZE, p.VANISH, p.COPY, p.RESTORE, p.SETMST, p.RNUM, p.SIZE, p.STAT,
    p.MISC, p.REPL,
]  # fmt: skip
_ALWAYS_LOGGED = frozenset({
    p.PUT, p.PUTKEEP, p.PUTCAT, p.PUTSHL, p.PUTNR, p.OUT, p.SYNC, p.OPTIMIZE, p.VANISH,
})  # fmt: skip


class MasterState(Protocol):
    """What STAT shows of the replication master (see :mod:`.replication`)."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def rts(self) -> int: ...

    def delay(self) -> float: ...


class Journal(Protocol):
    """Bookkeeping around one replayed entry, run under the write lock (see
    :meth:`Commands.replay`)."""

    def begin(self, request: Request, log_position: tuple[int, int] | None) -> None: ...

    def commit(self) -> None: ...


class Commands:
    """Every Tyrant command over one open :class:`Cabinet`.

    ``dump_dir``: the only directory COPY and RESTORE may touch (None: both
    refused). ``copy_commands``: allow COPY's ``@command`` form, which runs a
    shell command on the server host. ``ulog``: the update log (None: off);
    ``sid``: this server's id.
    """

    def __init__(
        self,
        db: Cabinet,
        *,
        sid: int = 0,
        ulog: ulogmod.UpdateLog | None = None,
        dump_dir: str | None = None,
        copy_commands: bool = False,
        max_length: int = p.MAX_LENGTH,
    ) -> None:
        self.db = db
        self.sid = sid
        self.ulog = ulog
        self.dump_dir = os.path.realpath(dump_dir) if dump_dir is not None else None
        self.copy_commands = copy_commands
        self.max_length = max_length
        self.started = time.time()
        self.counts = [0] * 256
        self.put_miss = 0
        self.out_miss = 0
        self.get_miss = 0
        self.master: MasterState | None = None
        self.on_setmst: Callable[[str, int, int, int], None] | None = None
        #: SETMST makes this server connect wherever a client says and apply
        #: what it is sent there: refused unless the operator allowed it.
        self.allow_setmst = False
        # re-entrant: a B+ tree's commit points take it too (see :mod:`.checkpoint`),
        # and SYNC, OPTIMIZE, VANISH are commit points reached while it is held
        self._wlock = threading.RLock()
        self.gate = Gate()
        """Holds database requests back while a long command runs (:mod:`.gate`)."""
        db_path = os.fsdecode(db.path)
        self._db_file = os.path.realpath(db_path) if db_path not in ("*", "+", "") else None
        self._core = self._build_core()
        self.table: list[Handler | None] = [None] * 256
        for cmd, core in self._core.items():
            self.table[cmd] = self._client_handler(cmd, core)
        self.table[p.EXT] = _ext
        self.table[p.COPY] = self._copy
        self.table[p.RESTORE] = self._restore
        self.table[p.SETMST] = self._setmst
        self.handlers: list[Handler | None] = [
            None if cmd in SLOW_COMMANDS or cmd == p.MISC else h
            for cmd, h in enumerate(self.table)
        ]
        self.runs = self._build_runs()

    # -- building the tables ----------------------------------------------------------

    def _build_core(self) -> dict[int, Handler]:
        """One closure per command: Cabinet call → reply bytes (no logging)."""
        db = self.db
        put, putkeep, putcat, putshl = db.put, db.putkeep, db.putcat, db.putshl
        out, get, mget, vsiz = db.out, db.get, db.mget, db.vsiz
        ok_, fail = REPLY_OK, REPLY_FAIL

        def make_put(fn: Callable[[bytes, bytes], bool]) -> Handler:
            def h_put(r: Request) -> bytes:
                if fn(*r[1]):
                    return ok_
                self.put_miss += 1
                return fail

            return h_put

        def h_putshl(r: Request) -> bytes:
            if putshl(*r[1]):
                return ok_
            self.put_miss += 1
            return fail

        def h_out(r: Request) -> bytes:
            if out(r[1][0]):
                return ok_
            self.out_miss += 1
            return fail

        def h_get(r: Request) -> bytes:
            value = get(r[1][0])
            if value is None:
                self.get_miss += 1
                return fail
            return reply_bytes(value)

        def h_mget(r: Request) -> bytes:
            return reply_pairs(mget(r[1][0]))

        def h_vsiz(r: Request) -> bytes:
            size = vsiz(r[1][0])
            return fail if size < 0 else reply_u32(size)

        def h_iterinit(r: Request) -> bytes:
            return ok_ if db.iterinit() else fail

        def h_iternext(r: Request) -> bytes:
            key = db.iternext()
            return fail if key is None else reply_bytes(key)

        def h_fwmkeys(r: Request) -> bytes:
            prefix, limit = r[1]
            return reply_list(db.fwmkeys(prefix, limit))

        def h_addint(r: Request) -> bytes:
            total = db.addint(*r[1])
            return fail if total == INT_MIN else reply_i32(total)

        def h_adddouble(r: Request) -> bytes:
            total = db.adddouble(*r[1])
            return fail if math.isnan(total) else reply_double(total)

        def h_sync(r: Request) -> bytes:
            return ok_ if db.sync() else fail

        def h_optimize(r: Request) -> bytes:
            return ok_ if db.optimize(r[1][0]) else fail

        def h_vanish(r: Request) -> bytes:
            return ok_ if db.vanish() else fail

        def h_rnum(r: Request) -> bytes:
            return reply_u64(db.rnum())

        def h_size(r: Request) -> bytes:
            return reply_u64(db.size())

        def make_misc(call: Callable[[bytes, Sequence[bytes]], list[bytes] | None]) -> Handler:
            def h_misc(r: Request) -> bytes:
                name, _opts, args = r[1]
                if name == b"genuid" and not args:  # (bulk saves pipeline thousands of these)
                    uid = db.genuid()
                    return REPLY_MISC_FAIL if uid < 0 else reply_list([b"%d" % uid])
                if name in REGEX_FUNCTIONS:
                    try:
                        check_misc(name, args)
                    except RefusedRegex as exc:
                        log.info("MISC %s refused: %s", name.decode("latin-1"), exc)
                        return REPLY_MISC_FAIL
                result = call(name, args)
                return REPLY_MISC_FAIL if result is None else reply_list(result)

            return h_misc

        h_misc = make_misc(db.misc)
        self._misc_shared = make_misc(db.misc_shared)

        return {
            p.PUT: make_put(put), p.PUTKEEP: make_put(putkeep), p.PUTCAT: make_put(putcat),
            p.PUTNR: make_put(put), p.PUTSHL: h_putshl, p.OUT: h_out, p.GET: h_get,
            p.MGET: h_mget, p.VSIZ: h_vsiz, p.ITERINIT: h_iterinit, p.ITERNEXT: h_iternext,
            p.FWMKEYS: h_fwmkeys, p.ADDINT: h_addint, p.ADDDOUBLE: h_adddouble,
            p.SYNC: h_sync, p.OPTIMIZE: h_optimize, p.VANISH: h_vanish, p.RNUM: h_rnum,
            p.SIZE: h_size, p.MISC: h_misc,
        }  # fmt: skip

    def _build_runs(self) -> list[RunHandler | None]:
        """Handlers of a :class:`~doqu_tyrant.tyrant.protocol.Run` (pipelined
        requests of one command), indexed by command. A run handler appends
        the replies to all of them to its second argument, exactly as the
        single-request handlers answer each in turn. Without an update log,
        stores and reads take the database lock once per run instead of once
        per request."""
        runs: list[RunHandler | None] = [None] * 256
        for cmd in (p.PUT, p.PUTKEEP, p.PUTCAT, p.PUTNR, p.OUT, p.GET, p.VSIZ):
            runs[cmd] = _each(cmd, self.handlers[cmd])
        runs[p.MISC] = self._misc_run()
        if self.ulog is not None:
            return runs  # every request is logged on its own
        db = self.db

        def make_store(how: str, replies: bool) -> RunHandler:
            def run_store(items: list[tuple], out: list[bytes]) -> None:
                oks = db.putmany(items, how)
                misses = oks.count(False)
                if misses:
                    self.put_miss += misses
                if replies:
                    out.append(reply_statuses(oks))

            return run_store

        def run_get(items: list[tuple], out: list[bytes]) -> None:
            values = db.getmany([args[0] for args in items])
            misses = values.count(None)
            if misses:
                self.get_miss += misses
            out.append(reply_values(values))

        runs[p.PUT] = make_store("put", True)
        runs[p.PUTKEEP] = make_store("putkeep", True)
        runs[p.PUTCAT] = make_store("putcat", True)
        runs[p.PUTNR] = make_store("put", False)
        runs[p.GET] = run_get
        return runs

    def _misc_run(self) -> RunHandler:
        """The run handler of MISC (the decoder makes runs of argument-less
        ``genuid`` calls only): without an update log, the numbers are taken
        under one lock acquisition; any other call is executed on its own."""
        execute = self.execute
        genuids = None if self.ulog is not None else self.db.genuids

        def run_misc(items: list[tuple], out: list[bytes]) -> None:
            if genuids is not None and all(a[0] == b"genuid" and not a[2] for a in items):
                uids = genuids(len(items))
                if uids and uids[0] < 0:  # not a table
                    out.append(REPLY_MISC_FAIL * len(uids))
                else:
                    out.append(reply_lists_of_one([b"%d" % uid for uid in uids]))
                return
            for args in items:
                out.append(execute(Request(p.MISC, args)))

        return run_misc

    def _client_handler(self, cmd: int, core: Handler) -> Handler:
        """The handler clients reach: logging when there is an update log; PUTNR silent."""
        handler: Handler = core
        if self.ulog is not None and cmd in ulogmod.LOGGABLE:
            sid = self.sid

            def logged(r: Request) -> bytes:
                return self._logged(core, r, sid, 0)

            handler = logged
        if cmd == p.PUTNR:

            def putnr(r: Request) -> bytes:
                handler(r)
                return b""

            return putnr
        return handler

    def _logged(self, core: Handler, r: Request, sid: int, mid: int) -> bytes:
        """Run ``core`` and append the request to the update log, atomically."""
        with self._wlock:
            return self._apply_and_log(core, r, sid, mid)

    def _apply_and_log(self, core: Handler, r: Request, sid: int, mid: int) -> bytes:
        """The write and its log entry, the write recorded first (see
        :class:`~.ulog.UpdateLog`); the caller holds the write lock."""
        ulog = self.ulog
        assert ulog is not None
        if not _is_logged(r):
            return core(r)
        payload = _log_payload(r)
        ulog.begin(payload, undo_for(self.db, r), sid, mid)
        try:
            reply = core(r)
        except Exception:
            ulog.write(payload + b"\x01", sid, mid)  # whatever it did, it is accounted for
            raise
        ulog.write(payload + (b"\x00" if reply[0] == 0 else b"\x01"), sid, mid)
        return reply

    def recover(self) -> None:
        """Complete the logged write a kill interrupted (before serving).

        It may or may not have reached the database, and it is in no update
        log: put back what it changes, apply it and log it, so that this
        database and its replicas agree.
        """
        ulog = self.ulog
        pending = None if ulog is None else ulog.unfinished
        if ulog is None or pending is None:
            return
        ulog.unfinished = None
        if self.db.db_type.startswith("on-memory"):
            return  # nothing of the database survived anyway
        decoded = ulogmod.decode_payload(pending.payload + b"\x00", self.max_length)
        core = None if decoded is None else self._core.get(decoded[0][0])
        if decoded is None or core is None:
            log.warning("update log: cannot complete the interrupted write (malformed)")
            return
        with self._wlock:
            restore(self.db, pending.undo)
            try:
                ok = core(decoded[0])[0] == 0
            except Exception:
                log.exception("completing the interrupted write failed")
                ok = False
            ulog.write(pending.payload + (b"\x00" if ok else b"\x01"), pending.sid, pending.mid)
        log.warning("update log: completed the write (command 0x%02x) the server was making "
                    "when it stopped", decoded[0][0])

    def reapply(self, r: Request) -> bool:
        """Apply a request of this server's own update log again, without
        logging it (the start-up replay of :mod:`.checkpoint`)."""
        core = self._core.get(r[0])
        if core is None or r[0] not in ulogmod.LOGGABLE:
            return False
        with self._wlock:
            try:
                return core(r)[0] == 0
            except Exception:
                log.exception("replaying command 0x%02x failed", r[0])
                return False

    @property
    def write_lock(self) -> threading.RLock:
        """Held while a logged write and its update-log entry are made, while a
        replicated entry and its bookkeeping are, and by a B+ tree's commits."""
        return self._wlock

    # -- entry points -----------------------------------------------------------------

    def execute(self, r: Request) -> bytes:
        """Run any command of ``table`` (the worker pool calls this); never raises."""
        try:
            handler = self.table[r[0]]
            if handler is None:
                return REPLY_FAIL
            return handler(r)
        except Exception:
            log.exception("command 0x%02x failed", r[0])
            return REPLY_MISC_FAIL if r[0] == p.MISC else REPLY_FAIL

    def execute_shared(self, r: Request) -> bytes:
        """:meth:`execute` for a long MISC read (search, regex ...) in the worker
        pool: run through :meth:`Cabinet.misc_shared`, so that the event loop's
        reads go on meanwhile. Not logged: only for requests that need no
        update-log entry. Never raises."""
        if r[0] != p.MISC:
            return self.execute(r)
        try:
            return self._misc_shared(r)
        except Exception:
            log.exception("MISC %r failed", r[1][0])
            return REPLY_MISC_FAIL

    def logs(self, r: Request) -> bool:
        """Whether ``r`` goes to the update log (there is one, and ``r`` writes,
        or is a MISC call without the no-log option)."""
        return self.ulog is not None and _is_logged(r)

    def is_slow(self, r: Request) -> bool:
        """Whether a request should run in the worker pool rather than inline."""
        cmd = r[0]
        if cmd == p.MISC:
            return r[1][0] in SLOW_MISC
        return cmd in SLOW_COMMANDS

    def gate_mode(self, r: Request) -> int:
        """How much of the database a slow request leaves to the event loop
        while it runs: nothing (``SHUT``), reads (``READS``: a COPY of a hash or
        table database, during which Tokyo Cabinet lets reads proceed) or
        everything (``OPEN``)."""
        cmd = r[0]
        if cmd in _UNGATED:
            return OPEN
        if cmd == p.COPY and self.db.omode in (ADBOHDB, ADBOTDB):
            return READS
        return SHUT

    def apply(self, r: Request, sid: int, mid: int) -> bool:
        """Replay a logged request (RESTORE, replication); logs it with its origin ``sid``."""
        core = self._core.get(r[0])
        if core is None or r[0] not in ulogmod.LOGGABLE:
            return False
        try:
            reply = core(r) if self.ulog is None else self._logged(core, r, sid, mid)
        except Exception:
            log.exception("replaying command 0x%02x failed", r[0])
            return False
        return reply[0] == 0

    def replay(self, r: Request, sid: int, mid: int, journal: Journal) -> bool:
        """Apply an entry received from a master, between ``journal.begin`` and
        ``journal.commit``, all under the write lock: no client write comes
        between the entry and its bookkeeping. Logged with origin ``sid`` and
        master ``mid``. Returns whether it succeeded (never raises for the
        entry itself; a failing journal raises)."""
        core = self._core.get(r[0])
        ulog = self.ulog
        with self._wlock:
            journal.begin(r, None if ulog is None else ulog.position())
            ok = False
            if core is not None and r[0] in ulogmod.LOGGABLE:
                try:
                    reply = core(r) if ulog is None else self._apply_and_log(core, r, sid, mid)
                except Exception:
                    log.exception("replaying command 0x%02x failed", r[0])
                    reply = REPLY_FAIL
                ok = reply[0] == 0
            journal.commit()
        return ok

    # -- file commands ----------------------------------------------------------------

    def confine(self, raw: bytes, *, directory: bool = False) -> str | None:
        """The real path of ``raw`` taken relative to the dump directory, or None.

        None when there is no dump directory, or the path is empty, absolute,
        leaves the directory (``..``, symbolic links) or names the database's
        own files or the update log. ``directory=True`` admits the dump
        directory itself.
        """
        root = self.dump_dir
        if root is None or not raw or b"\0" in raw:
            return None
        rel = os.fsdecode(raw)
        if os.path.isabs(rel):
            return None
        target = os.path.realpath(os.path.join(root, rel))
        if target == root:
            return target if directory else None
        if os.path.commonpath([root, target]) != root:
            return None
        if not directory:
            db_file = self._db_file
            if db_file is not None and (target == db_file or target.startswith(db_file + ".")):
                return None
            if self.ulog is not None:
                logdir = self.ulog.directory
                if target == logdir or target.startswith(logdir + os.sep):
                    return None
        return target

    def _copy(self, r: Request) -> bytes:
        raw = r[1][0]
        if raw[:1] == b"@":
            if not self.copy_commands:
                log.warning("COPY refused: the @command form needs --copy-commands")
                return REPLY_FAIL
            return REPLY_OK if self.db.copy(raw) else REPLY_FAIL
        if self.dump_dir is None:
            log.warning("COPY %r refused: COPY is disabled; start the server with --dump-dir",
                        raw)
            return REPLY_FAIL
        target = self.confine(raw)
        if target is None:
            log.warning("COPY refused: %r is not a file inside the dump directory", raw)
            return REPLY_FAIL
        problem = copy_problem(self.db, target)  # the engine would go "fatal"
        if problem is not None:
            log.warning("COPY refused: %s", problem)
            return REPLY_FAIL
        return REPLY_OK if self.db.copy(target) else REPLY_FAIL

    def _restore(self, r: Request) -> bytes:
        raw, ts, opts = r[1]
        if self.dump_dir is None:
            log.warning("RESTORE %r refused: RESTORE is disabled; start the server with "
                        "--dump-dir", raw)
            return REPLY_FAIL
        directory = self.confine(raw, directory=True)
        if directory is None or not os.path.isdir(directory):
            log.warning("RESTORE refused: %r is not a directory inside the dump directory", raw)
            return REPLY_FAIL
        ok = ulogmod.restore(directory, ts, bool(opts & p.REPL_CHECK), self.apply,
                             self.max_length)
        return REPLY_OK if ok else REPLY_FAIL

    def _setmst(self, r: Request) -> bytes:
        host, port, ts, opts = r[1]
        callback = self.on_setmst
        if callback is None or not self.allow_setmst:
            if not host:
                return REPLY_OK  # "stop replicating": there is nothing to stop
            log.warning("SETMST %r:%d refused: start the server with --master or "
                        "--allow-setmst to let clients change its master", host, port)
            return REPLY_FAIL
        callback(host.decode("utf-8", "replace"), port, ts, opts)
        return REPLY_OK

    # -- STAT ---------------------------------------------------------------------------

    def stat(self, fd: int = -1) -> bytes:
        """The STAT reply, fields in ttserver's order (spec §4)."""
        db = self.db
        now = time.time()
        items: list[tuple[str, object]] = [
            ("version", VERSION), ("libver", LIBVER), ("protver", PROTVER),
            ("os", platform.system()), ("time", f"{now:.6f}"), ("pid", os.getpid()),
            ("sid", self.sid), ("type", db.db_type), ("path", os.fsdecode(db.path)),
            ("rnum", db.rnum()), ("size", db.size()),
        ]  # fmt: skip
        fatal = self._fatal()
        if fatal is not None:
            items.append(("fatal", fatal))
        items.append(("bigend", int(sys.byteorder == "big")))
        master = self.master
        if master is not None:
            items += [
                ("mhost", master.host), ("mport", master.port), ("rts", master.rts),
                ("delay", f"{master.delay():.6f}"),
            ]  # fmt: skip
        usage = resource.getrusage(resource.RUSAGE_SELF)
        memsize, memrss = _memory()
        items += [
            ("fd", fd), ("loadavg", f"{os.getloadavg()[0]:.6f}"), ("memsize", memsize),
            ("memrss", memrss), ("ru_user", f"{usage.ru_utime:.6f}"),
            ("ru_sys", f"{usage.ru_stime:.6f}"), ("ru_real", f"{now - self.started:.6f}"),
        ]  # fmt: skip
        counts = self.counts
        items += [(f"cnt_{p.COMMANDS[cmd]}", counts[cmd]) for cmd in _COUNTED]
        items += [
            ("cnt_put_miss", self.put_miss), ("cnt_out_miss", self.out_miss),
            ("cnt_get_miss", self.get_miss),
        ]  # fmt: skip
        return reply_bytes(p.format_stat(items))

    def _fatal(self) -> str | None:
        """The engine's last error message when it is in its fatal state."""
        if self.db.db_type.startswith("on-memory"):
            return None
        result = self.db.misc(b"error", [])
        if result and len(result) > 1 and result[1] == b"fatal":
            return result[0].decode("utf-8", "replace")
        return None


def _each(cmd: int, handler: Handler | None) -> RunHandler:
    """A run handler that calls ``handler`` for each request of the run."""
    assert handler is not None

    def run_each(items: list[tuple], out: list[bytes]) -> None:
        append = out.append
        for args in items:
            reply = handler(Request(cmd, args))
            if reply:
                append(reply)

    return run_each


def _ext(r: Request) -> bytes:
    """EXT: this server has no scripting extension, so it fails like ttserver without one."""
    return REPLY_FAIL


def _is_logged(r: Request) -> bool:
    cmd = r[0]
    if cmd in _ALWAYS_LOGGED:
        return True
    if cmd == p.MISC:
        return not r[1][1] & p.MISC_NOULOG
    if cmd in (p.ADDINT, p.ADDDOUBLE):
        return bool(r[1][1])  # a zero increment is a read
    return False


def _log_payload(r: Request) -> bytes:
    if r[0] == p.MISC:
        name, _opts, args = r[1]
        return p.misc_log_payload(name, args)
    return p.encode_request(r)


def _memory() -> tuple[int, int]:
    """Virtual size and resident set size of this process, in bytes."""
    size = rss = 0
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmSize:"):
                    size = int(line.split()[1]) * 1024
                elif line.startswith(b"VmRSS:"):
                    rss = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return size, rss

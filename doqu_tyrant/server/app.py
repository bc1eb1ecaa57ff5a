"""The server: a listening socket, an asyncio loop, a worker pool, one database.

:class:`Server` runs either in the calling thread (:meth:`Server.serve_forever`,
used by ``python -m doqu_tyrant.server``) or in a background thread
(:meth:`Server.start` … :meth:`Server.stop`, or ``with Server(...) as s:``),
which is how tests and the demo embed it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from doqu_tyrant.tyrant import protocol as p
from doqu_tyrant.tyrant.options import check_count, check_host, check_port, check_seconds

from .acceptor import Acceptor
from .checkpoint import Checkpoint
from .clocale import use_c_locale
from .commands import Commands, Handler
from .connection import Connection
from .durable import open_database
from .gate import CommitTimer
from .limits import DEFAULT_MAX_MEMORY, DEFAULT_MAX_UNSENT, Budget, Limits
from .longreads import Planner
from .paths import parse_path
from .replication import Replicator
from .rts import RtsFile
from .ulog import DEFAULT_LIMIT, UpdateLog

log = logging.getLogger("doqu_tyrant.server")

DEFAULT_PORT = 1978
DEFAULT_THREADS = 8
DEFAULT_FRAME_TIMEOUT = 30.0
DEFAULT_COMMIT_INTERVAL = 1.0
SHUTDOWN_GRACE = 5.0
# While a connection waits for memory, the budget is recounted this often.
MEMORY_RECHECK = 0.05


def _rts_path(db_path: str, given: str | os.PathLike[str] | None,
              replicating: bool) -> str | None:
    """The replication timestamp file: ``given``, else ``DB.rts`` next to a
    database file when this server can become a replica."""
    file = db_path.split("#", 1)[0]
    on_memory = file in ("*", "+", "")
    if given is not None:
        if on_memory:
            raise ValueError("an on-memory database is empty after a restart, so a "
                             "replication timestamp file (--rts) would skip what it lost; "
                             "use a database file or leave out --rts")
        return os.fspath(given)
    if not replicating or on_memory:
        return None
    return file + ".rts"


def _bind_problem(exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return "address already in use (another server listens there; choose another --port)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return "this machine has no such address (check --host)"
    if exc.errno == errno.EACCES:
        return "permission denied (ports below 1024 need privileges)"
    return (exc.strerror or str(exc)).lower()


@dataclass(eq=False)
class Engine:
    """Runtime state shared by the connections of one running server."""

    loop: asyncio.AbstractEventLoop
    executor: concurrent.futures.ThreadPoolExecutor
    commands: Commands
    max_length: int
    frame_timeout: float
    limits: Limits = field(default_factory=Limits)
    connections: set[Connection] = field(default_factory=set)
    repl_events: set[asyncio.Event] = field(default_factory=set)
    loop_thread: int = field(default_factory=threading.get_ident)

    def __post_init__(self) -> None:
        self.budget = Budget(self.limits.max_memory)
        self.planner = Planner(self.commands, self.budget, self.limits.guarded)
        # The inline handlers. MGET and FWMKEYS may take long: the planner
        # decides (None sends them to the connection's special cases). Under
        # memory pressure GET goes through the connection's size check.
        self.handlers: list[Handler | None] = list(self.commands.handlers)
        self.handlers[p.MGET] = self.handlers[p.FWMKEYS] = None
        self.pressure_handlers = list(self.handlers)
        self.pressure_handlers[p.GET] = None
        self.waiting: set[Connection] = set()
        self.input_leader: Connection | None = None
        self._recheck: asyncio.Handle | None = None
        self._recheck_soon = False
        self._sweeper: asyncio.TimerHandle | None = None

    def notify_repl(self) -> None:
        """Wake the REPL streams after an update-log append (from any thread)."""
        if not self.repl_events:
            return
        if threading.get_ident() == self.loop_thread:
            self._wake()
        else:
            with contextlib.suppress(RuntimeError):  # loop already closed
                self.loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        for event in list(self.repl_events):
            event.set()

    # -- the memory budget ------------------------------------------------------------

    def refresh(self) -> None:
        """Recount every connection's share of the budget."""
        for conn in self.connections:
            conn._account()

    def wait_for_memory(self, conn: Connection) -> None:
        """``conn`` waits until memory is freed (rechecked periodically)."""
        self.waiting.add(conn)
        if self._recheck is None:
            self._recheck = self.loop.call_later(MEMORY_RECHECK, self._wake_waiting)

    def memory_freed(self) -> None:
        """Something was released: let the waiting connections try again soon."""
        if not self.waiting or self._recheck_soon:
            return
        if self._recheck is not None:
            self._recheck.cancel()
        self._recheck = self.loop.call_soon(self._wake_waiting)
        self._recheck_soon = True

    def _wake_waiting(self) -> None:
        self._recheck = None
        self._recheck_soon = False
        self.refresh()
        budget = self.budget
        leader = self.input_leader
        # Large requests go on waiting while the budget is spent and the one
        # allowed to proceed is still receiving.
        keep_inputs = budget.held > budget.limit and leader is not None and not leader.closed
        waiting = list(self.waiting)
        self.waiting.clear()
        for conn in waiting:
            if keep_inputs and conn.in_wait and not conn.deferred:
                self.waiting.add(conn)
            else:
                conn.wake()
        if self.waiting and self._recheck is None:
            self._recheck = self.loop.call_later(MEMORY_RECHECK, self._wake_waiting)

    def forget(self, conn: Connection) -> None:
        """A connection is gone: release what it held."""
        self.waiting.discard(conn)
        if self.input_leader is conn:
            self.input_leader = None
        if conn.held:
            self.budget.held -= conn.held
            conn.held = 0
        self.memory_freed()

    # -- idle connections -------------------------------------------------------------

    def start_sweeping(self) -> None:
        """Close connections idle for ``limits.idle_timeout`` (if set)."""
        timeout = self.limits.idle_timeout
        if timeout > 0 and self._sweeper is None:
            self._sweeper = self.loop.call_later(min(max(timeout / 4, 0.05), 1.0), self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        timeout = self.limits.idle_timeout
        now = time.monotonic()
        for conn in list(self.connections):
            if conn.idle(now, timeout):
                log.info("fd %d: idle for %ss; closing", conn.fd, timeout)
                conn._close()
        self.start_sweeping()

    def stop(self) -> None:
        for handle in (self._recheck, self._sweeper):
            if handle is not None:
                handle.cancel()
        self._recheck = self._sweeper = None


class Server:
    """A Tokyo Tyrant compatible server over one Tokyo Cabinet database.

    ``path`` is any name ttserver accepts: ``*``, ``+``, ``file.tch``,
    ``.tcb``, ``.tcf``, ``.tct``, each with ``#name=value`` tuning
    parameters. ``port=0`` picks a free port (read it from :attr:`port`
    once started). ``dump_dir`` confines COPY and RESTORE (None: both
    refused); ``copy_commands`` allows COPY's ``@command`` form, which runs
    a shell command on this host, so it is off unless the operator asks.
    ``ulog_dir`` with ``sid`` (1–65535) turns the update log on.
    ``max_length`` caps every declared length in a request;
    ``frame_timeout`` closes a connection whose frame stays incomplete, or
    whose client reads none of its replies, that long (0: never).
    ``max_connections``, ``idle_timeout``, ``max_memory`` and
    ``max_unsent`` are the :class:`~.limits.Limits`. ``host`` must name an
    address: ``"0.0.0.0"`` or ``"::"`` listen on every interface.
    ``commit_interval``: seconds between the automatic commits of a B+ tree
    database's writes (see :mod:`.durable`), the most a kill -9 can cost
    between SYNCs there.

    Replication (see :mod:`.replication`): ``master=(host, port)`` follows
    that master from start-up; ``rts_path`` is the replication timestamp
    file (default: the database file's name + ``.rts`` when replication is
    possible); ``replication_check`` stops replicating when an entry's
    result differs from the master's (ttserver's ``-rcc``);
    ``allow_setmst`` lets clients change the master with SETMST, which is
    refused otherwise unless ``master`` is given.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        threads: int = DEFAULT_THREADS,
        dump_dir: str | os.PathLike[str] | None = None,
        ulog_dir: str | os.PathLike[str] | None = None,
        ulog_limit: int = DEFAULT_LIMIT,
        sid: int = 0,
        max_length: int = p.MAX_LENGTH,
        frame_timeout: float = DEFAULT_FRAME_TIMEOUT,
        copy_commands: bool = False,
        pid_file: str | os.PathLike[str] | None = None,
        backlog: int = 1024,
        master: tuple[str, int] | None = None,
        rts_path: str | os.PathLike[str] | None = None,
        replication_check: bool = False,
        allow_setmst: bool = False,
        max_connections: int | None = None,
        idle_timeout: float = 0.0,
        max_memory: int = DEFAULT_MAX_MEMORY,
        max_unsent: int = DEFAULT_MAX_UNSENT,
        guarded: bool = True,
        commit_interval: float = DEFAULT_COMMIT_INTERVAL,
    ) -> None:
        # Everything is checked here, before a file or a socket is touched.
        if host == "":
            raise ValueError("the host is empty; give 0.0.0.0 (or ::) to listen on every "
                             "interface")
        host = check_host(host, "host")
        self.limits = Limits(max_connections, idle_timeout, max_memory, max_unsent, guarded)
        self.database = parse_path(path)
        port = check_port(port, "port", allow_zero=True)
        sid = check_count(sid, "sid", 0)
        if sid > 0xFFFF:
            raise ValueError(f"sid must be from 0 to 65535, got {sid}")
        if ulog_dir is not None and sid < 1:
            raise ValueError("an update log needs a server id (sid) of at least 1")
        threads = check_count(threads, "threads")
        max_length = check_count(max_length, "max_length")
        ulog_limit = check_count(ulog_limit, "ulog_limit")
        backlog = check_count(backlog, "backlog")
        frame_timeout = check_seconds(frame_timeout, "frame_timeout", allow_none=False,
                                      allow_zero=True) or 0.0
        commit_interval = check_seconds(commit_interval, "commit_interval",
                                        allow_none=False) or DEFAULT_COMMIT_INTERVAL
        if dump_dir is not None and not os.path.isdir(dump_dir):
            missing = "does not exist" if not os.path.exists(dump_dir) else "is not a directory"
            raise ValueError(f"dump_dir {os.fspath(dump_dir)!r} {missing}")
        if ulog_dir is not None and os.path.exists(ulog_dir) and not os.path.isdir(ulog_dir):
            raise ValueError(f"ulog_dir {os.fspath(ulog_dir)!r} is not a directory")
        self.path = os.fspath(path)
        self.host = host
        self.port = port
        self.threads = threads
        self.dump_dir = os.fspath(dump_dir) if dump_dir is not None else None
        self.ulog_dir = os.fspath(ulog_dir) if ulog_dir is not None else None
        self.ulog_limit = ulog_limit
        self.sid = sid
        self.max_length = max_length
        self.frame_timeout = frame_timeout
        self.copy_commands = copy_commands
        self.pid_file = os.fspath(pid_file) if pid_file is not None else None
        self.backlog = backlog
        self.master = master
        self.replication_check = replication_check
        self.allow_setmst = allow_setmst or master is not None
        self.rts_path = _rts_path(self.path, rts_path, self.allow_setmst)
        if master is not None and sid < 1:
            raise ValueError("a replica needs a server id: give --sid (1-65535)")
        self.commit_interval = commit_interval
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._stop_requested = False

    @property
    def url(self) -> str:
        """``tyrant://host:port`` of the listening socket."""
        return f"tyrant://{self.host}:{self.port}"

    def __repr__(self) -> str:
        return f"<Server {self.path!r} on {self.host}:{self.port}>"

    # -- running --------------------------------------------------------------------------

    async def serve(
        self, ready: Callable[[], None] | None = None, *, handle_signals: bool = False
    ) -> None:
        """Open the database, listen, and serve until :meth:`request_stop`."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        use_c_locale()
        self._stop = asyncio.Event()
        if self._stop_requested:
            self._stop.set()
        # Bind before the database is opened (and perhaps created): a port in
        # use must not leave a new, empty database file behind.
        listening = self._bind()
        try:
            db = open_database(self.database)  # recovers from an unclean shutdown first
        except BaseException:
            listening.close()
            raise
        sock: socket.socket | None = listening  # until the asyncio server owns it
        ulog: UpdateLog | None = None
        executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.threads, thread_name_prefix="tyrant-worker",
            initializer=use_c_locale,
        )
        acceptor: Acceptor | None = None
        replicator: Replicator | None = None
        engine: Engine | None = None
        committer: CommitTimer | None = None
        wrote_pid = False
        try:
            if self.ulog_dir is not None:
                ulog = UpdateLog(self.ulog_dir, self.sid, self.ulog_limit)
            commands = Commands(
                db, sid=self.sid, ulog=ulog, dump_dir=self.dump_dir,
                copy_commands=self.copy_commands, max_length=self.max_length,
            )  # fmt: skip
            engine = Engine(loop, executor, commands, self.max_length, self.frame_timeout,
                            self.limits)
            rts = RtsFile(self.rts_path) if self.rts_path is not None else None
            replicator = Replicator(commands, loop, executor, rts)
            replicator.load()
            # Before any request: a B+ tree rolled back by a kill gets its log's
            # newer entries again (or its replication position from its last
            # commit); then an interrupted logged write and a half-applied
            # replicated entry are completed, and the result committed.
            checkpoint = Checkpoint(db, commands, replicator)
            committed = checkpoint.recover()
            commands.recover()
            replicator.recover(committed)
            checkpoint.commit()
            commands.on_setmst = replicator.set_master
            commands.allow_setmst = self.allow_setmst
            if ulog is not None:
                ulog.listener = engine.notify_repl
            if db.transactional:
                committer = CommitTimer(loop, executor, commands.gate, db.commit,
                                        self.commit_interval).start()
            bound = engine  # for the closure
            listening.listen(self.backlog)
            acceptor = Acceptor(loop, listening, lambda: Connection(bound),
                                lambda: len(bound.connections), self.limits.connection_limit())
            sock = None
            acceptor.start()
            engine.start_sweeping()
            self.host, self.port = listening.getsockname()[:2]
            if self.pid_file is not None:
                with open(self.pid_file, "w") as f:
                    f.write(f"{os.getpid()}\n")
                wrote_pid = True
            if handle_signals:
                for signum in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(signum, self._stop.set)
            if self.master is not None:
                replicator.follow(*self.master, check=self.replication_check)
            log.info("serving %s (%s) on %s:%d", self.path, db.db_type, self.host, self.port)
            if ready is not None:
                ready()
            await self._stop.wait()
            log.info("shutting down")
        finally:
            if sock is not None:
                sock.close()
            if committer is not None:
                committer.stop()
            if acceptor is not None:
                acceptor.close()
            if replicator is not None:
                replicator.stop()
            if engine is not None:
                engine.stop()
                for conn in list(engine.connections):
                    conn._close()
            # let pending callbacks (closing transports, cancelled tasks) run
            await asyncio.sleep(0)
            await loop.run_in_executor(None, executor.shutdown, True)
            if replicator is not None:
                replicator.close()  # after the workers: one may be finishing an entry
            if ulog is not None:
                ulog.close()
            if not db.closed:
                db.sync()
                db.close()
            if wrote_pid and self.pid_file is not None:
                with contextlib.suppress(OSError):
                    os.unlink(self.pid_file)
            if handle_signals:  # only now: a second signal during cleanup is harmless
                for signum in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(signum)

    def _bind(self) -> socket.socket:
        """The listening socket's bind; ``OSError`` names the address and why."""
        host = self.host or None
        where = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        try:
            infos = socket.getaddrinfo(
                host, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
        except socket.gaierror as exc:
            raise OSError(f"cannot listen on {where}: unknown host {self.host!r} "
                          f"({exc.strerror})") from None
        family, type_, proto, _name, addr = infos[0]
        sock = socket.socket(family, type_, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(addr)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise OSError(exc.errno, f"cannot listen on {where}: {_bind_problem(exc)}") from None
        except BaseException:
            sock.close()
            raise
        return sock

    def serve_forever(
        self, ready: Callable[[], None] | None = None, *, handle_signals: bool = True
    ) -> None:
        """Run in the calling thread until SIGTERM/SIGINT or :meth:`request_stop`."""
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self.serve(ready, handle_signals=handle_signals))
        finally:
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    def request_stop(self) -> None:
        """Ask the serving loop to shut down (thread-safe, returns at once)."""
        self._stop_requested = True
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)

    def start(self, timeout: float = 30.0) -> Server:
        """Serve from a background thread; returns once listening."""
        if self._thread is not None:
            raise RuntimeError("the server is already running")
        ready = threading.Event()
        self._error = None
        self._stop_requested = False

        def run() -> None:
            try:
                self.serve_forever(ready.set, handle_signals=False)
            except BaseException as exc:
                self._error = exc
                log.debug("server thread ended with an error", exc_info=True)
            finally:
                ready.set()

        self._thread = threading.Thread(target=run, name=f"tyrant-server-{self.port}",
                                        daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            self.stop()
            raise TimeoutError("the server did not start in time")
        if self._error is not None:
            self._thread.join()
            self._thread = None
            raise self._error
        return self

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop a server started with :meth:`start`: close connections, sync, close."""
        thread = self._thread
        if thread is None:
            return
        self.request_stop()
        thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError("the server thread did not stop in time")
        self._thread = None
        self._loop = None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

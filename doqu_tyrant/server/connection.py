"""One client connection: bytes in → codec → commands → one write per batch.

Requests are handled in arrival order. Most commands run inline on the
event loop; those that may take long (SYNC, OPTIMIZE, VANISH, COPY, RESTORE,
setindex, searches of a large table, regular expressions, many keys: see
:mod:`.longreads`) run in the worker pool while the connection stops
reading, so its replies stay in order and the loop stays free for the
others. While one runs, the :class:`~.gate.Gate` holds every connection's
next database request (only what is not a read during a long read, or a
hash or table COPY) until it has finished, so that the loop never waits for
the database lock. Replies
to everything decoded from one chunk of input are written with a single
``transport.write``. A client's pipeline of simple requests of one command
(PUT, GET, …) is decoded as one ``Run`` and answered by one run handler.

What a connection may hold is bounded (see :mod:`.limits`): once its
unsent replies pass ``max_unsent`` it stops reading and answering until
the client has read them (a pipeline of GETs is answered in slices, so
this holds inside one batch too); a connection whose client reads none of
its replies for ``frame_timeout`` seconds is closed. The server-wide
:class:`~.limits.Budget` counts buffered requests and unsent replies of
every connection: over it, large incomplete requests wait (one at a time
proceeds), and under pressure a GET of a large value waits until the
memory it needs is free.

Malformed input is handled as ttserver handles it (spec §11): a rejected
header produces no reply; the bytes after it are parsed as the next request,
and the connection is closed when nothing follows. Unlike ttserver, a frame
left incomplete for ``frame_timeout`` seconds closes its connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from functools import partial
from typing import TYPE_CHECKING

from doqu_tyrant.tyrant import protocol as p
from doqu_tyrant.tyrant.protocol import (
    Rejected,
    Request,
    RequestDecoder,
    Run,
    TextLine,
)

from .commands import VERSION
from .gate import LONG, OPEN, READ, READS
from .limits import MAX_SLICE, SMALL
from .ulog import LogReader

if TYPE_CHECKING:
    from .app import Engine

log = logging.getLogger("doqu_tyrant.server")

# After a rejected header with nothing buffered, wait this long for more bytes
# (a client's write may arrive in two segments) before closing.
REJECT_GRACE = 0.005
# Keep-alive interval of a REPL stream when there is nothing to send.
REPL_KEEPALIVE_INTERVAL = 1.0
# Extra room over max_length for an incomplete frame's headers before closing.
FRAME_SLACK = 1 << 16

_GET = p.GET
_MISC = p.MISC
_A_GET = Request(p.GET, (b"",))  # what the gate is asked about GETs still to answer
_monotonic = time.monotonic


def text_reply(line: bytes) -> bytes | None:
    """Reply to a memcached text command, or None to close the connection.

    Only ``version`` is answered (as ttserver does); ``quit`` and anything
    else close the connection.
    """
    if line.strip() == b"version":
        return b"VERSION " + VERSION.encode() + b"\r\n"
    return None


class Connection(asyncio.Protocol):
    """The protocol object asyncio creates for each accepted socket."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.commands = engine.commands
        self.handlers = engine.handlers
        self.runs = engine.commands.runs
        self.counts = engine.commands.counts
        self.budget = engine.budget
        self.guarded = engine.limits.guarded
        self.max_unsent = engine.limits.max_unsent if self.guarded else 1 << 62
        self.gate = engine.commands.gate
        self.planner = engine.planner
        self._parked: Request | Run | None = None  # a request held back by the gate
        self.decoder = RequestDecoder(engine.max_length)
        self.max_buffer = engine.max_length + FRAME_SLACK
        self.transport: asyncio.Transport | None = None
        self.fd = -1
        self.busy = False  # a request is running in the worker pool
        self.write_paused = False
        self.deferred = False  # a GET waits for memory (see .limits.Budget)
        self.in_wait = False  # a large incomplete request waits for memory
        self.eof = False
        self.closed = False
        self.streaming = False  # this connection became a REPL stream
        self.last_seen = _monotonic()
        self.held = 0  # bytes counted in the budget for this connection
        self._reading = True
        self._rest: tuple[list[tuple], int] | None = None  # GETs still to answer
        # Parts of large replies not handed to the transport yet: it gets one
        # max_unsent-sized piece at a time (its buffer is not made for more).
        self._outq: deque[memoryview] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._grace: asyncio.TimerHandle | None = None
        self._stall: asyncio.TimerHandle | None = None
        self._stall_mark = 0
        self._drain: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None

    # -- asyncio callbacks ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(self.max_unsent, self.max_unsent // 4)
        sock = transport.get_extra_info("socket")
        self.fd = sock.fileno() if sock is not None else -1
        self.engine.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        engine = self.engine
        engine.connections.discard(self)
        engine.forget(self)
        self._cancel_timer()
        for handle in (self._grace, self._stall):
            if handle is not None:
                handle.cancel()
        self._grace = self._stall = None
        self._rest = None
        self._outq.clear()
        if self._task is not None:
            self._task.cancel()
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self.streaming:
            return  # a REPL slave has nothing more to say
        self.last_seen = _monotonic()
        self.decoder.feed(data)
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None
        if not (self.busy or self.write_paused or self.deferred or self._outq):
            self._process()
        else:
            self._admit_input()

    def eof_received(self) -> bool:
        self.eof = True
        if not self.busy:
            self._finish_if_idle()
        return True  # keep the transport open: replies may still be pending

    def pause_writing(self) -> None:
        self.write_paused = True
        self._update_reading()
        self._account()
        timeout = self.engine.frame_timeout
        if timeout and timeout > 0 and self._stall is None:
            self._stall_mark = self._unsent()
            self._stall = self.engine.loop.call_later(timeout, self._stall_expired)

    def resume_writing(self) -> None:
        self.write_paused = False
        if self._outq:
            self._feed()
        if not self.write_paused and self._stall is not None:
            self._stall.cancel()
            self._stall = None
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        self._account()
        self.engine.memory_freed()
        if not self.closed and not self.streaming and not self.write_paused:
            self._resume()

    # -- reading on and off ---------------------------------------------------------------

    def _update_reading(self) -> None:
        """Read from the socket unless something this connection waits for says not."""
        want = not (self.busy or self.write_paused or self.deferred or self.in_wait)
        if want == self._reading:
            return
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self._reading = want
        if want:
            transport.resume_reading()
        else:
            transport.pause_reading()

    def _resume(self) -> None:
        """Carry on after a pause (write drained, slow command done, memory freed)."""
        self._update_reading()
        if not (self.busy or self.write_paused or self.deferred or self.closed or self._outq):
            self._process()

    # -- request processing -------------------------------------------------------------

    def _process(self) -> None:
        """Handle every complete request buffered, then write all replies at once.

        Replies are written early once they pass ``max_unsent`` bytes; when
        the transport then asks to pause, processing stops and resumes from
        the same place once the client has read them.
        """
        decoder = self.decoder
        next_event = decoder.next_batch
        budget = self.budget
        pressure = self.guarded and budget.held > budget.pressure_at
        handlers = self.engine.pressure_handlers if pressure else self.handlers
        runs = self.runs
        counts = self.counts
        limit = self.max_unsent
        gate = self.gate
        out: list[bytes] = []
        append = out.append
        size = 0
        handled = 0
        parked, self._parked = self._parked, None
        try:
            if self._rest is not None:
                if gate.mode and not gate.admits(_A_GET):
                    self._park(parked, out, READ)
                    return
                items, start = self._rest
                self._rest = None
                size = self._gets(items, start, out, 0)
            while size >= 0:
                if parked is None:
                    event = next_event()
                    if event is None:
                        break
                else:
                    event, parked = parked, None
                handled += 1
                if gate.mode and event.__class__ is not TextLine and (
                        event.__class__ is not Rejected and not gate.admits(event)):  # type: ignore[arg-type]
                    self._park(event, out, gate.kind_of(event))  # type: ignore[arg-type]
                    return
                if event.__class__ is Request:
                    cmd = event[0]
                    counts[cmd] += 1
                    handler = handlers[cmd]
                    if handler is not None:
                        reply = handler(event)  # type: ignore[arg-type]
                        if reply:
                            append(reply)
                            size += len(reply)
                    elif cmd == _GET:  # under pressure
                        size = self._gets([event[1]], 0, out, size)  # type: ignore[list-item]
                    elif self._special(event, out):  # type: ignore[arg-type]
                        return
                elif event.__class__ is Run:
                    cmd = event[0]
                    items = event[1]  # type: ignore[assignment]
                    counts[cmd] += len(items)
                    if cmd == _GET:
                        size = self._gets(items, 0, out, size)
                    else:
                        runs[cmd](items, out)  # type: ignore[misc]
                        size += 5 * len(items)  # at most 5 reply bytes each
                elif event.__class__ is Rejected:
                    if "length" in event[0]:  # over --max-length: say so
                        log.info("fd %d: rejected a request: %s (--max-length is %d)",
                                 self.fd, event[0], self.engine.max_length)
                    else:
                        log.debug("rejected request on fd %d: %s", self.fd, event[0])
                    if not decoder.buffered:
                        self._write(out)
                        self._grace = self.engine.loop.call_later(REJECT_GRACE, self._close)
                        return
                else:
                    assert isinstance(event, TextLine)
                    text = text_reply(event.line)
                    if text is None:
                        self._write(out)
                        self._close()
                        return
                    append(text)
                if size > limit:
                    self._write(out)
                    out.clear()
                    size = 0
                if self.write_paused or self._outq:
                    break
        except Exception:
            log.exception("internal error on fd %d; closing the connection", self.fd)
            self._write(out)
            self._close()
            return
        self._write(out)
        if self.closed:
            return
        buffered = decoder.buffered
        if buffered:
            if buffered > self.max_buffer:
                log.warning("fd %d: closing: incomplete request over %d bytes (--max-length "
                            "is %d)", self.fd, self.max_buffer, self.engine.max_length)
                self._close()
                return
            if handled or self._timer is None:
                self._arm_timer()
            if buffered > SMALL or self.held:
                self._admit_input()
        else:
            if self._timer is not None:
                self._cancel_timer()
            if self.held:
                self._account()
        if self.eof:
            self._finish_if_idle()

    def _gets(self, items: list[tuple], start: int, out: list[bytes], size: int) -> int:
        """Answer GETs ``items[start:]`` into ``out``; the bytes of ``out`` after.

        Values are read in slices growing from one key, so that replies pass
        ``max_unsent`` by one slice at most before they are written. Under
        memory pressure each value's size is checked first. Returns -1 when
        this stopped before the end (the client must read first, or memory
        must be freed); the rest is kept in ``_rest``.
        """
        budget = self.budget
        limit = self.max_unsent
        count = len(items)
        i = start
        run = self.runs[_GET]
        handler = self.handlers[_GET]
        assert run is not None and handler is not None
        if not self.guarded:
            run(items, out)
            return size
        if budget.held > budget.pressure_at:
            return self._gets_checked(items, i, out, size)
        step = 1
        while i < count:
            part = items[i : i + step]
            mark = len(out)
            if len(part) == 1:
                reply = handler(Request(_GET, part[0]))
                if reply:
                    out.append(reply)
            else:
                run(part, out)
            got = 0
            for reply in out[mark:]:
                got += len(reply)
            size += got
            i += len(part)
            if size > limit:
                self._write(out)
                out.clear()
                size = 0
                if self.write_paused or self._outq:
                    break
            each = got // len(part) + 1
            step = max(1, min(step * 2, MAX_SLICE, (limit - size) // each))
        if i < count:
            self._rest = (items, i)
            return -1
        return size

    def _gets_checked(self, items: list[tuple], i: int, out: list[bytes], size: int) -> int:
        """:meth:`_gets` under memory pressure: one GET at a time, each value's
        size checked before it is read; a large one waits while other
        connections hold the memory it needs."""
        handler = self.handlers[_GET]
        assert handler is not None
        vsiz = self.commands.db.vsiz
        budget = self.budget
        engine = self.engine
        count = len(items)
        while i < count:
            args = items[i]
            need = vsiz(args[0]) + 5
            if need > SMALL and not budget.admits(need):
                engine.refresh()
                if not budget.admits(need) and budget.held > self.held:
                    self._write(out)
                    out.clear()
                    self._rest = (items, i)
                    self.deferred = True
                    self._update_reading()
                    engine.wait_for_memory(self)
                    return -1
            reply = handler(Request(_GET, args))
            if reply:
                out.append(reply)
                size += len(reply)
            i += 1
            if size > self.max_unsent:
                self._write(out)
                out.clear()
                size = 0
                if self.write_paused or self._outq:
                    self._rest = (items, i) if i < count else None
                    return -1
        return size

    def _special(self, request: Request, out: list[bytes]) -> bool:
        """Commands not in the inline table. True if processing must stop here."""
        cmd = request[0]
        commands = self.commands
        if cmd == p.STAT:
            out.append(commands.stat(self.fd))
            return False
        if cmd == p.REPL:
            self._write(out)
            self._start_repl(request)
            return True
        planner = self.planner
        job = planner.plan(request)
        if job is None:
            out.append(planner.answer(request, self.fd))
            return False
        gate = self.gate
        if job.mode == READS and not gate.admits_long_read():
            self.counts[cmd] -= 1  # counted again when it comes back
            self._park(request, out, LONG)  # behind a waiting write
            return True
        self._write(out)
        out.clear()
        self._cancel_timer()
        self.busy = True
        self._update_reading()
        engine = self.engine
        reserved = job.reserved
        if reserved:
            self.budget.held += reserved  # the room the job may fill, until it ends
        done = self._slow_done if not reserved else partial(self._job_done, reserved)
        if job.mode == OPEN:
            future = engine.loop.run_in_executor(engine.executor, job.work)
            future.add_done_callback(done)
        else:
            gate.run(engine.loop, engine.executor, job.work, job.mode,
                     done)  # type: ignore[arg-type]
        return True

    def _job_done(self, reserved: int, future: asyncio.Future[bytes]) -> None:
        self.budget.held -= reserved
        self._slow_done(future)
        self.engine.memory_freed()

    def _park(self, event: Request | Run | None, out: list[bytes], kind: int) -> None:
        """Hold ``event`` back until the gate lets it through (replies so far are sent)."""
        self._write(out)
        self._parked = event
        self._cancel_timer()
        self.busy = True
        self._update_reading()
        self.gate.wait(self._unpark, kind)

    def _unpark(self) -> None:
        self.busy = False
        transport = self.transport
        if self.closed or transport is None or transport.is_closing():
            return
        self._resume()

    def _slow_done(self, future: asyncio.Future[bytes]) -> None:
        self.busy = False
        if self.closed:
            return
        try:
            reply = future.result()
        except BaseException:  # cancelled at shutdown
            self._close()
            return
        self._write([reply] if reply else [])
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self._resume()

    def _write(self, out: list[bytes]) -> None:
        if not out:
            return
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        if len(data) > self.max_unsent or self._outq:
            self._outq.append(memoryview(data))
            self._feed()
        else:
            transport.write(data)
        if self.held or len(data) > SMALL:
            self._account()

    def _feed(self) -> None:
        """Hand queued reply bytes to the transport until it asks to pause."""
        transport = self.transport
        queue = self._outq
        piece = self.max_unsent
        while queue and not self.write_paused:
            if transport is None or transport.is_closing():
                queue.clear()
                return
            view = queue[0]
            if len(view) > piece:
                transport.write(view[:piece])
                queue[0] = view[piece:]
            else:
                transport.write(view)
                queue.popleft()

    def _unsent(self) -> int:
        """Reply bytes not sent yet: the transport's buffer and the queue."""
        transport = self.transport
        unsent = transport.get_write_buffer_size() if transport is not None else 0
        for view in self._outq:
            unsent += len(view)
        return unsent

    # -- the memory budget ----------------------------------------------------------------

    def _account(self) -> None:
        """Report this connection's buffered and unsent bytes to the budget."""
        held = self.decoder.buffered
        if not self.closed:
            held += self._unsent()
        delta = held - self.held
        if delta:
            self.held = held
            self.budget.held += delta

    def _admit_input(self) -> None:
        """Over budget, only one connection at a time may go on receiving a
        large request; the others stop reading until memory is freed."""
        self._account()
        engine = self.engine
        budget = self.budget
        if self.decoder.buffered <= SMALL:
            if engine.input_leader is self:
                engine.input_leader = None
                engine.memory_freed()
            return
        if budget.held <= budget.limit:
            return
        leader = engine.input_leader
        if leader is None or leader.closed:
            engine.input_leader = self
        elif leader is not self and not self.in_wait:
            self.in_wait = True
            self._update_reading()
            engine.wait_for_memory(self)

    def wake(self) -> None:
        """Called by the engine when memory may have been freed."""
        if self.closed:
            return
        self.in_wait = False
        if self.deferred:
            self.deferred = False
            self._resume()
        else:
            self._update_reading()

    # -- closing -----------------------------------------------------------------------------

    def _finish_if_idle(self) -> None:
        """After the client's EOF: close once every complete request is answered."""
        if not (self.busy or self.write_paused or self.deferred or self.streaming
                or self.closed or self._rest is not None or self._outq):
            self._close()

    def idle(self, now: float, timeout: float) -> bool:
        """Whether this connection has sent nothing for ``timeout`` seconds and
        nothing of it is pending here."""
        return (now - self.last_seen > timeout and not (
            self.busy or self.write_paused or self.deferred or self.streaming
            or self._rest is not None or self._outq or self.decoder.buffered))

    def _close(self) -> None:
        self._grace = None
        self._cancel_timer()
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.close()

    def abort(self) -> None:
        """Close at once, dropping unsent replies."""
        self._cancel_timer()
        transport = self.transport
        if transport is not None:
            transport.abort()

    # -- frame and stall timeouts ---------------------------------------------------------

    def _arm_timer(self) -> None:
        self._cancel_timer()
        timeout = self.engine.frame_timeout
        if timeout and timeout > 0:
            self._timer = self.engine.loop.call_later(timeout, self._frame_expired)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _frame_expired(self) -> None:
        self._timer = None
        if (self.write_paused or self.deferred or self.in_wait or self._rest is not None
                or self._outq):
            self._arm_timer()  # waiting on our side, not on the client
            return
        if self.decoder.buffered and not self.busy and not self.streaming:
            log.info("fd %d: closing: request incomplete for %ss (--frame-timeout)", self.fd,
                     self.engine.frame_timeout)
            self._close()

    def _stall_expired(self) -> None:
        """Replies unsent since the last check: closed unless the client read some."""
        self._stall = None
        if not self.write_paused or self.transport is None or self.closed:
            return
        unsent = self._unsent()
        if unsent < self._stall_mark:
            self._stall_mark = unsent
            self._stall = self.engine.loop.call_later(self.engine.frame_timeout,
                                                      self._stall_expired)
            return
        log.info("fd %d: %d reply bytes unread for %ss; closing", self.fd, unsent,
                 self.engine.frame_timeout)
        self.abort()

    # -- REPL (this server as a master) ------------------------------------------------------

    def _start_repl(self, request: Request) -> None:
        ts, sid = request[1]
        ulog = self.commands.ulog
        if ulog is None or sid == self.commands.sid:
            self._close()  # nothing to stream / a server replicating from itself
            return
        self.streaming = True
        self._cancel_timer()
        self._task = self.engine.loop.create_task(self._stream(ulog.directory, ts, sid))

    async def _stream(self, directory: str, ts: int, slave_sid: int) -> None:
        """Send our sid, then update-log entries from ``ts`` on, forever."""
        transport = self.transport
        assert transport is not None
        wakeup = asyncio.Event()
        self.engine.repl_events.add(wakeup)
        try:
            # our id, then a keep-alive at once (as ttserver starts its stream)
            transport.write(p.repl_header(self.commands.sid) + p.REPL_KEEPALIVE)
            reader = LogReader(directory, ts)
            while not self.closed:
                wakeup.clear()
                entries = reader.read()
                if entries:
                    # Not what came from the slave, directly or through another
                    # master: a dual master must not echo writes back (ttserver
                    # skips both as well).
                    chunk = b"".join(
                        p.repl_entry(e_ts, e_sid, payload)
                        for e_ts, e_sid, e_mid, payload in entries
                        if e_sid != slave_sid and e_mid != slave_sid
                    )
                    if chunk:
                        transport.write(chunk)
                        if self.write_paused:
                            self._drain = self.engine.loop.create_future()
                            await self._drain
                if not reader.caught_up:
                    await asyncio.sleep(0)  # more to send: let other connections run
                    continue
                try:
                    await asyncio.wait_for(wakeup.wait(), REPL_KEEPALIVE_INTERVAL)
                except asyncio.TimeoutError:
                    if not self.closed:
                        transport.write(p.REPL_KEEPALIVE)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("REPL stream on fd %d failed", self.fd)
        finally:
            self.engine.repl_events.discard(wakeup)
            self._close()

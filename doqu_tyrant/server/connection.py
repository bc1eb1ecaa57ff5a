"""One client connection: bytes in → codec → commands → one write per batch.

Requests are handled in arrival order. Most commands run inline on the
event loop; the rare long ones (SYNC, OPTIMIZE, VANISH, COPY, RESTORE,
setindex …) run in the worker pool while the connection stops reading, so
its replies stay in order and the loop stays free for the others. Replies
to everything decoded from one chunk of input are written with a single
``transport.write``. A client's pipeline of simple requests of one command
(PUT, GET, …) is decoded as one ``Run`` and answered by one run handler.

Malformed input is handled as ttserver handles it (spec §11): a rejected
header produces no reply; the bytes after it are parsed as the next request,
and the connection is closed when nothing follows. Unlike ttserver, a frame
left incomplete for ``frame_timeout`` seconds closes its connection.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from doqu_tyrant.tyrant import protocol as p
from doqu_tyrant.tyrant.protocol import Rejected, Request, RequestDecoder, Run, TextLine

from .commands import VERSION
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
        self.handlers = engine.commands.handlers
        self.runs = engine.commands.runs
        self.counts = engine.commands.counts
        self.decoder = RequestDecoder(engine.max_length)
        self.max_buffer = engine.max_length + FRAME_SLACK
        self.transport: asyncio.Transport | None = None
        self.fd = -1
        self.busy = False  # a request is running in the worker pool
        self.write_paused = False
        self.eof = False
        self.closed = False
        self.streaming = False  # this connection became a REPL stream
        self._timer: asyncio.TimerHandle | None = None
        self._grace: asyncio.TimerHandle | None = None
        self._drain: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None

    # -- asyncio callbacks ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        self.fd = sock.fileno() if sock is not None else -1
        self.engine.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.engine.connections.discard(self)
        self._cancel_timer()
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None
        if self._task is not None:
            self._task.cancel()
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self.streaming:
            return  # a REPL slave has nothing more to say
        self.decoder.feed(data)
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None
        if not self.busy and not self.write_paused:
            self._process()

    def eof_received(self) -> bool:
        self.eof = True
        if not self.busy:
            self._finish_if_idle()
        return True  # keep the transport open: replies may still be pending

    def pause_writing(self) -> None:
        self.write_paused = True
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        if not self.busy and not self.closed and not self.streaming:
            transport = self.transport
            if transport is not None and not transport.is_closing():
                transport.resume_reading()
            self._process()

    # -- request processing -------------------------------------------------------------

    def _process(self) -> None:
        """Handle every complete request buffered, then write all replies at once."""
        decoder = self.decoder
        next_event = decoder.next_batch
        handlers = self.handlers
        runs = self.runs
        counts = self.counts
        out: list[bytes] = []
        append = out.append
        handled = 0
        try:
            while True:
                event = next_event()
                if event is None:
                    break
                handled += 1
                if event.__class__ is Request:
                    cmd = event[0]
                    counts[cmd] += 1
                    handler = handlers[cmd]
                    if handler is not None:
                        reply = handler(event)  # type: ignore[arg-type]
                        if reply:
                            append(reply)
                    elif self._special(event, out):  # type: ignore[arg-type]
                        return
                elif event.__class__ is Run:
                    cmd = event[0]
                    counts[cmd] += len(event[1])
                    runs[cmd](event[1], out)  # type: ignore[misc]
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
                    out.append(text)
                if self.write_paused:
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
            elif handled or self._timer is None:
                self._arm_timer()
        elif self._timer is not None:
            self._cancel_timer()
        if self.eof:
            self._finish_if_idle()

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
        if not commands.is_slow(request):
            out.append(commands.execute(request))
            return False
        self._write(out)
        out.clear()
        self._cancel_timer()
        self.busy = True
        transport = self.transport
        assert transport is not None
        transport.pause_reading()
        future = self.engine.loop.run_in_executor(
            self.engine.executor, commands.execute, request
        )
        future.add_done_callback(self._slow_done)
        return True

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
        if not self.write_paused:
            transport.resume_reading()
            self._process()

    def _write(self, out: list[bytes]) -> None:
        if not out:
            return
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(out[0] if len(out) == 1 else b"".join(out))

    def _finish_if_idle(self) -> None:
        """After the client's EOF: close once every complete request is answered."""
        if not (self.busy or self.write_paused or self.streaming or self.closed):
            self._close()

    def _close(self) -> None:
        self._grace = None
        self._cancel_timer()
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.close()

    # -- frame timeout --------------------------------------------------------------------

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
        if self.write_paused:
            self._arm_timer()  # the client is slow to read replies, not to send
            return
        if self.decoder.buffered and not self.busy and not self.streaming:
            log.info("fd %d: closing: request incomplete for %ss (--frame-timeout)", self.fd,
                     self.engine.frame_timeout)
            self._close()

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

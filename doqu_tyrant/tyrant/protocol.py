"""Sans-IO codec for Tokyo Tyrant's binary protocol.

This module turns requests into bytes and bytes into replies (client side),
and bytes into requests and replies into bytes (server side). It never
touches a socket: the blocking client, the asyncio client and the bundled
server are thin I/O shells around it, so a frame is laid out in exactly one
place.

Client side::

    data = encode_get(b"key")            # one bytes object, sent with one call
    decoder = ReplyDecoder()
    decoder.expect(GET)
    decoder.feed(received)
    reply = decoder.next_reply()         # None until the reply is complete

Server side::

    decoder = RequestDecoder()
    decoder.feed(received)
    event = decoder.next_event()         # Request, Rejected, TextLine or None
    transport.write(reply_value(b"v"))
"""

from __future__ import annotations

import math
import operator
import re
import struct
from collections.abc import Iterable, Sequence
from itertools import repeat
from typing import NamedTuple

from .errors import TyrantProtocolError

__all__ = [
    "MAGIC",
    "COMMANDS",
    "Reply",
    "ReplyDecoder",
    "decode_reply",
    "Request",
    "Rejected",
    "TextLine",
    "Run",
    "RequestDecoder",
    "encode_request",
    "encode_double",
    "decode_double",
    "pack_record",
    "unpack_record",
    "parse_stat",
]

MAGIC = 0xC8

# Command codes (spec §2).
PUT = 0x10
PUTKEEP = 0x11
PUTCAT = 0x12
PUTSHL = 0x13
PUTNR = 0x18
OUT = 0x20
GET = 0x30
MGET = 0x31
VSIZ = 0x38
ITERINIT = 0x50
ITERNEXT = 0x51
FWMKEYS = 0x58
ADDINT = 0x60
ADDDOUBLE = 0x61
EXT = 0x68
SYNC = 0x70
OPTIMIZE = 0x71
VANISH = 0x72
COPY = 0x73
RESTORE = 0x74
SETMST = 0x78
RNUM = 0x80
SIZE = 0x81
STAT = 0x88
MISC = 0x90
REPL = 0xA0

COMMANDS: dict[int, str] = {
    PUT: "put", PUTKEEP: "putkeep", PUTCAT: "putcat", PUTSHL: "putshl", PUTNR: "putnr",
    OUT: "out", GET: "get", MGET: "mget", VSIZ: "vsiz", ITERINIT: "iterinit",
    ITERNEXT: "iternext", FWMKEYS: "fwmkeys", ADDINT: "addint", ADDDOUBLE: "adddouble",
    EXT: "ext", SYNC: "sync", OPTIMIZE: "optimize", VANISH: "vanish", COPY: "copy",
    RESTORE: "restore", SETMST: "setmst", RNUM: "rnum", SIZE: "size", STAT: "stat",
    MISC: "misc", REPL: "repl",
}

# MISC option bit: do not write this call to the update log.
MISC_NOULOG = 1
# EXT option bits: lock the record / lock the whole database.
EXT_LOCKREC = 1
EXT_LOCKGLB = 2
# RESTORE / SETMST option bit: consistency check.
REPL_CHECK = 1

# Server limits (spec §1.1).
MAX_LENGTH = 1 << 28
MAX_COUNT = 1 << 20
MAX_NAME = 1024

INT32_MIN = -(1 << 31)
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
FRACTION = 10**12

_B = struct.Struct(">B")
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_U64 = struct.Struct(">Q")
_HEAD = struct.Struct(">BB")
_HEAD1 = struct.Struct(">BBI")
_HEAD2 = struct.Struct(">BBII")
_HEAD3 = struct.Struct(">BBIII")
_HEAD_PUTSHL = struct.Struct(">BBIIi")
_HEAD_FWMKEYS = struct.Struct(">BBIi")
_HEAD_ADDINT = struct.Struct(">BBIi")
_HEAD_ADDDOUBLE = struct.Struct(">BBIqq")
_HEAD_EXT = struct.Struct(">BBIIII")
_HEAD_RESTORE = struct.Struct(">BBIQI")
_HEAD_SETMST = struct.Struct(">BBIIQI")
_HEAD_REPL = struct.Struct(">BBQI")
_KV = struct.Struct(">II")
_LIST_OF_ONE = struct.Struct(">BII")  # status, count 1, size
_QQ = struct.Struct(">qq")
_ULOG_HEAD = struct.Struct(">BQHHI")
_REPL_ENTRY_HEAD = struct.Struct(">BQII")

_u32 = _U32.pack
_I32_FROM = _I32.unpack_from
_II_FROM = struct.Struct(">ii").unpack_from
_new_tuple = tuple.__new__


# ---------------------------------------------------------------------------
# Real numbers (spec §1.2)


def encode_double(value: float) -> tuple[int, int]:
    """Split a real into the (integral, fraction × 10^12) pair the wire carries.

    Raises ``ValueError`` for finite numbers whose magnitude does not fit
    a signed 64-bit integral part: they cannot travel faithfully.
    """
    if math.isnan(value):
        return INT64_MIN, INT64_MIN
    if math.isinf(value):
        return (INT64_MAX if value > 0 else INT64_MIN), 0
    integral = math.trunc(value)
    if not INT64_MIN < integral < INT64_MAX:
        raise ValueError(f"real number {value!r} is out of range for the Tyrant protocol")
    return integral, math.trunc((value - integral) * FRACTION)


def encode_double_reply(value: float) -> tuple[int, int]:
    """Like :func:`encode_double`, but maps unrepresentable results the way
    ttserver does (they arrive as -inf) instead of raising."""
    try:
        return encode_double(value)
    except ValueError:
        return INT64_MIN, 0


def decode_double(integral: int, fraction: int) -> float:
    """Join the two wire integers of a real number back into a float."""
    if integral == INT64_MIN and fraction == INT64_MIN:
        return math.nan
    if integral == INT64_MAX:
        return math.inf
    if integral == INT64_MIN:
        return -math.inf
    return integral + fraction / FRACTION


# ---------------------------------------------------------------------------
# Table records (spec §5.1)


def pack_record(columns: dict[bytes, bytes] | list[tuple[bytes, bytes]]) -> bytes:
    """Serialise table columns as ``name\\0value\\0name\\0value`` (no trailing NUL)."""
    items = columns.items() if isinstance(columns, dict) else columns
    parts: list[bytes] = []
    for name, value in items:
        parts.append(name)
        parts.append(value)
    return b"\0".join(parts)


def unpack_record(data: bytes) -> dict[bytes, bytes]:
    """Parse a serialised table record; a dangling name is dropped, the last
    duplicate wins (the server's own rules)."""
    if not data:
        return {}
    parts = data.split(b"\0")
    it = iter(parts)
    return dict(zip(it, it))


# ---------------------------------------------------------------------------
# Request encoders (client side). Each returns one complete frame.


def encode_put(key: bytes, value: bytes, command: int = PUT) -> bytes:
    """PUT, PUTKEEP, PUTCAT or PUTNR (``command``) of ``key`` = ``value``."""
    return _HEAD2.pack(MAGIC, command, len(key), len(value)) + key + value


def encode_puts(keys: Sequence[bytes], values: Sequence[bytes], command: int = PUT) -> bytes:
    """``len(keys)`` PUT, PUTKEEP, PUTCAT or PUTNR requests (``keys[i]`` =
    ``values[i]``) in one buffer: the frames of :func:`encode_put`, joined."""
    count = len(keys)
    if len(values) != count:
        raise ValueError(f"{count} keys but {len(values)} values")
    parts: list[bytes] = [b""] * (3 * count)
    parts[0::3] = map(_HEAD2.pack, repeat(MAGIC, count), repeat(command, count), map(len, keys),
                      map(len, values))
    parts[1::3] = keys
    parts[2::3] = values
    return b"".join(parts)


def encode_putshl(key: bytes, value: bytes, width: int) -> bytes:
    return _HEAD_PUTSHL.pack(MAGIC, PUTSHL, len(key), len(value), width) + key + value


def encode_key(command: int, key: bytes) -> bytes:
    """OUT, GET or VSIZ of one key."""
    return _HEAD1.pack(MAGIC, command, len(key)) + key


def encode_mget(keys: list[bytes]) -> bytes:
    parts = [_HEAD1.pack(MAGIC, MGET, len(keys))]
    for key in keys:
        parts.append(_u32(len(key)))
        parts.append(key)
    return b"".join(parts)


def encode_simple(command: int) -> bytes:
    """A command without arguments: ITERINIT, ITERNEXT, SYNC, VANISH, RNUM, SIZE, STAT."""
    return _HEAD.pack(MAGIC, command)


def encode_fwmkeys(prefix: bytes, max: int = -1) -> bytes:
    if max < 0:
        max = 0x7FFFFFFF  # what the C client sends for "no limit"
    return _HEAD_FWMKEYS.pack(MAGIC, FWMKEYS, len(prefix), max) + prefix


def encode_addint(key: bytes, num: int) -> bytes:
    return _HEAD_ADDINT.pack(MAGIC, ADDINT, len(key), num) + key


def encode_adddouble(key: bytes, num: float) -> bytes:
    integral, fraction = encode_double(num)
    return _HEAD_ADDDOUBLE.pack(MAGIC, ADDDOUBLE, len(key), integral, fraction) + key


def encode_ext(name: bytes, key: bytes, value: bytes, opts: int = 0) -> bytes:
    head = _HEAD_EXT.pack(MAGIC, EXT, len(name), opts, len(key), len(value))
    return head + name + key + value


def encode_path(command: int, path: bytes) -> bytes:
    """OPTIMIZE (``path`` = tuning parameters) or COPY."""
    return _HEAD1.pack(MAGIC, command, len(path)) + path


def encode_restore(path: bytes, ts: int, opts: int = 0) -> bytes:
    return _HEAD_RESTORE.pack(MAGIC, RESTORE, len(path), ts, opts) + path


def encode_setmst(host: bytes, port: int, ts: int, opts: int = 0) -> bytes:
    return _HEAD_SETMST.pack(MAGIC, SETMST, len(host), port, ts, opts) + host


def encode_misc(name: bytes, args: list[bytes], opts: int = 0) -> bytes:
    parts = [_HEAD3.pack(MAGIC, MISC, len(name), opts, len(args)), name]
    for arg in args:
        parts.append(_u32(len(arg)))
        parts.append(arg)
    return b"".join(parts)


#: The frame of MISC ``genuid`` without arguments: ``GENUID_FRAME * n`` asks for n
#: new numbers (a bulk save pipelines thousands of these).
GENUID_FRAME = encode_misc(b"genuid", [], 0)
_GENUID_ARGS: tuple[bytes, int, list[bytes]] = (b"genuid", 0, [])


def encode_repl(ts: int, sid: int) -> bytes:
    return _HEAD_REPL.pack(MAGIC, REPL, ts, sid)


class Request(NamedTuple):
    """A decoded request: the command code and its fields in wire order.

    Fields by command: PUT/PUTKEEP/PUTCAT/PUTNR ``(key, value)``; PUTSHL
    ``(key, value, width)``; OUT/GET/VSIZ ``(key,)``; MGET ``(keys,)``;
    FWMKEYS ``(prefix, max)``; ADDINT ``(key, num)``; ADDDOUBLE
    ``(key, num)`` (a float); EXT ``(name, opts, key, value)``;
    OPTIMIZE/COPY ``(path,)``; RESTORE ``(path, ts, opts)``; SETMST
    ``(host, port, ts, opts)``; MISC ``(name, opts, args)``; REPL
    ``(ts, sid)``; the others ``()``.
    """

    command: int
    args: tuple


def encode_request(request: Request) -> bytes:
    """Encode a :class:`Request` back into its frame (inverse of decoding)."""
    c, a = request
    if c in (PUT, PUTKEEP, PUTCAT, PUTNR):
        return encode_put(a[0], a[1], c)
    if c == PUTSHL:
        return encode_putshl(*a)
    if c in (OUT, GET, VSIZ):
        return encode_key(c, a[0])
    if c == MGET:
        return encode_mget(a[0])
    if c == FWMKEYS:
        return _HEAD_FWMKEYS.pack(MAGIC, FWMKEYS, len(a[0]), a[1]) + a[0]
    if c == ADDINT:
        return encode_addint(*a)
    if c == ADDDOUBLE:
        return encode_adddouble(*a)
    if c == EXT:
        return encode_ext(a[0], a[2], a[3], a[1])
    if c in (OPTIMIZE, COPY):
        return encode_path(c, a[0])
    if c == RESTORE:
        return encode_restore(*a)
    if c == SETMST:
        return encode_setmst(*a)
    if c == MISC:
        return encode_misc(a[0], a[2], a[1])
    if c == REPL:
        return encode_repl(*a)
    if c in COMMANDS:
        return encode_simple(c)
    raise ValueError(f"unknown command code 0x{c:02x}")


# ---------------------------------------------------------------------------
# Reply decoding (client side)


class Reply(NamedTuple):
    """A decoded reply: ``ok`` is the status; ``value`` depends on the command.

    GET/ITERNEXT/EXT/STAT: bytes; VSIZ/ADDINT/RNUM/SIZE: int; ADDDOUBLE: float;
    MGET: list of (key, value); FWMKEYS/MISC: list of bytes; others: None.
    On failure ``value`` is None.
    """

    ok: bool
    value: object


# Reply shapes.
_S_STATUS, _S_NONE, _S_BYTES, _S_U32, _S_I32, _S_DOUBLE, _S_U64, _S_LIST, _S_PAIRS, _S_MISC = (
    range(10)
)

_SHAPES: dict[int, int] = {
    PUT: _S_STATUS, PUTKEEP: _S_STATUS, PUTCAT: _S_STATUS, PUTSHL: _S_STATUS,
    PUTNR: _S_NONE, OUT: _S_STATUS, GET: _S_BYTES, MGET: _S_PAIRS, VSIZ: _S_U32,
    ITERINIT: _S_STATUS, ITERNEXT: _S_BYTES, FWMKEYS: _S_LIST, ADDINT: _S_I32,
    ADDDOUBLE: _S_DOUBLE, EXT: _S_BYTES, SYNC: _S_STATUS, OPTIMIZE: _S_STATUS,
    VANISH: _S_STATUS, COPY: _S_STATUS, RESTORE: _S_STATUS, SETMST: _S_STATUS,
    RNUM: _S_U64, SIZE: _S_U64, STAT: _S_BYTES, MISC: _S_MISC,
}

_OK_NONE = Reply(True, None)
_FAILED = Reply(False, None)
_STATUS_REPLIES = (_OK_NONE, _FAILED)  # by status byte
_COUNT_SIZE_FROM = struct.Struct(">II").unpack_from  # a list reply's count and first size


_new_reply = tuple.__new__

# Successful one-element list replies whose element is 1 to 20 digits (a number:
# what ``genuid`` answers), each length field matching its digits, at most 1024 at
# a time (bounding the regex engine's stack); and the digits of each.
_NUMBER_REPLIES = re.compile(
    b"(?:\\x00\\x00\\x00\\x00\\x01\\x00\\x00\\x00(?:"
    + b"|".join(re.escape(bytes((n,))) + b"[0-9]{%d}" % n for n in range(1, 21))
    + b")){0,1024}")
_NUMBER_ELEMENT = re.compile(b"\\x00\\x00\\x00\\x00\\x01\\x00\\x00\\x00[\\x01-\\x14]([0-9]+)")


def decode_reply(command: int, data: bytes | bytearray | memoryview) -> tuple[Reply, int] | None:
    """One complete reply to ``command`` at the start of ``data``, with the
    number of bytes it takes; None when ``data`` does not hold all of it, or
    the reply is a list (use :class:`ReplyDecoder`, which decodes those
    incrementally).

    The fast path for the common exchange of one request and one reply that
    arrives in one piece; stateless, so nothing needs resetting afterwards.
    """
    shape = _SHAPES[command]
    if shape == _S_NONE:
        return _OK_NONE, 0
    size = len(data)
    if not size:
        return None
    status = data[0]
    if status == 0:
        if shape == _S_STATUS:
            return _OK_NONE, 1
        if shape == _S_BYTES:
            if size < 5:
                return None
            end = 5 + _U32.unpack_from(data, 1)[0]
            if end > size:
                return None
            return _new_reply(Reply, (True, bytes(data[5:end]))), end
        if shape == _S_U32 or shape == _S_I32:
            if size < 5:
                return None
            return _new_reply(Reply, (True, (_U32 if shape == _S_U32 else _I32)
                                      .unpack_from(data, 1)[0])), 5
        if shape == _S_U64:
            if size < 9:
                return None
            return _new_reply(Reply, (True, _U64.unpack_from(data, 1)[0])), 9
        if shape == _S_DOUBLE:
            if size < 17:
                return None
            return _new_reply(Reply, (True, decode_double(*_QQ.unpack_from(data, 1)))), 17
        return None  # lists: incremental decoder
    if status == 1:
        if shape == _S_MISC:
            return (_FAILED, 5) if size >= 5 else None
        return _FAILED, 1
    raise TyrantProtocolError(f"invalid status byte 0x{status:02x}")


class ReplyDecoder:
    """Decodes the replies to the requests sent on one connection, in order.

    Call :meth:`expect` with each request's command as it is sent, feed the
    received bytes, and take complete replies with :meth:`next_reply`.
    Long list replies are decoded incrementally: bytes already parsed are
    never parsed again, whatever the size of the chunks fed.
    """

    __slots__ = ("_buf", "_pos", "_expected", "_next", "_items", "_remaining", "_shape")

    def __init__(self) -> None:
        # An immutable ``bytes`` while one fed chunk is being parsed (values are
        # sliced out with a single copy), a ``bytearray`` while a reply spans
        # several chunks.
        self._buf: bytes | bytearray = b""
        self._pos = 0
        # The reply shapes announced, one byte each; ``_next`` indexes the next
        # one due (runs of one shape are then found and decoded in C).
        self._expected = bytearray()
        self._next = 0
        self._items: list | None = None  # partial list reply in progress
        self._remaining = 0
        self._shape = 0

    def expect(self, command: int) -> None:
        """Announce that a request with this command code was sent."""
        self._expected.append(_SHAPES[command])

    def expect_many(self, commands: Iterable[int]) -> None:
        """:meth:`expect` each of ``commands``, in order."""
        self._expected += bytes(map(_SHAPES.__getitem__, commands))

    @property
    def pending(self) -> int:
        """How many announced replies have not been returned yet."""
        return len(self._expected) - self._next

    def _taken(self, count: int) -> None:
        """``count`` announced replies were returned."""
        done = self._next + count
        expected = self._expected
        if done == len(expected):
            expected.clear()
            done = 0
        elif done >= 65536:  # a connection that is never idle: keep the memory bounded
            del expected[:done]
            done = 0
        self._next = done

    @property
    def buffered(self) -> int:
        """Bytes received but not consumed yet."""
        return len(self._buf) - self._pos

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        buf = self._buf
        pos = self._pos
        if pos == len(buf):
            self._buf = bytes(data)
            self._pos = 0
            return
        if type(buf) is bytes:
            self._buf = buf = bytearray(buf[pos:]) if pos else bytearray(buf)
            self._pos = 0
        elif pos >= 65536:
            # A long reply in progress: drop the consumed prefix so that
            # memory stays bounded by what is not parsed yet.
            del buf[:pos]  # type: ignore[union-attr]
            self._pos = 0
        buf += data  # type: ignore[operator]

    def take_items(self) -> list:
        """Remove and return the elements decoded so far of the list reply in
        progress (MGET pairs, FWMKEYS keys, MISC elements).

        Lets a caller consume a huge list while it arrives; the final
        :class:`Reply` then carries only the elements not taken yet.
        """
        items = self._items
        if not items:
            return []
        self._items = []
        return items

    def next_reply(self) -> Reply | None:
        """The next complete reply, or None if more bytes are needed.

        Raises :class:`TyrantProtocolError` on bytes that cannot be a reply;
        the connection must then be discarded.
        """
        index = self._next
        if index == len(self._expected):
            if len(self._buf) > self._pos:
                raise TyrantProtocolError(f"{self.buffered} unexpected bytes from the server")
            return None
        shape = self._expected[index]
        if shape == _S_NONE:
            self._taken(1)
            return _OK_NONE
        buf = self._buf
        pos = self._pos
        size = len(buf)
        if self._items is not None:
            reply = self._continue_list()
        else:
            if pos >= size:
                return None
            status = buf[pos]
            if status == 0:
                if shape == _S_STATUS:
                    self._pos = pos = pos + 1
                    reply = _OK_NONE
                elif shape == _S_BYTES:
                    if size - pos < 5:
                        return None
                    start = pos + 5
                    end = start + _U32.unpack_from(buf, pos + 1)[0]
                    if end > size:
                        return None
                    self._pos = end
                    reply = _new_reply(Reply, (True, bytes(buf[start:end])))
                else:
                    reply = self._parse_value(shape, buf, pos + 1)
            elif status == 1:
                if shape == _S_MISC:  # failure still carries a zero count
                    if size - pos < 5:
                        return None
                    self._pos = pos + 5
                else:
                    self._pos = pos + 1
                self._taken(1)
                if self._pos == size:
                    self._buf = b""
                    self._pos = 0
                return _FAILED
            else:
                raise TyrantProtocolError(f"invalid status byte 0x{status:02x}")
        if reply is not None:
            self._taken(1)
            if self._pos == len(self._buf):
                self._buf = b""
                self._pos = 0
        return reply

    def next_replies(self) -> list[Reply]:
        """Every announced reply complete in the buffer, in order (``[]`` when the
        next one needs more bytes): what calling :meth:`next_reply` until it
        returns None gives, without raising for bytes past the announced replies.

        A run of status-only replies (a pipeline of puts) is decoded in one
        pass, and so is a run of one-element list replies (those to ``genuid``).
        """
        out: list[Reply] = []
        expected = self._expected
        while self._next < len(expected):
            shape = expected[self._next]
            if self._items is None and (shape == _S_STATUS or shape == _S_MISC
                                        or shape == _S_LIST):
                if (self._status_run(out) if shape == _S_STATUS
                        else self._list_run(shape, out)):
                    continue
            reply = self.next_reply()
            if reply is None:
                break
            out.append(reply)
        return out

    def _status_run(self, out: list[Reply]) -> int:
        """Decode the status-only replies due and buffered; how many."""
        buf = self._buf
        pos = self._pos
        index = self._next
        run = self._expected[index : index + len(buf) - pos]
        count = len(run) - len(run.lstrip(b"\0"))  # (_S_STATUS is 0)
        if not count:
            return 0
        end = pos + count
        statuses = buf[pos:end]
        if statuses.translate(None, b"\0\1"):
            bad = next(b for b in statuses if b > 1)
            raise TyrantProtocolError(f"invalid status byte 0x{bad:02x}")
        out += map(_STATUS_REPLIES.__getitem__, statuses)
        self._taken(count)
        if end == len(buf):
            self._buf = b""
            self._pos = 0
        else:
            self._pos = end
        return count

    def _list_run(self, shape: int, out: list[Reply]) -> int:
        """Decode the successful one-element list replies (of ``shape``) due and
        buffered in a row; how many (the others take the general path).

        Replies holding a number (``genuid``'s) are matched many at a time by a
        regular expression that checks every one's length field.
        """
        buf = self._buf
        pos = self._pos
        size = len(buf)
        expected = self._expected
        index = start = self._next
        due = expected[index : index + (size - pos) // 9]  # (a reply takes 9 bytes or more)
        last = index + len(due) - len(due.lstrip(bytes((shape,))))
        while index < last:
            end = _NUMBER_REPLIES.match(buf, pos).end()  # type: ignore[union-attr]
            if end == pos:
                break
            numbers = _NUMBER_ELEMENT.findall(buf, pos, end)
            if len(numbers) > last - index:  # more than are due: the rest wait
                numbers = numbers[: last - index]
                end = pos + 9 * len(numbers) + sum(map(len, numbers))
            out += [_new_reply(Reply, (True, [number])) for number in numbers]
            index += len(numbers)
            pos = end
        unpack = _COUNT_SIZE_FROM
        append = out.append
        while index < last and pos + 9 <= size and buf[pos] == 0:
            count, length = unpack(buf, pos + 1)
            end = pos + 9 + length
            if count != 1 or end > size:
                break
            append(_new_reply(Reply, (True, [bytes(buf[pos + 9 : end])])))
            pos = end
            index += 1
        count = index - start
        if count:
            self._taken(count)
            if pos == size:
                self._buf = b""
                self._pos = 0
            else:
                self._pos = pos
        return count

    def _parse_value(self, shape: int, buf: bytes | bytearray, pos: int) -> Reply | None:
        avail = len(buf) - pos
        if shape == _S_STATUS:
            self._pos = pos
            return _OK_NONE
        if shape == _S_BYTES:
            if avail < 4:
                return None
            (size,) = _U32.unpack_from(buf, pos)
            end = pos + 4 + size
            if end > len(buf):
                return None
            self._pos = end
            return _new_reply(Reply, (True, bytes(buf[pos + 4 : end])))
        if shape == _S_U32 or shape == _S_I32:
            if avail < 4:
                return None
            self._pos = pos + 4
            unpack = _U32 if shape == _S_U32 else _I32
            return _new_reply(Reply, (True, unpack.unpack_from(buf, pos)[0]))
        if shape == _S_U64:
            if avail < 8:
                return None
            self._pos = pos + 8
            return _new_reply(Reply, (True, _U64.unpack_from(buf, pos)[0]))
        if shape == _S_DOUBLE:
            if avail < 16:
                return None
            self._pos = pos + 16
            return _new_reply(Reply, (True, decode_double(*_QQ.unpack_from(buf, pos))))
        # Lists: MGET pairs, FWMKEYS keys, MISC elements.
        if avail < 4:
            return None
        (count,) = _U32.unpack_from(buf, pos)
        if count > MAX_COUNT * 2:
            raise TyrantProtocolError(f"implausible element count {count}")
        self._pos = pos + 4
        self._items = []
        self._remaining = count
        self._shape = shape
        return self._continue_list()

    def _continue_list(self) -> Reply | None:
        buf = self._buf
        pos = self._pos
        end_buf = len(buf)
        items = self._items
        assert items is not None
        remaining = self._remaining
        append = items.append
        if self._shape == _S_PAIRS:
            unpack = _KV.unpack_from
            while remaining:
                if end_buf - pos < 8:
                    break
                ksiz, vsiz = unpack(buf, pos)
                kstart = pos + 8
                vstart = kstart + ksiz
                end = vstart + vsiz
                if end > end_buf:
                    break
                append((bytes(buf[kstart:vstart]), bytes(buf[vstart:end])))
                pos = end
                remaining -= 1
        else:
            unpack = _U32.unpack_from
            while remaining:
                if end_buf - pos < 4:
                    break
                (size,) = unpack(buf, pos)
                end = pos + 4 + size
                if end > end_buf:
                    break
                append(bytes(buf[pos + 4 : end]))
                pos = end
                remaining -= 1
        self._pos = pos
        self._remaining = remaining
        if remaining:
            return None
        self._items = None
        return _new_reply(Reply, (True, items))


# ---------------------------------------------------------------------------
# Request decoding (server side)


class Rejected(NamedTuple):
    """A request header the server refuses; ``reason`` says why.

    Like ttserver, only the bytes read so far are consumed: whatever follows
    is parsed as the next request. A server closes the connection when
    nothing else is buffered.
    """

    reason: str


class TextLine(NamedTuple):
    """A line that did not start with the magic byte (memcached/HTTP text)."""

    line: bytes


class Run(NamedTuple):
    """Consecutive requests of one command, decoded together by
    :meth:`RequestDecoder.next_batch`: ``args`` holds each request's
    :attr:`Request.args`, in order (two or more of them)."""

    command: int
    args: list[tuple]


# RequestDecoder's fast paths by command byte: 1 = key + value frame
# (PUT, PUTKEEP, PUTCAT, PUTNR), 2 = key frame (OUT, GET, VSIZ), 0 = other.
_FAST_KIND = tuple(
    1 if c in (PUT, PUTKEEP, PUTCAT, PUTNR) else 2 if c in (OUT, GET, VSIZ) else 0
    for c in range(256)
)


class _Incomplete(Exception):
    """More bytes are needed to finish the current frame."""


class _Reject(Exception):
    def __init__(self, reason: str, consumed: int) -> None:
        self.reason = reason
        self.consumed = consumed


class RequestDecoder:
    """Splits the byte stream of one connection into requests.

    ``max_length`` caps any single declared length (key, value, argument,
    path); a larger one is rejected before any memory is set aside for it.
    ``log_format=True`` parses update-log payloads, whose MISC frames have
    no options field.

    The buffer is the received ``bytes`` themselves while nothing is left
    over from an earlier chunk (no copy, and keys and values are plain
    slices of it); a partial frame is accumulated in a ``bytearray``, which
    is turned back into ``bytes`` once a complete frame sits at its front.
    """

    def __init__(self, max_length: int = MAX_LENGTH, *, log_format: bool = False) -> None:
        self.max_length = max_length
        self.log_format = log_format
        self._buf: bytes | bytearray = b""
        self._pos = 0
        # How far an incomplete frame has been checked, so that a frame
        # arriving in many small pieces is not re-parsed from its start each
        # time (quadratic work): the next byte to search for a text line's
        # LF, or (element position, elements left) for MGET/MISC.
        self._scanned = 0
        self._elements: tuple[int, int] | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not consumed by a complete request yet."""
        return len(self._buf) - self._pos

    def feed(self, data: bytes) -> None:
        buf = self._buf
        pos = self._pos
        if pos >= len(buf):
            # Nothing pending: parse the received bytes in place.
            self._buf = data if data.__class__ is bytes else bytes(data)
            self._pos = 0
            self._scanned = 0
            self._elements = None
            return
        if pos:
            self._pos = 0
            if self._scanned:
                self._scanned -= pos
            if self._elements is not None:
                self._elements = (self._elements[0] - pos, self._elements[1])
        if buf.__class__ is bytes:
            if len(buf) - pos <= len(data):
                # a frame's tail arrived: one bytes object again, ready to slice
                self._buf = buf[pos:] + data
                return
            # a large frame under way: accumulate (linear, unlike bytes + bytes)
            with memoryview(buf) as view:
                buf = bytearray(view[pos:])
        elif pos:
            del buf[:pos]  # type: ignore[union-attr]
        buf += data  # type: ignore[operator]
        self._buf = buf

    def _compact(self) -> bytes:
        """The buffer from the current position on, as ``bytes`` (position 0).

        Called when a complete frame starts at the position, so slices of the
        buffer are ``bytes`` at once, without a second copy each.
        """
        with memoryview(self._buf) as view:
            buf = view[self._pos :].tobytes()
        if self._scanned:
            self._scanned -= self._pos
        self._buf = buf
        self._pos = 0
        return buf

    def next_event(self) -> Request | Rejected | TextLine | None:
        """The next request (or rejection, or text line); None if incomplete."""
        buf = self._buf
        pos = self._pos
        size = len(buf)
        if pos >= size:
            return None
        if buf[pos] != MAGIC:
            nl = buf.find(b"\n", max(pos, self._scanned))
            if nl < 0:
                self._scanned = size
                return None
            self._scanned = 0
            self._pos = nl + 1
            return TextLine(bytes(buf[pos : nl + 1]))
        # Fast paths: complete, valid PUT/PUTKEEP/PUTCAT/PUTNR and GET/OUT/VSIZ
        # frames. Anything else (incomplete, invalid, other commands) takes
        # the general parser below, which decides exactly as before.
        if pos + 6 <= size:
            kind = _FAST_KIND[buf[pos + 1]]
            if kind == 1:
                if pos + 10 <= size:
                    ksiz, vsiz = _II_FROM(buf, pos + 2)
                    end = pos + 10 + ksiz + vsiz
                    max_length = self.max_length
                    if (
                        end <= size
                        and 0 <= ksiz <= max_length
                        and 0 <= vsiz <= max_length
                    ):
                        command = buf[pos + 1]
                        if buf.__class__ is not bytes:
                            buf = self._compact()
                            end -= pos
                            pos = 0
                        self._pos = end
                        vpos = pos + 10 + ksiz
                        return _new_tuple(
                            Request, (command, (buf[pos + 10 : vpos], buf[vpos:end]))
                        )
            elif kind == 2:
                (ksiz,) = _I32_FROM(buf, pos + 2)
                end = pos + 6 + ksiz
                if end <= size and 0 <= ksiz <= self.max_length:
                    command = buf[pos + 1]
                    if buf.__class__ is not bytes:
                        buf = self._compact()
                        end -= pos
                        pos = 0
                    self._pos = end
                    return _new_tuple(Request, (command, (buf[pos + 6 : end],)))
        # A frame is parsed in one pass when first seen. An MGET/MISC frame
        # found incomplete is then only walked on from where its complete
        # elements end (_elements_ready) until it is whole, not re-parsed.
        resumed = self._elements is not None
        if resumed and not self._elements_ready(buf, pos):
            return None
        if buf.__class__ is not bytes and pos + 1 < size and buf[pos + 1] in (MISC, MGET):
            buf = self._compact()
            pos = 0
        try:
            request, end = self._parse(buf, pos)
        except _Incomplete:
            if not resumed:
                self._elements_ready(buf, pos)
            return None
        except _Reject as rejection:
            self._pos = pos + rejection.consumed
            return Rejected(rejection.reason)
        self._pos = end
        return request

    def next_batch(self) -> Request | Run | Rejected | TextLine | None:
        """Like :meth:`next_event`, but a series of complete frames of one of
        PUT, PUTKEEP, PUTCAT, PUTNR, OUT, GET or VSIZ (a client's pipeline), or
        of :data:`GENUID_FRAME`, comes back as one :class:`Run`, each element
        the arguments that :meth:`next_event` would have returned for that
        frame."""
        buf = self._buf
        pos = self._pos
        size = len(buf)
        if pos + 6 > size or buf.__class__ is not bytes or buf[pos] != MAGIC:
            return self.next_event()
        command = buf[pos + 1]
        kind = _FAST_KIND[command]
        if not kind:
            if command == MISC and buf.startswith(GENUID_FRAME, pos):
                return self._genuid_run(buf, pos)
            return self.next_event()
        max_length = self.max_length
        items: list[tuple] = []
        append = items.append
        if kind == 1:
            while pos + 10 <= size and buf[pos] == MAGIC and buf[pos + 1] == command:
                ksiz, vsiz = _II_FROM(buf, pos + 2)
                vpos = pos + 10 + ksiz
                end = vpos + vsiz
                if end > size or ksiz < 0 or ksiz > max_length or vsiz < 0 or vsiz > max_length:
                    break
                append((buf[pos + 10 : vpos], buf[vpos:end]))
                pos = end
        else:
            while pos + 6 <= size and buf[pos] == MAGIC and buf[pos + 1] == command:
                (ksiz,) = _I32_FROM(buf, pos + 2)
                end = pos + 6 + ksiz
                if end > size or ksiz < 0 or ksiz > max_length:
                    break
                append((buf[pos + 6 : end],))
                pos = end
        if not items:
            return self.next_event()  # incomplete or invalid: decided the usual way
        self._pos = pos
        if len(items) == 1:
            return _new_tuple(Request, (command, items[0]))
        return _new_tuple(Run, (command, items))

    def _genuid_run(self, buf: bytes, pos: int) -> Request | Run:
        """The run of :data:`GENUID_FRAME` frames at ``pos`` (its elements share
        one arguments tuple, equal to what :meth:`next_event` returns)."""
        width = len(GENUID_FRAME)
        end = pos + width
        while buf.startswith(GENUID_FRAME, end):
            end += width
        self._pos = end
        if end == pos + width:
            return _new_tuple(Request, (MISC, _GENUID_ARGS))
        return _new_tuple(Run, (MISC, [_GENUID_ARGS] * ((end - pos) // width)))

    def _elements_ready(self, buf: bytes | bytearray, start: int) -> bool:
        """False while an MGET/MISC frame is surely incomplete (cheap, resumable).

        Walks the element length fields without copying anything, remembering
        where it stopped. True means "parse now": the frame is complete, or
        something in it is invalid and the parser decides what that means.
        """
        size = len(buf)
        if start + 2 > size:
            return True
        command = buf[start + 1]
        if command != MGET and command != MISC:
            return True
        state = self._elements
        if state is None:
            if command == MGET:
                head = 4
            else:
                head = 8 if self.log_format else 12
            if start + 2 + head > size:
                return True  # the parser's own checks are cheap here
            (count,) = _I32.unpack_from(buf, start + 2 + head - 4)
            epos = start + 2 + head
            if command == MISC:
                (nsiz,) = _I32.unpack_from(buf, start + 2)
                if nsiz < 0 or nsiz >= MAX_NAME or nsiz > self.max_length:
                    return True
                epos += nsiz
            if count < 0 or count > MAX_COUNT:
                return True
        else:
            epos, count = state
        max_length = self.max_length
        unpack = _I32.unpack_from
        while count:
            if epos + 4 > size:
                break
            (n,) = unpack(buf, epos)
            if n < 0 or n > max_length:
                self._elements = None
                return True
            if epos + 4 + n > size:
                break
            epos += 4 + n
            count -= 1
        if count or epos > size:
            self._elements = (epos, count)
            return False
        self._elements = None
        return True

    # Field readers: each returns the value and the position after it.

    def _length(self, buf: bytes | bytearray, pos: int, start: int, what: str) -> int:
        if pos + 4 > len(buf):
            raise _Incomplete
        (n,) = _I32.unpack_from(buf, pos)
        if n < 0 or n > self.max_length:
            raise _Reject(f"{what} length {n} out of range", pos + 4 - start)
        return n

    def _parse(self, buf: bytes | bytearray, start: int) -> tuple[Request, int]:
        size = len(buf)
        if start + 2 > size:
            raise _Incomplete
        command = buf[start + 1]
        if command == MISC:
            return self._parse_misc(buf, start)
        if command == MGET:
            return self._parse_mget(buf, start)
        pos = start + 2

        def need(n: int) -> None:
            if pos + n > size:
                raise _Incomplete

        if command in (PUT, PUTKEEP, PUTCAT, PUTNR, PUTSHL):
            ksiz = self._length(buf, pos, start, "key")
            vsiz = self._length(buf, pos + 4, start, "value")
            pos += 8
            width = 0
            if command == PUTSHL:
                need(4)
                (width,) = _I32.unpack_from(buf, pos)
                pos += 4
                if width < 0:
                    raise _Reject(f"negative width {width}", pos - start)
            need(ksiz + vsiz)
            key = bytes(buf[pos : pos + ksiz])
            value = bytes(buf[pos + ksiz : pos + ksiz + vsiz])
            pos += ksiz + vsiz
            if command == PUTSHL:
                return Request(command, (key, value, width)), pos
            return Request(command, (key, value)), pos
        if command in (OUT, GET, VSIZ, OPTIMIZE, COPY):
            ksiz = self._length(buf, pos, start, "key" if command < OPTIMIZE else "path")
            pos += 4
            need(ksiz)
            return Request(command, (bytes(buf[pos : pos + ksiz]),)), pos + ksiz
        if command in (ITERINIT, ITERNEXT, SYNC, VANISH, RNUM, SIZE, STAT):
            return Request(command, ()), pos
        if command == FWMKEYS:
            psiz = self._length(buf, pos, start, "prefix")
            need(8)
            (max_,) = _I32.unpack_from(buf, pos + 4)
            pos += 8
            need(psiz)
            return Request(command, (bytes(buf[pos : pos + psiz]), max_)), pos + psiz
        if command == ADDINT:
            ksiz = self._length(buf, pos, start, "key")
            need(8)
            (num,) = _I32.unpack_from(buf, pos + 4)
            pos += 8
            need(ksiz)
            return Request(command, (bytes(buf[pos : pos + ksiz]), num)), pos + ksiz
        if command == ADDDOUBLE:
            ksiz = self._length(buf, pos, start, "key")
            need(20)
            integral, fraction = _QQ.unpack_from(buf, pos + 4)
            pos += 20
            need(ksiz)
            key = bytes(buf[pos : pos + ksiz])
            return Request(command, (key, decode_double(integral, fraction))), pos + ksiz
        if command == EXT:
            nsiz = self._length(buf, pos, start, "name")
            if nsiz >= MAX_NAME:
                raise _Reject(f"function name length {nsiz} too long", pos + 4 - start)
            need(8)
            (opts,) = _U32.unpack_from(buf, pos + 4)
            ksiz = self._length(buf, pos + 8, start, "key")
            vsiz = self._length(buf, pos + 12, start, "value")
            pos += 16
            need(nsiz + ksiz + vsiz)
            name = bytes(buf[pos : pos + nsiz])
            pos += nsiz
            key = bytes(buf[pos : pos + ksiz])
            pos += ksiz
            value = bytes(buf[pos : pos + vsiz])
            return Request(command, (name, opts, key, value)), pos + vsiz
        if command == RESTORE:
            psiz = self._length(buf, pos, start, "path")
            need(16)
            ts, opts = struct.unpack_from(">QI", buf, pos + 4)
            pos += 16
            need(psiz)
            return Request(command, (bytes(buf[pos : pos + psiz]), ts, opts)), pos + psiz
        if command == SETMST:
            hsiz = self._length(buf, pos, start, "host")
            need(20)
            port, ts, opts = struct.unpack_from(">iQI", buf, pos + 4)
            pos += 20
            if port < 0:
                raise _Reject(f"negative port {port}", pos - start)
            need(hsiz)
            host = bytes(buf[pos : pos + hsiz])
            return Request(command, (host, port, ts, opts)), pos + hsiz
        if command == REPL:
            need(12)
            ts, sid = struct.unpack_from(">QI", buf, pos)
            pos += 12
            if ts < 1 or sid < 1 or sid > 0x7FFFFFFF:
                raise _Reject(f"invalid replication request ts={ts} sid={sid}", pos - start)
            return Request(command, (ts, sid)), pos
        raise _Reject(f"unknown command 0x{command:02x}", 2)

    def _parse_mget(self, buf: bytes | bytearray, start: int) -> tuple[Request, int]:
        if buf.__class__ is not bytes:
            buf = bytes(buf)  # next_event hands over bytes; slices are then copies once
        size = len(buf)
        pos = start + 2
        count = self._count(buf, pos, start)
        pos += 4
        max_length = self.max_length
        unpack = _I32_FROM
        keys: list[bytes] = []
        append = keys.append
        # Completeness is checked once at the end: after a cut-off key the next
        # size field lies past the end, where unpack_from fails.
        try:
            for _ in range(count):
                (ksiz,) = unpack(buf, pos)
                if ksiz < 0 or ksiz > max_length:
                    # ttserver answers for the keys read so far.
                    return _new_tuple(Request, (MGET, (keys,))), pos + 4
                pos += 4 + ksiz
                append(buf[pos - ksiz : pos])
        except struct.error:
            raise _Incomplete from None
        if pos > size:
            raise _Incomplete
        return _new_tuple(Request, (MGET, (keys,))), pos

    def _parse_misc(self, buf: bytes | bytearray, start: int) -> tuple[Request, int]:
        if buf.__class__ is not bytes:
            buf = bytes(buf)
        size = len(buf)
        pos = start + 2
        nsiz = self._length(buf, pos, start, "name")
        if nsiz >= MAX_NAME:
            raise _Reject(f"function name length {nsiz} too long", pos + 4 - start)
        pos += 4
        opts = 0
        if not self.log_format:
            if pos + 4 > size:
                raise _Incomplete
            (opts,) = _U32.unpack_from(buf, pos)
            pos += 4
        count = self._count(buf, pos, start)
        pos += 4
        end = pos + nsiz
        if end > size:
            raise _Incomplete
        name = buf[pos:end]
        pos = end
        max_length = self.max_length
        unpack = _I32_FROM
        args: list[bytes] = []
        append = args.append
        try:  # completeness checked as in _parse_mget
            for _ in range(count):
                (asiz,) = unpack(buf, pos)
                if asiz < 0 or asiz > max_length:
                    raise _Reject(f"argument length {asiz} out of range", pos + 4 - start)
                pos += 4 + asiz
                append(buf[pos - asiz : pos])
        except struct.error:
            raise _Incomplete from None
        if pos > size:
            raise _Incomplete
        return _new_tuple(Request, (MISC, (name, opts, args))), pos

    def _count(self, buf: bytes | bytearray, pos: int, start: int) -> int:
        if pos + 4 > len(buf):
            raise _Incomplete
        (n,) = _I32.unpack_from(buf, pos)
        if n < 0 or n > MAX_COUNT:
            raise _Reject(f"element count {n} out of range", pos + 4 - start)
        return n


# ---------------------------------------------------------------------------
# Reply encoders (server side)

REPLY_OK = b"\x00"
REPLY_FAIL = b"\x01"
REPLY_MISC_FAIL = b"\x01\x00\x00\x00\x00"


def reply_bytes(value: bytes) -> bytes:
    """GET, ITERNEXT, EXT and STAT success: status, size, bytes."""
    return b"\x00" + _u32(len(value)) + value


def reply_statuses(oks: list[bool]) -> bytes:
    """The replies to a series of status-only requests (PUT, OUT, …): one byte each."""
    return bytes(map(operator.not_, oks))  # REPLY_OK is 0, REPLY_FAIL 1


def reply_values(values: list[bytes | None]) -> bytes:
    """The replies to a series of GETs: :func:`reply_bytes`, or REPLY_FAIL for None."""
    parts: list[bytes] = []
    append = parts.append
    for value in values:
        if value is None:
            append(REPLY_FAIL)
        else:
            append(b"\x00" + _u32(len(value)))
            append(value)
    return b"".join(parts)


def reply_u32(n: int) -> bytes:
    return b"\x00" + _u32(n)


def reply_i32(n: int) -> bytes:
    return b"\x00" + _I32.pack(n)


def reply_u64(n: int) -> bytes:
    return b"\x00" + _U64.pack(n)


def reply_double(value: float) -> bytes:
    return b"\x00" + _QQ.pack(*encode_double_reply(value))


def reply_list(items: list[bytes]) -> bytes:
    """FWMKEYS and MISC success: status, count, sized elements."""
    n = len(items)
    parts = [b""] * (2 * n + 1)
    parts[0] = b"\x00" + _u32(n)
    parts[1::2] = map(_u32, map(len, items))  # element sizes and elements interleaved
    parts[2::2] = items
    return b"".join(parts)


def reply_lists_of_one(items: list[bytes]) -> bytes:
    """The successful replies to a series of MISC (or FWMKEYS) requests that each
    answer one element, ``items[i]``: :func:`reply_list` of each, joined."""
    count = len(items)
    parts: list[bytes] = [b""] * (2 * count)
    parts[0::2] = map(_LIST_OF_ONE.pack, repeat(0, count), repeat(1, count), map(len, items))
    parts[1::2] = items
    return b"".join(parts)


def reply_pairs(pairs: list[tuple[bytes, bytes]]) -> bytes:
    """MGET success: status, count, (ksiz, vsiz, key, value) per record."""
    pack = _KV.pack
    parts = [b"\x00", _u32(len(pairs))]
    for key, value in pairs:
        parts.append(pack(len(key), len(value)))
        parts.append(key)
        parts.append(value)
    return b"".join(parts)


# ---------------------------------------------------------------------------
# Update log and replication stream (spec §8, §9)

REPL_KEEPALIVE = b"\xca"
ULOG_MAGIC = 0xC9


def misc_log_payload(name: bytes, args: list[bytes]) -> bytes:
    """A MISC request as the update log stores it: without the options field."""
    parts = [_HEAD2.pack(MAGIC, MISC, len(name), len(args)), name]
    for arg in args:
        parts.append(_u32(len(arg)))
        parts.append(arg)
    return b"".join(parts)


def ulog_entry(ts: int, sid: int, mid: int, payload: bytes) -> bytes:
    """One update-log file entry: ``c9 ts:u64 sid:u16 mid:u16 size:u32 payload``."""
    return _ULOG_HEAD.pack(ULOG_MAGIC, ts, sid, mid, len(payload)) + payload


def parse_ulog(data: bytes) -> list[tuple[int, int, int, bytes]]:
    """Split update-log file contents into ``(ts, sid, mid, payload)`` entries.

    A torn entry at the end (a crash mid-write) is ignored.
    """
    entries = []
    pos = 0
    size = _ULOG_HEAD.size
    while pos + size <= len(data):
        magic, ts, sid, mid, length = _ULOG_HEAD.unpack_from(data, pos)
        if magic != ULOG_MAGIC:
            raise TyrantProtocolError(f"bad update-log entry at offset {pos}")
        end = pos + size + length
        if end > len(data):
            break
        entries.append((ts, sid, mid, bytes(data[pos + size : end])))
        pos = end
    return entries


def repl_entry(ts: int, sid: int, payload: bytes) -> bytes:
    """One replication stream entry: ``c9 ts:u64 sid:u32 size:u32 payload``."""
    return _REPL_ENTRY_HEAD.pack(ULOG_MAGIC, ts, sid, len(payload)) + payload


def repl_header(sid: int) -> bytes:
    return _u32(sid)


#: An entry of a replication stream: ``(ts, origin sid, payload)``.
ReplEntry = tuple[int, int, bytes]


def parse_repl_stream(
    data: bytes | bytearray | memoryview, max_size: int = 2 * MAX_LENGTH + (1 << 16)
) -> tuple[list[ReplEntry], int, int]:
    """The complete events at the start of a REPL stream (after the master's sid).

    Returns ``(entries, keepalives, consumed)``: the entries in order, how
    many keep-alive bytes were seen, and how many bytes were used (an
    incomplete entry at the end is left for the next call). Raises
    :class:`TyrantProtocolError` on a byte that starts neither, or an entry
    larger than ``max_size``.
    """
    entries: list[ReplEntry] = []
    keepalives = 0
    pos = 0
    end = len(data)
    head = _REPL_ENTRY_HEAD.size
    nop = REPL_KEEPALIVE[0]
    while pos < end:
        kind = data[pos]
        if kind == nop:
            keepalives += 1
            pos += 1
            continue
        if kind != ULOG_MAGIC:
            raise TyrantProtocolError(f"unexpected byte 0x{kind:02x} in a replication stream")
        if pos + head > end:
            break
        _magic, ts, sid, size = _REPL_ENTRY_HEAD.unpack_from(data, pos)
        if size > max_size:
            raise TyrantProtocolError(f"replication entry of {size} bytes is too large")
        stop = pos + head + size
        if stop > end:
            break
        entries.append((ts, sid, bytes(data[pos + head : stop])))
        pos = stop
    return entries, keepalives, pos


# ---------------------------------------------------------------------------
# STAT text


def parse_stat(text: bytes) -> dict[str, str]:
    """Parse STAT's ``name\\tvalue\\n`` lines into a dict of text."""
    result = {}
    for line in text.decode("utf-8", "replace").splitlines():
        name, sep, value = line.partition("\t")
        if sep:
            result[name] = value
    return result


def format_stat(items: list[tuple[str, object]]) -> bytes:
    """The inverse of :func:`parse_stat`, in the given order."""
    return "".join(f"{name}\t{value}\n" for name, value in items).encode()


def encode_reply(command: int, reply: Reply) -> bytes:
    """Encode a :class:`Reply` to ``command`` (inverse of :class:`ReplyDecoder`)."""
    shape = _SHAPES[command]
    if shape == _S_NONE:
        return b""
    if not reply.ok:
        return REPLY_MISC_FAIL if shape == _S_MISC else REPLY_FAIL
    value = reply.value
    if shape == _S_STATUS:
        return REPLY_OK
    if shape == _S_BYTES:
        assert isinstance(value, bytes)
        return reply_bytes(value)
    if shape == _S_U32:
        assert isinstance(value, int)
        return reply_u32(value)
    if shape == _S_I32:
        assert isinstance(value, int)
        return reply_i32(value)
    if shape == _S_U64:
        assert isinstance(value, int)
        return reply_u64(value)
    if shape == _S_DOUBLE:
        assert isinstance(value, float)
        return reply_double(value)
    if shape == _S_PAIRS:
        assert isinstance(value, list)
        return reply_pairs(value)
    assert isinstance(value, list)
    return reply_list(value)

"""Regular expressions as Tokyo Cabinet runs them, checked before they run.

Tokyo Cabinet evaluates STRRX conditions (a leading ``*`` = ignore case) and
the MISC ``regex`` function with the C library's
``regcomp(REG_EXTENDED | REG_NOSUB)`` in the C locale. :func:`check_regex`
parses an expression exactly as glibc's ``regcomp`` does and raises

* :class:`InvalidRegex` when ``regcomp`` rejects it (Tokyo Cabinet would
  silently match nothing, or fail the MISC call);
* :class:`RefusedRegex` when it is valid but would stall the server or
  exhaust its memory:

  - **backreferences** (``\\1``–``\\9``) switch glibc to a backtracking
    matcher whose time grows with a high power of the value's length
    (``(.*)\\1x`` takes 20 s on 2,000 bytes);
  - **expansion**: glibc copies a repeated element once per count and
    nested counts multiply; more than :data:`NODE_BUDGET` copies are refused;
  - **quadratic compilation**: optional copies (``a{1,n}``), repeated
    optional parts (``(a?){n}``) and alternatives make glibc's epsilon
    closures grow with the square of their number; more than
    :data:`CLOSURE_BUDGET` entries are refused;
  - **automaton size**: glibc builds its matcher lazily, a state of a few KB
    per distinct set of live positions, kept until the query ends
    (``.*a.{20}c`` can need 2^21); automata that could pass
    :data:`STATE_BUDGET` states are refused;
  - groups nested deeper than :data:`MAX_DEPTH` (glibc's parser recurses
    per level; about 20,000 crash the process), expressions longer than
    :data:`MAX_LENGTH`.

Both are :class:`RegexError`, a ``ValueError`` that carries the ``pattern``
and the ``offset`` of the problem. A first check of an ordinary expression
costs microseconds to tens of microseconds; results are cached.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

from ._regex_states import Automaton, positions
from ._regex_syntax import (
    CLOSURE_BUDGET,
    MAX_DEPTH,
    MAX_LENGTH,
    NODE_BUDGET,
    RE_DUP_MAX,
    STATE_BUDGET,
    WORK_BUDGET,
    Parser,
    Stop,
)

__all__ = [
    "RegexError",
    "InvalidRegex",
    "RefusedRegex",
    "RegexCost",
    "check_regex",
    "check_strrx",
    "regex_cost",
    "check_misc",
    "uses_regex",
    "REGEX_FUNCTIONS",
    "RE_DUP_MAX",
    "MAX_LENGTH",
    "MAX_DEPTH",
    "NODE_BUDGET",
    "CLOSURE_BUDGET",
    "STATE_BUDGET",
    "WORK_BUDGET",
]


class RegexError(ValueError):
    """A regular expression that Tokyo Cabinet would not run well."""

    def __init__(self, message: str, pattern: bytes = b"", offset: int | None = None) -> None:
        super().__init__(message)
        self.pattern = pattern
        self.offset = offset


class InvalidRegex(RegexError):
    """glibc's ``regcomp`` rejects the expression."""


class RefusedRegex(RegexError):
    """A valid expression refused because it is too costly for glibc."""


class RegexCost(NamedTuple):
    """What an accepted expression costs glibc (see the module's budgets)."""

    nodes: int  # nodes of the compiled expression
    closure: int  # epsilon-closure entries
    states: int  # automaton states (0: too few positions to need counting)


# -- the checker ------------------------------------------------------------------------

_SMALL = 10  # positions: at most 2**10 states, no need to count them
_CACHED = 1024  # longer expressions are rare: analysed each time, not kept


def _analyse(pattern: bytes, icase: bool, base: int) -> RegexCost | Stop:
    if len(pattern) > MAX_LENGTH:
        return Stop(False, f"longer than {MAX_LENGTH:,} bytes", None)
    if len(pattern) <= _CACHED:
        return _cached(pattern, icase, base)
    return _uncached(pattern, icase, base)


def _uncached(pattern: bytes, icase: bool, base: int) -> RegexCost | Stop:
    parser = Parser(pattern, icase, base)
    try:
        cost, ast = parser.parse()
        parser.budget(cost)
        if parser.backref is not None:
            return Stop(False, "backreferences make glibc's matching exponential "
                         f"(one at offset {parser.backref + base})", parser.backref)
        states = 0
        if positions(ast) > _SMALL:
            automaton = Automaton()
            first, last, nullable = automaton.build(ast)
            halts = not parser.late_anchor
            states = 1 if nullable and halts else automaton.states(first, last if halts else None)
    except Stop as stop:
        return stop
    return RegexCost(cost[0], cost[2], states)


_cached = functools.lru_cache(maxsize=4096)(_uncached)


def _as_bytes(pattern: str | bytes | bytearray | memoryview) -> bytes:
    if isinstance(pattern, str):
        try:
            return pattern.encode()
        except UnicodeEncodeError as exc:
            raise InvalidRegex(f"invalid regular expression {_shown(pattern)}: character "
                               f"{exc.object[exc.start]!r} at index {exc.start} has no UTF-8 "
                               "form", b"", exc.start) from None
    if isinstance(pattern, (bytes, bytearray, memoryview)):
        return bytes(pattern)
    raise TypeError(f"a regular expression must be str or bytes, not {type(pattern).__name__}")


def _shown(pattern: object) -> str:
    if isinstance(pattern, bytes):
        try:
            pattern = pattern.decode()
        except UnicodeDecodeError:
            pass
    text = repr(pattern)
    return text if len(text) <= 80 else text[:60] + "..." + text[-12:]


def _run(data: bytes, icase: bool, shown: object, base: int) -> RegexCost:
    if b"\0" in data:
        raise InvalidRegex(f"invalid regular expression {_shown(shown)}: contains a NUL byte "
                           "(the C library would end the expression there)", data)
    result = _analyse(data, icase, base)
    if isinstance(result, Stop):
        offset = None if result.offset is None else result.offset + base
        if result.invalid:
            raise InvalidRegex(f"invalid regular expression {_shown(shown)}: {result.reason}",
                               data, offset)
        raise RefusedRegex(f"regular expression {_shown(shown)} refused: {result.reason}",
                           data, offset)
    return result


def regex_cost(pattern: str | bytes, *, icase: bool = False) -> RegexCost:
    """What ``pattern`` costs glibc; raises :class:`RegexError` like :func:`check_regex`."""
    return _run(_as_bytes(pattern), bool(icase), pattern, 0)


def check_regex(pattern: str | bytes, *, icase: bool = False) -> None:
    """Raise :class:`InvalidRegex` or :class:`RefusedRegex` unless glibc runs
    ``pattern`` (POSIX extended, C locale; ``icase``: ``REG_ICASE``) cheaply.
    Offsets in messages count bytes of the UTF-8 form."""
    _run(_as_bytes(pattern), bool(icase), pattern, 0)


def check_strrx(expr: str | bytes) -> None:
    """:func:`check_regex` for a STRRX condition or MISC ``regex`` pattern: a
    leading ``*`` is Tokyo Cabinet's ignore-case flag, not part of the
    expression."""
    data = _as_bytes(expr)
    if data[:1] == b"*":
        _run(data[1:], True, expr, 1)
    else:
        _run(data, False, expr, 0)


# -- the expressions of a MISC call -------------------------------------------------------

#: MISC functions whose arguments may hold regular expressions.
REGEX_FUNCTIONS = frozenset({b"search", b"metasearch", b"regex"})

_STRRX = 7
_NEGATE, _NOIDX = 1 << 24, 1 << 25
_BLANKS = bytes(range(1, 33))


def check_misc(name: bytes, args: Sequence[bytes]) -> None:
    """Raise :class:`RefusedRegex` if Tokyo Cabinet would run a costly regular
    expression for MISC ``name`` with ``args``: the pattern of ``regex``, or
    a STRRX condition (``addcond``/``cond``) of ``search``/``metasearch`` in
    any sub-query. Arguments are read as the library reads them (C strings,
    its operator syntax). Invalid expressions pass: the library rejects them
    before any costly work, and the call answers as in ttserver."""
    if name == b"regex":
        if args:
            _check_misc_expr(args[0])
        return
    if name not in REGEX_FUNCTIONS:
        return
    for arg in args:
        if arg[:4] in (b"addc", b"cond"):
            tokens = arg.split(b"\0", 4)
            if len(tokens) > 3 and tokens[0] in (b"addcond", b"cond") and _is_strrx(tokens[2]):
                _check_misc_expr(tokens[3])


def uses_regex(name: bytes, args: Sequence[bytes]) -> bool:
    """Whether MISC ``name`` with ``args`` makes Tokyo Cabinet run a regular
    expression (``regex``, or a STRRX condition of ``search``/``metasearch``),
    whose time can grow with the square of a value's length."""
    if name == b"regex":
        return True
    if name not in REGEX_FUNCTIONS:
        return False
    for arg in args:
        if arg[:4] in (b"addc", b"cond"):
            tokens = arg.split(b"\0", 4)
            if len(tokens) > 3 and tokens[0] in (b"addcond", b"cond") and _is_strrx(tokens[2]):
                return True
    return False


def _check_misc_expr(expr: bytes) -> None:
    try:
        check_strrx(expr.split(b"\0", 1)[0])
    except InvalidRegex:
        pass


def _is_strrx(text: bytes) -> bool:
    """Whether Tokyo Cabinet reads the operator ``text`` as STRRX, with any flags
    (``tctdbqrystrtocondop``: ``!``/``~``, then ``+``, then a name in any case
    or a decimal number, kept as a C int)."""
    flags = 0
    if text[:1] in (b"!", b"~"):
        flags, text = _NEGATE, text[1:]
    if text[:1] == b"+":
        flags, text = flags | _NOIDX, text[1:]
    if text.upper() in (b"STRRX", b"RX"):
        return True
    number = _c_number(text)
    if number is None:
        return False
    code = (number + (1 << 31)) % (1 << 32) - (1 << 31)
    return code >= 0 and (code | flags) & ~(_NEGATE | _NOIDX) == _STRRX


def _c_number(text: bytes) -> int | None:
    """``tcatoi(text)`` when ``tcstrisnum`` accepts it: blanks, ``-``, digits,
    ``.``, digits, blanks, with a digit somewhere; None otherwise."""
    body = text.strip(_BLANKS)
    negative = body[:1] == b"-"
    whole, _, frac = (body[1:] if negative else body).partition(b".")
    if not (whole or frac) or (whole and not whole.isdigit()) or (frac and not frac.isdigit()):
        return None
    value = int(whole) if whole else 0
    return -value if negative else value

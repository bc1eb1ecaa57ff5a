"""Refuse MISC calls whose regular expressions would stall Tokyo Cabinet.

The library compiles and runs STRRX conditions (``search``/``metasearch``
arguments ``addcond``/``cond``, in every sub-query, ``out`` searches
included) and the pattern of the ``regex`` function with glibc, inline on
the server's event loop. :func:`refusal` reads those arguments as the
library does and checks each expression with
:func:`doqu_tyrant.tyrant.regex.check_strrx`:

* a costly expression (backreferences, huge expansions or automata) makes
  the whole call fail;
* an invalid one is passed on unchanged, so the answer stays ttserver's (the
  condition matches nothing; ``regex`` fails), since glibc rejects it before
  any costly work.
"""

from __future__ import annotations

from collections.abc import Sequence

from doqu_tyrant.tyrant.regex import InvalidRegex, RefusedRegex, check_strrx

__all__ = ["REGEX_FUNCTIONS", "refusal"]

#: MISC functions that run regular expressions.
REGEX_FUNCTIONS = frozenset({b"search", b"metasearch", b"regex"})

_STRRX = 7
_NEGATE, _NOIDX = 1 << 24, 1 << 25
_OP_NAMES = (b"STRRX", b"RX")


def refusal(name: bytes, args: Sequence[bytes]) -> str | None:
    """Why the MISC call ``name`` must not run (None: it may)."""
    if name == b"regex":
        return _check(args[0]) if args else None
    for arg in args:
        if arg[:4] not in (b"addc", b"cond"):
            continue
        tokens = arg.split(b"\0", 4)
        if len(tokens) > 3 and tokens[0] in (b"addcond", b"cond") and _is_strrx(tokens[2]):
            reason = _check(tokens[3])
            if reason is not None:
                return reason
    return None


def _check(expr: bytes) -> str | None:
    try:
        check_strrx(expr.split(b"\0", 1)[0])  # the library reads a C string
    except InvalidRegex:
        return None
    except RefusedRegex as exc:
        return str(exc)
    return None


def _is_strrx(text: bytes) -> bool:
    """Whether Tokyo Cabinet reads the operator ``text`` as STRRX (with any flags)."""
    code = _parse_op(text.split(b"\0", 1)[0])
    return code is not None and code & ~(_NEGATE | _NOIDX) == _STRRX


def _parse_op(text: bytes) -> int | None:
    """An operator as the library parses it (``tctdbqrystrtocondop``): ``!``/``~``
    then ``+``, a name (any case) or a decimal number; None if it does not parse."""
    flags = 0
    if text[:1] in (b"!", b"~"):
        flags |= _NEGATE
        text = text[1:]
    if text[:1] == b"+":
        flags |= _NOIDX
        text = text[1:]
    if text.upper() in _OP_NAMES:
        return _STRRX | flags
    number = _c_number(text)
    if number is None:
        return None
    code = (number + (1 << 31)) % (1 << 32) - (1 << 31)  # the library keeps an int
    return None if code < 0 else code | flags


def _c_number(text: bytes) -> int | None:
    """``tcatoi`` of ``text`` when ``tcstrisnum`` accepts it, else None."""
    body = text.lstrip(bytes(range(1, 33))).rstrip(bytes(range(1, 33)))
    negative = body[:1] == b"-"
    digits = body[1:] if negative else body
    whole, dot, frac = digits.partition(b".")
    if not (whole or frac) or not (whole.isdigit() or not whole) or not (
            frac.isdigit() or not frac):
        return None
    value = int(whole) if whole else 0
    return -value if negative else value

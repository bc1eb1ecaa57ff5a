"""Regular expressions as Tokyo Cabinet runs them, checked before they run.

Tokyo Cabinet evaluates STRRX conditions (a leading ``*`` = ignore case) and
the MISC ``regex`` function with the C library's
``regcomp(REG_EXTENDED | REG_NOSUB)`` in the C locale. :func:`check_regex`
parses an expression exactly as glibc's ``regcomp`` does and raises

* :class:`InvalidRegex` when ``regcomp`` rejects it (Tokyo Cabinet then
  silently matches nothing, or fails the MISC call);
* :class:`RefusedRegex` when it is valid but can make the library stall or
  exhaust memory:

  - **backreferences** (``\\1``–``\\9``) switch glibc to a backtracking
    matcher whose time grows with a high power of the value's length
    (``(.*)\\1x`` takes 20 s on 2,000 bytes);
  - **expansion**: glibc copies the element of a counted repetition once per
    count, nested counts multiply (``((a{1,60}){1,60}){1,60}`` is 216,000
    copies), and optional copies (``a{1,n}``, ``(a?){n}``, long alternations)
    cost memory quadratic in their number while compiling;
  - **automaton size**: glibc builds its matching automaton lazily, one state
    per distinct set of live positions, and keeps every state until the query
    ends; ``.*a.{20}c`` can need 2^21 states (gigabytes).

Both are :class:`RegexError`, a ``ValueError``. Checking an ordinary
expression costs tens of microseconds; results are cached.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import NamedTuple

__all__ = [
    "RegexError",
    "InvalidRegex",
    "RefusedRegex",
    "RegexCost",
    "check_regex",
    "check_strrx",
    "regex_cost",
    "RE_DUP_MAX",
    "MAX_LENGTH",
    "NODE_BUDGET",
    "CLOSURE_BUDGET",
    "STATE_BUDGET",
    "WORK_BUDGET",
]

#: glibc's largest repetition count.
RE_DUP_MAX = 0x7FFF
#: Longest expression accepted (bytes).
MAX_LENGTH = 1 << 16
#: Nodes glibc may create while compiling (every copy of a repeated element).
NODE_BUDGET = 20_000
#: Entries of glibc's epsilon-closure tables (8 bytes each).
CLOSURE_BUDGET = 500_000
#: States of the matching automaton (about 2.5 KB each in glibc).
STATE_BUDGET = 10_000
#: Positions visited while building the automaton (bounds our own work).
WORK_BUDGET = 1_000_000


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

    nodes: int  # nodes created while compiling
    closure: int  # epsilon-closure entries
    states: int  # automaton states (0: too few positions to need counting)


# -- byte sets (C locale; NUL never occurs in a C string) -------------------------------


def _span(lo: int, hi: int) -> int:
    return ((1 << (hi + 1)) - 1) ^ ((1 << lo) - 1)


def _chars(text: bytes) -> int:
    mask = 0
    for b in text:
        mask |= 1 << b
    return mask


_ALL = _span(1, 255)
_UPPER = _span(65, 90)
_LOWER = _span(97, 122)
_DIGIT = _span(48, 57)
_ALPHA = _UPPER | _LOWER
_SPACE = _span(9, 13) | 1 << 32
_PRINT = _span(32, 126)
_CLASSES = {
    b"alpha": _ALPHA, b"upper": _UPPER, b"lower": _LOWER, b"digit": _DIGIT,
    b"xdigit": _DIGIT | _span(65, 70) | _span(97, 102), b"space": _SPACE,
    b"print": _PRINT, b"graph": _span(33, 126), b"cntrl": _span(1, 31) | 1 << 127,
    b"blank": _chars(b" \t"), b"alnum": _ALPHA | _DIGIT,
    b"punct": _span(33, 126) & ~(_ALPHA | _DIGIT),
}  # fmt: skip
_WORD = _ALPHA | _DIGIT | 1 << 95
_ESCAPE_CLASSES = {0x77: _WORD, 0x57: _ALL & ~_WORD, 0x73: _SPACE, 0x53: _ALL & ~_SPACE}
_ANCHOR_ESCAPES = frozenset(b"<>bB`'")
_UPCASE = bytes(range(97)) + bytes(range(65, 91)) + bytes(range(123, 256))


def _fold(mask: int) -> int:
    return mask | (mask >> 32 & _UPPER) | (mask & _UPPER) << 32


# -- glibc's compile cost -----------------------------------------------------------------
#
# A summary of a subtree as glibc compiles it: (n, f, e, k, z) = its nodes, the
# size of the epsilon closure of its entry, the sum of its nodes' epsilon
# closures, how many of its nodes reach its exit by epsilon moves, and whether
# its entry does. Closures are upper bounds: they may count a node twice.

Cost = tuple[int, int, int, int, bool]
_EMPTY: Cost = (0, 0, 0, 0, True)
_ATOM: Cost = (1, 1, 1, 0, False)
_EPSILON: Cost = (1, 1, 1, 1, True)  # an anchor
_BOUNDARY: Cost = (3, 3, 5, 3, True)  # \b, \B: an alternative of two anchors


def _cat(a: Cost, b: Cost) -> Cost:
    return (a[0] + b[0], a[1] + (b[1] if a[4] else 0), a[2] + b[2] + a[3] * b[1],
            b[3] + (a[3] if b[4] else 0), a[4] and b[4])


def _alt(a: Cost, b: Cost) -> Cost:
    f = 1 + a[1] + b[1]
    return (1 + a[0] + b[0], f, a[2] + b[2] + f, a[3] + b[3] + (a[4] or b[4]), a[4] or b[4])


def _star(a: Cost) -> Cost:
    f = 1 + a[1]
    return (1 + a[0], f, a[2] + (a[3] + 1) * f, a[3] + 1, True)


def _group(a: Cost) -> Cost:
    return _cat(_cat(_EPSILON, a), _EPSILON)


# -- the parser ---------------------------------------------------------------------------

# tokens outside brackets
_END, _CHAR, _ANCHOR, _BREF, _CLASS, _ALT, _STAR, _PLUS, _QMARK = range(9)
_OPEN_DUP, _CLOSE_DUP, _OPEN, _CLOSE, _BRACKET, _PERIOD, _BACKSLASH = range(9, 16)
_DUPS = (_STAR, _PLUS, _QMARK, _OPEN_DUP)
_SPECIAL = {
    0x7C: _ALT, 0x2A: _STAR, 0x2B: _PLUS, 0x3F: _QMARK, 0x7B: _OPEN_DUP, 0x7D: _CLOSE_DUP,
    0x28: _OPEN, 0x29: _CLOSE, 0x5B: _BRACKET, 0x2E: _PERIOD, 0x5E: _ANCHOR, 0x24: _ANCHOR,
}  # fmt: skip
# bracket elements
_SB, _COLL, _EQUIV, _CCLASS = range(4)

Ast = tuple  # ("c", mask) | ("cat", [ast]) | ("alt", [ast | None]) | ("rep", ast, lo, hi)


class _Stop(Exception):
    """Ends the parse: refused (``invalid=False``) or invalid."""

    def __init__(self, invalid: bool, reason: str, offset: int | None) -> None:
        super().__init__(reason)
        self.invalid, self.reason, self.offset = invalid, reason, offset


class _Parser:
    """glibc's ``parse_reg_exp`` and friends for POSIX ERE syntax, C locale."""

    def __init__(self, pattern: bytes, icase: bool, base: int) -> None:
        self.base = base  # added to the offsets in messages
        self.s = pattern
        self.u = pattern.translate(_UPCASE) if icase else pattern  # glibc upcases with ICASE
        self.n = len(pattern)
        self.icase = icase
        self.i = 0  # offset after the current token
        self.tok, self.val, self.at = _END, 0, 0
        self.nsub = 0
        self.completed = 0  # bit g-1: group g is closed (glibc: completed_bkref_map)
        self.created = 0
        self.backref: int | None = None  # offset of the first backreference
        self.late_anchor = False  # an anchor that may stand between a match and its end

    def fail(self, reason: str, offset: int | None = None, note: str = "") -> _Stop:
        at = self.at if offset is None else offset
        return _Stop(True, f"{reason} at offset {at + self.base}{note}", at)

    def fetch(self) -> None:
        i, s = self.i, self.s
        self.at = i
        if i >= self.n:
            self.tok, self.val = _END, 0
            return
        c = self.u[i]
        if c == 0x5C:  # backslash
            if i + 1 >= self.n:
                self.tok, self.val, self.i = _BACKSLASH, 0, i + 1
                return
            c2 = s[i + 1]
            self.i = i + 2
            if 0x31 <= c2 <= 0x39:
                self.tok, self.val = _BREF, c2 - 0x30
            elif c2 in _ANCHOR_ESCAPES:
                self.tok, self.val = _ANCHOR, c2
            elif c2 in _ESCAPE_CLASSES:
                self.tok, self.val = _CLASS, _ESCAPE_CLASSES[c2]
            else:
                self.tok, self.val = _CHAR, c2
            return
        self.tok, self.val, self.i = _SPECIAL.get(c, _CHAR), c, i + 1

    def parse(self) -> tuple[Cost, Ast | None]:
        self.fetch()
        cost, ast = self.reg_exp(0)
        return _cat(cost, _ATOM), ast  # glibc appends an END_OF_RE node

    def reg_exp(self, nest: int) -> tuple[Cost, Ast | None]:
        initial = self.completed
        cost, ast = self.branch(nest)
        branches = [ast]
        while self.tok == _ALT:
            self.fetch()
            if self.tok not in (_ALT, _END) and (nest == 0 or self.tok != _CLOSE):
                accumulated = self.completed
                self.completed = initial
                bcost, bast = self.branch(nest)
                self.completed |= accumulated
            else:
                bcost, bast = _EMPTY, None
            cost = _alt(cost, bcost)
            branches.append(bast)
            self.budget(cost)
        return cost, (("alt", branches) if len(branches) > 1 else ast)

    def branch(self, nest: int) -> tuple[Cost, Ast | None]:
        cost, ast = self.expression(nest)
        parts = [] if ast is None else [ast]
        while self.tok not in (_ALT, _END) and (nest == 0 or self.tok != _CLOSE):
            ecost, east = self.expression(nest)
            cost = _cat(cost, ecost)
            self.budget(cost)
            if east is not None:
                parts.append(east)
        return cost, (parts[0] if len(parts) == 1 else ("cat", parts) if parts else None)

    def expression(self, nest: int) -> tuple[Cost, Ast | None]:
        tok, val = self.tok, self.val
        cost: Cost
        ast: Ast | None
        if tok in (_CHAR, _CLOSE, _CLOSE_DUP):  # an unmatched ) or } is itself
            cost, ast = _ATOM, ("c", _fold(1 << val) if self.icase else 1 << val)
        elif tok == _OPEN:
            cost, ast = self.group(nest + 1)
        elif tok == _BRACKET:
            cost, ast = _ATOM, ("c", self.bracket())
        elif tok == _PERIOD:
            cost, ast = _ATOM, ("c", _ALL)
        elif tok == _CLASS:
            cost, ast = _ATOM, ("c", val)
        elif tok == _BREF:
            if not self.completed >> (val - 1) & 1:
                raise self.fail(f"\\{val} refers to no complete group before it")
            if self.backref is None:
                self.backref = self.at
            cost, ast = _ATOM, ("c", _ALL)
        elif tok == _ANCHOR:
            if self.at or val not in (0x5E, 0x60):  # other than a leading ^ or \`
                self.late_anchor = True
            self.fetch()  # glibc returns here: an anchor takes no repetition
            return (_BOUNDARY if val in (0x62, 0x42) else _EPSILON), None
        elif tok in _DUPS:
            raise self.fail(f"{chr(val)} has nothing to repeat")
        elif tok == _BACKSLASH:
            raise self.fail("trailing backslash")
        else:  # | or the end: an empty expression
            return _EMPTY, None
        self.fetch()
        while self.tok in _DUPS:
            cost, ast = self.dup(cost, ast)
        return cost, ast

    def group(self, nest: int) -> tuple[Cost, Ast | None]:
        index = self.nsub
        self.nsub += 1
        start = self.at
        self.fetch()
        if self.tok == _CLOSE:
            cost, ast = _EMPTY, None
        else:
            cost, ast = self.reg_exp(nest)
            if self.tok != _CLOSE:
                raise self.fail("unmatched (", start)
        if index < 9:
            self.completed |= 1 << index
        return _group(cost), ast

    def number(self) -> int:
        """glibc's ``fetch_number``: -1 none, -2 malformed, else the count."""
        num = -1
        while True:
            self.fetch()
            if self.tok == _END:
                return -2
            if self.tok == _CLOSE_DUP or (self.tok == _CHAR and self.val == 0x2C):
                return num
            if self.tok != _CHAR or not 0x30 <= self.val <= 0x39 or num == -2:
                num = -2
            else:
                num = self.val - 0x30 if num == -1 else min(RE_DUP_MAX + 1, num * 10 + self.val - 0x30)

    def dup(self, cost: Cost, ast: Ast | None) -> tuple[Cost, Ast | None]:
        start_at, tok = self.at, self.tok
        hi: int | None
        if tok == _OPEN_DUP:
            lo = self.number()
            if lo == -1:
                if self.tok != _CHAR:
                    raise self.fail("empty {} repetition", start_at)
                lo = 0  # {,m} is {0,m}
            end = -2
            if lo != -2:
                end = lo if self.tok == _CLOSE_DUP else (
                    self.number() if self.tok == _CHAR else -2)
            if lo == -2 or end == -2:
                if self.tok == _END:
                    raise self.fail("unmatched {", start_at)
                raise self.fail("malformed repetition count", start_at)
            if (end != -1 and lo > end) or self.tok != _CLOSE_DUP:
                raise self.fail("malformed repetition count", start_at)
            if (lo if end == -1 else end) > RE_DUP_MAX:
                raise self.fail(f"repetition count above {RE_DUP_MAX}", start_at)
            hi = None if end == -1 else end
        else:
            lo, hi = (1, None) if tok == _PLUS else (0, None) if tok == _STAR else (0, 1)
        self.fetch()
        if ast is None and cost[0] == 0:
            return cost, None  # glibc drops a repetition of nothing
        if hi == 0:
            return _EMPTY, None
        copies = hi if hi is not None else lo + 1
        self.created += copies * cost[0]
        if self.created > NODE_BUDGET:
            raise _Stop(False, f"the repetition at offset {start_at + self.base} would make "
                        f"glibc create more than {NODE_BUDGET:,} nodes while compiling "
                        "(nested counts multiply)", start_at)
        total = _EMPTY
        for _ in range(lo):
            total = _cat(total, cost)
        if hi is None:
            total = _cat(total, _star(cost))
        elif hi > lo:
            tail = _alt(cost, _EMPTY)
            for _ in range(lo + 2, hi + 1):
                tail = _alt(_cat(tail, cost), _EMPTY)
            total = _cat(total, tail)
        self.budget(total)
        return total, (None if ast is None else ("rep", ast, lo, hi))

    def budget(self, cost: Cost) -> None:
        if cost[2] > CLOSURE_BUDGET:
            raise _Stop(False, f"glibc would build epsilon closures of more than "
                        f"{CLOSURE_BUDGET:,} entries while compiling (optional copies, "
                        "repeated optional parts and alternatives cost memory quadratic in "
                        f"their number; this exceeds it by offset {self.at + self.base})",
                        self.at)

    # -- bracket expressions (glibc's parse_bracket_exp) ----------------------------------

    def btoken(self, i: int) -> tuple[int, int, int]:
        """(kind, byte, length) of the bracket token at ``i``; kind -1 = end."""
        if i >= self.n:
            return -1, 0, 0
        c = self.u[i]
        if c == 0x5B:  # [
            c2 = self.u[i + 1] if i + 1 < self.n else 0
            if c2 == 0x2E:
                return _COLL + 10, c2, 2
            if c2 == 0x3D:
                return _EQUIV + 10, c2, 2
            if c2 == 0x3A:
                return _CCLASS + 10, c2, 2
        return {0x2D: 1, 0x5D: 2, 0x5E: 3}.get(c, 0), c, 1  # 1 -, 2 ], 3 ^, 0 char

    def bracket(self) -> int:
        start = self.at
        i = self.at + 1
        kind, c, size = self.btoken(i)
        if kind == -1:
            raise self.fail("unmatched [", start)
        negate = kind == 3
        if negate:
            i += size
            kind, c, size = self.btoken(i)
            if kind == -1:
                raise self.fail("unmatched [", start)
        if kind == 2:
            kind = 0  # a ] first is itself
        mask = 0
        first = True
        while True:
            at = i
            (etype, eval_), i = self.element(i, kind, c, size, first)
            first = False
            kind, c, size = self.btoken(i)
            is_range = False
            if etype not in (_CCLASS, _EQUIV):
                if kind == -1:
                    raise self.fail("unmatched [", start)
                if kind == 1:
                    kind2, c2, size2 = self.btoken(i + size)
                    if kind2 == -1:
                        raise self.fail("unmatched [", start)
                    if kind2 == 2:
                        kind = 0  # a - before the closing ] is itself
                    else:
                        is_range = True
                        i += size
            if is_range:
                (etype2, eval2), i = self.element(i, kind2, c2, size2, True)
                kind, c, size = self.btoken(i)
                mask |= self.range_(etype, eval_, etype2, eval2, at)
            else:
                mask |= self.single(etype, eval_, at)
            if kind == -1:
                raise self.fail("unmatched [", start)
            if kind == 2:
                break
        self.i = i + 1
        if self.icase:
            mask = _fold(mask)
        return _ALL & ~mask if negate else mask

    def element(self, i: int, kind: int, c: int, size: int, accept_hyphen: bool
                ) -> tuple[tuple[int, object], int]:
        at = i
        i += size
        if kind >= 10:
            return self.symbol(i, kind - 10, c, at)
        if kind == 1 and not accept_hyphen and self.btoken(i)[0] != 2:
            raise self.fail("a - that neither ends the bracket nor a range", at)
        return (_SB, c), i

    def symbol(self, i: int, etype: int, delim: int, at: int) -> tuple[tuple[int, object], int]:
        source = self.s if etype == _CCLASS else self.u  # glibc reads class names raw
        name = bytearray()
        while True:
            if len(name) >= 32 or i + 1 >= self.n:
                raise self.fail(f"unterminated [{chr(delim)}", at)
            ch = source[i]
            i += 1
            if ch == delim and self.u[i] == 0x5D:
                return (etype, bytes(name)), i + 1
            name.append(ch)

    def single(self, etype: int, value: object, at: int) -> int:
        if etype == _SB:
            return 1 << value  # type: ignore[operator]
        name = value
        assert isinstance(name, bytes)
        if etype == _CCLASS:
            if self.icase and name in (b"upper", b"lower"):
                name = b"alpha"
            if name not in _CLASSES:
                raise self.fail(f"unknown character class [:{name.decode('latin-1')}:]", at)
            return _CLASSES[name]
        if len(name) != 1:
            what = "equivalence class" if etype == _EQUIV else "collating element"
            raise self.fail(f"unknown {what} {name.decode('latin-1')!r}", at,
                            " (the C locale has single characters only)")
        return 1 << name[0]

    def range_(self, t1: int, v1: object, t2: int, v2: object, at: int) -> int:
        ends = []
        for etype, value in ((t1, v1), (t2, v2)):
            if etype in (_CCLASS, _EQUIV):
                raise self.fail("a class as the end of a range", at)
            if etype == _COLL:
                assert isinstance(value, bytes)
                if len(value) != 1:
                    raise self.fail(f"unknown collating element {value.decode('latin-1')!r}",
                                    at, " (the C locale has single characters only)")
                value = value[0]
            assert isinstance(value, int)
            ends.append(value)
        lo, hi = ends
        if lo > hi:
            note = " (ignoring case, glibc compares upper-case forms)" if self.icase else ""
            raise self.fail(f"range {chr(lo)!r}-{chr(hi)!r} out of order", at, note)
        return _span(lo, hi) & _ALL


# -- the matching automaton ---------------------------------------------------------------


class _Automaton:
    """Positions (Glushkov) of the expanded expression, for counting DFA states."""

    def __init__(self) -> None:
        self.masks: list[int] = []
        self.follow: list[set[int]] = []
        self.work = 0

    def build(self, ast: Ast | None) -> tuple[set[int], list[int], bool]:
        """(first, last, nullable) of ``ast``, adding its positions."""
        if ast is None:
            return set(), [], True
        kind = ast[0]
        if kind == "c":
            p = len(self.masks)
            self.masks.append(ast[1])
            self.follow.append(set())
            return {p}, [p], False
        if kind == "cat":
            first: set[int] = set()
            last: list[int] = []
            nullable = True
            for part in ast[1]:
                first, last, nullable = self.cat(first, last, nullable, *self.build(part))
            return first, last, nullable
        if kind == "alt":
            first, last, nullable = set(), [], False
            for part in ast[1]:
                f, la, z = self.build(part)
                first |= f
                last += la
                nullable = nullable or z
            return first, last, nullable
        _, body, lo, hi = ast  # expanded as glibc does: x{2,4} is x x ((x)? x)?
        first, last, nullable = set(), [], True
        for _ in range(lo):
            first, last, nullable = self.cat(first, last, nullable, *self.build(body))
        if hi is None:
            f, la, _ = self.build(body)
            self.link(la, f)
            return self.cat(first, last, nullable, f, la, True)
        if hi > lo:
            tf, tl, _ = self.build(body)
            for _ in range(lo + 1, hi):
                tf, tl, _ = self.cat(tf, tl, True, *self.build(body))
            return self.cat(first, last, nullable, tf, tl, True)
        return first, last, nullable

    def cat(self, f1: set[int], l1: list[int], z1: bool, f2: set[int], l2: list[int], z2: bool
            ) -> tuple[set[int], list[int], bool]:
        self.link(l1, f2)
        if z1:
            f1 |= f2
        return (f1 if z1 else f1), (l2 + l1 if z2 else l2), z1 and z2

    def link(self, last: list[int], first: set[int]) -> None:
        if last and first:
            self.work += len(last) * len(first)
            if self.work > WORK_BUDGET:
                raise _Stop(False, _TOO_COMPLEX, None)
            follow = self.follow
            for p in last:
                follow[p] |= first

    def states(self, start: set[int], final: list[int] | None) -> int:
        """How many states the subset construction from ``start`` reaches.

        A state is a bit set of positions. Most positions are followed by the
        next one (``p`` → ``p + 1``), so a step is a shift of the positions a
        byte advances plus the few other follow sets of those positions.
        ``final``: the positions that end a match, where glibc stops (None:
        anchors may keep it going).
        """
        masks, follow = self.masks, self.follow
        size = len(masks)
        words = 1 + size // 64
        distinct = set(masks)
        classes = [_ALL]  # the bytes no position tells apart
        work = self.work
        for m in distinct:
            classes = [part for cls in classes for part in (cls & m, cls & ~m) if part]
            work += len(classes)
        advance = [_bits(p for p, m in enumerate(masks) if m & cls) for cls in classes]
        succ = _bits(p for p in range(size) if p + 1 in follow[p])
        extra: dict[int, int] = {}
        for p in range(size):
            others = follow[p] - {p + 1}
            if others:
                extra[p] = _bits(others)
                work += len(others)
        jumps = _bits(extra)
        work += len(classes) * words
        if work > WORK_BUDGET:
            raise _Stop(False, _TOO_COMPLEX, None)
        halt = _bits(final) if final is not None else 0
        init = _bits(start)
        seen = {init}
        todo = [init]
        while todo:
            state = todo.pop()
            for mask in advance:
                moved = state & mask
                if not moved:
                    continue
                nxt = (moved & succ) << 1
                rest = moved & jumps
                while rest:
                    low = rest & -rest
                    nxt |= extra[low.bit_length() - 1]
                    rest ^= low
                    work += words
                work += words
                if nxt and nxt not in seen:
                    seen.add(nxt)
                    if not moved & halt:
                        todo.append(nxt)
                    if len(seen) > STATE_BUDGET:
                        raise _Stop(False, f"glibc's matcher could build more than "
                                    f"{STATE_BUDGET:,} automaton states, a few KB each, "
                                    "and keep them until the query ends (a long run of "
                                    "positions after .* or another open-ended part)", None)
            if work > WORK_BUDGET:
                raise _Stop(False, _TOO_COMPLEX, None)
        return len(seen)


def _bits(positions: Iterable[int]) -> int:
    """A bit set of positions."""
    items = list(positions)
    if len(items) < 32:
        mask = 0
        for p in items:
            mask |= 1 << p
        return mask
    marks = bytearray(b"0" * (max(items) + 1))
    for p in items:
        marks[p] = 0x31
    return int(marks[::-1], 2)


def _positions(ast: Ast | None) -> int:
    if ast is None:
        return 0
    kind = ast[0]
    if kind == "c":
        return 1
    if kind in ("cat", "alt"):
        return sum(_positions(a) for a in ast[1])
    _, body, lo, hi = ast
    return _positions(body) * (hi if hi is not None else max(lo, 1))


# -- the checker ------------------------------------------------------------------------

_SMALL = 10  # positions: at most 2**10 states, no need to count them
_TOO_COMPLEX = (f"too complex to analyse within {WORK_BUDGET:,} steps (its automaton or "
                "its closures would be large)")


@functools.lru_cache(maxsize=4096)
def _analyse(pattern: bytes, icase: bool, base: int) -> RegexCost | _Stop:
    if len(pattern) > MAX_LENGTH:
        return _Stop(False, f"longer than {MAX_LENGTH:,} bytes", None)
    parser = _Parser(pattern, icase, base)
    try:
        cost, ast = parser.parse()
        parser.budget(cost)
        if parser.backref is not None:
            return _Stop(False, "backreferences make glibc's matching exponential "
                         f"(one at offset {parser.backref + base})", parser.backref)
        states = 0
        if _positions(ast) > _SMALL:
            automaton = _Automaton()
            first, last, nullable = automaton.build(ast)
            halts = not parser.late_anchor
            states = 1 if nullable and halts else automaton.states(first, last if halts else None)
    except _Stop as stop:
        return stop
    except RecursionError:
        return _Stop(False, "nested too deeply", None)
    return RegexCost(cost[0], cost[2], states)


def _as_bytes(pattern: str | bytes | bytearray | memoryview) -> bytes:
    if isinstance(pattern, str):
        return pattern.encode("utf-8", "surrogatepass")
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
    if isinstance(result, _Stop):
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

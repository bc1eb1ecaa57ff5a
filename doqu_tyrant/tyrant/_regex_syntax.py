"""glibc's POSIX extended syntax, parsed as ``regcomp`` parses it (C locale).

:class:`Parser` follows glibc's ``parse_reg_exp``/``parse_expression``/
``parse_dup_op``/``parse_bracket_exp`` token for token, so it rejects exactly
what glibc rejects, at the same point, and estimates on the way what glibc
builds: the nodes of the expanded expression and the size of their epsilon
closures (a :data:`Cost`). It also returns the expression as a small tree of
byte sets (:data:`Ast`) for :mod:`._regex_states`. Private to
:mod:`doqu_tyrant.tyrant.regex`.
"""

from __future__ import annotations

#: glibc's largest repetition count.
RE_DUP_MAX = 0x7FFF
#: Longest expression accepted (bytes).
MAX_LENGTH = 1 << 16
#: Deepest nesting of groups (glibc's parser recurses per level and crashes
#: the process at about 20,000).
MAX_DEPTH = 100
#: Nodes glibc may create while expanding counted repetitions.
NODE_BUDGET = 20_000
#: Entries of glibc's epsilon-closure tables (8 bytes each).
CLOSURE_BUDGET = 500_000
#: States of the matching automaton (about 2.5 KB each in glibc).
STATE_BUDGET = 10_000
#: Positions visited while building the automaton (bounds our own work).
WORK_BUDGET = 1_000_000

TOO_COMPLEX = (f"too complex to analyse within {WORK_BUDGET:,} steps (its automaton or "
                "its closures would be large)")


# -- byte sets (C locale; NUL never occurs in a C string) -------------------------------


def _span(lo: int, hi: int) -> int:
    return ((1 << (hi + 1)) - 1) ^ ((1 << lo) - 1)


def _chars(text: bytes) -> int:
    mask = 0
    for b in text:
        mask |= 1 << b
    return mask


ALL_BYTES = _span(1, 255)
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
_ESCAPE_CLASSES = {0x77: _WORD, 0x57: ALL_BYTES & ~_WORD, 0x73: _SPACE, 0x53: ALL_BYTES & ~_SPACE}
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


class Stop(Exception):
    """Ends the parse: refused (``invalid=False``) or invalid."""

    def __init__(self, invalid: bool, reason: str, offset: int | None) -> None:
        super().__init__(reason)
        self.invalid, self.reason, self.offset = invalid, reason, offset


class Parser:
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

    def fail(self, reason: str, offset: int | None = None, note: str = "") -> Stop:
        at = self.at if offset is None else offset
        return Stop(True, f"{reason} at offset {at + self.base}{note}", at)

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
            cost, ast = _ATOM, ("c", ALL_BYTES)
        elif tok == _CLASS:
            cost, ast = _ATOM, ("c", val)
        elif tok == _BREF:
            if not self.completed >> (val - 1) & 1:
                raise self.fail(f"\\{val} refers to no complete group before it")
            if self.backref is None:
                self.backref = self.at
            cost, ast = _ATOM, ("c", ALL_BYTES)
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
        if nest > MAX_DEPTH:
            raise Stop(False, f"groups nested deeper than {MAX_DEPTH} (glibc's parser recurses "
                       "once per level and crashes the process at about 20,000)", self.at)
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
                digit = self.val - 0x30
                num = digit if num == -1 else min(RE_DUP_MAX + 1, num * 10 + digit)

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
            raise Stop(False, f"the repetition at offset {start_at + self.base} would make "
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
            raise Stop(False, f"glibc would build epsilon closures of more than "
                       f"{CLOSURE_BUDGET:,} entries while compiling, by offset "
                       f"{self.at + self.base} (optional copies, repeated optional parts and "
                       "alternatives cost memory quadratic in their number)", self.at)

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
        return ALL_BYTES & ~mask if negate else mask

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
        return _span(lo, hi) & ALL_BYTES

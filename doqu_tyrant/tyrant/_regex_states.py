"""How many states glibc's matching automaton can reach for a parsed expression.

glibc matches with a lazily built DFA whose states are sets of live NFA
positions, created on first use and kept until ``regfree`` (for Tokyo
Cabinet: until the query ends). :class:`Automaton` builds the position
automaton (Glushkov) of the expanded expression, counted repetitions copied
as glibc copies them, and counts the subsets reachable from the start,
stopping at a budget. Private to :mod:`doqu_tyrant.tyrant.regex`.
"""

from __future__ import annotations

from collections.abc import Iterable

from ._regex_syntax import ALL_BYTES, STATE_BUDGET, TOO_COMPLEX, WORK_BUDGET, Ast, Stop


class Automaton:
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
        return f1, (l2 + l1 if z2 else l2), z1 and z2

    def link(self, last: list[int], first: set[int]) -> None:
        if last and first:
            self.work += len(last) * len(first)
            if self.work > WORK_BUDGET:
                raise Stop(False, TOO_COMPLEX, None)
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
        classes = [ALL_BYTES]  # the bytes no position tells apart
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
            raise Stop(False, TOO_COMPLEX, None)
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
                        raise Stop(False, f"glibc's matcher could build more than "
                                    f"{STATE_BUDGET:,} automaton states, a few KB each, "
                                    "and keep them until the query ends (a long run of "
                                    "positions after .* or another open-ended part)", None)
            if work > WORK_BUDGET:
                raise Stop(False, TOO_COMPLEX, None)
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


def positions(ast: Ast | None) -> int:
    if ast is None:
        return 0
    kind = ast[0]
    if kind == "c":
        return 1
    if kind in ("cat", "alt"):
        return sum(positions(a) for a in ast[1])
    _, body, lo, hi = ast
    return positions(body) * (hi if hi is not None else lo + 1)

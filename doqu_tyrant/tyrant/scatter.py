"""Table searches over shards, merged into one server's answer (no I/O).

:func:`search` is a generator: it yields a *batch* — for some shard indexes,
the MISC calls ``(name, args, opts)`` to send there — and is sent back the
replies (the result lists, per shard, per call); it returns the merged
result list. The blocking and the asyncio sharded clients drive it, each
sending one batch's requests to all its shards at once (threads or
``gather``), so a search costs one round trip of wall time, two for a
limited delete or a raw union with sorted or limited parts.

How answers are merged so that they equal a single server's:

* each shard is asked for ``skip + max`` records with no skip; the merged
  list is cut to the query's window;
* sorted results are merged by Tokyo Cabinet's comparison
  (:mod:`.tcorder`); to compare, each shard also returns the order column
  (added to ``get`` and removed again). Ties keep the order of the shards,
  then each shard's own order. Unsorted results are the shards' results one
  after the other: a single server gives its storage order there, which no
  merge can reproduce, so this order is merely deterministic;
* ``count`` is summed (a limit applies to the sum), ``get`` columns come
  through as requested;
* ``out`` without a limit runs on every shard; with a limit the records to
  delete are found first (exactly the global top ``max`` after ``skip``),
  then removed with ``outlist``;
* a metasearch runs on every shard when that gives the same set and order:
  a key lives on one shard, so a union, intersection or difference of
  sub-queries is the union of each shard's. A union whose first part is not
  sorted but whose parts are, or whose later parts are limited, depends on
  the global order of each part, so there every part is searched on every
  shard (in one batch), merged, and combined here as the server combines
  them (first the parts' results in turn, re-sorted by the first part's
  order if it has one, then its window);
* the server's own quirks are kept: ``count`` with a metasearch answers 0,
  ``out`` with a metasearch deletes what its *last* part matches.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Generator, Iterable, Sequence
from itertools import chain, islice
from typing import Any

from .commands import HINT_PREFIX, strip_hint
from .query import parse_values
from .searchargs import DIFF, INT_MAX, ISECT, UNION, Plan, Sub
from .tcorder import column_key, pk_key

__all__ = ["Call", "Batch", "Replies", "search", "stream_args"]

Call = tuple[bytes, list[bytes], int]
Batch = dict[int, list[Call]]
Replies = dict[int, list[list[bytes]]]
Search = Generator[Batch, Replies, list[bytes]]

_SEARCH = b"search"
_META = b"metasearch"


# ---------------------------------------------------------------------------
# Elements: what each shard returns and how the merge reads it


class _Shape:
    """The ``get`` to send so that every element yields what the merge needs.

    ``columns`` is what the caller asked for (None: keys). The merge may
    need the primary key (``pk``) and the values of some ``extra`` columns;
    those are requested too and removed from the elements handed back.
    """

    __slots__ = ("columns", "request", "parsed", "strip", "keep")

    def __init__(self, columns: list[bytes] | None, pk: bool = False,
                 extra: Iterable[bytes] = ()) -> None:
        extra = [x for x in dict.fromkeys(extra) if x]
        self.columns = columns
        self.strip = False
        self.keep: frozenset[bytes] = frozenset()
        if columns is None:
            self.request: list[bytes] | None = [b"", *extra] if extra else None
        elif not columns:
            self.request = []
        else:
            wanted = set(columns)
            added = [x for x in ([b""] if pk else []) + extra if x not in wanted]
            self.request = columns + added
            self.strip = bool(added)
            self.keep = frozenset(columns)
        # elements must be split into columns
        self.parsed = self.request is not None and (bool(extra) or pk or self.strip)

    def get_arg(self) -> list[bytes]:
        if self.request is None:
            return []
        return [b"\0".join([b"get", *self.request])]

    def item(self, element: bytes) -> tuple[bytes, bytes | None, dict[bytes, bytes] | None]:
        """``(element as the caller asked, primary key or None, columns or None)``."""
        if self.request is None:
            return element, element, None
        if not self.parsed:
            return element, None, None
        cols = parse_values(element, True)
        pk = cols.get(b"")
        if self.columns is None:
            return pk if pk is not None else b"", pk, cols
        if self.strip:
            keep = self.keep
            element = b"\0".join(chain.from_iterable(
                (n, v) for n, v in cols.items() if n in keep))
        return element, pk, cols


_Item = tuple[bytes, Any, Any]  # (element, pk, columns)


def _sort_key(order: tuple[bytes, int]) -> tuple[Callable[[_Item], Any], bool]:
    column, kind = order
    if not column:
        pkey, reverse = pk_key(kind)
        return (lambda item: pkey(item[1])), reverse
    ckey, reverse = column_key(kind)
    return (lambda item: ckey(item[2].get(column))), reverse


def _merge(lists: list[list[bytes]], shape: _Shape, order: tuple[bytes, int] | None,
           start: int, stop: int) -> list[_Item]:
    """The shards' elements merged (by ``order``, else one shard after another)
    and cut to ``[start:stop]``."""
    streams = [map(shape.item, elements) for elements in lists]
    if order is None:
        merged: Iterable[_Item] = chain.from_iterable(streams)
    else:
        key, reverse = _sort_key(order)
        merged = heapq.merge(*streams, key=key, reverse=reverse)
    return list(islice(merged, start, None if stop >= INT_MAX else stop))


# ---------------------------------------------------------------------------
# Hints


class _Hints:
    """The planner explanations of every reply, labelled by shard."""

    def __init__(self, names: Sequence[str], wanted: bool) -> None:
        self.names = names
        self.wanted = wanted
        self.parts: list[str] = []

    def take(self, index: int, items: list[bytes]) -> list[bytes]:
        text = strip_hint(items)
        if text is not None:
            self.parts.append(f"[{self.names[index]}]\n{text}")
        return items

    def finish(self, result: list[bytes]) -> list[bytes]:
        if self.wanted:
            result.append(HINT_PREFIX + "".join(self.parts).encode())
        return result


def _hint_arg(hints: _Hints) -> list[bytes]:
    return [b"hint"] if hints.wanted else []


# ---------------------------------------------------------------------------
# Searches


Split = Callable[[list[bytes]], dict[int, list[bytes]]]


def search(plan: Plan, names: Sequence[str], split: Split, opts: int = 0) -> Search:
    """Run ``plan`` over the shards ``names``; ``split`` groups keys by the index
    of the shard holding them. See the module docs."""
    hints = _Hints(names, plan.hint)
    nshards = len(names)
    if not plan.compound:
        result = yield from _simple(plan, plan.subs[0], nshards, hints, opts, split)
    elif plan.out:
        result = yield from _simple(plan, plan.subs[-1], nshards, hints, opts, split)
    elif plan.count or plan.mstype not in (UNION, ISECT, DIFF):
        result = yield from _native_meta(plan, nshards, hints, opts)
    elif plan.mstype == UNION and _union_needs_parts(plan):
        result = yield from _union(plan, nshards, hints, opts)
    else:
        result = yield from _native_meta(plan, nshards, hints, opts)
    return hints.finish(result)


def stream_args(plan: Plan) -> list[bytes] | None:
    """Per-shard arguments when the result is every shard's answer in turn
    (one unsorted, unlimited, non-deleting, non-counting search), else None."""
    if plan.compound or plan.out or plan.count:
        return None
    sub = plan.subs[0]
    if sub.order is not None or sub.limited:
        return None
    return sub.args() + _Shape(plan.columns).get_arg()


def _each(nshards: int, call: Call) -> Batch:
    return {i: [call] for i in range(nshards)}


def _first(replies: Replies, nshards: int, hints: _Hints) -> list[list[bytes]]:
    return [hints.take(i, replies[i][0]) for i in range(nshards)]


def _count_total(lists: list[list[bytes]]) -> int:
    return sum(int(items[0]) if items else 0 for items in lists)


def _elements(sub: Sub, shape: _Shape, nshards: int, hints: _Hints, opts: int,
              name: bytes = _SEARCH) -> Generator[Batch, Replies, list[_Item]]:
    """The records of a simple query, merged and cut to its window."""
    limit = sub.fetch if sub.limited else None
    args = _hint_arg(hints) + sub.args(limit=limit) + shape.get_arg()
    replies = yield _each(nshards, (name, args, opts))
    return _merge(_first(replies, nshards, hints), shape, sub.order, sub.skip, sub.fetch)


def _simple(plan: Plan, sub: Sub, nshards: int, hints: _Hints, opts: int,
            split: Split) -> Search:
    columns = plan.columns
    if plan.count and not plan.out:
        args = _hint_arg(hints) + sub.args(limit=None, order=False) + [b"count"]
        replies = yield _each(nshards, (_SEARCH, args, opts))
        total = _count_total(_first(replies, nshards, hints))
        return [b"%d" % max(0, min(total, sub.fetch) - sub.skip)]
    if not plan.out:
        extra = [sub.order[0]] if sub.order else []
        shape = _Shape(columns, pk=sub.order is not None and not sub.order[0], extra=extra)
        return [item[0] for item in (yield from _elements(sub, shape, nshards, hints, opts))]
    if not sub.limited:
        tail = [b"out", b"count"] if plan.count else [b"out"]
        if plan.count or columns is None:
            shape = _Shape(None)  # nothing comes back (or only a count)
        else:
            shape = _Shape(columns, pk=sub.order is not None and not sub.order[0],
                           extra=[sub.order[0]] if sub.order else [])
        args = _hint_arg(hints) + sub.args(limit=None) + shape.get_arg() + tail
        replies = yield _each(nshards, (_SEARCH, args, opts))
        lists = _first(replies, nshards, hints)
        if plan.count:
            return [b"%d" % _count_total(lists)]
        if columns is None:
            return []
        return [item[0] for item in _merge(lists, shape, sub.order, 0, INT_MAX)]
    # A limited delete: find exactly the records to delete, then delete them.
    wanted = None if plan.count else columns
    shape = _Shape(wanted, pk=True, extra=[sub.order[0]] if sub.order else [])
    found = yield from _elements(sub, shape, nshards, hints, opts)
    keys = [pk for _, pk, _ in found]
    if keys:
        yield {i: [(b"outlist", group, opts)] for i, group in split(keys).items()}
    if plan.count:
        return [b"%d" % len(keys)]
    return [] if columns is None else [item[0] for item in found]


def _native_meta(plan: Plan, nshards: int, hints: _Hints, opts: int) -> Search:
    """A metasearch on every shard, merged in the combination's final order."""
    subs = plan.subs
    first = subs[0]
    if plan.mstype == ISECT:
        order = subs[-1].order
    elif plan.mstype == DIFF or (first.order is not None and first.order[0]):
        order = first.order
    else:
        order = None  # a union not re-sorted: its parts one after another
    args = _hint_arg(hints)
    for i, sub in enumerate(subs):
        if i:
            args.append(b"next")
        args += sub.args(limit=(first.fetch if first.limited else None) if i == 0 else None)
    args.append(b"mstype\0%d" % plan.mstype)
    if plan.count:
        replies = yield _each(nshards, (_META, args + [b"count"], opts))
        return [b"%d" % _count_total(_first(replies, nshards, hints))]
    shape = _Shape(plan.columns, pk=order is not None and not order[0],
                   extra=[order[0]] if order else [])
    replies = yield _each(nshards, (_META, args + shape.get_arg(), opts))
    lists = _first(replies, nshards, hints)
    return [item[0] for item in _merge(lists, shape, order, first.skip, first.fetch)]


def _union_needs_parts(plan: Plan) -> bool:
    first = plan.subs[0]
    if any(sub.limited for sub in plan.subs[1:]):
        return True
    if first.order is not None and first.order[0]:
        return False  # re-sorted by the first part's column: each shard's is enough
    return first.limited or any(sub.order is not None for sub in plan.subs)


def _union(plan: Plan, nshards: int, hints: _Hints, opts: int) -> Search:
    """A union combined here from every part's global result."""
    subs = plan.subs
    first = subs[0].order
    resort = first is not None and bool(first[0])
    # Not re-sorted, the union is its parts' results one after another, cut
    # to the first part's window: no part needs more records than that.
    cap = subs[0].fetch if not resort else INT_MAX
    shapes, fetches = [], []
    batch: Batch = {i: [] for i in range(nshards)}
    for sub in subs:
        if plan.columns is None:
            shape = _Shape(None, pk=True, extra=[o[0] for o in (sub.order, first) if o])
        else:
            shape = _Shape([], pk=True)  # whole records: any column may be asked for
        fetch = min(sub.fetch, cap)
        shapes.append(shape)
        fetches.append(fetch)
        args = _hint_arg(hints) + sub.args(limit=fetch if fetch < INT_MAX else None) + \
            shape.get_arg()
        for i in range(nshards):
            batch[i].append((_SEARCH, args, opts))
    replies = yield batch
    combined: dict[bytes, _Item] = {}
    for j, (sub, shape) in enumerate(zip(subs, shapes)):
        lists = [hints.take(i, replies[i][j]) for i in range(nshards)]
        for item in _merge(lists, shape, sub.order, 0, fetches[j]):
            combined.setdefault(item[1], item)
    items = list(combined.values())
    if resort:
        assert first is not None
        key, reverse = column_key(first[1])
        column = first[0]
        items.sort(key=lambda item: key(item[2].get(column)), reverse=reverse)
    items = subs[0].cut(items)
    columns = plan.columns
    if columns is None:
        return [pk for _, pk, _ in items]
    if not columns:
        return [element for element, _, _ in items]
    return [_project(cols, columns) for _, _, cols in items]


def _project(cols: dict[bytes, bytes], names: list[bytes]) -> bytes:
    """A record (primary key as column ``""``) as ``get NAMES`` returns it."""
    picked: dict[bytes, bytes] = {}
    for name in names:
        value = cols.get(name)
        if value is not None and name not in picked:
            picked[name] = value
    return b"\0".join(chain.from_iterable(picked.items()))

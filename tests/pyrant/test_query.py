"""pyrant.query: lookups, order, slices, the result cache and set operations."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

import pyrant
from pyrant.query import CACHE_CHUNK_SIZE, Condition, Ordering, Query


def keys(q: Any) -> list[str]:
    return [k for k, _ in q]


# -- lookups -------------------------------------------------------------------------------


def test_documented_example(items: pyrant.Tyrant) -> None:
    assert keys(items.query.filter(price__gt=1)) == ["b", "c", "d"]
    assert keys(items.query.filter(name="Foo")) == ["a", "c"]
    cheap = items.query.filter(price__lt=3)
    cheap_bars = cheap.filter(name="Bar")
    assert keys(cheap) == ["a", "b"]
    assert keys(cheap_bars) == ["b"]


def test_results_are_pairs_of_key_and_record(items: pyrant.Tyrant) -> None:
    got = items.query.filter(name="Bar")[:]
    assert got == [("b", {"name": "Bar", "price": "2", "tags": "blue"})]
    assert isinstance(got, list) and isinstance(got[0], tuple)


@pytest.mark.parametrize("lookups, expected", [
    ({"name__is": "Bar"}, ["b"]),
    ({"price__gte": 2}, ["b", "c", "d"]),
    ({"price__lte": 2}, ["a", "b"]),
    ({"price__lt": "3"}, ["a", "b"]),          # numeric text: a number
    ({"price__between": [2, 3]}, ["b", "c"]),
    ({"price__between": (3, 11)}, ["c", "d"]),
    ({"price__in": [1, 3]}, ["a", "c"]),        # numbers: NUMOREQ
    ({"name__in": ["Foo", "Bar"]}, ["a", "b", "c"]),  # texts: STROREQ
    ({"name__contains": "oo"}, ["a", "c"]),
    ({"tags__contains": ["red", "green"]}, ["a"]),     # a list: every token
    ({"tags__contains_any": ["blue", "red"]}, ["a", "b"]),
    ({"name__startswith": "Qu"}, ["d"]),
    ({"name__endswith": "ar"}, ["b"]),
    ({"name__matches": "^F.o$"}, ["a", "c"]),
    ({"note__exists": True}, ["c"]),
    ({"note__exists": False}, ["a", "b", "d"]),
    ({"note__like": "QUICK fox"}, ["c"]),       # lowered, full-text phrase
    ({"note__like": ["FOX", "the"]}, ["c"]),    # all words
    ({"note__like_any": ["nothing", "Fox"]}, ["c"]),
    ({"note__search": "quick && fox"}, ["c"]),  # FTSEX
    ({"price": 10.5}, ["d"]),
    ({"price": Decimal("10.5")}, ["d"]),
    ({"": "c"}, ["c"]),                         # the primary key
])
def test_lookups(items: pyrant.Tyrant, lookups: dict[str, Any], expected: list[str]) -> None:
    assert keys(items.query.filter(**lookups)) == expected


def test_numeric_detection_follows_int(items: pyrant.Tyrant) -> None:
    items["e"] = {"name": "Zed", "price": "01"}
    # "1" reads as an int: NUMEQ, so "01" matches too; "10.5" does not: STREQ
    assert keys(items.query.filter(price="1")) == ["a", "e"]
    assert keys(items.query.filter(price=1)) == ["a", "e"]
    assert keys(items.query.filter(price="10.5")) == ["d"]
    assert keys(items.query.filter(price="01")) == ["a", "e"]
    assert keys(items.query.filter(name="Zed")) == ["e"]


def test_other_values_of_is(items: pyrant.Tyrant) -> None:
    items["e"] = {"name": "", "flag": "1", "list": "x, y"}
    assert keys(items.query.filter(name=None)) == ["e"]   # None → ""
    assert keys(items.query.filter(flag=True)) == ["e"]   # True → 1, numerically
    assert keys(items.query.filter(list=["x", "y"])) == ["e"]  # "x, y"


def test_exclude_negates(items: pyrant.Tyrant) -> None:
    assert keys(items.query.exclude(name="Foo")) == ["b", "d"]
    assert keys(items.query.exclude(note__exists=False)) == ["c"]
    assert keys(items.query.exclude(price__gt=2, name="Bar")) == ["a"]


def test_condition_objects(items: pyrant.Tyrant) -> None:
    cond = Condition("name", "Foo")
    assert (cond.name, cond.lookup, cond.negate) == ("name", "is", False)
    assert cond.prepare() == ("name", 0, "Foo")
    assert Condition("price__gt", 2).prepare() == ("price", 9, 2)
    assert Condition("x__exists", False).prepare() == ("x", 7 | 1 << 24, "")
    assert Condition("t__in", [1, 2]).prepare() == ("t", 14, "1, 2")
    assert Condition("t__like", "ABC").prepare() == ("t", 15, "abc")
    assert keys(items.query.filter(cond)) == ["a", "c"]
    assert keys(items.query.exclude(cond)) == ["b", "d"]
    assert keys(items.query.exclude(Condition("name", "Foo", negate=True))) == ["a", "c"]
    with pytest.raises(AssertionError):
        items.query.filter("name")  # type: ignore[arg-type]


def test_bad_lookups_raise_when_the_query_runs(items: pyrant.Tyrant) -> None:
    q = items.query.filter(name__bogus=1)  # building sends and checks nothing
    with pytest.raises(NameError, match='Unknown lookup "bogus"'):
        q[:]
    with pytest.raises(NameError):
        items.query.filter(name__contains__x="a").count()
    with pytest.raises(ValueError, match="could not find a definition"):
        items.query.filter(price__gt="abc")[:]
    with pytest.raises(ValueError, match="could not find a definition"):
        items.query.filter(name__in=[]).count()
    with pytest.raises(ValueError, match="could not find a definition"):
        items.query.filter(name__in="Foo").count()
    with pytest.raises(ValueError, match="Bad lookup price__between=.*at least 2"):
        items.query.filter(price__between=[1])[:]
    with pytest.raises(ValueError, match="at most 2"):
        items.query.filter(price__between=[1, 2, 3])[:]
    with pytest.raises(ValueError):
        items.query.filter(note__exists="yes")[:]


# -- order ---------------------------------------------------------------------------------


def test_order_by(items: pyrant.Tyrant) -> None:
    assert keys(items.query.order_by("name")) == ["b", "a", "c", "d"]
    assert keys(items.query.order_by("-name")) == ["d", "a", "c", "b"]
    assert keys(items.query.order_by("price")) == ["a", "d", "b", "c"]  # as text
    assert keys(items.query.order_by("-price", numeric=True)) == ["d", "c", "b", "a"]
    assert keys(items.query.filter(price__gt=1).order_by("price", numeric=True)) == [
        "b", "c", "d"]
    assert keys(items.query.order_by("note")) == ["c", "a", "b", "d"]  # lacking: last
    assert keys(items.query.order_by("")) == ["a", "b", "c", "d"]  # no column: no order


def test_order_is_not_kept_by_later_refinements(items: pyrant.Tyrant) -> None:
    ordered = items.query.order_by("-price", numeric=True)
    assert keys(ordered.filter(name="Foo")) == ["a", "c"]  # pyrant drops the order
    assert keys(items.query.filter(name="Foo").order_by("-price", numeric=True)) == ["c", "a"]


def test_ordering_objects() -> None:
    assert Ordering("x", Ordering.DESC, numeric=True).type == 3
    assert Ordering("x").type == 0
    assert Ordering("x", Ordering.DESC).type == 1
    assert Ordering("x", numeric=True).type == 2
    assert not Ordering() and Ordering("x")
    assert Ordering("x") == Ordering("x", Ordering.ASC)
    with pytest.raises(TypeError):
        Ordering("x") == "x"  # noqa: B015


# -- slices, length, the cache -------------------------------------------------------------


def test_indexes_and_slices(items: pyrant.Tyrant) -> None:
    q = items.query
    assert q[0] == ("a", {"name": "Foo", "price": "1", "tags": "red green"})
    assert [k for k, _ in q[1:3]] == ["b", "c"]
    assert [k for k, _ in q[2:]] == ["c", "d"]
    assert [k for k, _ in q[:2]] == ["a", "b"]
    assert [k for k, _ in q[3:10]] == ["d"]
    assert q[10:20] == []
    assert [k for k, _ in q[::2]] == ["a", "b", "c", "d"]  # the step is ignored
    with pytest.raises(IndexError):
        q[4]
    with pytest.raises(ValueError, match="Negative indexing"):
        q[-1]
    with pytest.raises(ValueError, match="Negative indexing"):
        q[-2:]
    with pytest.raises(ValueError, match="Zero-length slices"):
        q[1:1]
    with pytest.raises(AssertionError):
        q[3:1]
    with pytest.raises(TypeError, match="Query indices must be integers"):
        q["a"]  # type: ignore[index]


def test_slices_ending_at_zero_return_everything(items: pyrant.Tyrant) -> None:
    # pyrant reads a stop of 0 as "no stop"
    assert keys(items.query[0:0]) == ["a", "b", "c", "d"]
    assert keys(items.query[:0]) == ["a", "b", "c", "d"]


def test_len_repr_contains(items: pyrant.Tyrant, tt: pyrant.Tyrant) -> None:
    q = items.query.filter(name="Foo")
    assert len(q) == 2
    assert repr(q) == str(q[:])
    assert "a" in q and "b" not in q
    tt.clear()
    assert repr(tt.query) == "[]"


def test_results_are_cached_per_query_object(items: pyrant.Tyrant) -> None:
    q = items.query
    assert len(q) == 4
    items["e"] = {"name": "New"}
    del items["a"]
    assert len(q) == 4 and keys(q[:1]) == ["a"]  # stale, as pyrant
    assert "e" not in q
    assert keys(items.query) == ["b", "c", "d", "e"]  # a new query sees the changes
    assert q.count() == 4  # count always asks the server
    q.set_chunk_size(2)  # drops the cache
    assert keys(q) == ["b", "c", "d", "e"]


def test_chunks_give_the_same_results(items: pyrant.Tyrant) -> None:
    items.multi_set({f"x{i}": {"i": str(i)} for i in range(7)})
    q = items.query.filter(i__exists=True).order_by("i", numeric=True)
    q.set_chunk_size(3)
    assert q._cache.chunk_size == 3
    assert keys(q) == [f"x{i}" for i in range(7)]
    assert keys(q[2:5]) == ["x2", "x3", "x4"]
    assert keys(q[5:]) == ["x5", "x6"]
    assert q[6] == ("x6", {"i": "6"})
    with pytest.raises(IndexError):
        q[7]
    assert sorted(q._cache.chunks) == [0, 1, 2]  # fetched three at a time
    assert len(q._cache.chunks[0]) == 3
    q.set_chunk_size()
    assert q._cache.chunk_size == CACHE_CHUNK_SIZE == 1000
    assert keys(q[1:3]) == ["x1", "x2"]


def test_order_by_shares_the_cache_only_for_the_same_order(items: pyrant.Tyrant) -> None:
    q = items.query.order_by("name")
    q[:]
    same = q.order_by("name")
    assert same._cache is q._cache  # already filled: no search
    items["e"] = {"name": "A"}
    assert keys(same) == ["b", "a", "c", "d"]
    assert q.order_by("-name")._cache is not q._cache
    assert keys(q.order_by("-name"))[-1] == "e"  # a new cache sees the new record


# -- results -------------------------------------------------------------------------------


def test_count(items: pyrant.Tyrant) -> None:
    assert items.query.count() == 4
    assert items.query.filter(name="Foo").count() == 2
    assert items.query.filter(name="Nobody").count() == 0


def test_delete(items: pyrant.Tyrant) -> None:
    assert items.query.filter(name="Foo").delete() is None
    assert sorted(items.keys()) == ["b", "d"]
    assert items.query.filter(name="Bar").delete(quick=True) is False  # pyrant's answer
    assert items.keys() == ["d"]


def test_hint(items: pyrant.Tyrant) -> None:
    hint = items.query.filter(name="Foo").hint()
    assert isinstance(hint, str)
    assert hint.startswith("\x00\x00[[HINT]]\n")
    assert "result set size: 2" in hint


def test_columns(items: pyrant.Tyrant) -> None:
    q = items.query.filter(name="Foo")
    assert q.columns("name") == [{"name": "Foo"}, {"name": "Foo"}]
    assert q.columns("price", "note") == [{"price": "1"}, {"price": "3", "note": "the Quick fox"}]
    assert q.columns("nothing") == [{}, {}]
    assert q.columns("*") == q[:]
    assert q.columns() == [{"a": None}, {"c": None}]  # pyrant's result for no names


def test_values_are_distinct(items: pyrant.Tyrant) -> None:
    assert items.query.values("name") == ["Foo", "Bar", "Quux"]
    assert items.query.filter(name="Foo").values("price") == ["1", "3"]
    assert items.query.values("missing") == []


def test_stat_counts_columns(items: pyrant.Tyrant) -> None:
    assert items.query.stat() == {"name": 4, "price": 4, "tags": 2, "note": 1}
    assert items.query.filter(name="Bar").stat() == {"name": 1, "price": 1, "tags": 1}


# -- set operations ------------------------------------------------------------------------


def test_union_intersect_minus(items: pyrant.Tyrant) -> None:
    bar, expensive, foo = (items.query.filter(name="Bar"), items.query.filter(price__gt=2),
                           items.query.filter(name="Foo"))
    assert keys(bar | expensive) == ["b", "c", "d"]
    assert keys(bar.union(expensive)) == ["b", "c", "d"]
    assert keys(foo & expensive) == ["c"]
    assert keys(foo.intersect(expensive)) == ["c"]
    assert keys(foo - expensive) == ["a"]
    assert keys(foo.minus(expensive)) == ["a"]
    assert keys(bar | foo | expensive) == ["b", "a", "c", "d"]
    assert keys((foo | bar).filter(price__lt=3)) == ["a", "b"]  # refines the first part


def test_set_operation_quirks_are_kept(items: pyrant.Tyrant) -> None:
    bar, foo = items.query.filter(name="Bar"), items.query.filter(name="Foo")
    assert (bar | foo).count() == 0  # the server does not count a metasearch
    # the order belongs to the last sub-query, as pyrant sent it
    ordered = (bar | items.query.filter(price__gte=1)).order_by("-price", numeric=True)
    assert keys(ordered) == ["b", "d", "c", "a"]
    # only the other query's own conditions are taken
    assert keys(bar | (foo | items.query.filter(name="Quux"))) == ["b", "a", "c"]


def test_set_operations_cannot_be_mixed(items: pyrant.Tyrant) -> None:
    q = items.query.filter(name="Bar") | items.query.filter(name="Foo")
    with pytest.raises(AssertionError, match="can not mix"):
        q & items.query
    with pytest.raises(AssertionError, match="other Query"):
        items.query | "x"  # type: ignore[operator]


def test_query_signature(items: pyrant.Tyrant) -> None:
    q = Query(items.proto, "table")
    assert keys(q) == ["a", "b", "c", "d"]
    with pytest.raises(AssertionError):
        Query(items.proto, "table", conditions=["x"])  # type: ignore[list-item]

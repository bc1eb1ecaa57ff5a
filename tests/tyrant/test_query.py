"""The query builder: the arguments it builds, its refusals, and its results
on a small dataset of the bundled server."""

from __future__ import annotations

from decimal import Decimal

import pytest

from doqu_tyrant.tyrant import NEGATE, NOIDX, PK, Op, Query, Tyrant
from doqu_tyrant.tyrant import protocol as p
from doqu_tyrant.tyrant.query import LOOKUPS, parse_op

OFFLINE = Tyrant("127.0.0.1", 1)  # builder tests never send anything


def args(q: Query, action: str = "keys") -> list[bytes]:
    return q.build(action)[2]


def cond(q: Query) -> bytes:
    return args(q)[-1]


def test_spec_example_is_byte_identical() -> None:
    # spec §6.5: tcrdbqrysearch with age NUMGE 20, name !STREQ bob, order age
    # NUMASC, limit 10
    q = (OFFLINE.query.filter(age__gte=20).exclude(name="bob").order_by("age", numeric=True)
         [:10])
    name, opts, a = q.build()
    frame = p.encode_misc(name, a, opts)
    assert frame == bytes.fromhex(
        "c890 00000006 00000001 00000005 736561726368"
        "00000004 68696e74"
        "00000011 616464636f6e64 00 616765 00 3130 00 3230"
        "00000019 616464636f6e64 00 6e616d65 00 3136373737323136 00 626f62"
        "0000000e 7365746f72646572 00 616765 00 32"
        "0000000d 7365746c696d6974 00 3130 00 30".replace(" ", ""))


@pytest.mark.parametrize("kw, expected", [
    ({"name": "x"}, b"addcond\0name\x000\0x"),
    ({"name__eq": b"x"}, b"addcond\0name\x000\0x"),
    ({"age": 30}, b"addcond\0age\x008\x0030"),
    ({"age__exact": 2.5}, b"addcond\0age\x008\x002.5"),
    ({"age": Decimal("1e3")}, b"addcond\0age\x008\x001000"),
    ({"age": 1e20}, b"addcond\0age\x008\x00100000000000000000000"),
    ({"name__contains": "li"}, b"addcond\0name\x001\0li"),
    ({"name__startswith": "a"}, b"addcond\0name\x002\0a"),
    ({"name__endswith": "e"}, b"addcond\0name\x003\0e"),
    ({"tags__all": ["red", "green"]}, b"addcond\0tags\x004\0red,green"),
    ({"tags__any": "red blue"}, b"addcond\0tags\x005\0red blue"),
    ({"name__in": ["a", "b"]}, b"addcond\0name\x006\0a,b"),
    ({"age__in": [1, 2.5]}, b"addcond\0age\x0014\x001,2.5"),
    ({"name__in": []}, b"addcond\0name\x006\0"),
    ({"name__regex": "^a"}, b"addcond\0name\x007\0^a"),
    ({"name__iregex": "^a"}, b"addcond\0name\x007\0*^a"),
    ({"age__gt": 1}, b"addcond\0age\x009\x001"),
    ({"age__gte": 1}, b"addcond\0age\x0010\x001"),
    ({"age__ge": "1"}, b"addcond\0age\x0010\x001"),
    ({"age__lt": -1}, b"addcond\0age\x0011\x00-1"),
    ({"age__lte": 1}, b"addcond\0age\x0012\x001"),
    ({"age__le": 1}, b"addcond\0age\x0012\x001"),
    ({"age__between": (1, 5)}, b"addcond\0age\x0013\x001 5"),
    ({"bio__search": "quick fox"}, b"addcond\0bio\x0015\0quick fox"),
    ({"bio__phrase": "x"}, b"addcond\0bio\x0015\0x"),
    ({"bio__search_all": ["quick", "fox"]}, b"addcond\0bio\x0016\0quick fox"),
    ({"bio__fts_any": "a b"}, b"addcond\0bio\x0017\0a b"),
    ({"bio__search_expr": "a || b"}, b"addcond\0bio\x0018\0a || b"),
    ({"city__exists": True}, b"addcond\0city\x007\0"),
    ({"city__exists": False}, b"addcond\0city\x0016777223\0"),
    ({"name__startswith__noidx": "a"}, b"addcond\0name\x0033554434\0a"),
    ({"name__noidx": "a"}, b"addcond\0name\x0033554432\0a"),
    ({"age__numeq": "007"}, b"addcond\0age\x008\x00007"),
    ({"age__numoreq": "1 2"}, b"addcond\0age\x0014\x001 2"),
    ({"x__ftsex": "a"}, b"addcond\0x\x0018\0a"),
    ({"__startswith": "user:"}, b"addcond\0\x002\0user:"),
    ({"": "u1"}, b"addcond\0\x000\0u1"),
    ({"a___eq": "x"}, b"addcond\0a_\x000\0x"),
])
def test_lookups(kw: dict, expected: bytes) -> None:
    assert cond(OFFLINE.query.filter(**kw)) == expected


def test_exclude_negates_each() -> None:
    q = OFFLINE.query.exclude(name="a", age__gt=3)
    assert args(q)[1:] == [b"addcond\0name\x0016777216\0a", b"addcond\0age\x0016777225\x003"]
    assert cond(OFFLINE.query.exclude(city__exists=False)) == b"addcond\0city\x007\0"


def test_condition_low_level() -> None:
    q = OFFLINE.query
    assert cond(q.condition("a", Op.NUMBT, "1 2")) == b"addcond\0a\x0013\x001 2"
    assert cond(q.condition("a", "~+STREQ", "x")) == b"addcond\0a\x0050331648\0x"
    assert cond(q.condition("a", ">=", 3)) == b"addcond\0a\x0010\x003"
    assert cond(q.condition("a", "strand", "x", negate=True, noidx=True)) == \
        b"addcond\0a\x0050331652\0x"
    assert cond(q.condition(PK, Op.STREQ | NEGATE | NOIDX, "k")) == b"addcond\0\x0050331648\0k"
    assert parse_op("16") == 16 and parse_op(" NUMGE") == 10


def test_order_limit_columns() -> None:
    q = OFFLINE.query
    assert args(q.order_by("name"))[-1] == b"setorder\0name\x000"
    assert args(q.order_by("-name"))[-1] == b"setorder\0name\x001"
    assert args(q.order_by("age", numeric=True))[-1] == b"setorder\0age\x002"
    assert args(q.order_by("-age", numeric=True))[-1] == b"setorder\0age\x003"
    assert args(q.order_by(""))[-1] == b"setorder\0\x000"
    assert args(q.order_by("-"))[-1] == b"setorder\0\x001"
    assert args(q.order_by("a").order_by("b"))[-1] == b"setorder\0b\x000"
    assert args(q.order_by("a").order_by(None)) == [b"hint"]
    assert args(q[5:15])[-1] == b"setlimit\x0010\x005"
    assert args(q[5:])[-1] == b"setlimit\0-1\x005"
    assert args(q[:3][1:])[-1] == b"setlimit\x002\x001"
    assert args(q[2:10][1:3])[-1] == b"setlimit\x002\x003"
    assert args(q[2:4][5:])[-1] == b"setlimit\x000\x007"
    assert args(q.limit(3, 1))[-1] == b"setlimit\x003\x001"
    assert args(q.limit(3).limit(None)) == [b"hint"]
    assert args(q[:])[-1] == b"hint"
    assert args(q.columns("a", "b"), "values")[-1] == b"get\0a\0b"
    assert args(q.columns("a", ""), "items")[-1] == b"get\0\0a"
    assert args(q, "values")[-1] == b"get"
    assert args(q, "count")[-1] == b"count"
    name, opts, a = q.build("out")
    assert (name, opts, a[-1]) == (b"search", 0, b"out")
    assert q.build()[1] == p.MISC_NOULOG


def test_metasearch_args() -> None:
    q = OFFLINE.query
    a, b, c = q.filter(city="tokyo"), q.filter(age=30), q.filter(name="bob")
    meta = (a | b).order_by("-age", numeric=True)[1:3]
    name, opts, built = meta.build()
    assert (name, opts) == (b"metasearch", p.MISC_NOULOG)
    assert built == [b"hint", b"addcond\0city\x000\0tokyo", b"setorder\0age\x003",
                     b"setlimit\x002\x001", b"next", b"hint", b"addcond\0age\x008\x0030",
                     b"mstype\x000"]
    assert args(a | b | c).count(b"next") == 2
    assert args(a & (b & c))[-1] == b"mstype\x001"
    assert args(a - (b | c)) == args(a - b - c)
    assert args((a | b).columns("name"), "values")[-1] == b"get\0name"
    assert args(a.union(b, c)) == args(a | b | c)
    assert args(a.intersect(b)) == args(a & b)
    assert args(a.minus(b)) == args(a - b)
    assert args(a.union()) == args(a)
    assert args(a | b[:1])[-2] == b"setlimit\x001\x000"  # only limits what b contributes
    assert (a | b).compound and not a.compound
    assert "metasearch" in repr(a | b)
    assert args((a | b).none()) == [b"hint", b"addcond\0\x006\0"]


@pytest.mark.parametrize("build, error", [
    (lambda q: q.filter(age__foo=1), ValueError),
    (lambda q: q.filter(name=None), TypeError),
    (lambda q: q.filter(name=True), TypeError),
    (lambda q: q.filter(name=["a"]), TypeError),
    (lambda q: q.filter(name="a\0b"), ValueError),
    (lambda q: q.filter(**{"na\0me": "a"}), ValueError),
    (lambda q: q.filter(tags__any=["a b"]), ValueError),
    (lambda q: q.filter(tags__all=["a,b"]), ValueError),
    (lambda q: q.filter(tags__all=[""]), ValueError),
    (lambda q: q.filter(age__in=[1, "a"]), TypeError),
    (lambda q: q.filter(age__between=(1,)), TypeError),
    (lambda q: q.filter(age__between=5), TypeError),
    (lambda q: q.filter(city__exists="yes"), TypeError),
    (lambda q: q.filter(age__gt=object()), TypeError),
    (lambda q: q.condition("a", 19, "x"), ValueError),
    (lambda q: q.condition("a", -1, "x"), ValueError),
    (lambda q: q.condition("a", "bogus", "x"), ValueError),
    (lambda q: q.condition("a", 1.5, "x"), TypeError),
    (lambda q: q[1 << 31], ValueError),
    (lambda q: q[-3:], ValueError),
    (lambda q: q[::2], ValueError),
    (lambda q: q[: 1 << 31], ValueError),
    (lambda q: q["a":], TypeError),
    (lambda q: q.limit(-1), ValueError),
    (lambda q: q.limit(1, -1), ValueError),
    (lambda q: q.limit(1 << 40), ValueError),
    (lambda q: q.limit(True), TypeError),
    (lambda q: q.order_by(1), TypeError),
    (lambda q: q.columns("a\0"), ValueError),
    (lambda q: (q | q).filter(a=1), TypeError),
    (lambda q: q[:3] | q, ValueError),
    (lambda q: q.columns("a") | q, ValueError),
    (lambda q: (q | q) & q, ValueError),
    (lambda q: q - (q & q), ValueError),
    (lambda q: (q | q)[:2] | q, ValueError),
    (lambda q: q | 1, TypeError),
    (lambda q: q | Tyrant("127.0.0.1", 2).query, TypeError),
])
def test_bad_input(build: object, error: type) -> None:
    with pytest.raises(error):
        build(OFFLINE.query)  # type: ignore[operator]


def test_error_names_the_argument() -> None:
    with pytest.raises(ValueError, match="age__foo"):
        OFFLINE.query.filter(age__foo=1)
    with pytest.raises(TypeError, match="name"):
        OFFLINE.query.filter(name=None)


def test_queries_are_immutable() -> None:
    q = OFFLINE.query
    q2 = q.filter(a=1)
    q3 = q2.order_by("a")[:2]
    assert args(q) == [b"hint"]
    assert len(args(q2)) == 2 and len(args(q3)) == 4
    with pytest.raises(AttributeError):
        q.foo = 1  # type: ignore[attr-defined]
    assert len(LOOKUPS) > 30


# -- results from the server --------------------------------------------------


def keys(q: Query) -> list[str]:
    return sorted(q.keys())


def test_results(people: Tyrant) -> None:
    q = people.query
    assert keys(q) == ["u1", "u2", "u3", "u4", "u5", "u6"]
    assert keys(q.filter(city="tokyo")) == ["u1", "u3"]
    assert keys(q.exclude(city="tokyo")) == ["u2", "u4", "u5", "u6"]  # includes "no city"
    assert keys(q.filter(city__iregex="^tok")) == ["u1", "u3", "u6"]
    assert keys(q.filter(age=30)) == ["u1", "u5"]
    assert keys(q.filter(age__gt=30)) == ["u3", "u6"]
    assert keys(q.filter(age__between=(25, 35))) == ["u1", "u2", "u3", "u5"]
    assert keys(q.filter(age__in=[25, 40.5])) == ["u2", "u6"]
    assert keys(q.filter(name__in=["bob", "dave"])) == ["u2", "u4"]
    assert keys(q.filter(name__in=[])) == []
    assert keys(q.exclude(name__in=[])) == keys(q)
    assert keys(q.filter(tags__any=["blue"])) == ["u2", "u3"]
    assert keys(q.filter(tags__all=["green", "blue"])) == ["u3"]
    assert keys(q.filter(bio__search="quick fox")) == ["u3"]
    assert keys(q.filter(bio__search_all=["quick", "fox"])) == ["u1", "u3"]
    assert keys(q.filter(bio__search_expr="fox !! brown")) == ["u3"]
    assert keys(q.filter(city__exists=False)) == ["u5"]
    assert keys(q.filter(**{"__in": ["u1", "u9"]})) == ["u1"]
    assert keys(q.none()) == []
    assert q.order_by("-age", numeric=True).keys()[:2] == ["u6", "u3"]
    assert q.order_by("name").keys() == ["u5", "u1", "u2", "u3", "u4", "u6"]  # bytewise
    assert q.order_by("name")[1:3].keys() == ["u1", "u2"]
    assert q.order_by("name")[4:][1:].keys() == ["u6"]
    assert q.order_by("name")[0] == ("u5", {"name": "Eve", "age": "30", "bio": "brown foxes"})
    with pytest.raises(IndexError):
        q.order_by("name")[6]
    assert q.filter(name="nobody").first() is None
    assert q.filter(city="tokyo").count() == 2
    assert q.filter(city="tokyo")[:1].count() == 1
    assert q.filter(city="tokyo").exists() and not q.filter(city="x").exists()
    assert "result set size" in q.filter(city="tokyo").hint()


def test_values_items_columns(people: Tyrant) -> None:
    q = people.query.filter(city="tokyo").order_by("name")
    assert q.items() == [("u1", people["u1"]), ("u3", people["u3"])]
    assert q.values() == [people["u1"], people["u3"]]
    assert q.columns("name", "age").values() == [{"name": "alice", "age": "30"},
                                                 {"name": "carol", "age": "35"}]
    assert q.columns("name", "").values() == [{"name": "alice", "": "u1"},
                                              {"name": "carol", "": "u3"}]
    assert q.columns("nosuch").values() == [{}, {}]
    assert q.columns("age").items() == [("u1", {"age": "30"}), ("u3", {"age": "35"})]
    assert list(q) == q.items()
    assert q.items(raw=True)[0][0] == b"u1"
    assert q.keys(raw=True) == [b"u1", b"u3"]
    assert q.columns("name").values(raw=True) == [{b"name": b"alice"}, {b"name": b"carol"}]


def test_set_operations(people: Tyrant) -> None:
    q = people.query
    tokyo, thirty = q.filter(city="tokyo"), q.filter(age=30)
    assert keys(tokyo | thirty) == ["u1", "u3", "u5"]
    assert keys(tokyo & thirty) == ["u1"]
    assert keys(tokyo - thirty) == ["u3"]
    assert (tokyo | thirty).count() == 3  # the server alone would say 0
    assert (tokyo | thirty).order_by("name")[1:].keys() == ["u1", "u3"]
    assert (tokyo | thirty).order_by("name").columns("name").values() == [
        {"name": "Eve"}, {"name": "alice"}, {"name": "carol"}]
    assert (tokyo | thirty).exists()
    assert (tokyo | thirty).none().keys() == []
    assert (tokyo - thirty).delete() == 1  # the combined result, not the last part
    assert sorted(people) == ["u1", "u2", "u4", "u5", "u6"]


def test_delete(people: Tyrant) -> None:
    q = people.query
    assert q.filter(city="tokyo").delete() == 2
    assert q.filter(city="tokyo").delete() == 0
    assert q.filter(name="bob").delete(count=False) is None
    assert q.filter(name="dave").delete(returning=True) == [("u4", PEOPLE_U4)]
    assert sorted(people) == ["u5", "u6"]


PEOPLE_U4 = {"name": "dave", "age": "abc", "city": "kyoto"}


def test_streaming_large_result(t: Tyrant) -> None:
    value = "v" * 200
    with t.pipeline() as pl:
        for i in range(20000):
            pl[f"k{i:05d}"] = {"n": str(i), "pad": value}
        pl.execute()
    seen = 0
    for pk, record in t.query.order_by("").iter_items():
        assert pk == f"k{seen:05d}" and record["n"] == str(seen)
        seen += 1
    assert seen == 20000
    it = iter(t.query)
    next(it)
    it.close()  # abandoned mid-reply: that connection is discarded
    assert t.query.count() == 20000
    assert len(list(t)) == 20000


def test_enum_codes_go_out_as_digits_on_every_python() -> None:
    # str() of an IntEnum member is its name on Python 3.10 ("Op.NUMGT"); the
    # wire needs the number, for operators, orders, set operations and values.
    from doqu_tyrant.tyrant import Order, SetOp

    q = OFFLINE.query.condition("age", Op.NUMGT, 1).order_by("age", numeric=True)
    built = args(q)
    assert b"addcond\0age\x009\x001" in built
    assert b"setorder\0age\x002" in built
    assert b"setorder\0age\x002" == b"setorder\0age\0%d" % Order.NUMASC
    diff = OFFLINE.query.filter(a="1") - OFFLINE.query.filter(b="2")
    assert args(diff)[-1] == b"mstype\0%d" % int(SetOp.DIFF) == b"mstype\x002"
    assert cond(OFFLINE.query.filter(age=Op.NUMGT)) == b"addcond\0age\x008\x009"


def test_difference_delete_removes_only_the_difference(people: Tyrant) -> None:
    # On 3.10 the mstype went out as "SetOp.DIFF" and the server deleted
    # every record of the table.
    removed = (people.query.filter(city="tokyo") - people.query.filter(age=30)).delete()
    assert sorted(people.query.keys()) == ["u1", "u2", "u4", "u5", "u6"]
    assert removed == 1

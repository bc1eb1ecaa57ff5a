"""Property tests: arbitrary keys, values and records survive a round trip
through the client and the bundled server."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from doqu_tyrant.tyrant import Tyrant
from doqu_tyrant.tyrant import protocol as p

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

keys = st.binary(max_size=40)
values = st.binary(max_size=2000)
text = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\0"),
               max_size=30)
names = text.filter(bool)
records = st.dictionaries(names, text, max_size=8)
pks = text.filter(bool)


@SETTINGS
@given(st.dictionaries(keys, values, max_size=20))
def test_kv_round_trip(kv: Tyrant, data: dict[bytes, bytes]) -> None:
    kv.vanish()
    with kv.pipeline() as pl:
        for k, v in data.items():
            pl.put(k, v)
        pl.execute()
    for k, v in data.items():
        assert kv.get(k) == v
        assert kv.vsiz(k) == len(v)
    assert kv.mget(list(data)) == data
    assert sorted(kv.fwmkeys(b"")) == sorted(data)
    assert kv.rnum() == len(data)


@SETTINGS
@given(keys, values, values)
def test_putcat_appends(kv: Tyrant, key: bytes, first: bytes, second: bytes) -> None:
    kv.out(key)
    kv.putcat(key, first)
    kv.putcat(key, second)
    assert kv.get(key) == first + second


@SETTINGS
@given(st.dictionaries(pks, records, min_size=1, max_size=10))
def test_table_round_trip(t: Tyrant, data: dict[str, dict[str, str]]) -> None:
    t.vanish()
    t.putlist(data)
    for pk, record in data.items():
        got = t[pk]
        assert got == record
        assert list(got) == list(record)  # column order kept
    assert t.getlist(list(data)) == data
    assert dict(t.query.items()) == data
    pk, record = next(iter(data.items()))
    t[pk] = record  # MISC put of the same record
    assert t.table_get(pk) == record
    raw = t.get(pk)
    assert raw == p.pack_record([(k.encode(), v.encode()) for k, v in record.items()])


@SETTINGS
@given(pks, names, text)
def test_streq_finds_any_value(t: Tyrant, pk: str, column: str, value: str) -> None:
    t.vanish()
    t[pk] = {column: value}
    t[pk + "-other"] = {column: value + "x"}
    assert t.query.condition(column, 0, value).keys() == [pk]
    assert t.query.filter(**{"__eq": pk}).count() == 1
    if not any(ch == "," or ord(ch) <= 0x20 for ch in pk):
        assert t.query.filter(**{"__in": [pk]}).keys() == [pk]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([p.PUT, p.GET, p.OUT, p.MISC, p.RNUM]), keys,
                          values), max_size=30))
def test_pipeline_frame_decodes_back(ops: list[tuple[int, bytes, bytes]]) -> None:
    from doqu_tyrant.tyrant import commands as c

    cmds = []
    for command, key, value in ops:
        if command == p.PUT:
            cmds.append(c.put(key, value))
        elif command == p.GET:
            cmds.append(c.get(key))
        elif command == p.OUT:
            cmds.append(c.out(key))
        elif command == p.MISC:
            cmds.append(c.misc("putlist", [key, value]))
        else:
            cmds.append(c.rnum())
    frame, commands = c.pipeline_frame(cmds)
    decoder = p.RequestDecoder()
    decoder.feed(frame)
    decoded = []
    while (event := decoder.next_event()) is not None:
        assert isinstance(event, p.Request)
        decoded.append(event)
    assert [e.command for e in decoded] == commands
    assert b"".join(p.encode_request(e) for e in decoded) == frame

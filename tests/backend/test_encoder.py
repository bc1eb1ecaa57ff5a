"""The generated per-class encoder writes exactly what the general path writes."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from doqu import Document
from doqu.backend_base import ConverterManager
from doqu.validators import Exists, Length, Optional, Required
from doqu_tyrant import StorageAdapter
from doqu_tyrant.converters import converter_manager
from doqu_tyrant.encoder import encoder_for
from doqu_tyrant.tyrant.commands import serialize_record
from doqu_tyrant.tyrant.risks import batch_empty_columns


class Mixed(Document):
    structure = {"name": str, "n": int, "ratio": float, "money": Decimal, "flag": bool,
                 "day": datetime.date, "at": datetime.datetime, "tags": list,
                 "we{ird}\\ 'name\"": str}
    validators = {"name": [Required(), Length(max=20)], "tags": [Optional(), Length(min=1)]}


texts = st.text(st.characters(codec="utf-8") | st.sampled_from(["\0", "\ud800"]),
                max_size=25)
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "name": texts,
    "n": st.integers() | st.booleans(),
    "ratio": st.floats() | st.integers(),
    "money": st.decimals() | st.floats(allow_nan=False),
    "flag": st.booleans() | st.integers(0, 1),
    "day": st.dates() | st.datetimes(),
    "at": st.datetimes(timezones=st.none() | st.just(datetime.timezone.utc)) | st.dates(),
    "tags": st.lists(texts | st.just("a, b"), max_size=3) | st.tuples(texts),
    "we{ird}\\ 'name\"": texts | st.binary(max_size=3),
}
# (a name the validators pass, mostly: the other fields decide which path it takes)
documents = st.fixed_dictionaries(
    {"name": st.text(st.sampled_from("ab\0\ud800✓"), min_size=1, max_size=20)},
    optional={name: st.none() | values for name, values in VALUES.items() if name != "name"})


def general(db: StorageAdapter, doc: Document) -> bytes | None:
    """What validate(), _to_storage() and the record check write; None if one refuses."""
    try:
        doc.validate()
        return db._record_data(doc._to_storage(db))[1]
    except (ValueError, TypeError):
        return None


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=documents)
def test_the_encoder_writes_what_the_general_path_writes(db: StorageAdapter,
                                                         fields: dict[str, Any]) -> None:
    doc = Mixed(**fields)
    encode = encoder_for(Mixed, db.converter_manager)
    assert encode is not None
    data = encode(doc, db)
    if data is not None:  # it never takes what the general path refuses; the same bytes
        assert data == general(db, doc)


def test_plain_documents_take_the_fast_path(db: StorageAdapter) -> None:
    encode = encoder_for(Mixed, db.converter_manager)
    assert encode is not None
    doc = Mixed(name="ann", n=3, ratio=0.5, money=Decimal("1.50"), flag=True,
                day=datetime.date(1999, 12, 31), at=datetime.datetime(2001, 2, 3, 4, 5, 6),
                tags=["a", "b c"])
    assert encode(doc, db) == general(db, doc) == (
        b"name\0ann\0n\x003\0ratio\x000.5\0money\x001.50\0flag\x001\0day\x0019991231\0"
        b"at\x0020010203040506\0tags\0a, b c\0we{ird}\\ 'name\"\0")
    assert encode(Mixed(name="x" * 21), db) is None  # a failing validator: general path
    assert encode(Mixed(name=None), db) is None  # a chain stopped with a message (Required)
    assert encode(Mixed(name="a"), db) is not None  # ... and without one (Optional, tags)
    assert encode(Mixed(name="ok", extra=1), db) is None  # another column
    assert encode(Mixed(name="ok", n=True), db) is None  # not exactly the declared class


def test_classes_and_managers_it_does_not_serve() -> None:
    class Processed(Document):
        structure = {"name": str}
        outgoing_processors = {"name": str.upper}

    class Skipping(Document):
        structure = {"name": str}
        skip_type_conversion = True

    class Manager(ConverterManager):
        pass

    assert encoder_for(Processed, converter_manager) is None
    assert encoder_for(Skipping, converter_manager) is None
    assert encoder_for(Mixed, Manager()) is None


def test_a_new_converter_is_used_at_once(db: StorageAdapter) -> None:
    manager = converter_manager.copy()
    before = encoder_for(Mixed, manager)
    manager.register_to_db(int)(lambda value, storage: f"#{value}")
    after = encoder_for(Mixed, manager)
    assert before is not None and after is not None and after is not before
    assert b"n\0#7\0" in after(Mixed(name="a", n=7), db)  # type: ignore[operator]
    manager.register_to_db(int)(lambda value, storage: value)  # not text: general path
    again = encoder_for(Mixed, manager)
    assert again is not None and again(Mixed(name="a", n=7), db) is None


records = st.lists(st.dictionaries(st.sampled_from(["a", "b", "", "c"]),
                                   st.sampled_from(["", "x", "yz"]), max_size=4), max_size=8)


@given(records)
def test_batch_empty_columns_reads_every_record_as_one_at_a_time_would(
        batch: list[dict[str, str]]) -> None:
    values = [serialize_record(record, b"k") if record and "" not in record
              else b"\0".join(b"%s\0%s" % (k.encode(), v.encode()) for k, v in record.items())
              for record in batch]
    first: dict[bytes, int] = {}
    bad = -1
    for i, record in enumerate(batch):
        if "" in record and bad < 0:
            bad = i
        for name, value in record.items():
            if not value:
                first.setdefault(name.encode(), i)
    assert batch_empty_columns(values, [v.count(b"\0") for v in values]) == (first, bad)


@pytest.mark.parametrize("values", [[], [b""], [b"", b""]])
def test_batch_empty_columns_of_empty_records(values: list[bytes]) -> None:
    assert batch_empty_columns(values, [0] * len(values)) == ({}, -1)


TRICKY: list[tuple[type, list[Any]]] = [
    (bool, [True, False]),
    (int, [0, -1, 10**30]),
    (float, [0.1, -0.0, 1e20, 1e-7, 2.5e-300, float("inf"), float("-inf"), float("nan")]),
    (Decimal, [Decimal("1.50"), Decimal("-0"), Decimal("1E+2"), Decimal("1E-7"),
               Decimal("0.000001"), Decimal("NaN"), Decimal("-sNaN"), Decimal("Infinity"),
               Decimal("-Infinity"), Decimal("1E+9999"), Decimal("1" * 4100)]),
    (datetime.date, [datetime.date(1, 1, 1), datetime.date(999, 12, 31),
                     datetime.date(9999, 12, 31)]),
    (list, [[], [""], ["", ""], ["a"], ["a, b"], ["a,", " b"], ["a", "b"], [1], ["\0"]]),
]


@pytest.mark.parametrize(("kind", "values"), TRICKY, ids=[k.__name__ for k, _ in TRICKY])
def test_converters_written_out_give_what_they_return(db: StorageAdapter, kind: type,
                                                      values: list[Any]) -> None:
    class One(Document):
        structure = {"v": kind}
        validators = {"v": [Exists()]}

    encode = encoder_for(One, db.converter_manager)
    assert encode is not None
    taken = 0
    for value in values:
        doc = One(v=value)
        data = encode(doc, db)
        assert data is None or data == general(db, doc), value
        taken += data is not None
    assert taken  # (the fast path served some)
    assert encode(One(), db) is None  # Exists stops a missing value with a message


def test_stock_validators_read_their_bounds_when_called(db: StorageAdapter) -> None:
    class Short(Document):
        structure = {"name": str}
        validators = {"name": [Length(min=2, max=4)]}

    encode = encoder_for(Short, db.converter_manager)
    assert encode is not None
    assert encode(Short(name="abc"), db) == b"name\0abc"
    Short.validators["name"][0].max = 2  # (the same validator, changed in place)
    assert encode(Short(name="abc"), db) is None  # refused now: the general path raises
    with pytest.raises(ValueError):
        Short(name="abc").validate()


def test_batch_empty_columns_over_many_columns() -> None:
    """Far more columns than the scan skips at once; empty ones early, late and last."""
    values = [b"a\0x\0b\0y"] * 3000
    values[1] = b"a\0\0b\0y"
    values[2500] = b"a\0x\0\0y"  # an empty name
    values[2999] = b"a\0x\0b\0"
    values.append(b"c\0")
    assert batch_empty_columns(values, [v.count(b"\0") for v in values]) == (
        {b"a": 1, b"b": 2999, b"c": 3000}, 2500)

"""Document classes and a small data set shared by the backend tests."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from doqu import Document
from doqu_tyrant import StorageAdapter
from doqu_tyrant.tyrant import Tyrant

D = datetime.date
DT = datetime.datetime


class Item(Document):
    """One field of every stored kind."""

    structure = {
        "text": str,
        "number": int,
        "ratio": float,
        "money": Decimal,
        "flag": bool,
        "day": datetime.date,
        "moment": datetime.datetime,
        "items": list,
        "ref": "self",
    }


class Loose(Document):
    """No structure: conditions take their kind from the value."""


FIELDS = list(Item.structure)

ROWS: list[dict[str, Any]] = [
    dict(text="alpha", number=30, ratio=0.5, money=Decimal("1.50"), flag=True,
         day=D(2010, 3, 5), moment=DT(2010, 3, 5, 10, 0, 0), items=["red", "dark blue"]),
    dict(text="Beta gamma", number=-5, ratio=2.25, money=Decimal("-3"), flag=False,
         day=D(1999, 12, 31), moment=DT(1999, 12, 31, 23, 59, 59), items=["blue"]),
    dict(text="", number=0, ratio=0.0, money=Decimal("0"), flag=False,
         day=D(2010, 1, 1), moment=DT(2010, 1, 1, 0, 0, 0), items=[]),
    dict(),  # every field unset: stored as ""
    dict(text="new york", number=100, ratio=-1.5, money=Decimal("100.25"), flag=True,
         day=D(2021, 6, 15), moment=DT(2021, 6, 15, 8, 30, 0), items=["new york", "oslo"]),
]
#: A record holding only some columns, written by hand (the others are missing).
SPARSE = {"text": "delta, epsilon", "number": "7"}


def load(db: StorageAdapter, raw: Tyrant) -> dict[str, tuple[Item, dict[str, str]]]:
    """Save the data set; return ``{pk: (document as loaded, raw record)}``."""
    keys = [Item(**row).save(db) for row in ROWS]
    first = db.get(Item, keys[0])
    keys.append(Item(text="ref", ref=first).save(db))
    raw.table_put("sparse", SPARSE)
    keys.append("sparse")
    return {key: (db.get(Item, key), raw[key]) for key in keys}

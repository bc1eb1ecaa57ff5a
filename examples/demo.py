"""``make demo``: documents through doqu, kept in a Tokyo Tyrant table database.

Starts the bundled Tyrant-compatible server inside this process on a free
loopback port over a temporary ``.tct`` file, then does the main job of the
library: a settings dict → ``doqu.get_db`` → a storage adapter; documents
saved, read back, queried with ``where``/``where_not``/``order_by``,
counted, combined, their values listed, some deleted. Every step is printed
with what it cost on the wire. Afterwards the server is stopped and the
temporary files are removed: nothing is left running.
"""

from __future__ import annotations

import datetime
import tempfile
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

import doqu
from doqu import Document, ValidationError
from doqu.validators import Length, Required
from doqu_tyrant.server import Server


class Person(Document):
    structure = {
        "name": str,
        "age": int,
        "born": datetime.date,
        "city": str,
        "tags": list,
        "balance": Decimal,
    }
    validators = {"name": [Required(), Length(max=100)]}
    defaults = {"tags": list}


PEOPLE = [
    ("Alice", 30, datetime.date(1995, 3, 1), "Oslo", ["admin", "dev"], Decimal("120.50")),
    ("Bob", 17, datetime.date(2008, 7, 12), "Bergen", [], Decimal("3")),
    ("Carol", 45, datetime.date(1980, 11, 30), "Oslo", ["dev"], Decimal("990.00")),
    ("Dave", 62, datetime.date(1963, 1, 5), "New York", ["ops"], Decimal("-15.25")),
    ("Eve", 28, datetime.date(1997, 6, 21), None, ["dev", "ops"], None),
    ("Frank", None, None, "Oslo", [], None),
]


def names(people: Iterable[Person]) -> str:
    return ", ".join(p["name"] for p in people) or "(none)"


def requests(db: doqu.backend_base.BaseStorageAdapter) -> int:
    """Requests the server has answered (``stat`` itself not counted)."""
    stats = db.client.stat()  # type: ignore[attr-defined]
    return sum(int(v) for k, v in stats.items() if k.startswith("cnt_") and k != "cnt_stat"
               and not k.endswith("_miss"))


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="doqu-tyrant-demo-") as directory:
        path = str(Path(directory) / "people.tct")
        with Server(path, port=0) as server:
            print(f"started the bundled server on {server.url} over {path}")
            settings = {"backend": "doqu_tyrant", "host": "127.0.0.1", "port": server.port}
            db = doqu.get_db(settings)
            print(f"doqu.get_db({settings}) -> {db!r}")

            for name, age, born, city, tags, balance in PEOPLE:
                Person(name=name, age=age, born=born, city=city, tags=tags,
                       balance=balance).save(db)
            print(f"saved {len(db)} people with generated keys {sorted(db, key=int)}")
            raw = db.client.table_get("1")  # type: ignore[attr-defined]
            print(f"record 1 as stored (the Python 2 doqu's format): {raw}")

            def step(label: str, run: object) -> None:
                before = requests(db)
                result = run() if callable(run) else run
                cost = requests(db) - before
                print(f"  {label:<44} -> {result}   [{cost} request(s)]")

            people = db.find(Person)
            print("queries:")
            step("get(Person, '3')", lambda: db.get(Person, "3")["name"])
            step("get_many(Person, ['5', '1'])",
                 lambda: names(db.get_many(Person, ["5", "1"])))
            adults = people.where(age__gte=18).order_by("-age")
            step("where(age__gte=18).order_by('-age')", lambda: names(adults[:]))
            step("  ... .count()", adults.count)
            step("  ... [:2]", lambda: names(adults[:2]))
            step("  ... [-1]", lambda: adults[-1]["name"])
            step("where_not(city='Oslo')", lambda: names(people.where_not(city="Oslo")[:]))
            step("order_by('age') (unset age last)", lambda: names(people.order_by("age")[:]))
            step("where(born__year=1997)", lambda: names(people.where(born__year=1997)[:]))
            step("where(tags__contains='dev')",
                 lambda: names(people.where(tags__contains="dev")[:]))
            step("where(city__in=['New York', 'Bergen'])",
                 lambda: names(people.where(city__in=["New York", "Bergen"])[:]))
            step("where(balance__gt=100)", lambda: names(people.where(balance__gt=100)[:]))
            young = people.where(age__lt=30)
            oslo = people.where(city="Oslo")
            step("young | oslo, oldest first", lambda: names((young | oslo).order_by("-age")[:]))
            step("(young | oslo).count()", (young | oslo).count)
            step("oslo - young", lambda: names((oslo - young)[:]))
            step("values('city')", lambda: people.values("city"))
            step("order_by('born').values('born')",
                 lambda: [d.isoformat() for d in people.order_by("born").values("born") if d])
            step("get_or_create(Person, name='Bob')",
                 lambda: db.get_or_create(Person, name="Bob")[1] and "created" or "found")

            try:
                Person(name="", age=200).save(db)
            except ValidationError as exc:
                print(f"refused an invalid person ({', '.join(sorted(exc.errors))}); "
                      f"still {len(db)} records")

            removed = people.where(age__gt=60)
            print(f"deleting {removed.count()} person(s) over 60")
            removed.delete()
            print(f"left: {names(people.order_by('name'))}")
            db.disconnect()
        print("stopped the server; the temporary database is removed")


if __name__ == "__main__":
    main()

"""Documents and queries through doqu, stored in a Tokyo Tyrant table.

Run it as it is (it starts the bundled server on a temporary database) or
against a server of yours: ``python examples/documents.py --url
tyrant://127.0.0.1:1978`` (that database is emptied first!).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import tempfile
from collections.abc import Iterator

import doqu
from doqu import Document, ValidationError
from doqu.validators import Length, NumberRange, Required


class Person(Document):
    structure = {
        "name": str,
        "age": int,
        "born": datetime.date,
        "city": str,
        "tags": list,
    }
    validators = {"name": [Required(), Length(max=100)], "age": [NumberRange(0, 150)]}
    defaults = {"tags": list}


@contextlib.contextmanager
def tyrant_url(url: str | None) -> Iterator[str]:
    """``url``, or the URL of a bundled server on a temporary table database."""
    if url:
        yield url
        return
    from doqu_tyrant.server import Server

    with tempfile.TemporaryDirectory() as directory:
        with Server(os.path.join(directory, "people.tct"), port=0) as server:
            yield server.url


def main(url: str) -> None:
    db = doqu.get_db({"backend": "doqu_tyrant", "url": url})
    db.clear()

    people = [
        ("Alice", 30, datetime.date(1995, 3, 1), "Oslo", ["admin", "dev"]),
        ("Bob", 17, datetime.date(2008, 7, 12), "Bergen", []),
        ("Carol", 45, datetime.date(1980, 11, 30), "Oslo", ["dev"]),
        ("Dave", 62, datetime.date(1963, 1, 5), "Tromsø", ["ops"]),
        ("Eve", 28, datetime.date(1997, 6, 21), None, ["dev", "ops"]),
    ]
    for name, age, born, city, tags in people:
        Person(name=name, age=age, born=born, city=city, tags=tags).save(db)
    print("saved", len(db), "people")

    alice = db.get(Person, "1")
    print("get 1:", alice["name"], alice["age"], alice["born"].isoformat(), alice["tags"])

    adults = db.find(Person).where(age__gte=18).order_by("-age")
    print("adults, oldest first:", [p["name"] for p in adults])
    print("how many:", adults.count())
    print("first two:", [p["name"] for p in adults[:2]])
    print("not in Oslo:", sorted(p["name"] for p in adults.where_not(city="Oslo")))
    print("born in the 1990s:",
          [p["name"] for p in db.find(Person, born__between=(datetime.date(1990, 1, 1),
                                                             datetime.date(1999, 12, 31)))])
    print("named Carol or Dave:",
          [p["name"] for p in db.find(Person).where(name__in=["Carol", "Dave"])])
    devs = db.find(Person, tags__contains="dev").order_by("name")
    print("tagged dev:", [p["name"] for p in devs])
    print("cities:", sorted(c for c in db.find(Person).values("city") if c))

    young = db.find(Person).where(age__lt=30)
    oslo = db.find(Person).where(city="Oslo")
    print("young or in Oslo:", sorted(p["name"] for p in young | oslo))
    print("in Oslo but not young:", sorted(p["name"] for p in oslo - young))

    bob, created = db.get_or_create(Person, name="Bob")
    print("get_or_create Bob:", bob["age"], "created" if created else "found")

    try:
        Person(name="", age=200).save(db)
    except ValidationError as exc:
        print("refused:", ", ".join(sorted(exc.errors)))

    removed = db.find(Person).where(age__gt=60)
    print("deleting", removed.count(), "person over 60")
    removed.delete()
    print("left:", sorted(p["name"] for p in Person.objects(db)))
    db.disconnect()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a Tyrant server to use (its database is emptied)")
    args = parser.parse_args()
    with tyrant_url(args.url) as url:
        main(url)

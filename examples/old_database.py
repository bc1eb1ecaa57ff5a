"""Reading a database written by the Python 2 doqu + pyrant.

The old library stored each document as one table record of text columns:
dates as ``YYYYMMDD``, datetimes as ``YYYYMMDDHHMMSS``, floats with 12
significant digits, booleans as ``1``/``0``, lists joined by ``", "``,
``None`` as an empty column. This script writes such records straight into a
Tokyo Cabinet table file (as if the old application had left it behind),
serves that file with the bundled server and works with it through doqu.

With ``--url`` the same records are written through the raw client into the
server you name instead (its database is emptied first!).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from typing import cast

import doqu
from doqu import Document
from doqu_tyrant import StorageAdapter

# Records exactly as the Python 2 library left them (keys from the table's
# counter, so the next generated key is "4").
OLD_RECORDS = [
    {"name": "Alice", "born": "19800301", "joined": "20090615103000", "score": "0.333333333333",
     "active": "1", "balance": "1.50", "tags": "admin, dev", "note": ""},
    {"name": "Bob", "born": "19750712", "joined": "20100101000000", "score": "12.5",
     "active": "0", "balance": "1E+2", "tags": "", "note": "", "legacy": "kept as is"},
    {"name": "Carol", "born": "19920101", "score": "7"},  # a sparse record
]


class Member(Document):
    structure = {
        "name": str,
        "born": datetime.date,
        "joined": datetime.datetime,
        "score": float,
        "active": bool,
        "balance": Decimal,
        "tags": list,
        "note": str,
    }


def write_with_cabinet(path: str) -> None:
    """Create ``path`` (a .tct file) holding OLD_RECORDS, without any server."""
    from doqu_tyrant.server.cabinet import Cabinet

    with Cabinet(path) as cabinet:
        for record in OLD_RECORDS:
            pk = cabinet.misc("genuid")[0]  # type: ignore[index]
            args = [pk]
            for name, value in record.items():
                args += [name.encode(), value.encode()]
            cabinet.misc("put", args)
        cabinet.sync()


def write_with_client(url: str) -> None:
    """The same records through the raw Tyrant client (no doqu)."""
    from doqu_tyrant.tyrant import Tyrant

    with Tyrant.from_url(url, timeout=10) as t:
        t.vanish()  # also resets the key counter
        for record in OLD_RECORDS:
            t[str(t.genuid())] = record


@contextlib.contextmanager
def old_database(url: str | None) -> Iterator[str]:
    """A server holding the old records: yours (``url``) or a bundled one."""
    if url:
        write_with_client(url)
        yield url
        return
    from doqu_tyrant.server import Server

    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "legacy.tct")
        write_with_cabinet(path)
        print("wrote", path.rsplit(os.sep, 1)[-1], "with Tokyo Cabinet directly")
        with Server(path, port=0) as server:
            yield server.url


def main(url: str) -> None:
    # The backend's old name still works; the adapter is doqu_tyrant's.
    db = cast(StorageAdapter, doqu.get_db({"backend": "doqu.ext.tokyo_tyrant", "url": url}))
    for member in db.find(Member).order_by("name"):
        print(f"{member.pk}: {member['name']:<5} born={member['born']} "
              f"joined={member['joined']} score={member['score']!r} "
              f"active={member['active']} balance={member['balance']!r} "
              f"tags={member['tags']} note={member['note']!r}")

    print("scored above 5, numerically:",
          [m["name"] for m in db.find(Member).where(score__gt=5).order_by("-score")])
    print("born before 1990:",
          [m["name"] for m in db.find(Member, born__lt=datetime.date(1990, 1, 1))])

    # Change a document and save it: the record keeps the old format, and the
    # column the structure does not know survives.
    bob = db.get(Member, "2")
    bob["tags"] = ["ops"]
    bob["score"] = 13.25
    bob.save()
    print("Bob's record now:", db.client["2"])

    # A new document takes the next key from the same counter.
    pk = Member(name="Dave", born=datetime.date(2001, 2, 3), active=True).save(db)
    print("new key:", pk, "| record:", db.client[pk])
    db.disconnect()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a Tyrant server to use (its database is emptied)")
    args = parser.parse_args()
    with old_database(args.url) as url:
        main(url)

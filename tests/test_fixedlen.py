"""The fixed-length header recount after an unclean shutdown (fixedlen.py), on
the real library."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from doqu_tyrant.server import fixedlen
from doqu_tyrant.server.cabinet import Cabinet
from tests.servers import ROOT


@pytest.mark.parametrize("width", [8, 300, 70000])
def test_recount_finds_every_record(tmp_path: Path, width: int) -> None:
    """Records written after the header was last written, empty values, a
    removed record, for every size-field width (1, 2 and 4 bytes)."""
    path = tmp_path / "db.tcf"
    with Cabinet(f"{path}#width={width}#limsiz=64m") as db:
        for i in range(1, 11):
            assert db.put(b"%d" % i, b"v")
    header = path.read_bytes()[:256]
    with Cabinet(path) as db:
        assert db.put(b"5", b"") and db.out(b"10") and db.out(b"1")
        assert db.put(b"200", b"\0x") and db.put(b"120", b"y")
    data = bytearray(path.read_bytes())
    data[:256] = header  # what a kill leaves: the header of the earlier close
    path.write_bytes(bytes(data))
    assert fixedlen.recount(str(path)) == (10, 2, 200)
    assert fixedlen.recount(str(path)) is None  # right now: nothing to do
    with Cabinet(path) as db:
        assert db.rnum() == 10 and db.get(b"5") == b"" and db.get(b"1") is None
        assert db.iterinit()
        keys = []
        while (key := db.iternext()) is not None:
            keys.append(int(key))
        assert keys == [2, 3, 4, 5, 6, 7, 8, 9, 120, 200]


HOLDER = """
import sys
from doqu_tyrant.server.cabinet import Cabinet
db = Cabinet(sys.argv[1])
db.put(b"3", b"v")
print("ready", flush=True)
sys.stdin.read()
db.close()
"""


def test_recount_leaves_an_open_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "db.tcf"
    with Cabinet(path) as db:  # a handle of this process (no other fd opened meanwhile:
        assert db.put(b"3", b"v")  # closing one would drop the handle's lock)
        assert fixedlen.recount(str(path)) is None
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"ready\n"
        before = path.read_bytes()[:256]
        assert fixedlen.recount(str(path)) is None  # another process's handle
        assert path.read_bytes()[:256] == before
    finally:
        holder.communicate(b"", timeout=30)
    assert fixedlen.recount(str(tmp_path / "missing.tcf")) is None
    Cabinet(tmp_path / "db.tch").close()
    assert fixedlen.recount(str(tmp_path / "db.tch")) is None  # not fixed-length

"""``export`` and ``import``: exact round trips, malformed input, progress."""

from __future__ import annotations

import base64
import json
import os
import pty
import random
import subprocess

import pytest

from doqu_tyrant.tyrant import Tyrant
from tests.conftest import shared_url

from .conftest import cli_command, cli_env

ODD_KEYS = [
    "with space", "tab\there", "new\nline", "quote\"s", "back\\slash", "ünïcödé", "日本語",
    "emoji 😀", "=eq=", "-dash", "--double", "{json}", "comma,sep", " lead", "trail ",
    "\u2028sep", "%s", "'single'", "null", "0",
]


def make_records(n: int) -> dict[str, dict[str, str]]:
    """``n`` records with varied column order, unicode, empty values and odd keys."""
    rng = random.Random(1234)
    records: dict[str, dict[str, str]] = {}
    for i in range(n):
        key = ODD_KEYS[i] if i < len(ODD_KEYS) else f"rec:{i:05d}"
        names = ["name", "age", "city", "note", "tags", "é", "x y"]
        rng.shuffle(names)
        record = {}
        for name in names[: rng.randrange(len(names) + 1)]:
            choice = rng.randrange(6)
            if choice == 0:
                value = ""
            elif choice == 1:
                value = str(rng.randrange(-1000, 1000))
            elif choice == 2:
                value = "Ève, Zoë & 李"
            elif choice == 3:
                value = "multi\nline\ttext \"quoted\" \\ back"
            else:
                value = "v" * rng.randrange(1, 50)
            record[name] = value
        records[key] = record
    return records


def snapshot(client: Tyrant) -> dict[bytes, list[tuple[bytes, bytes]]]:
    """Every record with its columns in stored order, as bytes."""
    return {pk: list(rec.items()) for pk, rec in client.query.iter_items(raw=True)}


@pytest.fixture
def two_tables(request, server_factory):
    """(url, client) of the shared table server (emptied; the bundled one or
    $TYRANT_URL) and of a fresh bundled table server."""
    url_a = shared_url(request)
    b = server_factory("table")
    ca = Tyrant.from_url(url_a, timeout=30)
    ca.vanish()
    cb = Tyrant.from_url(b.url, timeout=30)
    yield (url_a, ca), (b.url, cb)
    ca.vanish()
    ca.close()
    cb.close()


def test_export_import_pipe_round_trip(two_tables):
    (url_a, a), (url_b, b) = two_tables
    records = make_records(2000)
    a.putlist(records)
    # records that are not valid UTF-8 travel as base64
    a.putlist([(b"bin\xff", {b"col": b"\xfe\x00"[:1], b"\xc3": b"ok"}),
               (b"fine", {b"raw": b"\x80\x81"})])
    a["nocols"] = {}
    expected = snapshot(a)
    assert len(expected) == 2003

    export = subprocess.Popen(cli_command("export"), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=cli_env(url_a))
    imported = subprocess.run(cli_command("import"), stdin=export.stdout,
                              capture_output=True, env=cli_env(url_b), timeout=120)
    assert export.stdout is not None and export.stderr is not None
    export.stdout.close()
    assert export.wait(60) == 0, export.stderr.read()
    assert export.stderr.read() == b""  # quiet when piped
    export.stderr.close()
    assert imported.returncode == 0, imported.stderr
    assert imported.stderr == b"" and imported.stdout == b""

    assert snapshot(b) == expected
    for pk, columns in expected.items():  # column order too
        assert list(b.table_get(pk, raw=True).items()) == columns


def test_export_to_file_and_import_file(two_tables, run_cli, tmp_path):
    (url_a, a), (url_b, b) = two_tables
    a.putlist(make_records(300))
    path = tmp_path / "dump.jsonl"
    done = run_cli("export", "-o", str(path), url=url_a)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b""
    assert os.listdir(tmp_path) == ["dump.jsonl"]  # no temporary file left
    lines = path.read_bytes().splitlines()
    assert len(lines) == 300
    first = json.loads(lines[0])
    assert set(first) == {"key", "record"}
    assert "ünïcödé".encode() in path.read_bytes()  # UTF-8, not \u escapes

    done = run_cli("import", str(path), "--batch", "7", url=url_b)
    assert done.returncode == 0, done.stderr
    assert snapshot(b) == snapshot(a)


def test_base64_lines(two_tables, run_cli):
    (url_a, a), (url_b, b) = two_tables
    a.putlist([(b"k\xff", {b"n": b"\xfe"})])
    line = run_cli("export", url=url_a).stdout
    obj = json.loads(line)
    assert obj == {"key": base64.b64encode(b"k\xff").decode(),
                   "record": {"bg==": "/g=="}, "encoding": "base64"}
    assert run_cli("import", url=url_b, input=line).returncode == 0
    assert b.table_get(b"k\xff", raw=True) == {b"n": b"\xfe"}


def test_empty_database(two_tables, run_cli):
    (url_a, _), (url_b, b) = two_tables
    done = run_cli("export", url=url_a)
    assert done.returncode == 0 and done.stdout == b""
    assert run_cli("import", url=url_b, input=b"").returncode == 0
    assert len(b) == 0


def test_import_overwrites_and_skips_blank_lines(two_tables, run_cli):
    (_, _), (url_b, b) = two_tables
    b["a"] = {"old": "1", "x": "y"}
    data = b'{"key": "a", "record": {"new": "2"}}\n\n   \n{"key": "b", "record": {}}\r\n'
    done = run_cli("import", url=url_b, input=data)
    assert done.returncode == 0, done.stderr
    assert b["a"] == {"new": "2"} and b["b"] == {}


MALFORMED = [
    (b"not json", b"not valid JSON"),
    (b"[1, 2]", b"expected a JSON object, got list"),
    (b'{"key": "k"}', b"the record must be a JSON object"),
    (b'{"key": "", "record": {}}', b"the key is empty"),
    (b'{"key": 5, "record": {}}', b"the key must be a JSON string, got int 5"),
    (b'{"record": {}}', b"the key must be a JSON string, got nothing"),
    (b'{"key": "k", "record": {"a": 1}}', b"column 'a' must be a string, got int 1"),
    (b'{"key": "k", "record": {"": "v"}}', b"a column name is empty"),
    (b'{"key": "k", "record": {"a": "x\\u0000y"}}', b"contains a NUL"),
    (b'{"key": "k\\u0000", "record": {}}', b"the key contains a NUL"),
    (b'{"key": "k", "record": {}, "extra": 1}', b"unknown field 'extra'"),
    (b'{"key": "k", "value": "v"}', b"field 'value' does not fit a table database"),
    (b'{"key": "k", "record": {}, "encoding": "rot13"}', b"unknown encoding 'rot13'"),
    (b'{"key": "!!", "record": {}, "encoding": "base64"}', b"not valid base64"),
    (b'{"key": "k\xff", "record": {}}', b"not UTF-8"),
]


@pytest.fixture
def shared(request):
    """The session's server (or $TYRANT_URL), emptied before and after."""
    url = shared_url(request)
    client = Tyrant.from_url(url, timeout=30)
    client.vanish()
    yield url, client
    client.vanish()
    client.close()


@pytest.mark.parametrize("bad, message", MALFORMED)
def test_malformed_line_reports_how_far(shared, run_cli, tmp_path, bad, message):
    url_b, b = shared
    good = [json.dumps({"key": f"g{i}", "record": {"i": str(i)}}).encode() for i in range(5)]
    after = json.dumps({"key": "after", "record": {}}).encode()
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join([*good, bad, after]) + b"\n")
    done = run_cli("import", str(path), "--batch", "2", url=url_b)
    assert done.returncode == 4
    err = done.stderr
    assert b"line 6 of " + str(path).encode() in err
    assert message in err, err
    assert b"imported 5 records (every record through line 5" in err
    assert b"tail -n +6" in err
    # everything before the bad line is in, nothing from it on
    assert sorted(b.query.keys()) == [f"g{i}" for i in range(5)]


def test_malformed_first_line_from_stdin(two_tables, run_cli):
    (_, _), (url_b, b) = two_tables
    done = run_cli("import", url=url_b, input=b"{oops\n")
    assert done.returncode == 4
    assert b"line 1 of stdin" in done.stderr and b"nothing was imported" in done.stderr
    assert len(b) == 0


def test_dry_run_sends_nothing(two_tables, run_cli):
    (_, _), (url_b, b) = two_tables
    data = b'{"key": "a", "record": {}}\n'
    assert run_cli("import", "--dry-run", url=url_b, input=data).returncode == 0
    assert len(b) == 0
    done = run_cli("import", "--dry-run", url=url_b, input=data + b"bad\n")
    assert done.returncode == 4 and b"line 2" in done.stderr


def test_a_batch_a_ttserver_would_abort_on_is_not_sent(two_tables, run_cli):
    (_, _), (url_b, b) = two_tables
    # b is always a bundled server; an empty value in an indexed column aborts ttserver
    b.setindex("name", "lexical")
    try:
        data = b"".join(
            json.dumps({"key": f"k{i}", "record": {"name": "" if i == 3 else "x"}}).encode()
            + b"\n" for i in range(6)
        )
        done = run_cli("import", "--batch", "2", url=url_b, input=data)
        assert done.returncode == 1
        assert b"Traceback" not in done.stderr
        assert b"lines 3-4 were not sent" in done.stderr and b"'name'" in done.stderr
        assert b"imported 2 records (every record through line 2" in done.stderr
        assert sorted(b.table.keys()) == ["k0", "k1"]
    finally:
        b.setindex("name", "void")


def test_missing_input_file(run_cli, tmp_path, two_tables):
    (_, _), (url_b, _) = two_tables
    done = run_cli("import", str(tmp_path / "nope.jsonl"), url=url_b)
    assert done.returncode == 2
    assert b"cannot read" in done.stderr


def test_key_value_round_trip(server_factory, run_cli):
    src = server_factory("hash")
    dst = server_factory("btree")
    with Tyrant.from_url(src.url) as a, Tyrant.from_url(dst.url) as b:
        values = {f"k{i}".encode(): os.urandom(i % 7) for i in range(1500)}
        values[b"text"] = "plain ü".encode()
        values[b"\xffkey"] = b""
        with a.pipeline() as pl:
            for k, v in values.items():
                pl.put(k, v)
            pl.execute()
        dump = run_cli("export", url=src.url)
        assert dump.returncode == 0, dump.stderr
        assert b'{"key":"text","value":"plain \xc3\xbc"}' in dump.stdout
        done = run_cli("import", url=dst.url, input=dump.stdout)
        assert done.returncode == 0, done.stderr
        assert b.rnum() == len(values)
        assert b.mget(list(values)) == values
        done = run_cli("import", url=dst.url, input=b'{"key": "t", "record": {}}\n')
        assert done.returncode == 4 and b"does not fit a key-value database" in done.stderr


def run_on_terminal(args: list[str], url: str, input: bytes | None = None,
                    stdin_path: str | None = None) -> tuple[int, bytes]:
    """Run with stderr on a pseudo-terminal; return (status, what the terminal got)."""
    master, slave = pty.openpty()
    try:
        stdin = open(stdin_path, "rb") if stdin_path else subprocess.PIPE  # noqa: SIM115
        proc = subprocess.Popen(cli_command(*args), stdin=stdin, stdout=subprocess.PIPE,
                                stderr=slave, env=cli_env(url))
        os.close(slave)
        slave = -1
        out, _ = proc.communicate(input, timeout=120)
        if stdin_path:
            stdin.close()  # type: ignore[union-attr]
        seen = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        return proc.returncode, seen
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)


def test_progress_on_a_terminal_only(two_tables, run_cli, tmp_path):
    (url_a, a), (url_b, _) = two_tables
    a.putlist(make_records(3000))
    path = tmp_path / "all.jsonl"
    code, seen = run_on_terminal(["export", "-o", str(path)], url_a)
    assert code == 0
    assert b"exported 3,000 records to" in seen
    code, seen = run_on_terminal(["import", str(path), "--batch", "100"], url_b)
    assert code == 0
    assert b"\rimport" in seen and b"%" in seen and b"records" in seen
    assert b"imported 3,000 records in" in seen
    code, seen = run_on_terminal(["-q", "import", str(path)], url_b)
    assert code == 0 and seen == b""
    code, seen = run_on_terminal(["import", "-q", str(path)], url_b)
    assert code == 0 and seen == b""
    # piped: no bar, no summary
    done = run_cli("import", str(path), url=url_b)
    assert done.returncode == 0 and done.stderr == b""

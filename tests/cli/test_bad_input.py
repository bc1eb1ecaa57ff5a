"""``doqu-tyrant`` on everyday mistakes (issue 10, items 7-10 and 12-14).

Each bad invocation ends with one ``doqu-tyrant: error: ...`` line and the
documented status, before anything is sent: most run against a port where
nothing listens, so a connection attempt would show as status 3.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import threading
import time

import pytest

from doqu_tyrant.cli.progress import render
from doqu_tyrant.cli.text import escape, unescape
from doqu_tyrant.tyrant import Tyrant

from .conftest import cli_command, cli_env

BOUND = 15.0  # generous: "at once" on a loaded machine


@pytest.fixture(scope="module")
def nobody() -> str:
    """A URL where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tyrant://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def people(server_factory):
    server = server_factory("table")
    client = Tyrant.from_url(server.url, timeout=10)
    client["u1"] = {"name": "Alice", "age": "30"}
    client["u2"] = {"name": "Bob", "age": "5"}
    client["u3"] = {"name": "Carol", "age": "100"}
    client["u4"] = {"name": "Dan", "age": "abc"}
    yield server.url, client
    client.close()


def run(*args: str | bytes, url: str | None = None, env: dict[str, str] | None = None,
        input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    command = [os.fsencode(a) for a in cli_command()] + [os.fsencode(a) for a in args]
    environment = cli_env(url)
    environment.update(env or {})
    return subprocess.run(command, capture_output=True, env=environment, timeout=120,
                          input=input)


def error_line(done: subprocess.CompletedProcess[bytes]) -> str:
    err = done.stderr.decode(errors="replace")
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("doqu-tyrant: error: "), err
    return lines[0]


# -- 7. global options before and after the command ---------------------------------------


def test_global_options_after_the_command(people, tmp_path, nobody):
    url, _ = people
    out = tmp_path / "f.jsonl"
    done = run("export", "--url", url, "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert len(out.read_text().splitlines()) == 4
    done = run("stat", "--url", url, "--timeout", "5", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["rnum"] == "4"
    done = run("query", "--where", "name=Bob", "--keys", "--url", url, "-q")
    assert done.returncode == 0 and done.stdout == b"u2\n"
    done = run("get", "u1", f"--url={url}")
    assert done.returncode == 0 and b"Alice" in done.stdout
    # given before and after: the one after the command wins
    done = run("--url", nobody, "stat", "--url", url)
    assert done.returncode == 0, done.stderr
    done = run("--url", url, "stat", "--url", nobody)
    assert done.returncode == 3


# -- 8. bad arguments: one error line, status 2, nothing sent ------------------------------


@pytest.mark.parametrize("args, message", [
    (["--timeout", "-1", "stat"], "the timeout must be above 0 seconds"),
    (["--timeout", "0", "stat"], "the timeout must be above 0 seconds"),
    (["stat", "--timeout", "nan"], "the timeout must be a finite number"),
    (["stat", "--timeout", "soon"], "the timeout must be a number of seconds"),
    (["get", ""], "the key is empty"),
    (["put", "", "a=1"], "the key is empty"),
    (["get", "-e", "bad\\q"], "bad escape"),
    (["export", "-o", "/missing/dir/x.jsonl"], "the directory '/missing/dir' does not exist"),
    (["export", "-o", "."], "it is a directory"),
    (["query", "--limit", "-1"], "at least 0"),
    (["query", "--offset", "x"], "must be a whole number"),
    (["import", "--batch", "0"], "at least 1"),
    (["query", "--where", "age"], "expected COLUMN[__LOOKUP]=VALUE"),
    (["query", "--where", "age__frob=1"], "unknown lookup 'frob'"),
    (["query", "--bogus"], "unrecognized arguments: --bogus"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    ([], "the following arguments are required: COMMAND"),
])  # fmt: skip
def test_bad_arguments(nobody, tmp_path, args, message):
    start = time.monotonic()
    done = run(*args, url=nobody)
    assert done.returncode == 2, done.stderr
    assert message in error_line(done)
    assert time.monotonic() - start < BOUND


def test_export_checks_its_output_before_exporting(people, tmp_path):
    url, _ = people
    existing = tmp_path / "keep.jsonl"
    existing.write_text("old\n")
    (tmp_path / "sub").mkdir()
    done = run("export", "-o", str(tmp_path / "sub"), url=url)
    assert done.returncode == 2 and "is a directory" in error_line(done)
    assert sorted(os.listdir(tmp_path)) == ["keep.jsonl", "sub"]  # no temporary left
    assert os.listdir(tmp_path / "sub") == []


def test_export_to_a_pipe_or_through_a_link_keeps_them(people, tmp_path):
    url, _ = people
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    done = run("export", "-o", str(fifo), url=url)
    reader.join(BOUND)
    assert done.returncode == 0, done.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # written to, not replaced by a file
    assert len(got[0].splitlines()) == 4
    (tmp_path / "real").mkdir()
    link = tmp_path / "link.jsonl"
    link.symlink_to(tmp_path / "real" / "target.jsonl")
    assert run("export", "-o", str(link), url=url).returncode == 0
    assert link.is_symlink() and len(link.read_text().splitlines()) == 4


def test_import_refuses_a_lone_surrogate(people):
    url, client = people
    done = run("import", url=url, input=b'{"key": "s", "record": {"a": "x\\udc80"}}\n')
    assert done.returncode == 4 and "lone surrogate" in error_line(done)
    assert "s" not in client
    done = run("import", url=url, input=b'{"key": "\\ud83d\\ude00", "record": {}}\n')
    assert done.returncode == 0 and "\U0001f600" in client


# -- 9. URLs --------------------------------------------------------------------------------


@pytest.mark.parametrize("url, problem", [
    ("garbage", "no tyrant:// scheme"),
    ("127.0.0.1:1978", "did you mean 'tyrant://127.0.0.1:1978'?"),
    ("tyrant://me@127.0.0.1:1978", "user info"),
    ("tyrant://127.0.0.1:1978/db", "no paths"),
    ("tyrant://127.0.0.1:1978?colour=red", "unknown option 'colour'"),
    ("tyrant://127.0.0.1:1978?timeout=-5", "timeout must be above 0 seconds"),
    ("tyrant://127.0.0.1:1978?pool_size=0", "pool_size must be at least 1"),
    ("tyrant://127.0.0.1:0", "not '0'"),
    ("tyrant://127.0.0.1:70000", "from 1 to 65535"),
])  # fmt: skip
@pytest.mark.parametrize("how", ["option", "environment"])
def test_bad_urls(url, problem, how):
    if how == "option":
        done = run("--url", url, "stat")
    else:
        done = run("stat", env={"TYRANT_URL": url})
    assert done.returncode == 2, done.stderr
    line = error_line(done)
    assert f"bad URL {url!r}" in line and problem in line
    assert "expected tyrant://HOST[:PORT]" in line
    assert ("(from $TYRANT_URL)" in line) == (how == "environment")


def test_bad_url_is_reported_before_reading_the_input(tmp_path):
    done = run("--url", "garbage", "import", input=b"not json\n")
    assert done.returncode == 2 and "bad URL" in error_line(done)


def test_a_failover_group_url(people, nobody):
    url, _ = people
    group = f"{nobody},{url.removeprefix('tyrant://')}?timeout=5"
    done = run("--url", group, "query", "--where", "name=Bob", "--keys")
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"u2\n"
    done = run("--url", f"{nobody},:1978", "stat")
    assert done.returncode == 2 and "bad URL" in error_line(done)


def test_url_options_are_used(people):
    url, _ = people
    done = run("--url", url + "?timeout=5&pool_size=1", "stat", "--json")
    assert done.returncode == 0, done.stderr


# -- 10. lookups in query --where ---------------------------------------------------------


@pytest.mark.parametrize("cond, message", [
    ("age__gt=abc", "'abc' is not a number"),
    ("age__lte=", "'' is not a number"),
    ("age__gte=1_000", "is not a number"),
    ("age__gt=nan", "is not a number"),
    ("age__between=1", "expected 2 numbers, LOW,HIGH, got 1"),
    ("age__between=1,2,3", "expected 2 numbers, LOW,HIGH, got 3"),
    ("age__between=1,x", "'x' is not a number"),
    ("age__numbt=5", "expected 2 numbers"),
    ("age__numgt=ten", "'ten' is not a number"),
    ("age__numoreq=1,two", "'two' is not a number"),
    ("age__exists=maybe", "expected true or false"),
])  # fmt: skip
def test_numeric_lookups_need_numbers(people, cond, message):
    url, _ = people
    done = run("query", "--where", cond, "--keys", url=url)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert message in error_line(done) and done.stdout == b""


@pytest.mark.parametrize("cond, keys", [
    ("age__gt=25", ["u1", "u3"]),
    ("age__gte=1e2", ["u3"]),
    ("age__between=5,30", ["u1", "u2"]),
    ("age__between=5 30", ["u1", "u2"]),
    ("age__numbt=5,30", ["u1", "u2"]),
    ("age__numoreq=5,100", ["u2", "u3"]),
    ("age__lt=-1.5", []),
])  # fmt: skip
def test_numeric_lookups_with_numbers(people, cond, keys):
    url, _ = people
    done = run("query", "--where", cond, "--keys", url=url)
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.decode().split()) == keys


@pytest.mark.parametrize("cond", ["name__regex=(", "name__iregex=[a-"])
def test_invalid_regular_expression_is_refused(people, cond):
    pytest.importorskip("doqu_tyrant.tyrant.regex", reason="the regex checker is not merged yet")
    url, _ = people
    done = run("query", "--where", cond, "--keys", url=url)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "bad query" in error_line(done) and done.stdout == b""


def test_numeric_without_order_is_refused(people):
    url, _ = people
    done = run("query", "--numeric", url=url)
    assert done.returncode == 2 and "give --order COLUMN" in error_line(done)
    done = run("query", "--order", "-age", "-n", "--keys", "--where", "age__gt=0", url=url)
    assert done.returncode == 0 and done.stdout.split() == [b"u3", b"u1", b"u2"]


# -- 12. put ------------------------------------------------------------------------------


def test_put_without_columns_or_with_a_column_twice(people):
    url, client = people
    done = run("put", "u1", url=url)
    assert done.returncode == 2 and "no COLUMN=VALUE given" in error_line(done)
    done = run("put", "u1", "a=1", "a=2", url=url)
    assert done.returncode == 2 and "column 'a' is given twice" in error_line(done)
    done = run("put", "u1", "--merge", "b=1", "b=2", url=url)
    assert done.returncode == 2
    assert client["u1"] == {"name": "Alice", "age": "30"}  # untouched


# -- 13. import: hints, byte-order mark, duplicate names ----------------------------------


@pytest.mark.parametrize("value, hint", [
    ("null", 'doqu stores None as an empty value: write ""'),
    ("true", 'doqu stores True as "1": write "1"'),
    ("false", 'doqu stores False as "0": write "0"'),
    ("30", 'write it as "30"'),
    ("1.5", 'write it as "1.5"'),
])  # fmt: skip
def test_import_hints(people, value, hint):
    url, _ = people
    line = b'{"key": "x", "record": {"c": %s}}\n' % value.encode()
    done = run("import", url=url, input=line)
    assert done.returncode == 4
    assert hint in error_line(done)


def test_import_accepts_a_byte_order_mark_on_line_one(people):
    url, client = people
    data = b'\xef\xbb\xbf{"key": "bom", "record": {"a": "1"}}\n{"key": "b2", "record": {}}\n'
    done = run("import", url=url, input=data)
    assert done.returncode == 0, done.stderr
    assert client["bom"] == {"a": "1"}
    done = run("import", url=url, input=b'{"key": "z", "record": {}}\n\xef\xbb\xbf{}\n')
    assert done.returncode == 4 and "line 2" in error_line(done)  # only line 1 may have it


@pytest.mark.parametrize("line, name", [
    (b'{"key": "d", "record": {"a": "1", "a": "2"}}', "'a'"),
    (b'{"key": "d", "key": "e", "record": {}}', "'key'"),
    (b'{"key": "ZA==", "record": {"YQ==": "MQ==", "YR==": "Mg=="}, "encoding": "base64"}',
     "b'a'"),
])  # fmt: skip
def test_import_refuses_duplicate_names(people, line, name):
    url, client = people
    done = run("import", url=url, input=b'{"key": "ok", "record": {}}\n' + line + b"\n")
    assert done.returncode == 4
    text = error_line(done)
    assert "line 2 of stdin" in text and name in text and "twice" in text
    assert "d" not in client and "ok" in client


# -- 14. reversible escaped output, progress bar -----------------------------------------


ODD = [b"k\xff", b"tab\tkey", b"new\nline", b"back\\slash", b"\xe2\x80\x8bzero-width",
       b"plain", b"caf\xc3\xa9", b"\x01ctl", b"x\\xff"]


def test_escape_round_trips():
    for data in [*ODD, b"", b"\\", b"\\\\x41", bytes(range(256))]:
        text = escape(data)
        assert text.isprintable(), text
        assert unescape(os.fsencode(text)) == data
    assert escape(b"k\xff") == "k\\xff" and escape(b"back\\slash") == "back\\\\slash"
    assert escape("café".encode()) == "café"
    for bad in (b"\\", b"a\\q", b"\\x4", b"\\xzz"):
        with pytest.raises(ValueError, match="bad escape"):
            unescape(bad)


def test_keys_that_are_not_utf8_print_escaped_and_read_back(server_factory):
    server = server_factory("table")
    with Tyrant.from_url(server.url, timeout=10) as client:
        for i, key in enumerate(ODD):
            client.table_put(key, {b"i": str(i).encode(), b"v\xfe": b"\xff\n"})
        done = run("query", "--keys", url=server.url)
        assert done.returncode == 0, done.stderr
        printed = done.stdout.decode().splitlines()
        assert sorted(printed) == sorted(escape(k) for k in ODD)
        assert "k\\xff" in printed and "\ufffd" not in done.stdout.decode()
        for text in printed:
            got = run("get", "-e", text, "--json", url=server.url)
            assert got.returncode == 0, (text, got.stderr)
        got = run("get", "--escaped", "k\\xff", url=server.url)
        assert got.stdout.decode().splitlines() == ["i      0", "v\\xfe  \\xff\\n"]
        assert run("put", "-e", "new\\xfe", "c\\x41=\\xff", url=server.url).returncode == 0
        assert client.table_get(b"new\xfe", raw=True) == {b"cA": b"\xff"}
        table = run("query", "--where", "i=0", url=server.url).stdout.decode()
        assert "k\\xff" in table and "\\xff\\n" in table and "\ufffd" not in table


@pytest.mark.parametrize("width", [20, 30, 45, 60, 80, 200])
def test_progress_line_has_a_fixed_layout_that_fits(width):
    widths = set()
    for done in (0, 7, 12_345, 999_999, 12_345_678):
        text = render("import", done, done / 12_345_678, 54_321.0, width)
        assert len(text) <= width - 1, (width, text)
        if "[" in text:
            widths.add(text.index("]") - text.index("["))
        if f"{done:,}" not in text:  # a count is shown whole or not at all
            assert not any(ch.isdigit() for ch in text.split("%")[-1]), text
    assert len(widths) <= 1  # the bar does not shrink as the count grows
    assert render("export", 10, None, 1.0, 80).startswith("export ")


def test_progress_on_a_narrow_terminal(server_factory, tmp_path):
    import pty
    import select

    server = server_factory("table")
    lines = b"".join(json.dumps({"key": f"k{i}", "record": {"n": str(i)}}).encode() + b"\n"
                     for i in range(3000))
    path = tmp_path / "in.jsonl"
    path.write_bytes(lines)
    master, slave = pty.openpty()
    env = cli_env(server.url)
    env["COLUMNS"] = "44"
    proc = subprocess.Popen(cli_command("import", str(path), "--batch", "50"),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
                            env=env)
    os.close(slave)
    seen = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        assert proc.wait(60) == 0
        os.close(master)
        if proc.stdout is not None:
            proc.stdout.close()
    frames = [f.replace(b"\x1b[K", b"") for f in seen.split(b"\r") if b"import " in f]
    assert frames, seen
    for frame in frames:
        text = frame.decode().rstrip()
        assert len(text) <= 43, frame
        assert text.endswith(("records", "/s")), frame  # left out, never cut mid-number

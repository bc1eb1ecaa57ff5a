"""Every subcommand of ``doqu-tyrant`` against the shared server (the bundled
one, or ``$TYRANT_URL``), and against bundled servers of other kinds."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from doqu_tyrant.tyrant import Tyrant
from tests.conftest import shared_url

from .conftest import cli_command, cli_env


@pytest.fixture
def table(request):
    """The shared table server emptied, with three people; yields (url, client)."""
    url = shared_url(request)
    client = Tyrant.from_url(url, timeout=10)
    client.vanish()
    client["u1"] = {"name": "Alice", "age": "30", "city": "Oslo"}
    client["u2"] = {"name": "Bob", "age": "5", "city": ""}
    client["u3"] = {"name": "Ève", "age": "100", "note": "two\nlines"}
    yield url, client
    client.vanish()
    client.close()


def lines(out: bytes) -> list[str]:
    return out.decode().splitlines()


def test_help(run_cli):
    done = run_cli("--help")
    assert done.returncode == 0
    text = done.stdout.decode()
    for command in ("serve", "stat", "get", "put", "query", "export", "import"):
        assert command in text
    assert "exit status" in text


def test_no_command_is_a_usage_error(run_cli):
    assert run_cli().returncode == 2


def test_stat(table, run_cli):
    url, _ = table
    done = run_cli("stat", url=url)
    assert done.returncode == 0, done.stderr
    fields = dict(line.split(None, 1) for line in lines(done.stdout))
    assert fields["type"] == "table"
    assert fields["rnum"] == "3"
    done = run_cli("--url", url, "stat", "--json")
    assert json.loads(done.stdout)["rnum"] == "3"


def test_url_from_environment_and_option(table, run_cli):
    url, _ = table
    # --url wins over TYRANT_URL
    done = run_cli("--url", url, "stat", url="tyrant://127.0.0.1:1")
    assert done.returncode == 0, done.stderr


def test_get(table, run_cli):
    url, _ = table
    done = run_cli("get", "u1", url=url)
    assert done.returncode == 0
    assert lines(done.stdout) == ["name  Alice", "age   30", "city  Oslo"]
    done = run_cli("get", "u3", "--json", url=url)
    assert json.loads(done.stdout) == {
        "key": "u3", "record": {"name": "Ève", "age": "100", "note": "two\nlines"},
    }  # fmt: skip
    assert list(json.loads(done.stdout)["record"]) == ["name", "age", "note"]


def test_get_missing_key(table, run_cli):
    url, _ = table
    done = run_cli("get", "nope", url=url)
    assert done.returncode == 1
    assert b"no record with key 'nope'" in done.stderr
    assert done.stdout == b""


def test_put_replaces_merges_and_keeps(table, run_cli):
    url, client = table
    done = run_cli("put", "u9", "name=Zoë", "age=41", "empty=", "eq=a=b", url=url)
    assert done.returncode == 0, done.stderr
    assert client["u9"] == {"name": "Zoë", "age": "41", "empty": "", "eq": "a=b"}
    assert list(client["u9"]) == ["name", "age", "empty", "eq"]

    assert run_cli("put", "u9", "age=42", url=url).returncode == 0
    assert client["u9"] == {"age": "42"}

    assert run_cli("put", "u1", "--merge", "age=31", "zip=0150", url=url).returncode == 0
    assert client["u1"] == {"name": "Alice", "age": "31", "city": "Oslo", "zip": "0150"}

    done = run_cli("put", "u1", "--keep", "name=X", url=url)
    assert done.returncode == 1
    assert b"exists" in done.stderr
    assert client["u1"]["name"] == "Alice"
    assert run_cli("put", "new", "--keep", "name=X", url=url).returncode == 0
    assert client["new"] == {"name": "X"}



@pytest.mark.parametrize("bad", ["novalue", "=x"])
def test_put_bad_column(table, run_cli, bad):
    url, client = table
    done = run_cli("put", "k", bad, url=url)
    assert done.returncode == 2
    assert b"COLUMN=VALUE" in done.stderr
    assert "k" not in client


def test_query_table_output(table, run_cli):
    url, _ = table
    done = run_cli("query", "--where", "age__gt=10", "--order", "-age", "--numeric", url=url)
    assert done.returncode == 0, done.stderr
    out = lines(done.stdout)
    assert out[0].split() == ["key", "name", "age", "note", "city"]
    assert out[2].split()[:3] == ["u3", "Ève", "100"]
    assert "two\\nlines" in out[2]  # control characters escaped, one row per record
    assert out[3].split()[:3] == ["u1", "Alice", "30"]
    assert len(out) == 4


def test_query_json_count_keys(table, run_cli):
    url, _ = table
    done = run_cli("query", "--where", "age__gte=5", "--order", "age", "-n", "--limit", "2",
                   "--json", url=url)
    assert [json.loads(line)["key"] for line in lines(done.stdout)] == ["u2", "u1"]
    done = run_cli("query", "--count", "--where", "city__exists=true", url=url)
    assert done.stdout == b"2\n"
    done = run_cli("query", "--count", "--where", "city__exists=false", url=url)
    assert done.stdout == b"1\n"
    done = run_cli("query", "--keys", "--exclude", "city=Oslo", "--order", "", url=url)
    assert lines(done.stdout) == ["u2", "u3"]
    done = run_cli("query", "--keys", "--where", "__startswith=u", "--order", "-",
                   "--offset", "1", url=url)
    assert lines(done.stdout) == ["u2", "u1"]
    done = run_cli("query", "--json", "--columns", "name", "--where", "name__in=Alice,Bob",
                   "--order", "name", url=url)
    assert [json.loads(line) for line in lines(done.stdout)] == [
        {"key": "u1", "record": {"name": "Alice"}},
        {"key": "u2", "record": {"name": "Bob"}},
    ]


def test_query_lookups(table, run_cli):
    url, _ = table

    def keys(*conds: str) -> list[str]:
        args = []
        for cond in conds:
            args += ["--where", cond]
        done = run_cli("query", "--keys", "--order", "", *args, url=url)
        assert done.returncode == 0, done.stderr
        return lines(done.stdout)

    assert keys("age__between=5,30") == ["u1", "u2"]
    assert keys("name__startswith=A") == ["u1"]
    assert keys("name__regex=^[AB]") == ["u1", "u2"]
    assert keys("name__search=eve") == ["u3"]  # full text: accent- and case-insensitive
    assert keys("age__numeq=30.0") == ["u1"]
    assert keys("age=30") == ["u1"]
    assert keys("age__lt=50", "city__exists=1") == ["u1", "u2"]


def test_query_empty_result_is_quiet(table, run_cli):
    url, _ = table
    done = run_cli("query", "--where", "name=nobody", url=url)
    assert done.returncode == 0
    assert done.stdout == b""
    assert done.stderr == b""


@pytest.mark.parametrize("cond, message", [
    ("age__bogus=1", b"unknown lookup 'bogus'"),
    ("age", b"COLUMN[__LOOKUP]=VALUE"),
    ("city__exists=maybe", b"expected true or false"),
])  # fmt: skip
def test_query_bad_condition(table, run_cli, cond, message):
    url, _ = table
    done = run_cli("query", "--where", cond, url=url)
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stdout == b""


def test_query_on_a_hash_database(server_factory, run_cli):
    server = server_factory("hash")
    done = run_cli("query", url=server.url)
    assert done.returncode == 1
    assert b"table databases" in done.stderr and b"hash" in done.stderr


def test_key_value_get(server_factory, run_cli):
    server = server_factory("hash")
    with Tyrant.from_url(server.url) as client:
        client.put(b"k", b"\x00\xffbinary")
        client.put("t", "text")
    assert run_cli("get", "k", url=server.url).stdout == b"\x00\xffbinary"
    done = run_cli("get", "k", "--json", url=server.url)
    # base64 covers the whole line: the key too
    assert json.loads(done.stdout) == {"key": "aw==", "value": "AP9iaW5hcnk=", "encoding": "base64"}
    assert json.loads(run_cli("get", "t", "--json", url=server.url).stdout)["value"] == "text"


def test_unreachable_server(run_cli):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for args in (("stat",), ("get", "x"), ("query",), ("export",), ("put", "k", "a=1")):
        done = run_cli(*args, url=f"tyrant://127.0.0.1:{port}")
        assert done.returncode == 3, (args, done.stderr)
        assert b"cannot reach the Tyrant server at tyrant://127.0.0.1:" in done.stderr
        assert b"serve PATH" in done.stderr
    done = run_cli("import", url=f"tyrant://127.0.0.1:{port}", input=b"")
    assert done.returncode == 3


def test_silent_server_times_out(run_cli):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"tyrant://127.0.0.1:{listener.getsockname()[1]}"
        done = run_cli("--timeout", "0.5", "stat", url=url)
    assert done.returncode == 3
    assert b"did not answer in time" in done.stderr


def test_bad_url(run_cli):
    done = run_cli("--url", "http://example.invalid/", "stat")
    assert done.returncode == 2
    assert b"bad URL" in done.stderr and b"tyrant://HOST" in done.stderr


def test_serve(tmp_path):
    path = tmp_path / "served.tct"
    proc = subprocess.Popen(
        cli_command("serve", "--port", "0", str(path)), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=cli_env(),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert line.startswith("listening on 127.0.0.1:"), proc.stderr.read() if proc.stderr else ""
        url = "tyrant://" + line.split()[-1]
        env = cli_env(url)
        subprocess.run(cli_command("put", "a", "x=1"), env=env, check=True, timeout=60)
        out = subprocess.run(cli_command("get", "a"), env=env, capture_output=True, timeout=60)
        assert out.stdout == b"x  1\n"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    assert path.exists()


def test_serve_help_and_bad_options(run_cli):
    done = run_cli("serve", "--help")
    assert done.returncode == 0
    assert b"--dump-dir" in done.stdout
    done = run_cli("serve", "--bogus", "x.tct")
    assert done.returncode == 2


def test_module_and_console_script_agree(run_cli):
    script = os.path.join(os.path.dirname(sys.executable), "doqu-tyrant")
    if not os.path.exists(script):
        pytest.skip("console script not installed")
    a = subprocess.run([script, "--help"], capture_output=True, timeout=60)
    b = run_cli("--help")
    assert a.returncode == b.returncode == 0
    assert a.stdout == b.stdout


def test_broken_pipe_is_quiet(table):
    url, client = table
    client.putlist({f"k{i}": {"v": "x" * 100} for i in range(5000)})
    export = subprocess.Popen(cli_command("export"), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=cli_env(url))
    assert export.stdout is not None and export.stderr is not None
    export.stdout.readline()
    export.stdout.close()
    time.sleep(0.1)
    code = export.wait(30)
    err = export.stderr.read()
    export.stderr.close()
    assert b"Traceback" not in err
    assert code in (0, 141)


def test_keys_and_values_that_are_not_utf8(table):
    url, client = table
    args = [os.fsencode(a) for a in cli_command()] + [b"put", b"k\xff", b"c=\xfe", b"d=ok"]
    done = subprocess.run(args, capture_output=True, env=cli_env(url), timeout=60)
    assert done.returncode == 0, done.stderr
    assert client.table_get(b"k\xff", raw=True) == {b"c": b"\xfe", b"d": b"ok"}
    args = [os.fsencode(a) for a in cli_command()] + [b"get", b"k\xff", b"--json"]
    done = subprocess.run(args, capture_output=True, env=cli_env(url), timeout=60)
    assert json.loads(done.stdout) == {"key": "a/8=", "record": {"Yw==": "/g==", "ZA==": "b2s="},
                                       "encoding": "base64"}


def test_put_merge_keeps_bytes_columns(table, run_cli):
    url, client = table
    client.table_put(b"m", {b"raw": b"\x80", b"x": b"1"})
    assert run_cli("put", "m", "--merge", "x=2", url=url).returncode == 0
    assert client.table_get(b"m", raw=True) == {b"raw": b"\x80", b"x": b"2"}


def test_url_without_scheme_is_refused(table, run_cli):
    url, _ = table
    bare = url.removeprefix("tyrant://")
    done = run_cli("--url", bare, "stat", "--json")
    assert done.returncode == 2, done.stderr
    assert f"did you mean 'tyrant://{bare}'?".encode() in done.stderr

"""The server's command line and start-up on bad input (issue 10, items 1-6).

Every bad invocation ends at once with one ``error:`` line, no traceback, the
documented status (2 bad usage, 1 cannot open the database or the address)
and nothing created on disk.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from doqu_tyrant.server import Server
from doqu_tyrant.server.paths import DatabaseInUse, parse_path
from doqu_tyrant.tyrant import Tyrant, TyrantCommandError
from tests.server.wire import Wire
from tests.servers import ROOT, ServerProcess

ServerFactory = Callable[..., ServerProcess]
BOUND = 15.0  # generous: "at once" on a loaded machine


def run_server(*args: str, cwd: Path | None = None, command: str = "server"
               ) -> tuple[subprocess.CompletedProcess[bytes], float]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("TYRANT_URL", None)
    prefix = ["-m", "doqu_tyrant.server"] if command == "server" else ["-m", "doqu_tyrant",
                                                                         "serve"]
    start = time.monotonic()
    done = subprocess.run([sys.executable, *prefix, *args], capture_output=True, env=env,
                          timeout=60, cwd=cwd)
    return done, time.monotonic() - start


def one_error_line(done: subprocess.CompletedProcess[bytes], name: bytes) -> str:
    err = done.stderr.decode()
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(name.decode() + ": error: "), err
    return lines[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- 1. a database held by another server ---------------------------------------------------


@pytest.mark.parametrize("suffix", [".tct", ".tch"])
def test_database_in_use_by_another_server_fails_at_once(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"shared{suffix}"
    first = ServerProcess(str(path))
    try:
        with Tyrant.from_url(first.url, timeout=10) as client:
            client.put(b"k", b"v\0w")
        for name in (str(path), f"{path}#mode=r", f"{path}#mode=wc"):
            done, took = run_server("--port", "0", name)
            assert done.returncode == 1, done.stderr
            line = one_error_line(done, b"python -m doqu_tyrant.server")
            assert "in use by another server" in line and str(path) in line
            assert took < BOUND
        done, took = run_server("--port", "0", str(path), command="cli")
        assert done.returncode == 1
        assert "in use" in one_error_line(done, b"doqu-tyrant") and took < BOUND
        # the first server is unharmed
        with Tyrant.from_url(first.url, timeout=10) as client:
            assert client.get(b"k") == b"v\0w"
    finally:
        first.close()


def test_database_in_use_in_process(tmp_path: Path) -> None:
    path = tmp_path / "inproc.tch"
    first = ServerProcess(str(path))
    try:
        with pytest.raises(DatabaseInUse, match="in use by another server"):
            Server(str(path), port=0).start(timeout=BOUND)
    finally:
        first.close()


def test_database_open_twice_in_one_process(tmp_path: Path) -> None:
    path = str(tmp_path / "twice.tct")
    with Server(path, port=0):
        with pytest.raises(DatabaseInUse, match="already open in this process"):
            Server(path, port=0).start(timeout=BOUND)
    with Server(path, port=0):  # closed: free again
        pass


# -- 2. option values ------------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["--port", "70000"], "--port: the port must be from 0 to 65535, got 70000"),
    (["--port", "-1"], "--port: the port must be from 0 to 65535, got -1"),
    (["--port", "http"], "--port: the port must be a whole number"),
    (["--frame-timeout", "-1"], "--frame-timeout: the value must be 0 or more seconds"),
    (["--frame-timeout", "nan"], "--frame-timeout: the value must be a finite number"),
    (["--max-length", "0"], "--max-length: the size must be at least 1"),
    (["--max-length", "-5"], "--max-length: the size must be a number of bytes"),
    (["--max-length", "2Q"], "--max-length: the size must be a number of bytes"),
    (["--threads", "0"], "--threads: the value must be at least 1"),
    (["--threads", "two"], "--threads: the value must be a whole number"),
    (["--ulim", "0"], "--ulim: the size must be at least 1"),
    (["--sid", "70000"], "sid must be from 0 to 65535"),
    (["--dump-dir", "missing-dir"], "--dump-dir: 'missing-dir' does not exist"),
    (["--dump-dir", "a-file"], "--dump-dir: 'a-file' is not a directory"),
    (["--pid", "missing-dir/x.pid"], "--pid: cannot write 'missing-dir/x.pid'"),
    (["--log", "missing-dir/x.log"], "--log: cannot write 'missing-dir/x.log'"),
    (["--url", "garbage"], "bad URL 'garbage'"),
    (["--url", "tyrant://127.0.0.1:1978?timeout=5"], "URL options (timeout) are for clients"),
    (["--url", "tyrant://127.0.0.1:1978", "--port", "5"], "either --url or --host/--port"),
])  # fmt: skip
def test_bad_options(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "a-file").write_text("x")
    done, took = run_server(*args, "db.tct", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert message in one_error_line(done, b"python -m doqu_tyrant.server")
    assert not (tmp_path / "db.tct").exists()
    assert took < BOUND


def test_in_process_server_checks_its_arguments(tmp_path: Path) -> None:
    path = str(tmp_path / "x.tct")
    for kwargs in ({"port": 70000}, {"port": -1}, {"port": "1978"}, {"threads": 0},
                   {"max_length": 0}, {"frame_timeout": -1.0}, {"sid": 70000},
                   {"dump_dir": str(tmp_path / "nope")}):
        with pytest.raises((TypeError, ValueError)):
            Server(path, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bogus"):
        Server(str(tmp_path / "x.tct#bogus=1"))
    assert not os.listdir(tmp_path)


# -- 3. tuning parameters in the path -------------------------------------------------------


@pytest.mark.parametrize("name, message", [
    ("x.tct#idx=age:frob", "unknown index type 'frob'"),
    ("x.tct#idx=:dec", "the column name is empty"),
    ("x.tct#idx=age", "expected idx=COLUMN:TYPE"),
    ("x.tct#bnum=abc", "bnum='abc' is not a number"),
    ("x.tct#bogus=1", "tuning parameter 'bogus' is unknown to a table database"),
    ("x.tct#width=10", "'width' is unknown to a table database"),
    ("x.tch#idx=a:lex", "'idx' is unknown to a hash database"),
    ("x.tch#lmemb=10", "'lmemb' is unknown to a hash database"),
    ("x.tcb#rcnum=10", "'rcnum' is unknown to a B+ tree database"),
    ("x.tcf#bnum=10", "'bnum' is unknown to a fixed-length database"),
    ("+#bnum=10", "'bnum' is unknown to an on-memory tree database"),
    ("*#mode=w", "'mode' is unknown to an on-memory hash database"),
    ("x.tch#opts=lz", "opts='lz': unknown letter 'z'"),
    ("x.tch#mode=wq", "mode='wq': unknown letter 'q'"),
    ("x.tch#bnum=", "'bnum' has no value"),
    ("x.tch#bnum", "expected NAME=VALUE"),
    ("x.tch#bnum=1#bnum=2", "'bnum' is given twice"),
    ("x.tch#bnum=1 000", "is not a number"),
])  # fmt: skip
def test_bad_tuning_parameters_are_refused(tmp_path: Path, name: str, message: str) -> None:
    done, took = run_server("--port", "0", name, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert message in one_error_line(done, b"python -m doqu_tyrant.server")
    assert os.listdir(tmp_path) == []  # nothing created
    assert took < BOUND


@pytest.mark.parametrize("name", [
    "x.tct#bnum=1000#idx=age:dec#idx=name:LEXICAL#idx=tags:tok#idx=body:qgr#opts=ld",
    "x.tct#mode=wc#rcnum=64#lcnum=64#ncnum=64#xmsiz=1m#dfunit=8#apow=4#fpow=10",
    "x.tch#bnum=1k#apow=4#fpow=10#opts=l#rcnum=0#xmsiz=64m#dfunit=0#mode=wct",
    "x.tcb#lmemb=128#nmemb=256#bnum=32749#opts=d#lcnum=1024#ncnum=512",
    "x.tcf#width=255#limsiz=1g#mode=wc", "*#bnum=1000#capnum=100#capsiz=1m", "+#capnum=5",
    "X.TCT#BNUM=10", "x.hdb", "x.bdb", "x.fdb", "x.tdb",
])  # fmt: skip
def test_good_tuning_parameters_are_accepted(tmp_path: Path, name: str) -> None:
    parse_path(name)
    with Server(str(tmp_path / name) if name[0] not in "*+" else name, port=0) as server:
        with Wire(("127.0.0.1", server.port)) as wire:
            assert wire.rnum() == 0


def test_each_kind_accepts_its_own_parameters() -> None:
    assert parse_path("a.tct#idx=x:dec").kind == "table"
    assert parse_path("a.TCB#lmemb=1").kind == "B+ tree"
    assert parse_path("*").in_memory and parse_path("+").kind == "on-memory tree"
    assert [n for n, _ in parse_path("a.tch#BNUM=1#Opts=D").params] == ["bnum", "opts"]


def test_no_wait_name_keeps_the_callers_mode() -> None:
    assert parse_path("a.tch").no_wait_name() == "a.tch#mode=wcf"
    assert parse_path("a.tch#bnum=5#mode=r").no_wait_name() == "a.tch#bnum=5#mode=rf"
    assert parse_path("a.tch#mode=we").no_wait_name() == "a.tch#mode=we"  # no lock at all
    assert parse_path("*#bnum=5").no_wait_name() == "*#bnum=5"


def test_index_in_path_is_built_with_the_given_kind(tmp_path: Path) -> None:
    with Server(str(tmp_path / "t.tct#idx=age:decimal#idx=name:lex"), port=0):
        pass
    assert (tmp_path / "t.tct.idx.age.dec").exists()
    assert (tmp_path / "t.tct.idx.name.lex").exists()


# -- 4. bind first, name the address --------------------------------------------------------


def test_port_in_use_names_the_address_and_creates_nothing(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        for path in ("fresh.tct", "fresh.tch#bnum=10"):
            done, took = run_server("--port", str(port), path, cwd=tmp_path)
            assert done.returncode == 1, done.stderr
            line = one_error_line(done, b"python -m doqu_tyrant.server")
            assert f"cannot listen on 127.0.0.1:{port}: address already in use" in line
            assert took < BOUND
        assert os.listdir(tmp_path) == []
        with pytest.raises(OSError, match="address already in use"):
            Server(str(tmp_path / "inproc.tct"), port=port).start()
        assert os.listdir(tmp_path) == []


def test_unknown_host(tmp_path: Path) -> None:
    done, _ = run_server("--port", "0", "--host", "no-such-host.invalid", "x.tct", cwd=tmp_path)
    assert done.returncode == 1
    assert "cannot listen on no-such-host.invalid:0: unknown host" in one_error_line(
        done, b"python -m doqu_tyrant.server")
    assert os.listdir(tmp_path) == []


# -- 5. messages that say why -------------------------------------------------------------


def test_missing_directory_and_unknown_suffix(tmp_path: Path) -> None:
    done, _ = run_server("--port", "0", str(tmp_path / "no" / "x.tct"))
    assert done.returncode == 1
    line = one_error_line(done, b"python -m doqu_tyrant.server")
    assert f"the directory '{tmp_path / 'no'}' does not exist" in line
    done, _ = run_server("--port", "0", str(tmp_path / "x.db"))
    assert done.returncode == 2
    line = one_error_line(done, b"python -m doqu_tyrant.server")
    assert "selects no kind of database" in line
    for suffix in ("'.tch'", "'.tcb'", "'.tcf'", "'.tct'", "'*'", "'+'"):
        assert suffix in line
    (tmp_path / "junk.tch").write_bytes(b"not a database" * 100)
    done, _ = run_server("--port", "0", str(tmp_path / "junk.tch"))
    assert done.returncode == 1
    assert "it is not a hash database file, or it is damaged" in done.stderr.decode()
    (tmp_path / "adir.tct").mkdir()
    done, _ = run_server("--port", "0", str(tmp_path / "adir.tct"))
    assert done.returncode == 1 and "is a directory" in done.stderr.decode()
    done, _ = run_server("--port", "0", f"{tmp_path / 'new.tch'}#mode=w")
    assert done.returncode == 1 and "does not exist (mode=w does not create it)" in \
        done.stderr.decode()


def _as_unprivileged_user() -> list[str] | None:
    """A command prefix that runs Python without root's rights, or None."""
    if os.geteuid() != 0:
        return [sys.executable]
    if shutil.which("setpriv") is None:
        return None
    drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for python in (sys.executable, "/usr/bin/python3"):
        probe = subprocess.run(
            [*drop, python, "-c", "import sys, doqu_tyrant.server; assert sys.version_info >= "
             "(3, 10)"], capture_output=True, timeout=60, env=env, cwd="/")
        if probe.returncode == 0:
            return [*drop, python]
    return None


def test_permission_denied() -> None:
    prefix = _as_unprivileged_user()
    if prefix is None:
        pytest.skip("root, and no way to run Python as an unprivileged user")
    directory = Path(tempfile.mkdtemp(prefix="tyrant-perm-"))
    try:
        directory.chmod(0o755)  # others may enter, not create
        locked = directory / "locked.tch"
        locked.write_bytes(b"")
        locked.chmod(0o600)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        for path, message in ((locked, "may not read and write"),
                              (directory / "new.tch", "may not create files in")):
            done = subprocess.run([*prefix, "-m", "doqu_tyrant.server", "--port", "0",
                                   str(path)], capture_output=True, env=env, timeout=60,
                                  cwd="/")
            assert done.returncode == 1, done.stderr
            line = one_error_line(done, b"python -m doqu_tyrant.server")
            assert "permission denied" in line and message in line
    finally:
        shutil.rmtree(directory)


def test_copy_disabled_says_how_to_enable_it(tmp_path: Path, server_factory: ServerFactory
                                             ) -> None:
    log = tmp_path / "server.log"
    server = server_factory("hash", log=log)
    with Tyrant.from_url(server.url, timeout=10) as client, pytest.raises(TyrantCommandError):
        client.copy("backup.tch")
    deadline = time.monotonic() + BOUND
    while "COPY is disabled" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "start the server with --dump-dir" in log.read_text()


def test_connections_closed_for_limits_are_logged(tmp_path: Path,
                                                  server_factory: ServerFactory) -> None:
    log = tmp_path / "server.log"
    server = server_factory("hash", log=log, max_length=100, frame_timeout=0.3)
    with Wire(server.address) as wire:  # a PUT declaring a 1000-byte value
        wire.send(b"\xc8\x10" + (1).to_bytes(4, "big") + (1000).to_bytes(4, "big") + b"k")
        assert wire.recv_exact(1, timeout=BOUND) in (b"", b"\x01")
    with Wire(server.address) as wire:  # half a frame, then silence
        wire.send(b"\xc8\x10\x00\x00")
        assert wire.recv_exact(1, timeout=BOUND) == b""
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        text = log.read_text()
        if "--max-length is 100" in text and "(--frame-timeout)" in text:
            break
        time.sleep(0.05)
    assert " INFO " in text and "--max-length is 100" in text and "(--frame-timeout)" in text


# -- 6. doqu-tyrant serve ----------------------------------------------------------------


def test_serve_help_names_doqu_tyrant_serve() -> None:
    done, _ = run_server("--help", command="cli")
    assert done.returncode == 0
    assert done.stdout.decode().startswith("usage: doqu-tyrant serve ")
    assert b"python -m doqu_tyrant.server" not in done.stdout


@pytest.mark.parametrize("where", ["after", "before"])
def test_serve_listens_on_the_url(tmp_path: Path, where: str) -> None:
    port = free_port()
    url = f"tyrant://127.0.0.1:{port}"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    args = (["serve", "--url", url, "x.tct"] if where == "after"
            else ["--url", url, "serve", "x.tct"])
    proc = subprocess.Popen([sys.executable, "-m", "doqu_tyrant", *args], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().decode().strip() == f"listening on 127.0.0.1:{port}"
        with Tyrant.from_url(url, timeout=10) as client:
            assert client.stat()["type"] == "table"
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.mark.parametrize("args, message", [
    (["serve", "--url", "tyrant://127.0.0.1:1978?pool_size=2", "x.tct"], "are for clients"),
    (["serve", "--url", "nope", "x.tct"], "bad URL 'nope'"),
    (["--url", "tyrant://127.0.0.1:5", "serve", "--url", "tyrant://127.0.0.1:6", "x.tct"],
     "given both before and after serve"),
    (["--timeout", "5", "serve", "x.tct"], "--timeout is for the client commands"),
    (["serve", "--port", "70000", "x.tct"], "the port must be from 0 to 65535"),
    (["serve", "x.tct#bogus=1"], "'bogus' is unknown"),
])  # fmt: skip
def test_serve_refuses_what_it_cannot_use(tmp_path: Path, args: list[str], message: str
                                          ) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "doqu_tyrant", *args], cwd=tmp_path,
                          env=env, capture_output=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert message in one_error_line(done, b"doqu-tyrant")
    assert os.listdir(tmp_path) == []

"""Command line: ``python -m doqu_tyrant.server [options] PATH``.

Prints ``listening on HOST:PORT`` on stdout once the socket is open, then
serves until SIGTERM or SIGINT, which sync and close the database (exit
status 0). Every option is checked before anything is opened: a bad one ends
with one ``error:`` line and status 2; a database or an address that cannot
be opened (missing directory, file in use by another server, port taken)
with status 1.

Option values are checked by the argparse ``type=`` functions of
:mod:`doqu_tyrant.tyrant.options` (ports, counts, seconds, directories,
files): new options use them too.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import resource
import sys
from typing import Any

from doqu_tyrant.tyrant.options import (
    ArgumentParser,
    check_output_file,
    directory_arg,
    non_negative_int_arg,
    output_file_arg,
    parse_address,
    parse_url,
    positive_int_arg,
    seconds_or_zero_arg,
    server_port_arg,
    size_arg,
)
from doqu_tyrant.tyrant.protocol import MAX_LENGTH

from .app import (
    DEFAULT_COMMIT_INTERVAL,
    DEFAULT_FRAME_TIMEOUT,
    DEFAULT_PORT,
    DEFAULT_THREADS,
    Server,
)
from .limits import DEFAULT_MAX_CONNECTIONS
from .rts import RtsError
from .ulog import DEFAULT_LIMIT

PROG = "python -m doqu_tyrant.server"
EXIT_OK = 0
EXIT_FAILED = 1  # the database or the address cannot be opened
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def build_parser(prog: str = PROG) -> ArgumentParser:
    parser = ArgumentParser(
        prog=prog,
        description="Tokyo Tyrant compatible server over a Tokyo Cabinet database.",
        epilog="exit status: 0 stopped by SIGTERM/SIGINT; 1 the database or the address "
        "cannot be opened; 2 bad usage.",
    )
    parser.add_argument(
        "path",
        metavar="PATH",
        help="database: '*' (memory hash), '+' (memory tree), or a .tch/.tcb/.tcf/.tct "
        "file, optionally with #name=value tuning parameters",
    )
    parser.add_argument("--host", default=None,
                        help="address to listen on; 0.0.0.0 or :: for every interface "
                        "(default: 127.0.0.1)")
    parser.add_argument("--port", type=server_port_arg, default=None,
                        help=f"TCP port, 0 = any free port (default: {DEFAULT_PORT})")
    parser.add_argument("--url", metavar="tyrant://HOST:PORT",
                        help="listen on the host and port of this URL (instead of "
                        "--host/--port)")
    parser.add_argument("--threads", type=positive_int_arg, default=DEFAULT_THREADS,
                        help="worker threads for long whole-database commands: SYNC, "
                        "OPTIMIZE, VANISH, COPY, RESTORE, setindex (default: %(default)s)")
    parser.add_argument("--pid", metavar="FILE", type=output_file_arg,
                        help="write the process id to FILE")
    parser.add_argument("--log", metavar="FILE", type=output_file_arg,
                        help="append the log to FILE (else stderr)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument(
        "--dump-dir", metavar="DIR", type=directory_arg,
        help="directory for COPY and RESTORE paths (relative to it); without it both "
        "commands are refused",
    )  # fmt: skip
    parser.add_argument(
        "--copy-commands", action="store_true",
        help="allow COPY '@command', which runs a shell command on this host "
        "(off by default: any client could run programs)",
    )  # fmt: skip
    parser.add_argument("--ulog", metavar="DIR", help="write an update log to DIR")
    parser.add_argument("--ulim", type=size_arg, default=DEFAULT_LIMIT,
                        metavar="BYTES",
                        help="size of one update-log file, e.g. 1G (default: %(default)s)")
    parser.add_argument("--sid", type=non_negative_int_arg, default=0,
                        help="server id, 1-65535 (needed with --ulog and for replication)")
    parser.add_argument("--max-length", type=size_arg, default=MAX_LENGTH,
                        metavar="BYTES",
                        help="largest key/value/argument accepted, e.g. 64M (default: "
                        "%(default)s)")
    parser.add_argument(
        "--frame-timeout", type=seconds_or_zero_arg, default=DEFAULT_FRAME_TIMEOUT,
        metavar="SECONDS",
        help="close a connection whose request stays incomplete this long; 0 = never "
        "(default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--commit-interval", type=float, default=DEFAULT_COMMIT_INTERVAL, metavar="SECONDS",
        help="B+ tree databases: commit acknowledged writes this often, so that a kill -9 "
        "costs at most this much of them (default: %(default)s)",
    )  # fmt: skip
    add_replication_options(parser)
    add_limit_options(parser)
    return parser


def add_limit_options(parser: argparse.ArgumentParser) -> None:
    """``--max-connections``, ``--idle-timeout``, ``--max-memory`` (docs/server.rst, Limits)."""
    group = parser.add_argument_group("limits")
    group.add_argument(
        "--max-connections", type=positive_int_arg, metavar="N",
        help=f"connections served at once; more are closed as soon as they are accepted "
        f"(default: {DEFAULT_MAX_CONNECTIONS}, or fewer if the open-file limit is lower)",
    )  # fmt: skip
    group.add_argument(
        "--idle-timeout", type=seconds_or_zero_arg, default=0.0, metavar="SECONDS",
        help="close a connection that sends nothing for this long; 0 = never "
        "(default: %(default)s)",
    )  # fmt: skip
    group.add_argument(
        "--max-memory", type=size_arg, default="1G", metavar="BYTES",
        help="memory for buffered requests and unsent replies of all connections together; "
        "larger answers are refused, large requests wait (default: %(default)s)",
    )  # fmt: skip
    # benchmarks/server.py --unguarded: the memory safeguards off, to measure their cost
    group.add_argument("--unguarded", action="store_true", help=argparse.SUPPRESS)


def limit_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {"max_connections": args.max_connections, "idle_timeout": args.idle_timeout,
            "max_memory": args.max_memory, "guarded": not args.unguarded}


def add_replication_options(parser: argparse.ArgumentParser) -> None:
    """``--master``, ``--rts``, ``--rcc``, ``--allow-setmst`` (see docs/replication.rst)."""
    group = parser.add_argument_group("replication")
    group.add_argument(
        "--master", metavar="HOST:PORT", type=master_address,
        help="follow this master's update log from start-up (needs --sid; for a dual "
        "master, give each server --ulog and the other as --master)",
    )  # fmt: skip
    group.add_argument(
        "--rts", metavar="FILE",
        help="replication timestamp file: where replication resumes after a restart "
        "(default: the database file's name + .rts)",
    )  # fmt: skip
    group.add_argument(
        "--rcc", action="store_true",
        help="stop replicating when an entry's result differs from the master's "
        "(consistency check)",
    )  # fmt: skip
    group.add_argument(
        "--allow-setmst", action="store_true",
        help="let clients change the master with SETMST (refused by default unless "
        "--master is given: SETMST makes the server apply whatever it is sent)",
    )  # fmt: skip


def master_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT``; the port defaults to 1978) for ``--master``."""
    try:
        return parse_address(text)
    except ValueError as exc:
        problem = str(exc)
        raise argparse.ArgumentTypeError(
            f"{text!r} has no host" if problem == "no host" else problem) from None


def raise_file_limit() -> None:
    """Allow as many open sockets as the hard limit permits (each client uses one)."""
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or hard > soft:
            target = 65536 if hard == resource.RLIM_INFINITY else hard
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, target), hard))


def _address(parser: ArgumentParser, args: argparse.Namespace) -> tuple[str, int]:
    """``--host``/``--port``, or the host and port of ``--url``."""
    if args.url is None:
        host = "127.0.0.1" if args.host is None else args.host
        return host, DEFAULT_PORT if args.port is None else args.port
    if args.host is not None or args.port is not None:
        parser.error("give either --url or --host/--port, not both")
    try:
        host, port, options = parse_url(args.url)
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))
    if options:
        parser.error(f"--url {args.url!r}: URL options ({', '.join(options)}) are for "
                     "clients; a server takes only tyrant://HOST:PORT")
    return host, port


def _os_message(exc: OSError) -> str:
    if exc.filename is not None:
        return f"{exc.filename}: {(exc.strerror or str(exc)).lower()}"
    if exc.errno and exc.strerror:
        return exc.strerror
    return str(exc)


def main(argv: list[str] | None = None, prog: str = PROG, name: str | None = None) -> int:
    """Run the server; returns the exit status. ``prog`` is the command shown in
    usage, ``name`` the one that starts error lines (default: ``prog``)."""
    parser = build_parser(prog)
    name = name or prog
    parser.error_name = name
    args = parser.parse_args(argv)
    host, port = _address(parser, args)
    if args.ulog and args.sid < 1:
        parser.error("--ulog needs --sid (1-65535)")
    try:
        server = Server(
            args.path, host, port, threads=args.threads, dump_dir=args.dump_dir,
            ulog_dir=args.ulog, ulog_limit=args.ulim, sid=args.sid,
            max_length=args.max_length, frame_timeout=args.frame_timeout,
            copy_commands=args.copy_commands, pid_file=args.pid,
            master=args.master, rts_path=args.rts, replication_check=args.rcc,
            allow_setmst=args.allow_setmst, commit_interval=args.commit_interval,
            **limit_kwargs(args),
        )  # fmt: skip
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))
    level = logging.DEBUG if args.verbose else logging.INFO if args.log else logging.WARNING
    try:
        if args.log is not None:
            check_output_file(args.log)
        logging.basicConfig(
            filename=args.log, level=level,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )  # fmt: skip
    except (OSError, ValueError) as exc:
        print(f"{name}: error: cannot open the log: {exc}", file=sys.stderr)
        return EXIT_FAILED

    raise_file_limit()

    def ready() -> None:
        shown = f"[{server.host}]" if ":" in server.host else server.host
        print(f"listening on {shown}:{server.port}", flush=True)

    try:
        server.serve_forever(ready)
    except RtsError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"{name}: error: {_os_message(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:  # before the signal handlers were installed
        print(f"{name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

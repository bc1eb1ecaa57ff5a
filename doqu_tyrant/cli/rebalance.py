"""``doqu-tyrant rebalance``: move records between shard lists (a thin layer
over :mod:`doqu_tyrant.tyrant.rebalance`)."""

from __future__ import annotations

import argparse
from typing import Any

from doqu_tyrant.tyrant import ShardedTyrant, TyrantConnectionError, TyrantTimeout
from doqu_tyrant.tyrant.rebalance import Report, rebalance

from .connect import DEFAULT_TIMEOUT
from .progress import Progress, terminal
from .status import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, CliError

__all__ = ["cmd_rebalance"]


def _layout(option: str, urls: list[str], timeout: float) -> ShardedTyrant:
    try:
        return ShardedTyrant(urls, timeout=timeout, pool_size=2)
    except (ValueError, TypeError) as exc:
        raise CliError(f"bad {option} list: {exc}", EXIT_USAGE) from None


def cmd_rebalance(args: argparse.Namespace) -> int:
    """Move the records whose shard changes from the ``--from`` list to ``--to``."""
    timeout = DEFAULT_TIMEOUT if args.timeout is None else args.timeout
    old = _layout("--from", args.source, timeout)
    try:
        new = _layout("--to", args.target, timeout)
    except CliError:
        old.close()
        raise
    progress = Progress("check" if args.check else "rebalance", terminal(args.quiet))

    def show(report: Report, total: int) -> None:
        progress.total = total
        progress.update(report.scanned)

    try:
        report = rebalance(old, new, batch=args.batch, check=args.check, progress=show)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    except (TyrantConnectionError, TyrantTimeout) as exc:
        raise CliError(f"a shard cannot be reached: {exc}; nothing is lost, run the same "
                       "command again once it is back", EXIT_UNREACHABLE) from None
    finally:
        progress.finish()
        old.close()
        new.close()
    print(_summary(report, new.names[0]))
    return EXIT_FAILED if args.check and report.moved else EXIT_OK


def _summary(report: Report, first: str) -> str:
    verb = "would move" if report.checked else "moved"
    plural = "" if report.scanned == 1 else "s"
    text = (f"{verb} {report.moved:,} of {report.scanned:,} record{plural} "
            f"({report.fraction:.1%}) in {report.seconds:.1f} s")
    text += "".join(f"; {n:,} to {name}" for name, n in sorted(report.moved_to.items()))
    if report.ids_advanced:
        text += f"\nkey counter moved to {first} ({report.ids_advanced:,} IDs taken)"
    return text


def add_parser(sub: Any, batch: int) -> None:
    """The ``rebalance`` subcommand's grammar."""
    from doqu_tyrant.tyrant.options import positive_int_arg

    p = sub.add_parser(
        "rebalance", help="move records to their shards under a new shard list",
        description="Move every record of the --from shards whose shard is another under "
        "the --to list (only those: with consistent hashing, a fifth shard takes about a "
        "fifth). Safe to interrupt at any point, even with kill -9: run the same command "
        "again until it moves nothing. Stop writers meanwhile. Each URL is one shard "
        "(tyrant://HOST:PORT, a failover group tyrant://A:P,B:P, or NAME=URL); --url is "
        "not used.",
    )  # fmt: skip
    p.add_argument("--from", dest="source", nargs="+", required=True, metavar="URL",
                   help="the shard list the records are placed by now")
    p.add_argument("--to", dest="target", nargs="+", required=True, metavar="URL",
                   help="the shard list to place them by")
    p.add_argument("--batch", type=positive_int_arg, default=batch, metavar="N",
                   help="keys read per request (default: %(default)s)")
    p.add_argument("--check", action="store_true",
                   help="only count the records that would move (exit 1 if any)")
    p.set_defaults(func=cmd_rebalance)

"""``doqu-tyrant serve``: the bundled server with its own options."""

from __future__ import annotations

from .status import EXIT_FAILED, EXIT_USAGE, PROG, CliError


def cmd_serve(argv: list[str], url: str | None) -> int:
    """Run the bundled server on ``argv`` (its own options); ``url`` is a
    ``--url`` given before ``serve``, which names the address to listen on."""
    try:
        from doqu_tyrant.server import __main__ as server_main
    except (ImportError, OSError) as exc:
        raise CliError(
            f"the bundled server cannot start: {exc}. It needs the Tokyo Cabinet library "
            "(Debian: apt-get install libtokyocabinet9)", EXIT_FAILED
        ) from None
    if url is not None:
        if any(arg == "--url" or arg.startswith("--url=") for arg in argv):
            raise CliError("--url is given both before and after serve; give it once",
                           EXIT_USAGE)
        argv = ["--url", url, *argv]
    return int(server_main.main(argv, prog=f"{PROG} serve", name=PROG) or 0)

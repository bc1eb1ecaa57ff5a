"""A one-line progress bar on a terminal.

The line has a fixed layout for a given terminal width: the numbers sit in
fields of fixed width, so the bar does not shrink as the count grows, and
parts are left out (the rate, then the bar) rather than cut when the
terminal is narrow. Nothing is drawn unless standard error is a terminal.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from typing import IO

__all__ = ["Progress", "render", "terminal"]

BAR_MAX = 40
BAR_MIN = 10
COUNT_WIDTH = 11  # "999,999,999"
RATE_WIDTH = 9  # "9,999,999"


def render(label: str, done: int, fraction: float | None, rate: float, width: int,
           count_width: int = COUNT_WIDTH) -> str:
    """The progress line for a terminal ``width`` columns wide (at most
    ``width - 1`` characters, so the cursor never wraps).

    The first layout that fits wins: bar, count and rate; bar and count;
    count and rate; count; then the bare percentage or count.
    """
    room = max(width - 1, 0)
    share = None if fraction is None else min(max(fraction, 0.0), 1.0)
    head = label if share is None else f"{label} {share:4.0%}"
    count = f"{done:>{count_width},}"
    rate_text = f"{rate:>{RATE_WIDTH},.0f}/s"

    def layout(bar: bool, records: bool, with_rate: bool) -> str | None:
        tail = count + (" records" if records else "") + ("  " + rate_text if with_rate else "")
        if not bar:
            text = f"{head} {tail}"
        else:
            bar_width = min(BAR_MAX, room - len(head) - len(tail) - 4)  # " [", "] "
            if share is None or bar_width < BAR_MIN:
                return None
            filled = int(bar_width * share)
            text = f"{head} [{'#' * filled}{' ' * (bar_width - filled)}] {tail}"
        return text if len(text) <= room else None

    for choice in ((True, True, True), (True, True, False), (False, True, True),
                   (False, True, False), (False, False, False)):
        text = layout(*choice)
        if text is not None:
            return text
    short = count.strip() if share is None else f"{share:.0%}"
    return short if len(short) <= room else ""


def _width(stream: IO[str]) -> int:
    """Columns of the terminal ``stream`` is on ($COLUMNS first, as usual)."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
        if columns > 0:
            return columns
    except ValueError:
        pass
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        return shutil.get_terminal_size((80, 24)).columns


class Progress:
    """A progress line on ``stream``, redrawn at most ten times a second.

    Disabled (every call a no-op) when ``stream`` is None. ``total`` (when
    known) fixes the width of the count field.
    """

    def __init__(self, label: str, stream: IO[str] | None, total: int | None = None) -> None:
        self.label = label
        self.stream = stream
        self.total = total
        self.count_width = max(COUNT_WIDTH, len(f"{total:,}")) if total else COUNT_WIDTH
        self.started = time.monotonic()
        self._drawn = 0.0

    def update(self, done: int, fraction: float | None = None, force: bool = False) -> None:
        if self.stream is None:
            return
        now = time.monotonic()
        if not force and now - self._drawn < 0.1:
            return
        self._drawn = now
        if fraction is None and self.total:
            fraction = done / self.total
        rate = done / max(now - self.started, 1e-6)
        width = _width(self.stream)
        text = render(self.label, done, fraction, rate, width, self.count_width)
        self.stream.write("\r" + text + "\x1b[K")
        self.stream.flush()

    def finish(self) -> None:
        """Erase the line."""
        if self.stream is not None:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def terminal(quiet: bool) -> IO[str] | None:
    """stderr when it is a terminal (and not ``--quiet``): where progress goes."""
    if quiet:
        return None
    try:
        return sys.stderr if sys.stderr.isatty() else None
    except (AttributeError, ValueError):
        return None

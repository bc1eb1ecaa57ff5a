"""Checks made before handing COPY or OPTIMIZE to Tokyo Cabinet.

The library enters its fatal state when either cannot write its file (see
:mod:`.durable`), so whatever can be known beforehand is checked here, and
the command fails with a logged reason instead.
"""

from __future__ import annotations

import os
from urllib.parse import quote_from_bytes

from .cabinet import Cabinet

__all__ = ["copy_problem", "optimize_problem"]


def copy_problem(db: Cabinet, target: str) -> str | None:
    """Why copying ``db`` to the file ``target`` would fail (None: it should work).

    Tokyo Cabinet enters its fatal state when a copy cannot be written, so
    whatever can be checked is checked first: the directory exists and is
    writable, the target and (tables) its index files have names the file
    system accepts, the target is not a directory or a special file, and
    there is room for a copy.
    """
    directory = os.path.dirname(target) or "."
    if not os.path.isdir(directory):
        return f"{directory!r} is not a directory"
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"{directory!r} is not writable"
    names = [target] + [target + f".idx.{_quoted(col)}.{kind}"
                        for col, kind in db.indexes.items()]
    try:
        name_max = os.pathconf(directory, "PC_NAME_MAX")
        path_max = os.pathconf(directory, "PC_PATH_MAX")
    except (OSError, ValueError):
        name_max, path_max = 255, 4096
    for name in names:
        if len(os.fsencode(os.path.basename(name))) > name_max:
            return f"the file name {os.path.basename(name)!r} is too long"
        if len(os.fsencode(os.path.abspath(name))) >= path_max:
            return f"the path {name!r} is too long"
        if os.path.lexists(name):
            if os.path.isdir(name):
                return f"{name!r} is a directory"
            if not os.path.isfile(name):
                return f"{name!r} is not a regular file"
            if not os.access(name, os.W_OK):
                return f"{name!r} is not writable"
    return _room_problem(db, directory, "a copy")


def optimize_problem(db: Cabinet) -> str | None:
    """Why rebuilding ``db`` would fail: its directory not writable, or no room
    for the temporary copy Tokyo Cabinet writes next to it."""
    path = os.fsdecode(db.path)
    if path in ("*", "+", ""):
        return None
    directory = os.path.dirname(os.path.abspath(path))
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"{directory!r} is not writable"
    return _room_problem(db, directory, "the rebuilt file")


def _room_problem(db: Cabinet, directory: str, what: str) -> str | None:
    try:
        st = os.statvfs(directory)
    except OSError:
        return None
    free = st.f_bavail * st.f_frsize
    needed = _files_size(db)
    if needed > free:
        return f"{directory!r} has {free} bytes free, {what} needs about {needed}"
    return None


def _files_size(db: Cabinet) -> int:
    """Bytes of the database's files (tables: with their indexes)."""
    path = os.fsdecode(db.path)
    files = [path] + [f"{path}.idx.{_quoted(col)}.{kind}" for col, kind in db.indexes.items()]
    total = 0
    for fname in files:
        try:
            total += os.path.getsize(fname)
        except OSError:
            pass
    return total


def _quoted(column: bytes) -> str:
    """A column name as Tokyo Cabinet writes it into an index file name."""
    return quote_from_bytes(column, safe="")

"""The C locale for the threads that call Tokyo Cabinet, and only for them.

ttserver runs in the C locale, so the library's regular expressions (STRRX
conditions, MISC ``regex``) match bytes. Python adopts the environment's
LC_CTYPE (often UTF-8) at start-up, under which glibc would match multibyte
characters instead. Switching the whole process with ``setlocale`` would also
change what an application embedding :class:`~.app.Server` gets as its
default file encoding, so each server thread switches itself with POSIX
``uselocale`` (a per-thread locale). Where that is not available, the
process-wide switch is the fallback.
"""

from __future__ import annotations

import contextlib
import ctypes
import locale
from typing import Any

__all__ = ["use_c_locale"]

_LC_ALL_MASK = 0x1FBF  # glibc: every category (ttserver never leaves the C locale)


def _c_locale() -> tuple[Any, int] | None:
    try:
        libc = ctypes.CDLL(None)
        newlocale, uselocale = libc.newlocale, libc.uselocale
    except (OSError, AttributeError):
        return None
    newlocale.restype = ctypes.c_void_p
    newlocale.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p]
    uselocale.restype = ctypes.c_void_p
    uselocale.argtypes = [ctypes.c_void_p]
    handle = newlocale(_LC_ALL_MASK, b"C", None)
    if not handle:
        return None
    return uselocale, handle


_C = _c_locale()  # one locale object for the process, never freed


def use_c_locale() -> None:
    """Make the calling thread use the C locale."""
    if _C is not None:
        uselocale, handle = _C
        uselocale(handle)
        return
    with contextlib.suppress(locale.Error):  # pragma: no cover - not glibc/musl
        locale.setlocale(locale.LC_CTYPE, "C")

"""The C library's ``regcomp``/``regexec`` through ctypes, as Tokyo Cabinet calls them.

``compiles(pattern, icase)`` says whether glibc accepts a POSIX extended
expression (``REG_EXTENDED | REG_NOSUB``, ``REG_ICASE`` on request) in the C
locale, which the calling thread adopts only for the call. ``Compiled`` keeps
one compiled expression for repeated ``search`` calls. Used by the regex
tests and ``benchmarks/regex.py``.
"""

from __future__ import annotations

import ctypes
import ctypes.util

__all__ = ["compiles", "Compiled", "REG_EXTENDED", "REG_ICASE", "REG_NOSUB"]

REG_EXTENDED, REG_ICASE, REG_NOSUB = 1, 2, 8
_LC_ALL_MASK = 0x1FBF  # glibc: every category

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.regcomp.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
_libc.regexec.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p,
                          ctypes.c_int]
_libc.regfree.argtypes = [ctypes.c_void_p]
_libc.newlocale.restype = ctypes.c_void_p
_libc.newlocale.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p]
_libc.uselocale.restype = ctypes.c_void_p
_libc.uselocale.argtypes = [ctypes.c_void_p]
_C_LOCALE = _libc.newlocale(_LC_ALL_MASK, b"C", None)


class Compiled:
    """One ``regcomp`` result; ``search(text)`` is ``regexec`` (True: a match)."""

    def __init__(self, pattern: bytes, icase: bool = False) -> None:
        self._buf = ctypes.create_string_buffer(256)  # sizeof(regex_t) is 64 on x86-64
        flags = REG_EXTENDED | REG_NOSUB | (REG_ICASE if icase else 0)
        old = _libc.uselocale(_C_LOCALE)
        try:
            self.code = _libc.regcomp(self._buf, pattern, flags)
        finally:
            _libc.uselocale(old)
        self.ok = self.code == 0

    def search(self, text: bytes) -> bool:
        assert self.ok
        old = _libc.uselocale(_C_LOCALE)
        try:
            return _libc.regexec(self._buf, text, 0, None, 0) == 0
        finally:
            _libc.uselocale(old)

    def close(self) -> None:
        if self.ok:
            _libc.regfree(self._buf)
            self.ok = False

    def __del__(self) -> None:
        self.close()


def compiles(pattern: bytes, icase: bool = False) -> bool:
    """Whether glibc's ``regcomp`` accepts ``pattern``."""
    compiled = Compiled(pattern, icase)
    ok = compiled.ok
    compiled.close()
    return ok

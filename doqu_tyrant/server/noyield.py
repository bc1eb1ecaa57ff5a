"""Stop Tokyo Cabinet from giving the CPU away after every write.

In multi-thread mode (which ``tcadbopen`` always turns on) the library calls
``sched_yield()`` after each write, so that other threads get a turn at the
database. Our server serialises its writes itself, so the yield helps nobody;
and on a machine whose CPUs are busy with other processes every yield costs
a whole scheduler time slice: 3,000 new records took 6 s instead of 17 ms
with three CPU-bound processes on a two-core machine
(``benchmarks/server.py --busy``).

:func:`disable` points the library's own link to ``sched_yield`` (its PLT
slot, found in the ELF file's ``.rela.plt``) at a libc function with no
effect. Only that library's calls change; the process's ``sched_yield`` is
untouched. Nothing is done where anything does not match what is expected
(not a 64-bit little-endian ELF, no such relocation, the slot not writable
or not pointing where a lazily or eagerly bound slot points): the library
then yields as before. ``DOQU_TYRANT_KEEP_TC_YIELD=1`` in the environment
keeps the yields (to measure them).
"""

from __future__ import annotations

import ctypes
import os
import struct
from collections.abc import Iterator
from typing import Any

__all__ = ["disable", "disabled"]

#: Relocation types of a PLT slot (x86-64 R_X86_64_JUMP_SLOT, AArch64 R_AARCH64_JUMP_SLOT).
_JUMP_SLOTS = {62: 7, 183: 1026}  # e_machine -> type
_SHT_RELA = 4
_SLOT = ctypes.c_uint64

_state = {"slot": 0, "target": 0}


def disabled() -> bool:
    """Whether :func:`disable` has redirected the library's ``sched_yield``."""
    slot = _state["slot"]
    return bool(slot) and _SLOT.from_address(slot).value == _state["target"]


def disable(lib: ctypes.CDLL, anchor: str = "tcadbnew") -> bool:
    """Redirect ``lib``'s ``sched_yield`` to a no-op (once); whether it is now.

    ``anchor``: an exported function of ``lib``, whose address locates the
    library in memory.
    """
    if disabled():
        return True
    if os.environ.get("DOQU_TYRANT_KEEP_TC_YIELD", "") not in ("", "0"):
        return False
    anchor_address = _address(getattr(lib, anchor))
    home = _mapping_of(anchor_address)
    if home is None:
        return False
    path = home[3]
    try:
        with open(path, "rb") as f:
            image = f.read()
        found = _slot_and_anchor(image, anchor)
    except (OSError, struct.error, ValueError, IndexError):
        return False
    if found is None:
        return False
    slot_offset, anchor_offset = found
    slot = anchor_address - anchor_offset + slot_offset
    mapping = _mapping_of(slot)
    if mapping is None or "w" not in mapping[2] or mapping[3] != path:
        return False
    libc = ctypes.CDLL(None)
    current = _SLOT.from_address(slot).value
    home = _mapping_of(current)
    # eagerly bound: libc's function; lazily: back into the library's own PLT
    if current != _address(libc.sched_yield) and (home is None or home[3] != path):
        return False
    target = _address(libc.getpagesize)  # no arguments, no side effects
    _SLOT.from_address(slot).value = target
    _state.update(slot=slot, target=target)
    return disabled()


def _address(function: Any) -> int:
    return ctypes.cast(function, ctypes.c_void_p).value or 0


def _slot_and_anchor(image: bytes, anchor: str) -> tuple[int, int] | None:
    """Offsets (from the load base) of the ``sched_yield`` PLT slot and of
    ``anchor``, read from the ELF ``image``; None if it is not what we handle."""
    if image[:4] != b"\x7fELF" or image[4] != 2 or image[5] != 1:  # 64-bit, little-endian
        return None
    machine = struct.unpack_from("<H", image, 18)[0]
    jump_slot = _JUMP_SLOTS.get(machine)
    if jump_slot is None:
        return None
    shoff, = struct.unpack_from("<Q", image, 40)
    shentsize, shnum = struct.unpack_from("<HH", image, 58)
    sections = [struct.unpack_from("<IIQQQQIIQQ", image, shoff + i * shentsize)
                for i in range(shnum)]
    slot = anchor_at = None
    for _name, kind, _flags, _addr, offset, size, link, _info, _align, entsize in sections:
        if kind != _SHT_RELA or not entsize:
            continue
        symtab = sections[link]
        strtab = sections[symtab[6]]
        for r_offset, r_info in _relocations(image, offset, size, entsize):
            if r_info & 0xFFFFFFFF != jump_slot:
                continue
            name = _symbol_name(image, symtab, strtab, r_info >> 32)
            if name == b"sched_yield":
                slot = r_offset
        if anchor_at is None:
            anchor_at = _symbol_value(image, symtab, strtab, anchor.encode())
    if slot is None or not anchor_at:
        return None
    return slot, anchor_at


def _relocations(image: bytes, offset: int, size: int, entsize: int
                 ) -> Iterator[tuple[int, int]]:
    for at in range(offset, offset + size, entsize):
        yield struct.unpack_from("<QQ", image, at)


def _symbol(image: bytes, symtab: tuple[int, ...], index: int) -> tuple[int, int]:
    """(name offset, value) of symbol ``index`` of ``symtab`` (Elf64_Sym)."""
    name, _info, _other, _shndx, value, _size = struct.unpack_from(
        "<IBBHQQ", image, symtab[4] + index * symtab[9])
    return name, value


def _string(image: bytes, strtab: tuple[int, ...], offset: int) -> bytes:
    start = strtab[4] + offset
    return image[start : image.index(b"\0", start)]


def _symbol_name(image: bytes, symtab: tuple[int, ...], strtab: tuple[int, ...],
                 index: int) -> bytes:
    return _string(image, strtab, _symbol(image, symtab, index)[0])


def _symbol_value(image: bytes, symtab: tuple[int, ...], strtab: tuple[int, ...],
                  wanted: bytes) -> int | None:
    for index in range(symtab[5] // symtab[9]):
        name, value = _symbol(image, symtab, index)
        if value and _string(image, strtab, name) == wanted:
            return value
    return None


def _mappings() -> Iterator[tuple[int, int, str, str]]:
    """(start, end, permissions, path) of this process's memory mappings."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            start, end = (int(x, 16) for x in fields[0].split("-"))
            yield start, end, fields[1], fields[5].strip() if len(fields) > 5 else ""


def _mapping_of(address: int) -> tuple[int, int, str, str] | None:
    """The mapping holding ``address``, or None."""
    try:
        return next((m for m in _mappings() if m[0] <= address < m[1]), None)
    except OSError:
        return None

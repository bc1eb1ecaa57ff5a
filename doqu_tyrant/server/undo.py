"""Putting a record back as it was before a write that is not idempotent.

A write caught half-way by a kill is completed at start-up by applying it
again (see :mod:`.replication` and :class:`~.ulog.UpdateLog`). For most
writes that is harmless; for the few below, applying twice differs from
once, so the record they change is saved first and restored before the
second application.
"""

from __future__ import annotations

from doqu_tyrant.tyrant import protocol as p

from .cabinet import Cabinet
from .rts import UNDO_DUPS, UNDO_RAW, Undo

__all__ = ["undo_for", "restore"]

_UNDO_COMMANDS = frozenset({p.PUTCAT, p.PUTSHL, p.ADDINT, p.ADDDOUBLE})
_UNDO_MISC = frozenset({b"putcat", b"putdup", b"putdupback"})
NO_UNDO = Undo()


def undo_for(db: Cabinet, request: p.Request) -> Undo:
    """What it takes to put back the record ``request`` changes, if applying
    it twice would not be the same as once (else an empty :class:`Undo`)."""
    cmd, args = request
    if cmd in _UNDO_COMMANDS:
        key = args[0]
    elif cmd == p.MISC and args[0] in _UNDO_MISC and args[2]:
        key = args[2][0]
    else:
        return NO_UNDO
    if db.db_type == "B+ tree":
        values = db.misc(b"get", [key])
        return Undo(UNDO_DUPS, key, None if values is None else tuple(values))
    value = db.get(key)
    return Undo(UNDO_RAW, key, None if value is None else (value,))


def restore(db: Cabinet, undo: Undo) -> None:
    """Put a record back as :func:`undo_for` found it."""
    if undo.kind == UNDO_RAW:
        if undo.values is None:
            db.out(undo.key)
        else:
            db.put(undo.key, undo.values[0])
    elif undo.kind == UNDO_DUPS:
        db.misc(b"outlist", [undo.key])
        for value in undo.values or ():
            db.misc(b"putdup", [undo.key, value])

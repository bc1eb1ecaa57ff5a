"""Documents straight to serialised records, by a function generated per class.

:meth:`~doqu_tyrant.storage.StorageAdapter.save_many` turns every document
into the bytes of its record before anything is sent. Done the general way
-- :meth:`~doqu.Document.validate`, then ``_to_storage`` (a dict of column
texts), then that dict checked and serialised -- it costs several times what
sending the record does. For the common document one pass does it all:

* every structure field holds a value of exactly its declared class, or None;
* no other column, no stored value kept raw (``_raw_invalid``);
* the class has no outgoing processors and converts every field
  (``skip_type_conversion`` is False), the storage's converter manager is a
  plain :class:`~doqu.backend_base.ConverterManager` whose ``None`` converter
  is the stock one.

For such a class :func:`encoder_for` compiles (once, cached per class,
manager revision and declarations) a function that reads the fields, runs
the field validators exactly as ``validate()`` would, converts each value
with the converter the manager resolves for its class -- the very
converters ``_to_storage`` calls, looked up once -- and joins names and texts
into the serialised record (spec §5.1). It returns ``None`` for anything it
does not handle: a value of another class, a validator that fails or stops
with a message, a converter that raises or returns something other than
text, a NUL byte inside a value, text that is not encodable, a record over
the size limit. The caller then takes the general path for that document,
which raises the error it would have raised anyway. So the fast path never
decides that a document is invalid, and it writes the bytes the general path
writes (tests compare the two on generated documents).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from doqu.backend_base import ConverterManager
from doqu.document import Document
from doqu.validators import Exists, Length, Optional, Required, StopValidation
from doqu_tyrant.converters import IDENTITY_TO_DB, INLINE_TO_DB, TEXT_TO_DB, converter_manager
from doqu_tyrant.tyrant import protocol as p

__all__ = ["Encoder", "encoder_for"]

#: ``encode(document, storage)`` → the serialised record, or None (general path).
Encoder = Callable[[Document, Any], "bytes | None"]

# Stock validators as a condition under which calling them does nothing (``{x}``:
# the value, ``{V}``: the validator); they are called only when it is false.
_PASSES = {
    Required: "{x}.__class__ is str and {x}",
    Optional: "{x}.__class__ is str and {x}",
    Exists: "{x} is not None",
    Length: ("({x}.__class__ is str or {x}.__class__ is list) "
             "and ({V}.min is None or {V}.min <= len({x})) "
             "and ({V}.max is None or len({x}) <= {V}.max)"),
}
_STOCK_NONE = converter_manager.get_to_db(type(None))
# class -> (what the encoder was made from, the encoder or None)
_CACHE: weakref.WeakKeyDictionary[type, tuple[tuple[Any, ...], Encoder | None]] = (
    weakref.WeakKeyDictionary())


def encoder_for(cls: type[Document], manager: Any) -> Encoder | None:
    """The generated encoder of ``cls`` with ``manager``; None if the class (or the
    manager) is one the fast path does not serve."""
    if type(manager) is not ConverterManager:
        return None
    made_of = (manager.revision, manager, cls.structure, cls.validators,
               cls.outgoing_processors, cls.skip_type_conversion)
    cached = _CACHE.get(cls)
    if cached is not None and cached[0][0] == made_of[0] and all(
            a is b for a, b in zip(cached[0][1:], made_of[1:])):
        return cached[1]
    encoder = _compile(cls, manager)
    _CACHE[cls] = (made_of, encoder)
    return encoder


def _plain_name(name: object) -> bool:
    """Whether ``name`` is a column name the general path takes as it is."""
    if type(name) is not str or not name or "\0" in name:
        return False
    try:
        name.encode()
    except UnicodeEncodeError:
        return False
    return True


def _literal(text: str) -> str:
    """``text`` as the body of a single-quoted f-string literal (every character
    but letters, digits and ``_`` escaped, so that nothing in a name is code)."""
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch == "_")
                   else f"\\U{ord(ch):08x}" for ch in text)


def _compile(cls: type[Document], manager: ConverterManager) -> Encoder | None:
    structure = cls.structure
    if (not structure or cls.outgoing_processors or cls.skip_type_conversion is not False
            or manager.get_to_db(type(None)) is not _STOCK_NONE
            or not all(map(_plain_name, structure))):
        return None
    plan = cls._writing_plan(manager)
    env: dict[str, Any] = {"StopValidation": StopValidation}
    lines = ["def encode(doc, storage):",
             "    if doc._raw_invalid:",
             "        return None",
             "    data = doc._data",
             f"    if len(data) != {len(plan)}:",
             "        return None",
             "    get = data.get"]
    # The validators first, as validate() runs them (each chain stops at a
    # StopValidation; any error sends the document down the general path).
    for index, (name, chain) in enumerate(cls.validators.items()):
        if not chain:
            continue
        env[f"N{index}"] = name
        lines.append(f"    value = get(N{index})")
        lines.append("    try:")
        for position, validator in enumerate(chain):
            ref = f"V{index}_{position}"
            env[ref] = validator
            passes = _PASSES.get(type(validator))
            call = f"{ref}(doc, value)"
            lines.append(f"        if not ({passes.format(x='value', V=ref)}): {call}"
                         if passes else f"        {call}")
        lines += ["    except StopValidation as exc:",
                  "        if exc.message:",
                  "            return None",
                  "    except Exception:",
                  "        return None"]
    # Then the values, converted; the record's columns in structure order.
    lines.append("    try:")
    pieces = []
    for index, (name, expected, convert, _none) in enumerate(plan):
        env[f"F{index}"] = name
        env[f"E{index}"] = expected
        env[f"C{index}"] = convert
        value, text = f"v{index}", f"t{index}"
        lines.append(f"        {value} = data[F{index}]")  # (a KeyError: another column)
        inline = INLINE_TO_DB.get(convert)
        if convert in IDENTITY_TO_DB:
            lines.append(f"        if {value}.__class__ is E{index}: {text} = {value}")
        elif inline is not None and inline[0] is expected:  # written out, not called
            lines.append(f"        if {value}.__class__ is E{index}:")
            lines += [f"            {line.format(v=value, t=text, c=f'C{index}')}"
                      for line in inline[1]]
        else:
            lines.append(f"        if {value}.__class__ is E{index}: "
                         f"{text} = C{index}({value}, storage)")
        lines += [f"        elif {value} is None: {text} = ''",
                  "        else: return None"]
        if convert not in TEXT_TO_DB and convert not in IDENTITY_TO_DB:
            lines.append(f"        if {text}.__class__ is not str: return None")
        pieces.append(_literal(name) + "\\x00{" + text + "}")
    lines += ["    except Exception:",
              "        return None",
              "    text = f'" + "\\x00".join(pieces) + "'",
              f"    if text.count('\\x00') != {2 * len(plan) - 1}:",
              "        return None  # a NUL inside a value",
              "    try:",
              "        serialised = text.encode()",
              "    except UnicodeEncodeError:",
              "        return None",
              f"    return serialised if len(serialised) <= {p.MAX_LENGTH} else None"]
    exec("\n".join(lines), env)  # noqa: S102 - the code is made above, names are literals
    encode: Encoder = env["encode"]
    return encode

"""Bulk documents, collected and converted: what ``save_many`` sends.

The documents given, and the unsaved documents they reference (dependencies
first), become items: each validated, and serialised -- by the class's
generated encoder (:mod:`doqu_tyrant.encoder`) in one pass where it serves
the document, else by the storage's general conversion -- and the records
scanned once for empty columns (those in a lexical or decimal index are left
out, as ``save()`` does). Nothing here writes; :mod:`doqu_tyrant.bulk` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any, cast

from doqu.backend_base import in_batch
from doqu.document import Document
from doqu_tyrant.encoder import Encoder, encoder_for
from doqu_tyrant.tyrant.commands import Scan, scan_serialized, scanned
from doqu_tyrant.tyrant.indexes import ORDERED
from doqu_tyrant.tyrant.risks import maybe_empty

if TYPE_CHECKING:
    from doqu_tyrant.storage import StorageAdapter

__all__ = ["Item", "encode_all", "collect", "convert", "leaves_out"]


class Item:
    """One document of the batch on its way to the server."""

    __slots__ = ("doc", "index", "key", "generated", "record", "data", "fast", "waits",
                 "stored")

    def __init__(self, doc: Document, index: int, key: str | None, record: Any = None,
                 data: bytes = b"", fast: bool = False) -> None:
        self.doc = doc
        self.index = index  # position (in the list given) of the document it was found by
        self.key = key
        self.generated = key is None
        self.record = record
        self.data = data
        self.fast = fast  # serialised by the class's generated encoder (record: its structure)
        self.waits: Sequence[int] = ()  # ids of unsaved documents of the batch it references
        self.stored = False


def encode_all(storage: StorageAdapter, given: list[Any]) -> list[bytes | None] | None:
    """The records of a batch of documents of one class, serialised at once by the
    class's generated encoder (None for a document it leaves to the general path);
    None if the batch is not of one class, or the class has no encoder."""
    first = given[0]
    if not isinstance(first, Document) or set(map(type, given)) != {first.__class__}:
        return None
    encode = encoder_for(first.__class__, storage.converter_manager)
    return None if encode is None else list(map(encode, given, repeat(storage)))


def collect(storage: StorageAdapter, given: list[Any], keep_keys: bool,
            datas: Sequence[bytes | None] | None) -> list[Item]:
    """The documents and the unsaved ones they reference, dependencies first, validated.

    A document its class's generated encoder (:mod:`doqu_tyrant.encoder`)
    takes is validated and serialised here, in one pass (``datas``: what
    :func:`encode_all` made of them already); any other is validated here and
    converted by :func:`convert`.
    """
    count = len(given)
    if datas is not None and None not in datas and len(set(map(id, given))) == count:
        structure = given[0].__class__.structure  # (one class, every one encoded, distinct)
        records = cast("Sequence[bytes]", datas)
        return [Item(doc, index, doc._pk if doc._storage is None or keep_keys  # (_item's rule,
                      or doc._storage is storage else None, structure, data, True)  # inline)
                for index, (doc, data) in enumerate(zip(given, records))]
    items: list[Item] = []
    append = items.append
    seen: set[int] = set()
    # The encoder of each Document class met (and isinstance of an ABC is slow).
    encoders: dict[type, Encoder | None] = {}
    manager = storage.converter_manager
    for index, document in enumerate(given):
        cls = document.__class__
        try:
            encode = encoders[cls]
        except KeyError:
            if not isinstance(document, Document):
                raise TypeError(f"save_many() saves Documents; item {index} is "
                                f"{type(document).__name__} {document!r}") from None
            encode = encoders[cls] = encoder_for(cls, manager)
        if encode is not None:
            data = encode(document, storage) if datas is None else datas[index]
            if data is not None:  # valid, without references, serialised
                ident = id(document)
                if ident not in seen:
                    seen.add(ident)
                    append(_item(storage, document, index, keep_keys, cls.structure, data))
                continue
        try:
            refs = document._unsaved_references()
        except ValueError as exc:
            raise in_batch(exc, index, count) from None
        if refs:
            _family(storage, [*refs, document], index, count, keep_keys, seen, items)
            continue
        if id(document) in seen:
            continue
        seen.add(id(document))
        append(_validated(storage, document, index, count, keep_keys))
    return items


def _validated(storage: StorageAdapter, doc: Document, index: int, count: int,
               keep_keys: bool) -> Item:
    """``doc`` validated (an error names item ``index`` of ``count``), as an item that
    keeps its key if it belongs to ``storage`` (or is new there), or with ``keep_keys``."""
    try:
        doc.validate()
    except ValueError as exc:
        raise in_batch(exc, index, count) from None
    return _item(storage, doc, index, keep_keys)


def _item(storage: StorageAdapter, doc: Document, index: int, keep_keys: bool,
          structure: Any = None, data: bytes | None = None) -> Item:
    """``doc`` as an item that keeps its key if it belongs to ``storage`` (or is
    new there), or with ``keep_keys``; with ``data``, serialised by its class's
    encoder already (its record: the class's ``structure``)."""
    owner = doc._storage
    key = doc._pk if owner is None or owner is storage or keep_keys else None
    return Item(doc, index, key) if data is None else Item(doc, index, key, structure, data, True)


def _family(storage: StorageAdapter, family: list[Document], index: int, count: int,
            keep_keys: bool, seen: set[int], items: list[Item]) -> None:
    """Add a document and the unsaved ones it references (first) to ``items``."""
    for doc in family:
        if id(doc) in seen:
            continue
        seen.add(id(doc))
        item = _validated(storage, doc, index, count, keep_keys)
        # unsaved documents are referenced: their keys come first
        item.waits = [id(v) for v in doc._data.values()
                      if isinstance(v, Document) and v._pk is None]
        items.append(item)


def convert(storage: StorageAdapter, items: Sequence[Item], count: int,
            kinds: dict[Any, Any] | None, scan: Scan | None = None
            ) -> tuple[dict[Any, Any], Scan]:
    """Records of ``items``, checked and serialised (nothing is sent but index
    probes); the index kinds learnt, and the scan of the records (in order;
    ``scan``: one made already, used if it is of these very records).

    The scan (:func:`~doqu_tyrant.tyrant.commands.scan_serialized`, handed on
    to the batch that writes the records) finds the columns written empty. Only
    if one of them has a lexical or decimal index are the records with empty
    values converted again the general way, which leaves out their unset
    fields there (or refuses an empty value).
    """
    record_data = storage._record_data
    for item in items:
        if not item.fast:
            try:
                item.record, item.data = record_data(item.doc._to_storage(storage))
            except (ValueError, TypeError) as exc:
                raise in_batch(exc, item.index, count) from None
    scan = scanned([item.data for item in items], scan)
    if scan.bad >= 0:  # pragma: no cover - both encoders refuse an empty column name
        raise in_batch(ValueError("a column without a name"), items[scan.bad].index, count)
    kinds = dict(kinds or {})
    if not leaves_out(storage, scan):
        return kinds, scan
    index_kinds = storage.client.index_kinds
    # The columns with an empty value, by their names in the records.
    sparse = [item for item in items if maybe_empty(item.data)]
    empty = {name for item in sparse if not item.fast
             for name, value in item.record.items() if value == ""}
    empty.update(name for record in {id(it.record): it.record for it in sparse
                                     if it.fast}.values() for name in record)
    unknown = [name for name in empty if name not in kinds]
    if unknown:
        kinds.update(index_kinds(sorted(unknown, key=str)))
    indexable = storage._indexable
    for item in sparse:
        try:
            if item.fast:
                item.record, item.data = record_data(item.doc._to_storage(storage))
                item.fast = False
            record = indexable(item.record, kinds)
            if record is not item.record:  # columns left out
                item.record, item.data = record_data(record)
        except (ValueError, TypeError) as exc:
            raise in_batch(exc, item.index, count) from None
    return kinds, scan_serialized([item.data for item in items])


def leaves_out(storage: StorageAdapter, scan: Scan) -> bool:
    """Whether a record of ``scan`` writes an empty value in a column with a
    lexical or decimal index (such fields are left out, or refused)."""
    index_kinds = getattr(storage.client, "index_kinds", None)
    return bool(scan.empty) and index_kinds is not None and not ORDERED.isdisjoint(
        index_kinds(sorted(scan.empty)).values())

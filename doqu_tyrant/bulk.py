"""Bulk documents: thousands saved or deleted in a few round trips.

``db.save_many(docs)`` (:meth:`StorageAdapter.save_many
<doqu_tyrant.storage.StorageAdapter.save_many>`) does what ``doc.save(db)``
does for each document, in bulk:

1. every document -- and every unsaved document one of them references --
   is validated and converted to its record first, through the same code
   as :meth:`~doqu_tyrant.storage.StorageAdapter.save` (storage format,
   unset fields in lexical/decimal columns left out, sizes, NUL bytes). If
   one fails, nothing is sent, and the error says which document (its
   position in the list) and which field;
2. the generated keys for all new documents come from the table's counter
   (``genuid``), all asked in one pipelined round trip
   (:meth:`~doqu_tyrant.tyrant.client.Tyrant.genuids`);
3. the records go out pipelined, a few MiB per round trip, as two batches
   (:class:`~doqu_tyrant.tyrant.commands.Batch`): ``put`` under the keys the
   documents already have, then ``putkeep`` under the generated keys, so that
   -- as with ``save()`` -- a record that someone saved by hand under that
   number (or a document of the batch under that key) is never overwritten:
   such a document takes the next number (the key is checked with VSIZ, and
   a free key whose write was refused is reported as refused, not retried);
4. each stored document gets its ``pk``; the keys are returned in order.

A document referencing another unsaved one of the batch is written once
that one's key is known (one more round trip per level of such references).

If the batch stops part-way (the server refuses a record, the connection
breaks), :class:`BulkWriteError` says which documents were stored (they
have their ``pk``), which were not, and which may or may not have been (a
broken connection: the client asks the server afterwards and only keeps
those it could not find out about as ``unknown``).

Only the client's public methods are used (``genuids``, ``pipeline`` with
``table_put_many`` / ``table_putkeep_many``, ``getlist``, ``index_kinds``), so
the same code serves any client with the Tyrant API (a failover group
included).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from doqu.backend_base import in_batch
from doqu.document import Document
from doqu.utils import normalize_key
from doqu_tyrant.encoder import Encoder, encoder_for
from doqu_tyrant.gcpause import collector_paused
from doqu_tyrant.records import key_bytes
from doqu_tyrant.tyrant import protocol as p
from doqu_tyrant.tyrant.commands import Scan, scan_serialized
from doqu_tyrant.tyrant.errors import TyrantCommandError, TyrantConnectionError, TyrantError
from doqu_tyrant.tyrant.indexes import ORDERED
from doqu_tyrant.tyrant.risks import maybe_empty

if TYPE_CHECKING:
    from doqu_tyrant.storage import StorageAdapter

__all__ = ["BulkWriteError", "BulkWriteConnectionError", "save_many", "delete_many",
           "CHUNK_BYTES", "CHUNK_COUNT"]

#: Bytes of records sent per round trip (a pipeline of puts).
CHUNK_BYTES = 8 << 20
#: Requests sent per round trip.
CHUNK_COUNT = 50_000
#: How many times a document whose generated key was taken by hand takes another.
MAX_KEY_ATTEMPTS = 1000


class BulkWriteError(TyrantError):
    """A bulk save that stopped part-way.

    ``saved``: the documents stored (each has its ``pk``); ``unsaved``: those
    not stored; ``unknown``: those whose write was on its way when the
    connection broke and whose fate could not be asked afterwards. The
    cause is chained (``__cause__``).
    """

    def __init__(self, message: str, saved: list[Document], unsaved: list[Document],
                 unknown: list[Document]) -> None:
        super().__init__(message)
        self.saved = saved
        self.unsaved = unsaved
        self.unknown = unknown


class BulkWriteConnectionError(BulkWriteError, TyrantConnectionError):
    """A :class:`BulkWriteError` because the connection broke (also a ``ConnectionError``)."""


class _Item:
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


def _items(storage: StorageAdapter, given: list[Any], keep_keys: bool) -> list[_Item]:
    """The documents and the unsaved ones they reference, dependencies first, validated.

    A document its class's generated encoder (:mod:`doqu_tyrant.encoder`)
    takes is validated and serialised here, in one pass; any other is
    validated here and converted by :func:`_convert`.
    """
    items: list[_Item] = []
    append = items.append
    seen: set[int] = set()
    # The encoder of each Document class met (and isinstance of an ABC is slow).
    encoders: dict[type, Encoder | None] = {}
    manager = storage.converter_manager
    count = len(given)
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
            data = encode(document, storage)
            if data is not None:  # valid, without references, serialised
                ident = id(document)
                if ident not in seen:
                    seen.add(ident)
                    owner = document._storage  # (the key rule of _item, inline: this is hot)
                    append(_Item(document, index, document._pk if owner is None
                                 or owner is storage or keep_keys else None,
                                 cls.structure, data, True))
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
               keep_keys: bool) -> _Item:
    """``doc`` validated (an error names item ``index`` of ``count``), as an item that
    keeps its key if it belongs to ``storage`` (or is new there), or with ``keep_keys``."""
    try:
        doc.validate()
    except ValueError as exc:
        raise in_batch(exc, index, count) from None
    return _item(storage, doc, index, keep_keys)


def _item(storage: StorageAdapter, doc: Document, index: int, keep_keys: bool) -> _Item:
    """``doc`` as an item that keeps its key if it belongs to ``storage`` (or is
    new there), or with ``keep_keys``."""
    owner = doc._storage
    return _Item(doc, index, doc._pk if owner is None or owner is storage or keep_keys else None)


def _family(storage: StorageAdapter, family: list[Document], index: int, count: int,
            keep_keys: bool, seen: set[int], items: list[_Item]) -> None:
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


def _convert(storage: StorageAdapter, items: Sequence[_Item], count: int,
             kinds: dict[Any, Any] | None) -> tuple[dict[Any, Any], Scan]:
    """Records of ``items``, checked and serialised (nothing is sent but index
    probes); the index kinds learnt, and the scan of the records (in order).

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
    scan = scan_serialized([item.data for item in items])
    if scan.bad >= 0:  # pragma: no cover - both encoders refuse an empty column name
        raise in_batch(ValueError("a column without a name"), items[scan.bad].index, count)
    kinds = dict(kinds or {})
    index_kinds = getattr(storage.client, "index_kinds", None)
    if not scan.empty or index_kinds is None or ORDERED.isdisjoint(
            index_kinds(sorted(scan.empty)).values()):
        return kinds, scan  # (no empty value in a lexical or decimal index: nothing left out)
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


def _chunks(items: Sequence[_Item]) -> Iterator[Sequence[_Item]]:
    start = size = 0
    for i, item in enumerate(items):
        size += len(item.data) + len(item.key or "") + 16
        if i > start and (size > CHUNK_BYTES or i - start >= CHUNK_COUNT):
            yield items[start:i]
            start, size = i, len(item.data) + 16
    if start < len(items):
        yield items[start:]


class _Batch:
    """The state of one ``save_many`` call."""

    def __init__(self, storage: StorageAdapter, items: list[_Item], scan: Scan) -> None:
        self.storage = storage
        self.client = storage.client
        self.items = items
        self.scan = scan  # of the records about to be written (the batch skips it if
        # they are not these very records: another order, a chunk, a retry)
        self.unknown: list[Document] = []

    def error(self, message: str, cause: BaseException) -> BulkWriteError:
        saved = [it.doc for it in self.items if it.stored]
        unknown = self.unknown
        unsure = {id(doc) for doc in unknown}
        unsaved = [it.doc for it in self.items if not it.stored and id(it.doc) not in unsure]
        cls = BulkWriteConnectionError if isinstance(cause, TyrantConnectionError) \
            else BulkWriteError
        text = (f"{message}; {len(saved)} of {len(self.items)} documents were stored (see "
                f".saved), {len(unsaved)} were not (.unsaved)")
        if unknown:
            text += f", {len(unknown)} may or may not have been (.unknown)"
        err = cls(text, saved, unsaved, unknown)
        err.__cause__ = cause
        return err

    def keys(self, count: int) -> list[str]:
        """``count`` new keys from the table's counter, pipelined."""
        keys: list[str] = []
        try:
            while len(keys) < count:
                keys += map(str, self.client.genuids(min(count - len(keys), CHUNK_COUNT)))
        except TyrantError as exc:
            raise self.error("taking generated keys failed before any of them was "
                             f"written ({exc})", exc) from exc
        return keys

    def write(self, wave: list[_Item]) -> None:
        """Store ``wave`` (its generated keys taken here); raise if something is refused."""
        todo = wave
        for _ in range(MAX_KEY_ATTEMPTS):
            new = [it for it in todo if it.generated]
            for item, key in zip(new, self.keys(len(new))):
                item.key = key
            taken: list[_Item] = []
            for chunk in _chunks(todo):
                taken += self._send(chunk)
            if not taken:
                return
            todo = taken
        raise self.error(f"no free generated key after {MAX_KEY_ATTEMPTS} attempts for "
                         f"{len(todo)} documents: records were saved by hand under the next "
                         "numbers", TyrantError("no free generated key"))

    def _send(self, chunk: Sequence[_Item]) -> list[_Item]:
        """One round trip of puts; the items whose generated key proved taken."""
        given = [it for it in chunk if not it.generated]
        new = [it for it in chunk if it.generated] if given else chunk
        try:
            results = self._puts(given, new)
        except TyrantConnectionError as exc:
            self._settle_unknown(chunk)
            raise self.error(f"the connection broke while documents were on their way ({exc})",
                             exc) from exc
        refused: list[tuple[_Item, BaseException]] = []
        if given:
            for item, result in zip(given, results[0]):
                if result is None:
                    self._stored(item)
                else:
                    refused.append((item, result))
        kept: list[_Item] = []  # putkeep said no: the key is taken, or refused
        if new:
            stored = results[-1]
            if all(ok is True for ok in stored):
                self._all_stored(new)
            else:
                for item, ok in zip(new, stored):
                    if ok is True:
                        self._stored(item)
                    elif ok is False:
                        kept.append(item)
                    else:
                        refused.append((item, ok))
        taken = []
        exist = self._exist([it.key for it in kept])  # type: ignore[misc]
        for item, exists in zip(kept, exist):
            if exists:
                taken.append(item)
            else:
                refused.append((item, TyrantCommandError("putkeep")))
        if refused:
            first, cause = min(refused, key=lambda entry: entry[0].index)
            raise self.error(
                f"the server refused to store {len(refused)} documents, the first being "
                f"document {first.index} of the batch ({type(first.doc).__name__}) under the "
                f"key {first.key!r}", cause)
        return taken

    def _puts(self, given: Sequence[_Item], new: Sequence[_Item]) -> list[list[Any]]:
        """One round trip: PUT of ``given`` (first: a generated key equal to one of
        theirs then finds it taken), PUTKEEP of ``new``; ``[put results]`` and/or
        ``[putkeep results]`` (None or an exception; True, False or an exception).

        Each is one batch (over shards: each shard's share one batch of its own).
        """
        pipeline = self.client.pipeline()
        if given:
            pipeline.table_put_many({it.key: it.data for it in given}, scan=self.scan)
        if new:
            pipeline.table_putkeep_many({it.key: it.data for it in new}, scan=self.scan)
        return pipeline.execute(raise_on_error=False)  # type: ignore[no-any-return]

    def _exist(self, keys: list[str]) -> list[bool]:
        if not keys:
            return []
        pipeline = self.client.pipeline()
        for key in keys:
            pipeline.vsiz(key)
        try:
            return [size is not None for size in pipeline.execute()]
        except TyrantError as exc:
            raise self.error(f"checking refused keys failed ({exc})", exc) from exc

    def _stored(self, item: _Item) -> None:
        item.doc._saved(self.storage, item.key, item.record)  # type: ignore[arg-type]
        item.stored = True

    def _all_stored(self, items: Sequence[_Item]) -> None:
        storage = self.storage
        for item in items:
            item.doc._saved(storage, item.key, item.record)  # type: ignore[arg-type]
            item.stored = True

    def _settle_unknown(self, chunk: Sequence[_Item]) -> None:
        """After a broken connection: ask which records of ``chunk`` are stored."""
        try:
            found = self.client.getlist([key_bytes(it.key) for it in chunk], raw=True)
        except TyrantError:
            self.unknown.extend(it.doc for it in chunk if not it.stored)
            return
        for item in chunk:
            if not item.stored and found.get(key_bytes(item.key)) == p.unpack_record(item.data):
                self._stored(item)


def save_many(storage: StorageAdapter, documents: Iterable[Document],
              keep_keys: bool = False) -> list[str]:
    """See :meth:`StorageAdapter.save_many <doqu_tyrant.storage.StorageAdapter.save_many>`."""
    if isinstance(documents, (Document, str, bytes)) or not isinstance(documents, Iterable):
        raise TypeError(f"save_many() takes an iterable of Documents, not "
                        f"{type(documents).__name__}")
    given = list(documents)
    if not given:
        return []
    with collector_paused():  # (it only ever finds the batch's live objects)
        return _save_many(storage, given, keep_keys)


def _save_many(storage: StorageAdapter, given: list[Document], keep_keys: bool) -> list[str]:
    items = _items(storage, given, keep_keys)
    for item in items:  # bad keys are refused before anything is sent
        if item.key is not None:
            try:
                key_bytes(item.key)
            except (ValueError, TypeError) as exc:
                raise in_batch(exc, item.index, len(given)) from None
    ready = [it for it in items if not it.waits]
    kinds, scan = _convert(storage, items, len(given), None)  # also checks the waiting ones
    batch = _Batch(storage, items, scan)
    waiting = [it for it in items if it.waits]
    while ready:
        batch.write(ready)
        if not waiting:
            break
        stored = {id(it.doc) for it in items if it.stored}
        ready = [it for it in waiting if all(w in stored for w in it.waits)]
        waiting = [it for it in waiting if not all(w in stored for w in it.waits)]
        # (converted again: now with the keys they reference)
        kinds, batch.scan = _convert(storage, ready, len(given), kinds)
    if waiting:  # pragma: no cover - references form no cycle (checked when collected)
        raise RuntimeError("save_many: documents wait for references that were not saved")
    return [normalize_key(doc._pk) for doc in given]  # type: ignore[arg-type]


def delete_many(storage: StorageAdapter, primary_keys: Iterable[str | int]) -> None:
    """See :meth:`StorageAdapter.delete_many <doqu_tyrant.storage.StorageAdapter.delete_many>`."""
    if isinstance(primary_keys, (str, bytes)) or not isinstance(primary_keys, Iterable):
        raise TypeError(f"delete_many() takes an iterable of keys, not "
                        f"{type(primary_keys).__name__}")
    given = list(primary_keys)
    keys = list(dict.fromkeys(key_bytes(k) for k in given))
    gone: set[bytes] = set()
    client = storage.client
    for start in range(0, len(keys), CHUNK_COUNT):
        chunk = keys[start:start + CHUNK_COUNT]
        pipeline = client.pipeline()
        for key in chunk:
            pipeline.out(key)
        gone.update(key for key, ok in zip(chunk, pipeline.execute()) if ok)
    missing = [k for k in dict.fromkeys(given) if key_bytes(k) not in gone]
    if missing:
        raise KeyError(missing[0] if len(missing) == 1 else missing)

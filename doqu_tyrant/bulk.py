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

The common load -- distinct new documents of one class that its generated
encoder serialises, nothing to leave out, one round trip's worth -- takes
the same two round trips without an item per document
(:mod:`doqu_tyrant.bulk_items` collects and converts those for everything
else); if a record is refused or its key proves taken, or the connection
breaks, the batch is handed to the general bookkeeping with the keys taken.
The cyclic garbage collector is paused during the call
(:mod:`doqu_tyrant.gcpause`).

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
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from doqu.backend_base import in_batch
from doqu.document import Document
from doqu.utils import normalize_key
from doqu_tyrant.bulk_items import Item, collect, convert, encode_all, leaves_out
from doqu_tyrant.gcpause import collector_paused
from doqu_tyrant.records import key_bytes
from doqu_tyrant.tyrant import protocol as p
from doqu_tyrant.tyrant.commands import Scan, scan_serialized
from doqu_tyrant.tyrant.errors import TyrantCommandError, TyrantConnectionError, TyrantError

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


_DATA = attrgetter("data")
_KEY = attrgetter("key")


def _new_keys(client: Any, count: int) -> list[str]:
    """``count`` new keys from the table's counter (pipelined ``genuid``)."""
    keys: list[str] = []
    while len(keys) < count:
        keys += map(str, client.genuids(min(count - len(keys), CHUNK_COUNT)))
    return keys


def _chunks(items: Sequence[Item]) -> Iterator[Sequence[Item]]:
    """``items`` in runs of at most :data:`CHUNK_COUNT` and about :data:`CHUNK_BYTES`."""
    if len(items) <= CHUNK_COUNT and (  # the common case: one run (sizes summed in C)
            sum(map(len, map(_DATA, items))) + sum(map(len, filter(None, map(_KEY, items))))
            + 16 * len(items) <= CHUNK_BYTES):
        yield items
        return
    start = size = 0
    for i, item in enumerate(items):
        size += len(item.data) + len(item.key or "") + 16
        if i > start and (size > CHUNK_BYTES or i - start >= CHUNK_COUNT):
            yield items[start:i]
            start, size = i, len(item.data) + len(item.key or "") + 16
    if start < len(items):
        yield items[start:]


class _Batch:
    """The state of one ``save_many`` call."""

    def __init__(self, storage: StorageAdapter, items: list[Item], scan: Scan) -> None:
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
        try:
            return _new_keys(self.client, count)
        except TyrantError as exc:
            raise self.keys_failed(exc) from exc

    def keys_failed(self, exc: TyrantError) -> BulkWriteError:
        return self.error(f"taking generated keys failed before any of them was written ({exc})",
                          exc)

    def write(self, wave: list[Item]) -> None:
        """Store ``wave`` (its generated keys taken here); raise if something is refused."""
        todo = wave
        for _ in range(MAX_KEY_ATTEMPTS):
            new = [it for it in todo if it.generated]
            for item, key in zip(new, self.keys(len(new))):
                item.key = key
            taken: list[Item] = []
            for chunk in _chunks(todo):
                taken += self._send(chunk)
            if not taken:
                return
            todo = taken
        raise self.error(f"no free generated key after {MAX_KEY_ATTEMPTS} attempts for "
                         f"{len(todo)} documents: records were saved by hand under the next "
                         "numbers", TyrantError("no free generated key"))

    def _send(self, chunk: Sequence[Item]) -> list[Item]:
        """One round trip of puts; the items whose generated key proved taken."""
        given = [it for it in chunk if not it.generated]
        new = [it for it in chunk if it.generated] if given else chunk
        try:
            results = self._puts(given, new)
        except TyrantConnectionError as exc:
            raise self.broken(chunk, exc) from exc
        return self.outcome(given, new, results)

    def broken(self, chunk: Sequence[Item], exc: TyrantConnectionError) -> BulkWriteError:
        """The error of a connection broken while ``chunk`` was on its way (what of
        it is stored asked first)."""
        self._settle_unknown(chunk)
        return self.error(f"the connection broke while documents were on their way ({exc})",
                          exc)

    def outcome(self, given: Sequence[Item], new: Sequence[Item],
                results: list[list[Any]]) -> list[Item]:
        """Note what :meth:`_puts` stored; the items whose generated key proved taken.
        Raises if something was refused."""
        refused: list[tuple[Item, BaseException]] = []
        if given:
            for item, result in zip(given, results[0]):
                if result is None:
                    self._stored(item)
                else:
                    refused.append((item, result))
        kept: list[Item] = []  # putkeep said no: the key is taken, or refused
        if new:
            stored = results[-1]
            if stored.count(True) == len(stored):  # (True, False or exceptions)
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

    def _puts(self, given: Sequence[Item], new: Sequence[Item]) -> list[list[Any]]:
        """One round trip: PUT of ``given`` (first: a generated key equal to one of
        theirs then finds it taken), PUTKEEP of ``new``; ``[put results]`` and/or
        ``[putkeep results]`` (None or an exception; True, False or an exception).

        Each is one batch (over shards: each shard's share one batch of its own).
        """
        pipeline = self.client.pipeline()
        if given:
            # (pairs: two documents of the batch may have the same key; the last one wins)
            pipeline.table_put_many([(it.key, it.data) for it in given])
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

    def _stored(self, item: Item) -> None:
        item.doc._saved(self.storage, item.key, item.record)  # type: ignore[arg-type]
        item.stored = True

    def _all_stored(self, items: Sequence[Item]) -> None:
        storage = self.storage
        for item in items:
            item.doc._saved(storage, item.key, item.record)  # type: ignore[arg-type]
            item.stored = True

    def _settle_unknown(self, chunk: Sequence[Item]) -> None:
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
    datas = encode_all(storage, given)
    scan = None  # (of the records, once: the common load and the general path share it)
    if datas is not None and None not in datas:
        records: list[bytes] = datas  # type: ignore[assignment]
        scan = scan_serialized(records)
        new = _save_new(storage, given, records, scan)
        if new is not None:
            return new
    items = collect(storage, given, keep_keys, datas)
    for item in items:  # bad keys are refused before anything is sent
        if item.key is not None:
            try:
                key_bytes(item.key)
            except (ValueError, TypeError) as exc:
                raise in_batch(exc, item.index, len(given)) from None
    ready = [it for it in items if not it.waits]
    kinds, scan = convert(storage, items, len(given), None, scan)  # (the waiting ones too)
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
        kinds, batch.scan = convert(storage, ready, len(given), kinds)
    if waiting:  # pragma: no cover - references form no cycle (checked when collected)
        raise RuntimeError("save_many: documents wait for references that were not saved")
    pks: list[Any] = [doc._pk for doc in given]
    return pks if set(map(type, pks)) == {str} else [normalize_key(pk) for pk in pks]


def _save_new(storage: StorageAdapter, given: list[Document], records: list[bytes],
              scan: Scan) -> list[str] | None:
    """The common load -- distinct new documents of one class, all serialised by
    its encoder (``records``, and their ``scan``), nothing left out, one round
    trip's worth -- without per-document bookkeeping unless something goes wrong
    (then :class:`_Batch` takes over with the keys taken). None, with nothing
    sent, if the batch is not that one.
    """
    count = len(given)
    if (count > CHUNK_COUNT or set(map(_PK, given)) != {None} or len(set(map(id, given))) != count
            or sum(map(len, records)) + 36 * count > CHUNK_BYTES):  # (a key: 20 digits at most)
        return None
    if scan.bad >= 0 or leaves_out(storage, scan):
        return None
    client = storage.client
    try:
        keys = _new_keys(client, count)
    except TyrantError as exc:
        raise _taken_over(storage, given, records, (), scan)[1].keys_failed(exc) from exc
    pipeline = client.pipeline()
    pipeline.table_putkeep_many(dict(zip(keys, records)), scan=scan)
    structure = given[0].__class__.structure
    try:
        results = pipeline.execute(raise_on_error=False)
    except TyrantConnectionError as exc:
        items, batch = _taken_over(storage, given, records, keys, scan)
        raise batch.broken(items, exc) from exc
    if results[0].count(True) == count:  # (True, False or exceptions)
        for doc, key in zip(given, keys):
            doc._saved(storage, key, structure)
        return keys
    items, batch = _taken_over(storage, given, records, keys, scan)
    taken = batch.outcome((), items, results)
    if taken:
        batch.write(taken)  # (new keys for those whose key was taken)
    return [doc._pk for doc in given]  # type: ignore[misc]


def _taken_over(storage: StorageAdapter, given: list[Document], records: list[bytes],
                keys: Sequence[str], scan: Scan) -> tuple[list[Item], _Batch]:
    """The items of :func:`_save_new`'s documents (with their keys, if taken) and
    their batch."""
    items = collect(storage, given, False, records)
    for item, key in zip(items, keys):
        item.key = key
    return items, _Batch(storage, items, scan)


_PK = attrgetter("_pk")


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

"""The BM25 index kept equal to a Chroma collection, and its snapshot on disk.

Chroma is the source of truth; :class:`BM25Mirror` derives the BM25 index from it. The
snapshot records the collection state it was built from (the write generation, the number of
ids and a digest of them); on open, a snapshot with the current state is loaded, any other is
ignored and the index rebuilt from Chroma. Writes follow the order that
:mod:`jinarag.retrieval.index` describes: :meth:`BM25Mirror.writing` takes the store's write
lock and checks that the snapshot can be saved; the first record written marks the snapshot
stale (a new generation); :meth:`BM25Mirror.upsert` / :meth:`BM25Mirror.delete` change BM25
only after Chroma acknowledged each batch; the end of the write records a final generation and
saves the snapshot. A write that changes no record changes nothing at all.

Example:
    >>> mirror = BM25Mirror(store, BM25Index(), Path("./store/jinarag-bm25/jinarag.json"))
    >>> with mirror.writing():
    ...     mirror.upsert(["a"], vectors, ["Lift grows."], [None])
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from jinarag.errors import JinaragError
from jinarag.retrieval.keyword.bm25 import BM25Index
from jinarag.retrieval.keyword.snapshot import check_snapshot_path
from jinarag.retrieval.store.collection import ChromaStore
from jinarag.retrieval.store.lock import StoreLock

__all__ = ["BM25Mirror", "current_state"]

logger = logging.getLogger(__name__)


def _ids_digest(ids: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for doc_id in sorted(ids):
        digest.update(doc_id.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def _state(ids: Sequence[str], generation: str | None) -> dict[str, Any]:
    return {"count": len(ids), "ids_sha256": _ids_digest(ids), "generation": generation}


def current_state(store: ChromaStore) -> dict[str, Any]:
    """The state a current snapshot of ``store``'s collection records."""
    generation = store.generation()
    return _state(store.ids(), generation)


class BM25Mirror:
    """A BM25 index that follows one :class:`ChromaStore`.

    Args:
        store: the collection to follow.
        bm25: the (empty) BM25 index to fill; it is loaded or rebuilt here.
        snapshot: the snapshot file, or None to keep BM25 in memory only.
        lock: the store's write lock, or None (no local store to lock: a server without a
            snapshot folder, or an in-memory index).

    Raises:
        StoreError, StoreCorruptError: the snapshot cannot be saved at ``snapshot``.
    """

    def __init__(
        self,
        store: ChromaStore,
        bm25: BM25Index,
        snapshot: Path | None,
        lock: StoreLock | None = None,
    ) -> None:
        self.store = store
        self.bm25 = bm25
        self.snapshot = snapshot
        self.lock = lock
        self._generation: str | None = None  # the one BM25 matches; None while writing
        self._began = False  # whether the current write changed a record yet
        self._depth = 0  # writes open, one inside another (only the outermost locks and saves)
        self._owner: int | None = None  # the thread whose write is open
        if snapshot is not None:
            check_snapshot_path(snapshot)
        self.sync(force=False, strict=True)

    def sync(self, force: bool, *, strict: bool = False) -> None:
        """Make the BM25 index match Chroma: load the snapshot if it is current, else rebuild.

        A rebuilt snapshot is saved unless another process wrote meanwhile (it would be stale);
        when saving fails, ``strict`` raises, else the failure is logged (BM25 in memory is
        right, only the next open rebuilds again)."""
        generation = self.store.generation()
        ids = self.store.ids()
        state = _state(ids, generation)
        if not force and self.snapshot is not None and self.bm25.load(self.snapshot) == state:
            self._generation = generation
            return
        self.bm25.clear()
        for rows in self.store.slices(len(ids)):
            self.bm25.upsert(*self.store.documents(ids[rows]))
        if set(self.bm25.ids) != set(ids):  # records deleted while we read: try again
            self.sync(force=True, strict=strict)
            return
        if self.store.generation() != generation:
            self._generation = None  # written meanwhile: the next search rebuilds again
            return
        self._generation = generation
        try:
            self._save()
        except (OSError, JinaragError) as exc:
            if strict:
                raise
            logger.warning("could not save the BM25 snapshot %s: %s", self.snapshot, exc)

    def fresh(self) -> None:
        """Catch up with writes by other processes: they change the generation or the count."""
        if self.store.generation() != self._generation or self.store.count() != len(self.bm25):
            self.sync(force=True)

    @contextlib.contextmanager
    def writing(self, *, locked: bool = False) -> Iterator[None]:
        """Bracket a write: the store's write lock (unless the caller holds it: ``locked``),
        BM25 brought up to date and the snapshot path checked before anything is written; a
        new generation before the first record changes (the snapshot on disk turns stale), a
        final one and the snapshot saved last. If the body fails, nothing is saved: the old
        snapshot stays, marked stale by the generation, and the next search or open rebuilds
        from Chroma. Writes nest: one inside another is part of it (no second lock or save)."""
        if self._depth and self._owner == threading.get_ident():
            # Inside another write of this thread: it holds the lock and finishes the write.
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        unlocked = locked or self.lock is None
        with self._outermost(unlocked):
            self._depth, self._owner = 1, threading.get_ident()
            try:
                yield
            finally:
                self._depth, self._owner = 0, None

    @contextlib.contextmanager
    def _outermost(self, unlocked: bool) -> Iterator[None]:
        with contextlib.nullcontext() if unlocked else self.lock:
            self.fresh()  # start from what Chroma holds, including other processes' writes
            if self.snapshot is not None:
                check_snapshot_path(self.snapshot)
            self._began = False
            try:
                yield
            except BaseException:
                self._began = False
                raise
            if self._began:
                # A final generation: readers that rebuilt from the middle of this write see
                # that it moved on, and reload (their vectors too) instead of keeping a part.
                final = uuid.uuid4().hex
                self.store.set_generation(final)
                self._generation = final
                self._began = False
                self._save()

    def _begin(self) -> None:
        if not self._began:
            self.store.set_generation(uuid.uuid4().hex)
            self._generation = None
            self._began = True

    def upsert(
        self,
        ids: Sequence[str],
        vectors: Any,
        texts: Sequence[str],
        metadatas: Sequence[dict[str, Any] | None],
        hashes: Sequence[str] | None = None,
    ) -> None:
        """Write records to Chroma batch by batch (with their content ``hashes``), BM25
        following each acknowledged batch."""
        if not ids:
            return
        self._begin()
        for rows in self.store.slices(len(ids)):
            batch_hashes = hashes[rows] if hashes is not None else None
            self.store.upsert(ids[rows], vectors[rows], texts[rows], metadatas[rows], batch_hashes)
            self.bm25.upsert(ids[rows], texts[rows])

    def relabel(self, ids: Sequence[str], metadatas: Sequence[dict[str, Any]]) -> None:
        """Replace the metadata of existing records in Chroma (a key set to None is removed);
        texts and vectors stay, so BM25 has nothing to follow."""
        if not ids:
            return
        self._begin()
        for rows in self.store.slices(len(ids)):
            self.store.update_metadata(ids[rows], metadatas[rows])

    def delete(self, ids: Sequence[str]) -> None:
        """Delete from Chroma batch by batch, BM25 following each acknowledged batch."""
        if not ids:
            return
        self._begin()
        for rows in self.store.slices(len(ids)):
            self.store.delete(ids[rows])
            self.bm25.delete(ids[rows])

    def _save(self) -> None:
        if self.snapshot is not None:
            self.bm25.save(self.snapshot, _state(self.bm25.ids, self._generation))

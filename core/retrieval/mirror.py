"""The BM25 index kept equal to a Chroma collection, and its snapshot on disk.

Chroma is the source of truth; :class:`BM25Mirror` derives the BM25 index from it. The
snapshot records the collection state it was built from (the write generation, the number of
ids and a digest of them); on open, a snapshot with the current state is loaded, any other is
ignored and the index rebuilt from Chroma. Writes follow the order that
:mod:`jinarag.retrieval.index` describes: :meth:`BM25Mirror.writing` marks the snapshot stale
first and saves it last, and :meth:`BM25Mirror.upsert` / :meth:`BM25Mirror.delete` change
BM25 only after Chroma acknowledged each batch.

Example:
    >>> mirror = BM25Mirror(store, BM25Index(), Path("./store/jinarag-bm25/jinarag.json"))
    >>> with mirror.writing():
    ...     mirror.upsert(["a"], vectors, ["Lift grows."], [None])
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from jinarag.retrieval.bm25 import BM25Index
from jinarag.retrieval.chroma_store import ChromaStore

__all__ = ["BM25Mirror"]


def _ids_digest(ids: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for doc_id in sorted(ids):
        digest.update(doc_id.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def _state(ids: Sequence[str], generation: str | None) -> dict[str, Any]:
    return {"count": len(ids), "ids_sha256": _ids_digest(ids), "generation": generation}


class BM25Mirror:
    """A BM25 index that follows one :class:`ChromaStore`.

    Args:
        store: the collection to follow.
        bm25: the (empty) BM25 index to fill; it is loaded or rebuilt here.
        snapshot: the snapshot file, or None to keep BM25 in memory only.
    """

    def __init__(self, store: ChromaStore, bm25: BM25Index, snapshot: Path | None) -> None:
        self.store = store
        self.bm25 = bm25
        self.snapshot = snapshot
        self._generation: str | None = None  # the one BM25 matches; None while writing
        self.sync(force=False)

    def sync(self, force: bool) -> None:
        """Make the BM25 index match Chroma: load the snapshot if it is current, else rebuild."""
        generation = self.store.generation()
        ids = self.store.ids()
        state = _state(ids, generation)
        if not force and self.snapshot is not None and self.bm25.load(self.snapshot) == state:
            self._generation = generation
            return
        self.bm25.clear()
        for rows in self.store.slices(len(ids)):
            self.bm25.upsert(*self.store.documents(ids[rows]))
        self._generation = generation
        if set(self.bm25.ids) != set(ids):  # records deleted while we read: try again
            self.sync(force=True)
            return
        self._save()

    def fresh(self) -> None:
        """Catch up with writes by other processes: they change the generation or the count."""
        if self.store.generation() != self._generation or self.store.count() != len(self.bm25):
            self.sync(force=True)

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Bracket a write: a new generation first (the snapshot on disk turns stale), the
        snapshot saved last. If the body fails, nothing is saved: the old snapshot stays,
        marked stale by the generation, and the next search or open rebuilds from Chroma."""
        self.fresh()  # start from what Chroma holds, including other processes' writes
        generation = uuid.uuid4().hex
        self.store.set_generation(generation)
        self._generation = None
        yield
        self._generation = generation
        self._save()

    def upsert(
        self,
        ids: Sequence[str],
        vectors: Any,
        texts: Sequence[str],
        metadatas: Sequence[dict[str, Any] | None],
    ) -> None:
        """Write records to Chroma batch by batch, BM25 following each acknowledged batch."""
        for rows in self.store.slices(len(ids)):
            self.store.upsert(ids[rows], vectors[rows], texts[rows], metadatas[rows])
            self.bm25.upsert(ids[rows], texts[rows])

    def delete(self, ids: Sequence[str]) -> None:
        """Delete from Chroma batch by batch, BM25 following each acknowledged batch."""
        for rows in self.store.slices(len(ids)):
            self.store.delete(ids[rows])
            self.bm25.delete(ids[rows])

    def _save(self) -> None:
        if self.snapshot is not None:
            self.bm25.save(self.snapshot, _state(self.bm25.ids, self._generation))

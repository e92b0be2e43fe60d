"""One write, step by step: which records of a batch changed, then embedding and writing them.

Every record is stored with a hash of its text and metadata
(:func:`jinarag.retrieval.records.record_hash`). Before a batch is written, the stored hashes
of its ids are read, and only records that are new or differ are embedded and written: an
unchanged record is never written again. (Re-writing the same vector into Chroma's HNSW index
can leave a record that dense search no longer reaches, and embedding costs time.) Records
stored before hashes were kept are compared by their stored text and metadata instead.

:meth:`jinarag.HybridIndex.add` runs these inside :meth:`BM25Mirror.writing`, so the store's
write lock is held and the hashes read are current.

Example:
    >>> rows = Batch(ids, texts, metas, [0, 1, 2]).changed(store)
    >>> write(mirror, embedder, rows)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from jinarag.retrieval.records import record_hash

if TYPE_CHECKING:
    from jinarag.inference.embedder import Embedder
    from jinarag.retrieval.chroma_store import ChromaStore
    from jinarag.retrieval.mirror import BM25Mirror

__all__ = ["Batch", "write"]


@dataclass(frozen=True)
class Batch:
    """Some rows of one add: ``ids``, ``texts`` and ``metas`` are the whole call's (checked)
    records, ``rows`` the positions this batch covers."""

    ids: list[str]
    texts: list[str]
    metas: list[dict[str, Any] | None]
    rows: list[int]

    def hash(self, i: int) -> str:
        return record_hash(self.texts[i], self.metas[i])

    def changed(self, store: ChromaStore) -> Batch:
        """The rows whose record ``store`` does not hold exactly (new, or another text or
        metadata), as a new batch."""
        ids = [self.ids[i] for i in self.rows]
        stored = store.hashes(ids)
        legacy = [doc_id for doc_id in ids if doc_id in stored and stored[doc_id] is None]
        old = store.records(legacy) if legacy else {}
        keep = [
            i
            for i in self.rows
            if stored.get(self.ids[i]) != self.hash(i)
            and old.get(self.ids[i]) != (self.texts[i], self.metas[i] or {})
        ]
        return Batch(self.ids, self.texts, self.metas, keep)


def write(mirror: BM25Mirror, embedder: Embedder, batch: Batch) -> None:
    """Embed the batch's texts and write its records with their hashes (Chroma, then BM25)."""
    if not batch.rows:
        return
    texts = [batch.texts[i] for i in batch.rows]
    vectors = np.asarray(embedder.embed_documents(texts), dtype=np.float32)
    mirror.upsert(
        [batch.ids[i] for i in batch.rows],
        vectors,
        texts,
        [batch.metas[i] for i in batch.rows],
        [batch.hash(i) for i in batch.rows],
    )

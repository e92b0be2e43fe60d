"""One write, step by step: what each record of a batch needs, then doing just that.

Every record is stored with a hash of its text and metadata
(:func:`jinarag.retrieval.write.records.record_hash`). Before a batch is written, the stored hashes
of its ids are read, and each record gets the least write that makes the store hold it exactly:

- unchanged (same hash; or, for a record stored before hashes were kept, the same text and
  metadata): nothing at all;
- new: embedded and added;
- another text: deleted, then embedded and added as a new record;
- the same text with other metadata: its metadata replaced in place (keys it no longer has
  removed), its vector untouched.

A batch may carry its rows' vectors, computed by the caller (late chunking: a chunk's vector
depends on its whole document, so it can change while the chunk's text does not). Those vectors
are written instead of embedding the texts, and a row that would only get new metadata is
deleted and added with its new vector, as a moved row, so no stale vector is ever kept.

Chroma's ``upsert`` of an existing id is never used: writing a vector over an existing one
(the same one, above all) can leave a record in the HNSW graph that dense search no longer
reaches, and Chroma merges metadata, so a key the new record dropped would stay.

:meth:`jinarag.HybridIndex.add` runs these inside :meth:`BM25Mirror.writing`, so the store's
write lock is held and what is read is current.

Example:
    >>> plan = Batch(ids, texts, metas, [0, 1, 2]).plan(store)
    >>> write(mirror, embedder, plan)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from jinarag.retrieval.store.collection import HASH_KEY, RESERVED_PREFIX
from jinarag.retrieval.write.records import record_hash

if TYPE_CHECKING:
    from jinarag.inference.embedder import Embedder
    from jinarag.retrieval.store.collection import ChromaStore
    from jinarag.retrieval.write.mirror import BM25Mirror

__all__ = ["Batch", "Plan", "write"]


@dataclass(frozen=True)
class Batch:
    """Some rows of one add: ``ids``, ``texts`` and ``metas`` are the whole call's (checked)
    records, ``rows`` the positions this batch covers. ``vectors``, when given, holds one
    float32 row per record of the call (the caller may fill the rows :meth:`plan` says need
    writing after planning, before :func:`write`)."""

    ids: list[str]
    texts: list[str]
    metas: list[dict[str, Any] | None]
    rows: list[int]
    vectors: np.ndarray | None = None

    def hash(self, i: int) -> str:
        return record_hash(self.texts[i], self.metas[i])

    def plan(self, store: ChromaStore) -> Plan:
        """What each row needs, from what ``store`` holds (see the module docstring)."""
        stored = store.hashes([self.ids[i] for i in self.rows])
        plan = Plan(self)
        differ = [
            i for i in self.rows if self.ids[i] in stored and stored[self.ids[i]] != self.hash(i)
        ]
        held = store.raw_records([self.ids[i] for i in differ]) if differ else {}
        for i in self.rows:
            doc_id = self.ids[i]
            if doc_id not in stored:
                plan.new.append(i)
            elif i not in differ or doc_id not in held:
                continue  # the same hash (or deleted meanwhile: nothing to compare with)
            else:
                text, meta = held[doc_id]
                mine = {k: v for k, v in meta.items() if not k.startswith(RESERVED_PREFIX)}
                if stored[doc_id] is None and (text, mine) == (self.texts[i], self.metas[i] or {}):
                    continue  # stored before hashes were kept, and the same
                if text != self.texts[i] or self.vectors is not None:
                    plan.moved.append(i)  # given vectors may differ from the stored one
                else:
                    plan.relabeled[i] = sorted(set(mine) - set(self.metas[i] or {}))
        return plan


@dataclass
class Plan:
    """The writes one batch needs: ``new`` and ``moved`` rows are embedded (or take the batch's
    vectors) and added (``moved`` ones deleted first), ``relabeled`` rows get new metadata (with
    the keys to remove); a batch with vectors has no relabeled rows."""

    batch: Batch
    new: list[int] = field(default_factory=list)
    moved: list[int] = field(default_factory=list)
    relabeled: dict[int, list[str]] = field(default_factory=dict)


def write(mirror: BM25Mirror, embedder: Embedder, plan: Plan) -> None:
    """Carry out ``plan`` (Chroma first, BM25 following each acknowledged batch)."""
    batch = plan.batch
    if plan.relabeled:
        mirror.relabel(
            [batch.ids[i] for i in plan.relabeled],
            [
                {**(batch.metas[i] or {}), **dict.fromkeys(gone), HASH_KEY: batch.hash(i)}
                for i, gone in plan.relabeled.items()
            ],
        )
    rows = plan.new + plan.moved
    if not rows:
        return
    texts = [batch.texts[i] for i in rows]
    if batch.vectors is not None:
        vectors = np.asarray(batch.vectors[rows], dtype=np.float32)
    else:
        vectors = np.asarray(embedder.embed_documents(texts), dtype=np.float32)  # before deleting
    mirror.delete([batch.ids[i] for i in plan.moved])
    mirror.upsert(
        [batch.ids[i] for i in rows],
        vectors,
        texts,
        [batch.metas[i] for i in rows],
        [batch.hash(i) for i in rows],
    )

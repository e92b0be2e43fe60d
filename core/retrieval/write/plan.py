"""One write, step by step: what each record of a batch needs, then doing just that.

Every record is stored with a hash of its text and metadata
(:func:`jinarag.retrieval.write.records.record_hash`). Before a batch is written, the stored
hashes of its ids are read, and each record gets the least write that makes the store hold it
exactly:

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

:class:`~jinarag.retrieval.write.writer.Writer` runs these inside :meth:`BM25Mirror.writing`,
so the store's write lock is held and what is read is current.

Example:
    >>> plan = plan_writes(records, store)
    >>> plan.new, plan.moved, plan.relabeled
    ([0, 2], [], {1: ['old_key']})
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from jinarag.retrieval.layout import HASH_KEY, Record, visible
from jinarag.retrieval.write.records import record_hash

if TYPE_CHECKING:
    from jinarag.retrieval.store.collection import ChromaStore

__all__ = ["Plan", "plan_writes"]


@dataclass
class Plan:
    """The writes some records need (positions in ``records``): ``new`` and ``moved`` ones are
    embedded (or take given vectors) and added (``moved`` ones deleted first), ``relabeled``
    ones get new metadata (with the keys to remove). With given vectors nothing is relabeled:
    a vector may differ from the stored one while the text does not."""

    records: Sequence[Record]
    new: list[int] = field(default_factory=list)
    moved: list[int] = field(default_factory=list)
    relabeled: dict[int, list[str]] = field(default_factory=dict)

    @property
    def embedded(self) -> list[int]:
        """The positions whose vectors are written (new and moved), in order."""
        return sorted(self.new + self.moved)

    def hash(self, i: int) -> str:
        return record_hash(self.records[i].text, self.records[i].metadata)


def plan_writes(
    records: Sequence[Record], store: ChromaStore, *, given_vectors: bool = False
) -> Plan:
    """What each record needs, from what ``store`` holds (see the module docstring)."""
    plan = Plan(records)
    stored = store.hashes([r.id for r in records])
    differ = [i for i, r in enumerate(records) if r.id in stored and stored[r.id] != plan.hash(i)]
    held = store.raw_records([records[i].id for i in differ]) if differ else {}
    for i, record in enumerate(records):
        if record.id not in stored:
            plan.new.append(i)
        elif i not in differ or record.id not in held:
            continue  # the same hash (or deleted meanwhile: nothing to compare with)
        else:
            text, meta = held[record.id]
            mine = visible(meta)
            if stored[record.id] is None and (text, mine) == (record.text, record.metadata):
                continue  # stored before hashes were kept, and the same
            if text != record.text or given_vectors:
                plan.moved.append(i)
            else:
                plan.relabeled[i] = sorted(set(meta) - set(record.metadata) - {HASH_KEY})
    return plan

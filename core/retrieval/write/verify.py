"""Checking a hybrid index against itself: every record reachable, BM25 equal to Chroma.

Counts cannot see the worst failure of a vector store: a record that is stored, counted and
returned by ``get()``, but that the HNSW graph no longer leads to, so dense search never
returns it. :func:`unreachable_ids` looks: it queries the vector index with each record's own
stored vector and expects the record among the first few results. (Two records with the very
same vector may shadow each other, so a record counts as reachable also when every result it
got is an exact duplicate of it.)

:func:`verify_index` adds the BM25 side (missing, extra and changed records against Chroma's
texts) and the snapshot's state, and with ``repair=True`` mends what it found: unreachable
records are deleted and added again with their stored vector, text and metadata (re-checked
afterwards), BM25 and its snapshot are rebuilt from Chroma. A record whose stored vector the
vector index cannot return (the index lost it, e.g. after two processes wrote at once) is never
deleted: Chroma would fail half-way and keep the deletion; the whole vector index is rebuilt
from the stored texts instead (:mod:`jinarag.retrieval.write.rebuild`). The report says what was
found and what was repaired.

Example:
    >>> report = index.verify()
    >>> report.healthy, report.records, len(report.unreachable)
    (True, 1849, 0)
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from jinarag.errors import StoreCorruptError
from jinarag.retrieval.keyword.snapshot import inspect_snapshot
from jinarag.retrieval.write.mirror import BM25Mirror, current_state
from jinarag.retrieval.write.rebuild import rebuild_vector_index, reembed
from jinarag.validation import check_bool

if TYPE_CHECKING:
    from jinarag.inference.embedder import Embedder
    from jinarag.retrieval.store.collection import ChromaStore, Records

__all__ = ["COVERAGE_RESULTS", "VerifyReport", "unreachable_ids", "verify_index"]

COVERAGE_RESULTS = 10
"""How many results each coverage query asks for (the record must be among them)."""
_BATCH = 256  # records per coverage step: one get and one query call each
_SAME = 1e-5  # cosine distance under which two vectors count as the same vector


@dataclass(frozen=True)
class VerifyReport:
    """What :meth:`jinarag.HybridIndex.verify` found, and what it repaired.

    Attributes:
        store, collection: where the records live.
        records: how many records Chroma counts.
        unreachable: ids that dense search cannot reach (after any repair), sorted.
        found_unreachable: how many were unreachable before the repair.
        repaired_vectors: records deleted and added again to the vector index.
        rebuilt_vectors: records embedded again when the whole vector index was rebuilt.
        bm25_missing, bm25_extra, bm25_changed: records BM25 lacks, holds although Chroma does
            not, or holds with other terms than Chroma's text gives (before any repair).
        snapshot: the BM25 snapshot's state after any repair: ``"current"``, ``"stale"``,
            ``"missing"``, ``"damaged"``, ``"altered"``, ``"other format"``,
            ``"other tokenizer"``, or ``"none"`` (the index keeps no snapshot).
        rebuilt_bm25: whether BM25 and its snapshot were rebuilt from Chroma.
    """

    store: str
    collection: str
    records: int
    unreachable: tuple[str, ...]
    found_unreachable: int
    repaired_vectors: int
    rebuilt_vectors: int
    bm25_missing: int
    bm25_extra: int
    bm25_changed: int
    snapshot: str
    rebuilt_bm25: bool

    @property
    def bm25_mismatches(self) -> int:
        """BM25 records that disagreed with Chroma (missing, extra or changed)."""
        return self.bm25_missing + self.bm25_extra + self.bm25_changed

    @property
    def healthy(self) -> bool:
        """Everything reachable, and BM25 equal to Chroma (now, after any repair)."""
        bm25_ok = self.rebuilt_bm25 or self.bm25_mismatches == 0
        return not self.unreachable and bm25_ok and self.snapshot in ("current", "none")

    def lines(self) -> list[str]:
        """The report as short lines of text, for a terminal or a log."""
        out = [f"store: {self.store} (collection {self.collection!r}), {_n(self.records)}"]
        if self.found_unreachable:
            line = f"dense search: {_n(self.found_unreachable)} unreachable"
            if self.repaired_vectors:
                line += f"; {_n(self.repaired_vectors)} added again"
            if self.rebuilt_vectors:
                line += f"; vector index rebuilt from {_n(self.rebuilt_vectors)}"
            if self.unreachable:
                first = ", ".join(repr(i) for i in self.unreachable[:5])
                line += f"; still unreachable: {len(self.unreachable)} ({first})"
            out.append(line)
        else:
            out.append(f"dense search: all {_n(self.records)} reachable")
        if self.bm25_mismatches:
            out.append(
                f"bm25: {self.bm25_missing} missing, {self.bm25_extra} extra, "
                f"{self.bm25_changed} changed against Chroma"
                + ("; rebuilt from Chroma" if self.rebuilt_bm25 else "")
            )
        else:
            out.append(
                "bm25: equal to Chroma" + ("; rebuilt from Chroma" if self.rebuilt_bm25 else "")
            )
        out.append(f"snapshot: {self.snapshot}")
        out.append("healthy" if self.healthy else "NOT healthy")
        return out


def _n(count: int) -> str:
    return f"{count} record" if count == 1 else f"{count} records"


def _vectors(store: ChromaStore, embedder: Embedder, ids: Sequence[str]) -> tuple[list[str], Any]:
    """``(ids, vectors)`` of the records among ``ids``: as stored, or, when the vector index
    cannot return them (it is damaged), their texts embedded again (late-chunked records with
    their whole document, :func:`jinarag.retrieval.write.rebuild.reembed`)."""
    try:
        got, vectors = store.embeddings(ids)
        if vectors is not None and len(got) == len(vectors):
            return list(got), np.asarray(vectors, dtype=np.float32)
    except StoreCorruptError:
        pass
    records = store.raw_records(list(ids))
    got = list(records)

    def fetch(doc_ids: Sequence[str]) -> Records:
        # Every stored chunk of these documents, also those outside this batch.
        out: Records = {}
        for start in range(0, len(doc_ids), _BATCH):
            wanted = list(doc_ids[start : start + _BATCH])
            out.update(store.raw_records(None, {"doc_id": {"$in": wanted}}))
        return out

    texts = [records[i][0] for i in got]
    return got, reembed(embedder, got, texts, [records[i][1] for i in got], fetch)


def unreachable_ids(
    store: ChromaStore, embedder: Embedder, ids: Sequence[str] | None = None
) -> list[str]:
    """The ids (all records when None) that a query with their own vector does not return
    among the first :data:`COVERAGE_RESULTS` results."""
    ids = list(ids) if ids is not None else store.ids()
    n = min(store.count(), COVERAGE_RESULTS)
    missing: list[str] = []
    for start in range(0, len(ids), _BATCH):
        got, vectors = _vectors(store, embedder, ids[start : start + _BATCH])
        if not got:
            continue
        for doc_id, row in zip(got, store.query_many(vectors, n), strict=True):
            found = {i for i, _ in row}
            shadowed = len(row) == n and all(1.0 - sim <= _SAME for _, sim in row)
            if doc_id not in found and not shadowed:
                missing.append(doc_id)
    return sorted(missing)


def _stored_vectors(store: ChromaStore, ids: Sequence[str]) -> dict[str, Any] | None:
    """``{id: stored vector}`` for ``ids``, or None when the vector index cannot return one
    of them (it lost the record)."""
    out: dict[str, Any] = {}
    for start in range(0, len(ids), _BATCH):
        batch = list(ids[start : start + _BATCH])
        try:
            got, vectors = store.embeddings(batch)
        except StoreCorruptError:
            return None
        if vectors is None or len(got) != len(batch) or len(vectors) != len(got):
            return None
        out.update(zip(got, np.asarray(vectors, dtype=np.float32), strict=True))
    return out


def _readd(mirror: BM25Mirror, ids: Sequence[str], vectors: dict[str, Any]) -> int:
    """Delete ``ids`` and add them again with their stored vector, text and metadata (the
    content hash included); returns how many were re-added."""
    store = mirror.store
    done = 0
    for start in range(0, len(ids), _BATCH):
        records = store.raw_records(list(ids[start : start + _BATCH]))
        chosen = [doc_id for doc_id in ids[start : start + _BATCH] if doc_id in records]
        mirror.delete(chosen)
        mirror.upsert(
            chosen,
            np.stack([vectors[i] for i in chosen]) if chosen else np.zeros((0, 0)),
            [records[i][0] for i in chosen],
            [records[i][1] or None for i in chosen],
        )
        done += len(chosen)
    return done


def _bm25_differences(mirror: BM25Mirror) -> tuple[int, int, int]:
    """``(missing, extra, changed)``: BM25 against Chroma's records and texts."""
    store, bm25 = mirror.store, mirror.bm25
    ids = store.ids()
    have = set(bm25.ids)
    missing = len(set(ids) - have)
    extra = len(have - set(ids))
    changed = 0
    for rows in store.slices(len(ids)):
        for doc_id, text in zip(*store.documents(ids[rows]), strict=True):
            if doc_id in have and bm25.tokens(doc_id) != bm25.tokenizer(text):
                changed += 1
    return missing, extra, changed


def _snapshot_status(mirror: BM25Mirror) -> str:
    if mirror.snapshot is None:
        return "none"
    status, state, _ = inspect_snapshot(mirror.snapshot, mirror.bm25.tokenizer.spec())
    if status != "ok":
        return status
    return "current" if state == current_state(mirror.store) else "stale"


def verify_index(
    mirror: BM25Mirror, embedder: Embedder, store_name: str, repair: bool = False
) -> VerifyReport:
    """Check (and with ``repair``, mend) the index that ``mirror`` keeps; see the module
    docstring. Holds the store's write lock throughout, so no write runs in between."""
    repair = check_bool("repair", repair)
    store = mirror.store
    with mirror.lock if mirror.lock is not None else contextlib.nullcontext():
        mirror.fresh()
        # Read straight from the BM25 side as it is now (fresh() rebuilt it only if stale).
        differences = _bm25_differences(mirror)
        status = _snapshot_status(mirror)
        embedded = store.path is not None and store.url is None
        try:
            unreachable = unreachable_ids(store, embedder)
            broken = False
        except StoreCorruptError:  # dense search fails outright ("Error finding id")
            if not (repair and embedded):
                raise
            unreachable, broken = [], True
        found = store.count() if broken else len(unreachable)
        repaired, rebuilt_vectors, rebuilt = 0, 0, False
        vectors = _stored_vectors(store, unreachable) if repair and unreachable else None
        if vectors is not None:
            with mirror.writing(locked=True):
                repaired = _readd(mirror, unreachable, vectors)
            unreachable = unreachable_ids(store, embedder, unreachable)
        elif repair and embedded and (broken or unreachable):
            # The vector index lost records: deleting them would fail half-way (and keep the
            # deletion), so every record is embedded again into a new index.
            assert store.path is not None
            rebuilt_vectors = rebuild_vector_index(store.path, store.name, embedder, locked=True)
            mirror.fresh()  # reopens the rebuilt collection (a new generation)
            unreachable = unreachable_ids(store, embedder)
        if repair and (
            rebuilt_vectors
            or any(differences)
            or _snapshot_status(mirror) not in ("current", "none")
        ):
            mirror.sync(force=True, strict=True)
            rebuilt = True
        if repair:
            status = _snapshot_status(mirror)
        return VerifyReport(
            store=store_name,
            collection=store.name,
            records=store.count(),
            unreachable=tuple(unreachable),
            found_unreachable=found,
            repaired_vectors=repaired,
            rebuilt_vectors=rebuilt_vectors,
            bm25_missing=differences[0],
            bm25_extra=differences[1],
            bm25_changed=differences[2],
            snapshot=status,
            rebuilt_bm25=rebuilt,
        )

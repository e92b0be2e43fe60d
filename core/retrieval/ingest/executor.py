"""Who reads, chunks and (optionally) embeds the sources of an indexing run.

An :class:`Executor` turns the run's :class:`SourceWork` into :class:`ChunkBatch` es: records
in the one layout (:func:`jinarag.retrieval.ingest.sources.source_records`), with their vectors
when the executor embedded them elsewhere, else the positions of each late-chunked document's
records so the writer embeds the documents that need it. :class:`LocalExecutor` runs in this
process; ``jinarag.retrieval.ingest.ray_executor.RayExecutor`` on a Ray cluster. Either way the
run writes every batch through the one :class:`~jinarag.retrieval.write.writer.Writer`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from jinarag.retrieval.ingest.chunking import Chunking
from jinarag.retrieval.ingest.readers import Document
from jinarag.retrieval.ingest.sources import Source, doc_hash, read_source, source_records
from jinarag.retrieval.layout import Record

if TYPE_CHECKING:
    from jinarag.inference.embedder import Embedder

__all__ = [
    "DEFAULT_BATCH_CHUNKS",
    "ChunkBatch",
    "Executor",
    "LocalExecutor",
    "SourceWork",
    "documents_to_embed",
]

DEFAULT_BATCH_CHUNKS = 64  # chunks embedded and written per step: the progress bar moves often


@dataclass(frozen=True)
class SourceWork:
    """A source to (re)index, and the documents already stored completely in this version
    (``doc_id -> doc_hash``): those are not embedded again."""

    source: Source
    keep: dict[str, str] = field(default_factory=dict)


@dataclass
class ChunkBatch:
    """Records ready to write, and either their ``vectors`` (embedded by the executor) or,
    with late chunking, ``documents``: the positions of each document's records (the writer
    embeds the documents that need it); with neither the writer embeds each record alone.
    ``seen``: the documents read for them, ``(source id, doc_id, documents in the source)``,
    including the kept ones (which bring no records). ``total``: the chunks the whole run
    writes, when the executor knows it (for the progress bar)."""

    records: list[Record]
    vectors: np.ndarray | None
    seen: list[tuple[str, str, int]]
    total: int | None = None
    documents: list[list[int]] | None = None


class Executor(Protocol):
    """Reads, chunks and (optionally) embeds the sources of a run, as batches of records."""

    def batches(
        self, embedder: Embedder, work: Sequence[SourceWork], chunking: Chunking
    ) -> Iterator[ChunkBatch]: ...


def documents_to_embed(
    work: SourceWork, docs: Sequence[Document], chunking: Chunking
) -> list[Document]:
    """The documents of a source that need embedding: all but the ones stored completely with
    the same document hash."""
    return [doc for doc in docs if work.keep.get(doc.id) != doc_hash(doc, chunking)]


class LocalExecutor:
    """Reads and chunks every source first (so the progress bar knows the total), then hands
    out about ``batch_chunks`` chunks per step, embedded by the writer (late chunking: whole
    documents, each chunk read with its document)."""

    def __init__(self, batch_chunks: int = DEFAULT_BATCH_CHUNKS) -> None:
        self.batch_chunks = batch_chunks

    def batches(
        self, embedder: Embedder, work: Sequence[SourceWork], chunking: Chunking
    ) -> Iterator[ChunkBatch]:
        offsets = embedder.tokenizer.token_offsets
        groups: list[list[Record]] = []  # one per document
        seen: list[tuple[str, str, int]] = []
        for item in work:
            docs = read_source(item.source)
            seen.extend((item.source.id, doc.id, len(docs)) for doc in docs)
            todo = documents_to_embed(item, docs, chunking)
            made, rows = source_records(item.source, len(docs), todo, offsets, chunking)
            groups.extend([made[r] for r in doc_rows] for doc_rows in rows)
        total = sum(map(len, groups))
        if not chunking.late:  # records stand alone: cut anywhere
            flat = [r for group in groups for r in group]
            groups = [
                flat[at : at + self.batch_chunks] for at in range(0, len(flat), self.batch_chunks)
            ]
        step: list[list[Record]] = []
        for group in groups:
            step.append(group)
            if sum(map(len, step)) >= self.batch_chunks:
                yield _batch(step, seen, total, chunking.late)
                step, seen = [], []
        if step or seen:  # seen alone: every document was kept, they still count as read
            yield _batch(step, seen, total, chunking.late)


def _batch(
    groups: list[list[Record]], seen: list[tuple[str, str, int]], total: int, late: bool
) -> ChunkBatch:
    records = [r for group in groups for r in group]
    documents = None
    if late:
        starts = np.cumsum([0, *map(len, groups)])
        documents = [list(range(a, b)) for a, b in zip(starts[:-1], starts[1:], strict=True)]
    return ChunkBatch(records, None, seen, total, documents)

"""Late chunking of whole texts: split a document into chunks, then embed the chunks with the
whole document as their context (:meth:`jinarag.Embedder.embed_late_chunks_many`).

Chunks are consecutive and cover the text: each is a stripped slice ``text[start:end]``, and
only whitespace lies between one chunk's end and the next one's start.

Example:
    >>> import jinarag
    >>> from jinarag.retrieval.ingest.late import late_chunk
    >>> embedder = jinarag.Embedder.from_pretrained("small")
    >>> [c.span for c in late_chunk(embedder, "Wings lift. They also stall.", by="sentences")]
    [(0, 11), (12, 28)]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from jinarag.errors import InputError
from jinarag.retrieval.ingest.chunking import (
    DEFAULT_CHUNK_TOKENS,
    LATE_CHUNK_BY,
    Chunking,
    TokenOffsets,
    document_records,
    split_text,
)
from jinarag.retrieval.ingest.readers import Document
from jinarag.retrieval.layout import CHUNK_KEYS, Record
from jinarag.validation import check_texts

if TYPE_CHECKING:
    from jinarag.inference.embedder import Embedder

__all__ = [
    "DEFAULT_CHUNK_TOKENS",
    "LATE_CHUNK_BY",
    "LATE_CHUNK_KEYS",
    "LateChunk",
    "late_chunk",
    "late_chunk_many",
    "late_chunk_records",
    "split_text",
]

LATE_CHUNK_KEYS = CHUNK_KEYS
"""The visible metadata every late-chunked record carries (:mod:`jinarag.retrieval.layout`)."""


@dataclass(frozen=True)
class LateChunk:
    """One chunk of a late-chunked text: its text, its character span in the document, and
    its vector (read with the whole document as context)."""

    text: str
    span: tuple[int, int]
    vector: np.ndarray


def late_chunk_many(
    embedder: Embedder,
    texts: Iterable[str],
    *,
    by: str = "tokens",
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    long_late_chunking: bool = True,
    normalize: bool = True,
    batch_size: int = 32,
    task: str | None = None,
    dimensions: int | None = None,
) -> list[list[LateChunk]]:
    """Split each text (:func:`split_text`) and embed its chunks by late chunking; all texts'
    windows share batches. A blank text is an InputError. ``embedder`` may be a
    :class:`~jinarag.remote.RemoteEmbedder`, which splits by sentences only (the server keeps
    its tokenizer). ``task`` and ``dimensions``: as ``Embedder.embed_late_chunks_many``
    takes them (jina-embeddings-v3)."""
    items = check_texts(texts)
    tokenizer = getattr(embedder, "tokenizer", None)  # a remote embedder has none
    if by == "tokens" and tokenizer is None:
        raise InputError(
            "splitting by tokens needs the model's tokenizer, which a jinarag server does not "
            "share; split by sentences (by='sentences'), or use a local Embedder"
        )
    token_offsets = tokenizer.token_offsets if tokenizer is not None else None
    plans: list[list[tuple[int, int]]] = []
    for index, text in enumerate(items):
        spans = split_text(text, token_offsets, by=by, chunk_tokens=chunk_tokens)
        if not spans:
            raise InputError(f"texts[{index}] is empty or blank: there is nothing to chunk")
        plans.append(spans)
    vectors = embedder.embed_late_chunks_many(
        [[text[a:b] for a, b in spans] for text, spans in zip(items, plans, strict=True)],
        normalize=normalize,
        long_late_chunking=long_late_chunking,
        batch_size=batch_size,
        task=task,
        dimensions=dimensions,
    )
    return [
        [LateChunk(text[a:b], (a, b), row) for (a, b), row in zip(spans, rows, strict=True)]
        for text, spans, rows in zip(items, plans, vectors, strict=True)
    ]


def late_chunk(
    embedder: Embedder,
    text: str,
    *,
    by: str = "tokens",
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    long_late_chunking: bool = True,
    normalize: bool = True,
) -> list[LateChunk]:
    """:func:`late_chunk_many` for one text."""
    return late_chunk_many(
        embedder,
        [text],
        by=by,
        chunk_tokens=chunk_tokens,
        long_late_chunking=long_late_chunking,
        normalize=normalize,
    )[0]


def late_chunk_records(
    docs: Sequence[Document],
    token_offsets: TokenOffsets,
    chunking: Chunking,
    numbers: Sequence[int] | None = None,
) -> tuple[list[Record], list[list[int]]]:
    """The chunk records of ``docs`` in the one layout, and per document the positions of its
    chunks among them (what :meth:`~jinarag.retrieval.write.writer.Writer.write` takes as
    ``documents``). A document metadata key of :data:`LATE_CHUNK_KEYS`, or a blank document,
    is an InputError naming ``texts[i]``/``metadatas[i]`` (``i`` from ``numbers``, the
    caller's positions of these documents, when given)."""
    records: list[Record] = []
    groups: list[list[int]] = []
    for k, doc in enumerate(docs):
        i = numbers[k] if numbers is not None else k
        taken = [key for key in LATE_CHUNK_KEYS if key in doc.metadata]
        if taken:
            raise InputError(
                f"metadatas[{i}] has the key {taken[0]!r}, which late chunking sets on every "
                f"chunk ({', '.join(LATE_CHUNK_KEYS)}); rename that key"
            )
        made = document_records(doc, token_offsets, chunking)
        if not made:
            raise InputError(
                f"texts[{i}] is empty or blank: a document needs text to chunk; leave it out"
            )
        groups.append(list(range(len(records), len(records) + len(made))))
        records.extend(made)
    return records, groups

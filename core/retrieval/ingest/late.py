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

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from jinarag.errors import InputError
from jinarag.retrieval.ingest.chunking import chunk_spans
from jinarag.validation import check_choice, check_texts, positive_int

if TYPE_CHECKING:
    from jinarag.inference.embedder import Embedder

__all__ = [
    "LATE_CHUNK_BY",
    "LATE_CHUNK_KEYS",
    "LateChunk",
    "LateChunkRecords",
    "late_chunk",
    "late_chunk_many",
    "late_chunk_records",
    "split_text",
]

LATE_CHUNK_BY = ("tokens", "sentences")
DEFAULT_CHUNK_TOKENS = 256
# The metadata every late-chunked record carries (HybridIndex.add(chunking="late")).
LATE_CHUNK_KEYS = ("doc_id", "chunk", "span_start", "span_end", "doc_hash")
# A sentence ends at . ! or ? followed by whitespace (or a line break ends a line).
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n")


@dataclass(frozen=True)
class LateChunk:
    """One chunk of a late-chunked text: its text, its character span in the document, and
    its vector (read with the whole document as context)."""

    text: str
    span: tuple[int, int]
    vector: np.ndarray


def _stripped(text: str, start: int, end: int) -> tuple[int, int] | None:
    piece = text[start:end]
    left = len(piece) - len(piece.lstrip())
    right = len(piece.rstrip())
    return (start + left, start + right) if right > left else None


def split_text(
    text: str,
    token_offsets,
    *,
    by: str = "tokens",
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
) -> list[tuple[int, int]]:
    """Character spans of consecutive chunks covering ``text``: about ``chunk_tokens``
    tokens each, cut at word starts (``by="tokens"``), or one per sentence."""
    check_choice("by", by, LATE_CHUNK_BY)
    chunk_tokens = positive_int("chunk_tokens", chunk_tokens)
    if by == "sentences":
        cuts = [match.end() for match in _SENTENCE_END.finditer(text)]
    else:
        offsets = token_offsets(text)
        windows = chunk_spans(text, offsets, chunk_tokens, 0)
        cuts = [offsets[first][0] for first, _ in windows[1:]]
    bounds = [0, *cuts, len(text)]
    spans = [_stripped(text, a, b) for a, b in zip(bounds, bounds[1:], strict=False)]
    return [span for span in spans if span is not None]


def late_chunk_many(
    embedder: Embedder,
    texts: Iterable[str],
    *,
    by: str = "tokens",
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    long_late_chunking: bool = True,
    normalize: bool = True,
    batch_size: int = 32,
) -> list[list[LateChunk]]:
    """Split each text (:func:`split_text`) and embed its chunks by late chunking; all texts'
    windows share batches. A blank text is an InputError. ``embedder`` may be a
    :class:`~jinarag.remote.RemoteEmbedder`, which splits by sentences only (the server keeps
    its tokenizer)."""
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


@dataclass
class LateChunkRecords:
    """The chunk records of some documents, ready for the index's write plan: ``rows[d]``
    are the positions (in ``ids``/``texts``/``metas``) of document ``d``'s chunks, in order."""

    ids: list[str]
    texts: list[str]
    metas: list[dict[str, Any] | None]
    rows: list[list[int]]


def late_chunk_records(
    texts: list[str],
    doc_ids: list[str],
    metas: list[dict[str, Any] | None],
    token_offsets,
    *,
    by: str,
    chunk_tokens: int,
    numbers: list[int] | None = None,
) -> LateChunkRecords:
    """Split each document and give each chunk its id ``f"{doc_id}#{n}"`` and metadata: the
    document's plus :data:`LATE_CHUNK_KEYS` (``doc_hash`` hashes the whole document, so that
    when it changes every chunk's record changes and is embedded again). A metadata key of
    that list, or a blank document, is an InputError naming ``texts[i]``/``metadatas[i]``
    (``i`` from ``numbers``, the caller's positions of these documents, when given)."""
    out = LateChunkRecords([], [], [], [])
    for k, (text, doc_id, meta) in enumerate(zip(texts, doc_ids, metas, strict=True)):
        i = numbers[k] if numbers is not None else k
        taken = [key for key in LATE_CHUNK_KEYS if key in (meta or {})]
        if taken:
            raise InputError(
                f"metadatas[{i}] has the key {taken[0]!r}, which late chunking sets on every "
                f"chunk ({', '.join(LATE_CHUNK_KEYS)}); rename that key"
            )
        spans = split_text(text, token_offsets, by=by, chunk_tokens=chunk_tokens)
        if not spans:
            raise InputError(
                f"texts[{i}] is empty or blank: a document needs text to chunk; leave it out"
            )
        doc_hash = hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
        out.rows.append([])
        for n, (start, end) in enumerate(spans):
            out.rows[-1].append(len(out.ids))
            out.ids.append(f"{doc_id}#{n}")
            out.texts.append(text[start:end])
            chunk_meta = {"doc_id": doc_id, "chunk": n, "span_start": start, "span_end": end}
            out.metas.append({**(meta or {}), **chunk_meta, "doc_hash": doc_hash})
    return out

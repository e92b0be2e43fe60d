"""Late chunking of whole texts: split a document into chunks, then embed the chunks with the
whole document as their context (:meth:`jinarag.Embedder.embed_late_chunks_many`).

Chunks are consecutive and cover the text: each is a stripped slice ``text[start:end]``, and
only whitespace lies between one chunk's end and the next one's start.

Example:
    >>> import jinarag
    >>> from jinarag.retrieval.late import late_chunk
    >>> embedder = jinarag.Embedder.from_pretrained("small")
    >>> [c.span for c in late_chunk(embedder, "Wings lift. They also stall.", by="sentences")]
    [(0, 11), (12, 28)]
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from jinarag.errors import InputError
from jinarag.retrieval.chunking import chunk_spans
from jinarag.validation import check_choice, check_texts, positive_int

if TYPE_CHECKING:
    from jinarag.inference.embedder import Embedder

__all__ = ["LATE_CHUNK_BY", "LateChunk", "late_chunk", "late_chunk_many", "split_text"]

LATE_CHUNK_BY = ("tokens", "sentences")
DEFAULT_CHUNK_TOKENS = 256
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
    windows share batches. A blank text is an InputError."""
    items = check_texts(texts)
    plans: list[list[tuple[int, int]]] = []
    for index, text in enumerate(items):
        spans = split_text(text, embedder.tokenizer.token_offsets, by=by, chunk_tokens=chunk_tokens)
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

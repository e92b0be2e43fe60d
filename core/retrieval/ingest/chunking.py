"""Token-based chunking with overlap, counted with the embedder's own tokenizer.

``token_offsets(text)`` gives the character span of each token, so a chunk never exceeds what
the model reads. Chunks end at word boundaries when possible, and consecutive chunks share
about ``overlap`` tokens.

Example:
    >>> import re
    >>> def words(text):  # a stand-in tokenizer: one token per word
    ...     return [m.span() for m in re.finditer(r"\\S+", text)]
    >>> [c.text for c in chunk_document(Document("d", "a b c d e f g"), words, 4, 1)]
    ['a b c d', 'd e f g']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from jinarag.errors import InputError
from jinarag.retrieval.ingest.readers import Document

__all__ = ["Record", "TokenOffsets", "chunk_document", "chunk_documents", "chunk_spans"]

TokenOffsets = Callable[[str], Sequence[tuple[int, int]]]
"""``text -> [(start, end), ...]``: the character span of each token, special tokens left out."""


@dataclass(frozen=True)
class Record:
    """One chunk, ready for :meth:`jinarag.HybridIndex.add`.

    Its metadata holds the document's metadata plus ``doc_id`` and ``chunk`` (0, 1, ...).
    """

    id: str
    text: str
    metadata: dict[str, Any]


def _word_starts(text: str, offsets: Sequence[tuple[int, int]]) -> list[bool]:
    # A token continues a word when it touches the previous token and both sides are
    # letters or digits (WordPiece "##" pieces, BPE pieces without a leading space).
    starts = [True] * (len(offsets) + 1)
    for i in range(1, len(offsets)):
        at = offsets[i][0]
        if 0 < at == offsets[i - 1][1] and text[at - 1].isalnum() and text[at].isalnum():
            starts[i] = False
    return starts


def chunk_spans(
    text: str, offsets: Sequence[tuple[int, int]], max_tokens: int, overlap: int
) -> list[tuple[int, int]]:
    """Token windows ``[(first_token, end_token), ...]`` covering all tokens of ``text``.

    Each window has at most ``max_tokens`` tokens and starts ``max_tokens - overlap`` tokens or
    a little less after the previous one; window edges move to word starts when one is near.
    """
    if max_tokens < 1:
        raise InputError(f"chunk size must be at least 1 token, got {max_tokens}")
    if not 0 <= overlap < max_tokens:
        raise InputError(
            f"chunk overlap must be >= 0 and smaller than the chunk size ({max_tokens}), "
            f"got {overlap}"
        )
    n = len(offsets)
    if n == 0:
        return []
    starts = _word_starts(text, offsets)
    spans: list[tuple[int, int]] = []
    first = 0
    while True:
        end = min(first + max_tokens, n)
        if end < n:
            cut = end
            while cut > first + 1 and not starts[cut]:
                cut -= 1
            if starts[cut]:  # no word start inside the window: cut mid-word
                end = cut
        spans.append((first, end))
        if end >= n:
            return spans
        nxt = max(end - overlap, first + 1)
        while nxt > first + 1 and not starts[nxt]:
            nxt -= 1
        while nxt < end and not starts[nxt]:
            nxt += 1
        first = nxt


def chunk_document(
    doc: Document, token_offsets: TokenOffsets, max_tokens: int, overlap: int
) -> list[Record]:
    """Split one document into records of at most ``max_tokens`` tokens.

    A document that fits in one chunk keeps its id and its text unchanged; otherwise chunk
    ``i`` gets the id ``"{doc.id}#{i}"``. A document with no tokens gives no records.
    """
    offsets = token_offsets(doc.text)
    spans = chunk_spans(doc.text, offsets, max_tokens, overlap)
    if len(spans) == 1:
        return [Record(doc.id, doc.text, {**doc.metadata, "doc_id": doc.id, "chunk": 0})]
    return [
        Record(
            f"{doc.id}#{i}",
            doc.text[offsets[first][0] : offsets[end - 1][1]],
            {**doc.metadata, "doc_id": doc.id, "chunk": i},
        )
        for i, (first, end) in enumerate(spans)
    ]


def chunk_documents(
    docs: Iterable[Document], token_offsets: TokenOffsets, max_tokens: int, overlap: int
) -> Iterator[Record]:
    """:func:`chunk_document` over many documents, lazily."""
    for doc in docs:
        yield from chunk_document(doc, token_offsets, max_tokens, overlap)

"""Cutting documents into records, the one way every write path does it.

Settings are a :class:`Chunking`: ``tokens`` per chunk with ``overlap`` tokens shared by
consecutive chunks, counted with the embedder's own tokenizer (``token_offsets(text)`` gives
the character span of each token, so a chunk never exceeds what the model reads; chunks end at
word boundaries when possible), or late chunking (consecutive chunks of about ``tokens``
tokens cut at word starts, or one per sentence; no overlap, the model reads the whole
document). :func:`document_records` makes a document's records in the one layout
(:mod:`jinarag.retrieval.layout`) for either.

Sentences are found by pysbd's rule-based segmenter (abbreviations such as "Dr.", "e.g.",
"U.S." or "et al." and decimal numbers do not end a sentence); a blank line always ends one,
and a single line break is read as a space (hard-wrapped text keeps its sentences whole).

Example:
    >>> import re
    >>> def words(text):  # a stand-in tokenizer: one token per word
    ...     return [m.span() for m in re.finditer(r"\\S+", text)]
    >>> [r.text for r in document_records(Document("d", "a b c d e f g"), words, Chunking(4, 1))]
    ['a b c d', 'd e f g']
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jinarag.errors import InputError
from jinarag.retrieval.ingest.readers import Document
from jinarag.retrieval.layout import Record, chunk_records
from jinarag.validation import check_choice, positive_int

if TYPE_CHECKING:
    from jinarag.inference.embedder import Embedder

__all__ = [
    "DEFAULT_CHUNK_TOKENS",
    "LATE_CHUNK_BY",
    "Chunking",
    "Record",
    "TokenOffsets",
    "chunk_document",
    "chunk_documents",
    "chunk_spans",
    "chunking_settings",
    "text_chunking",
    "document_records",
    "split_text",
]

LATE_CHUNK_BY = ("tokens", "sentences")
DEFAULT_CHUNK_TOKENS = 256  # late chunking's default chunk size
_BLANK_LINE = re.compile(r"\n[^\S\n]*\n\s*")  # ends a paragraph, and so a sentence
# pysbd reads a line break as a sentence end; a paragraph's line breaks become spaces.
_LINE_BREAKS = str.maketrans(dict.fromkeys("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029", " "))
_WINDOW = 2000  # characters pysbd reads at once: its time grows with the square of its input

TokenOffsets = Callable[[str], Sequence[tuple[int, int]]]
"""``text -> [(start, end), ...]``: the character span of each token, special tokens left out."""


@dataclass(frozen=True)
class Chunking:
    """How documents are cut into records: ``tokens`` per chunk, ``overlap`` tokens shared by
    consecutive chunks, or ``late`` chunking (no overlap; ``by`` tokens or sentences). Stored
    with every record, so a change of settings re-indexes what it applies to."""

    tokens: int
    overlap: int = 0
    late: bool = False
    by: str = "tokens"

    def __str__(self) -> str:
        if not self.late:
            return f"tokens={self.tokens},overlap={self.overlap}"
        return "late,sentences" if self.by == "sentences" else f"late,tokens={self.tokens}"


def chunking_settings(
    embedder: Embedder,
    chunk_tokens: int | None,
    overlap: int | None,
    chunking: str | None,
    chunk_by: str | None = None,
) -> Chunking:
    """The checked :class:`Chunking` for ``embedder``: defaults filled in, a chunk that does
    not fit the model, an overlap out of range or an overlap with late chunking refused."""
    late = check_choice("chunking", chunking, (None, "late")) == "late"
    if late and overlap is not None:
        raise InputError(
            f"overlap {overlap} does not apply to late chunking: late chunks do not overlap "
            "(each token counts for one chunk, read with its whole document); leave it out"
        )
    tokens = positive_int("chunk_tokens", chunk_tokens, allow_none=True)
    if late:  # a long document is read in windows, so a chunk may be any size up to a window
        by = check_choice("chunk_by", chunk_by if chunk_by is not None else "tokens", LATE_CHUNK_BY)
        return Chunking(tokens if tokens is not None else DEFAULT_CHUNK_TOKENS, late=True, by=by)
    if chunk_by is not None:
        raise InputError(
            f"chunk_by={chunk_by!r} applies to late chunking only; pass chunking='late' as "
            "well, or leave chunk_by out"
        )
    specials = embedder.tokenizer.count_tokens("")
    room = embedder.max_length - specials
    size = tokens if tokens is not None else min(512, embedder.max_length) - specials
    if size > room:
        raise InputError(
            f"chunk_tokens {size} does not fit {embedder.name} (max {embedder.max_length} "
            f"tokens including {specials} special ones); use at most {room}"
        )
    share = overlap if overlap is not None else size // 8
    if isinstance(share, bool) or not isinstance(share, int) or not 0 <= share < size:
        raise InputError(
            f"overlap must be a whole number of tokens, >= 0 and smaller than the chunk size "
            f"({size}); got {overlap!r}"
        )
    return Chunking(size, share)


def text_chunking(
    embedder: Embedder, chunking: str | None, chunk_tokens: int | None, chunk_by: str | None
) -> Chunking | None:
    """:meth:`HybridIndex.add`'s settings: None (each text one record) or late chunking."""
    if check_choice("chunking", chunking, (None, "late")) is None:
        for name, value in (("chunk_tokens", chunk_tokens), ("chunk_by", chunk_by)):
            if value is not None:
                raise InputError(
                    f"{name}={value!r} applies to late chunking only; pass chunking='late' as "
                    f"well, or leave {name} out"
                )
        return None
    return chunking_settings(embedder, chunk_tokens, None, chunking, chunk_by)


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


def _stripped(text: str, start: int, end: int) -> tuple[int, int] | None:
    piece = text[start:end]
    left = len(piece) - len(piece.lstrip())
    right = len(piece.rstrip())
    return (start + left, start + right) if right > left else None


@functools.lru_cache(maxsize=1)
def _segmenter() -> Any:
    try:
        with warnings.catch_warnings():  # pysbd 0.3.4's source has invalid escape sequences
            warnings.simplefilter("ignore", (DeprecationWarning, SyntaxWarning))
            import pysbd
    except ImportError as exc:
        raise ImportError(
            "splitting by sentences needs pysbd, a dependency of jinarag: pip install "
            "'pysbd>=0.3.4' (or reinstall jinarag)"
        ) from exc
    return pysbd.Segmenter(language="en", clean=False)


def _sentence_ends(text: str, start: int, end: int) -> list[int]:
    """Where pysbd ends the sentences of ``text[start:end]`` (one paragraph), in order; a long
    paragraph is read in windows, each keeping the ends its last two sentences leave clear."""
    segmenter = _segmenter()
    ends: list[int] = []
    size = _WINDOW
    while start < end:
        stop = min(start + size, end)
        piece = text[start:stop].translate(_LINE_BREAKS)  # same length: offsets carry over
        found, at = [], 0
        for sentence in segmenter.segment(piece):
            sentence = sentence.strip()
            where = piece.find(sentence, at) if sentence else -1
            if where >= 0:  # a sentence pysbd altered stays in the next chunk, never lost
                at = where + len(sentence)
                found.append(start + at)
        if stop == end:
            return ends + found
        if len(found) > 2:  # the last two may be cut short, or misread, at the window's edge
            ends.extend(found[:-2])
            start, size = found[-3], _WINDOW
        elif size < 16 * _WINDOW:  # few, long sentences: read a larger window
            size *= 2
        else:  # no sentence end in sight: read on without a cut
            start, size = stop, _WINDOW
    return ends


def _sentence_cuts(text: str) -> list[int]:
    cuts: list[int] = []
    start = 0
    for blank in [*_BLANK_LINE.finditer(text), None]:
        end = blank.start() if blank is not None else len(text)
        cuts.extend(_sentence_ends(text, start, end))
        start = blank.end() if blank is not None else len(text)
    return cuts


def split_text(
    text: str,
    token_offsets: TokenOffsets | None,
    *,
    by: str = "tokens",
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
) -> list[tuple[int, int]]:
    """Late chunking's character spans of consecutive chunks covering ``text``: about
    ``chunk_tokens`` tokens each, cut at word starts (``by="tokens"``), or one per sentence
    (pysbd's segmenter; see the module docstring).
    Each is stripped; only whitespace lies between one chunk's end and the next one's start."""
    check_choice("by", by, LATE_CHUNK_BY)
    chunk_tokens = positive_int("chunk_tokens", chunk_tokens)
    if by == "sentences":
        cuts = _sentence_cuts(text)
    else:
        assert token_offsets is not None, "splitting by tokens needs the tokenizer"
        offsets = token_offsets(text)
        windows = chunk_spans(text, offsets, chunk_tokens, 0)
        cuts = [offsets[first][0] for first, _ in windows[1:]]
    bounds = [0, *cuts, len(text)]
    spans = [_stripped(text, a, b) for a, b in zip(bounds, bounds[1:], strict=False)]
    return [span for span in spans if span is not None]


def document_records(
    doc: Document,
    token_offsets: TokenOffsets,
    chunking: Chunking,
    extra: Mapping[str, Any] | None = None,
) -> list[Record]:
    """A document's records (:func:`jinarag.retrieval.layout.chunk_records`): late chunks
    (:func:`split_text`), or chunks of at most ``chunking.tokens`` tokens with overlap, where
    a document that fits in one chunk keeps its id and its text unchanged. A document with
    no text gives no records. ``extra``: reserved keys every record also carries."""
    if chunking.late:
        spans = split_text(doc.text, token_offsets, by=chunking.by, chunk_tokens=chunking.tokens)
        return chunk_records(doc.id, doc.text, doc.metadata, spans, str(chunking), extra=extra)
    offsets = token_offsets(doc.text)
    windows = chunk_spans(doc.text, offsets, chunking.tokens, chunking.overlap)
    if len(windows) == 1:
        spans, ids = [(0, len(doc.text))], [doc.id]
    else:
        spans = [(offsets[first][0], offsets[end - 1][1]) for first, end in windows]
        ids = None
    return chunk_records(doc.id, doc.text, doc.metadata, spans, str(chunking), extra=extra, ids=ids)


def chunk_document(
    doc: Document, token_offsets: TokenOffsets, max_tokens: int, overlap: int
) -> list[Record]:
    """:func:`document_records` with ``max_tokens`` per chunk and ``overlap``."""
    return document_records(doc, token_offsets, Chunking(max_tokens, overlap))


def chunk_documents(
    docs: Iterable[Document], token_offsets: TokenOffsets, max_tokens: int, overlap: int
) -> Iterator[Record]:
    """:func:`chunk_document` over many documents, lazily."""
    for doc in docs:
        yield from chunk_document(doc, token_offsets, max_tokens, overlap)

"""Reading files into records, and token-based chunking with overlap.

Supported inputs (a folder is searched recursively for them, in sorted order):

* ``.txt``, ``.md``, ``.markdown``: one document per file; its id is the path as given.
* ``.jsonl``: one JSON object per line with a ``"text"`` string; the id comes from ``"_id"`` or
  ``"id"`` (else ``path:line``); a ``"title"`` is put in front of the text, the BEIR
  convention, so a BEIR ``corpus.jsonl`` is read as is. Other scalar fields (str, int, float,
  bool) become metadata; nested values are skipped.

Chunking counts tokens with the embedder's own tokenizer (``token_offsets(text)`` gives the
character span of each token), so a chunk never exceeds what the model reads. Chunks end at
word boundaries when possible, and consecutive chunks share about ``overlap`` tokens.

Example:
    >>> import re
    >>> def words(text):  # a stand-in tokenizer: one token per word
    ...     return [m.span() for m in re.finditer(r"\\S+", text)]
    >>> [c.text for c in chunk_document(Document("d", "a b c d e f g"), words, 4, 1)]
    ['a b c d', 'd e f g']
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinarag.errors import InputError

__all__ = [
    "SUFFIXES",
    "Document",
    "Record",
    "TokenOffsets",
    "chunk_document",
    "chunk_documents",
    "chunk_spans",
    "document_text",
    "find_files",
    "read_documents",
    "read_file",
]

SUFFIXES = (".txt", ".md", ".markdown", ".jsonl")

TokenOffsets = Callable[[str], Sequence[tuple[int, int]]]
"""``text -> [(start, end), ...]``: the character span of each token, special tokens left out."""


@dataclass(frozen=True)
class Document:
    """A whole document as read from a file, before chunking."""

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Record:
    """One chunk, ready for :meth:`jinarag.HybridIndex.add`.

    Its metadata holds the document's metadata plus ``doc_id`` and ``chunk`` (0, 1, ...).
    """

    id: str
    text: str
    metadata: dict[str, Any]


def document_text(title: str | None, text: str) -> str:
    """The text to index for a titled document: ``"title text"`` (the BEIR convention)."""
    return f"{title} {text}" if title else text


def find_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Expand files and folders into the supported files, in a stable order.

    Raises:
        InputError: a path does not exist, or a file given by name has an unsupported suffix.
    """
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(
                sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
            )
        elif path.is_file():
            if path.suffix.lower() not in SUFFIXES:
                raise InputError(
                    f"cannot read {str(path)!r}: unsupported file type {path.suffix!r}; "
                    f"supported: {', '.join(SUFFIXES)}"
                )
            out.append(path)
        else:
            raise InputError(f"no such file or folder: {str(path)!r}")
    return out


def _scalar_fields(obj: dict[str, Any], skip: set[str]) -> dict[str, Any]:
    return {
        key: value
        for key, value in obj.items()
        if key not in skip and isinstance(value, str | int | float | bool)
    }


def read_file(path: str | os.PathLike[str]) -> Iterator[Document]:
    """The documents of one file (see the module docstring for the formats).

    Raises:
        InputError: a JSONL line is not an object with a ``"text"`` string.
    """
    path = Path(path)
    source = str(path)
    if path.suffix.lower() != ".jsonl":
        yield Document(source, path.read_text(encoding="utf-8"), {"source": source})
        return
    with path.open(encoding="utf-8") as lines:
        for line_no, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{source}:{line_no}"
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise InputError(f"{where} is not valid JSON ({exc}); fix or remove it") from exc
            if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                raise InputError(
                    f'{where} needs a "text" string, e.g. {{"_id": "1", "text": "..."}}; '
                    f"got {line.strip()[:80]!r}"
                )
            raw_id = obj.get("_id", obj.get("id"))
            doc_id = str(raw_id) if raw_id is not None else where
            title = obj.get("title") if isinstance(obj.get("title"), str) else None
            metadata = {"source": source, **_scalar_fields(obj, {"_id", "id", "text", "source"})}
            yield Document(doc_id, document_text(title, obj["text"]), metadata)


def read_documents(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Document]:
    """The documents of every supported file under ``paths``."""
    for path in find_files(paths):
        yield from read_file(path)


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

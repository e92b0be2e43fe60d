"""The one record layout: what every record jinarag writes carries, whichever path wrote it.

A record is ``(id, text, metadata)``. Its metadata is the caller's (or its document's) own,
plus, for a chunk of a document (late chunking, or a file cut into chunks), the visible
:data:`CHUNK_KEYS`:

- ``doc_id``: the document's id; ``chunk``: the chunk's position (0, 1, ...);
- ``span_start``, ``span_end``: the chunk is ``document_text[span_start:span_end]``;

and bookkeeping under the reserved prefix ``jinarag:`` (never shown in results):

- :data:`HASH_KEY`: a hash of the record's text and metadata (an unchanged record is never
  written again);
- :data:`DOC_HASH_KEY`, :data:`DOC_CHUNKS_KEY`, :data:`CHUNKING_KEY`: the document's hash (its
  id, text, metadata and the chunk settings), how many chunks it has, the chunk settings
  (``"late,tokens=256"``, ``"late,sentences"``, ``"tokens=255,overlap=31"``);
- for a record made from a file, :data:`ROOT_KEY`, :data:`SOURCE_HASH_KEY` and
  :data:`SOURCE_DOCS_KEY` (beside the visible ``source``, the file's id).

The layout before 0.2 also kept a visible ``doc_hash`` on late-chunked records
(:data:`LEGACY_KEYS`); such records keep reading, and take this layout when written again.

This module is a leaf: the store, the writer, ingestion and the LangChain and LlamaIndex
adapters all import it, and it imports nothing heavy.

Example:
    >>> chunk_metadata({"lang": "en"}, "doc", 1, (12, 28))
    {'lang': 'en', 'doc_id': 'doc', 'chunk': 1, 'span_start': 12, 'span_end': 28}
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CHUNKING_KEY",
    "CHUNK_KEYS",
    "DOC_CHUNKS_KEY",
    "DOC_HASH_KEY",
    "HASH_KEY",
    "LEGACY_KEYS",
    "RESERVED_PREFIX",
    "ROOT_KEY",
    "SOURCE_DOCS_KEY",
    "SOURCE_HASH_KEY",
    "Record",
    "chunk_metadata",
    "chunk_records",
    "document_hash",
    "late_chunk_of",
    "visible",
]

RESERVED_PREFIX = "jinarag:"
"""Metadata keys of this prefix are ours (refused in records, never shown in results)."""
HASH_KEY = "jinarag:hash"
ROOT_KEY = "jinarag:root"
SOURCE_HASH_KEY = "jinarag:source_hash"
SOURCE_DOCS_KEY = "jinarag:source_docs"
DOC_HASH_KEY = "jinarag:doc_hash"
DOC_CHUNKS_KEY = "jinarag:doc_chunks"
CHUNKING_KEY = "jinarag:chunking"

CHUNK_KEYS = ("doc_id", "chunk", "span_start", "span_end")
"""The visible keys every chunk record carries (a document's own metadata may not use them)."""
LEGACY_KEYS = ("doc_hash",)
"""Visible bookkeeping of the layout before 0.2, dropped when a record is written again."""


@dataclass(frozen=True)
class Record:
    """One record to write: its id, its text and its full metadata (layout keys included)."""

    id: str
    text: str
    metadata: dict[str, Any]


def visible(meta: Mapping[str, Any] | None) -> dict[str, Any]:
    """A record's metadata as results show it: without the reserved keys."""
    return {k: v for k, v in (meta or {}).items() if not k.startswith(RESERVED_PREFIX)}


def chunk_metadata(
    doc_meta: Mapping[str, Any] | None, doc_id: str | None, chunk: int, span: tuple[int, int]
) -> dict[str, Any]:
    """A chunk's visible metadata: its document's, then :data:`CHUNK_KEYS` (``doc_id`` left
    out when None: a framework that links chunks to documents its own way)."""
    keys = {"doc_id": doc_id} if doc_id is not None else {}
    return {**(doc_meta or {}), **keys, "chunk": chunk, "span_start": span[0], "span_end": span[1]}


def document_hash(doc_id: str, text: str, metadata: Mapping[str, Any] | None, chunking: str) -> str:
    """A hash of a document as indexed: its id, text, metadata and the chunk settings. Every
    chunk carries it, so a changed document (or setting) rewrites all of its chunks."""
    blob = json.dumps(
        ["jinarag-doc/1", doc_id, text, dict(metadata or {}), chunking],
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


def chunk_records(
    doc_id: str,
    text: str,
    metadata: Mapping[str, Any] | None,
    spans: Sequence[tuple[int, int]],
    chunking: str,
    *,
    extra: Mapping[str, Any] | None = None,
    ids: Sequence[str] | None = None,
) -> list[Record]:
    """The records of one document cut at ``spans`` (character spans of ``text``): id
    ``f"{doc_id}#{n}"`` (or ``ids[n]``), text ``text[start:end]``, metadata the document's,
    :data:`CHUNK_KEYS` and the document's bookkeeping; ``extra`` adds more reserved keys (a
    file's source keys)."""
    mark = {
        **(extra or {}),
        DOC_HASH_KEY: document_hash(doc_id, text, metadata, chunking),
        DOC_CHUNKS_KEY: len(spans),
        CHUNKING_KEY: chunking,
    }
    return [
        Record(
            ids[n] if ids is not None else f"{doc_id}#{n}",
            text[start:end],
            {**chunk_metadata(metadata, doc_id, n, (start, end)), **mark},
        )
        for n, (start, end) in enumerate(spans)
    ]


def late_chunk_of(record_id: str, meta: Mapping[str, Any] | None) -> tuple[str, str, int] | None:
    """``(doc_id, doc_hash, chunk)`` of a record written by late chunking (whose vector
    depends on its whole document), in this layout or the one before; None for any other
    record (a plain record may carry some of these keys as its own metadata)."""
    if not meta:
        return None
    chunking = meta.get(CHUNKING_KEY)
    if isinstance(chunking, str):
        mark = meta.get(DOC_HASH_KEY) if chunking.startswith("late") else None
    else:
        mark = meta.get("doc_hash")  # the layout before 0.2
    doc_id, chunk = meta.get("doc_id"), meta.get("chunk")
    if not (
        isinstance(doc_id, str)
        and isinstance(mark, str)
        and isinstance(chunk, int)
        and not isinstance(chunk, bool)
        and isinstance(meta.get("span_start"), int)
        and isinstance(meta.get("span_end"), int)
        and record_id == f"{doc_id}#{chunk}"
    ):
        return None
    return doc_id, mark, chunk

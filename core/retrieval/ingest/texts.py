"""Texts given in Python (:meth:`jinarag.HybridIndex.add`) into records, through the one writer.

Each text is a record (its id given, or a hash of its text and metadata), or, with late
chunking, a whole document cut into chunk records in the one layout
(:func:`jinarag.retrieval.ingest.late.late_chunk_records`) that the writer embeds document by
document. Everything is checked before the first write.

Example:
    >>> add_texts(index.writer, ["Wings lift. They also stall."], ["wings"], None,
    ...           Chunking(256, late=True, by="sentences"))
    ['wings#0', 'wings#1']
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from jinarag.errors import InputError
from jinarag.retrieval.ingest.chunking import Chunking
from jinarag.retrieval.ingest.late import late_chunk_records
from jinarag.retrieval.ingest.readers import Document
from jinarag.retrieval.layout import Record
from jinarag.retrieval.write.records import assign_ids, check_ids, check_metadatas
from jinarag.validation import check_bool, check_texts

if TYPE_CHECKING:
    from jinarag.retrieval.write.writer import Writer

__all__ = ["add_texts"]


def add_texts(
    writer: Writer,
    texts: Sequence[str],
    ids: Sequence[str] | None,
    metadatas: Sequence[Mapping[str, Any] | None] | None,
    late: Chunking | None,
    show_progress: bool = False,
) -> list[str]:
    """Write ``texts`` as records (``late``: as late-chunked documents); returns the record
    ids, one per text, or with late chunking the chunk ids, document by document."""
    from tqdm.auto import tqdm

    texts = check_texts(texts)
    show_progress = check_bool("show_progress", show_progress)
    given = check_ids(ids, len(texts)) if ids is not None else None
    metas = check_metadatas(metadatas, len(texts), given, texts)
    out, keep = assign_ids(texts, metas, given)
    unit = "chunk" if late is not None else "rec"
    with tqdm(desc="indexing", unit=unit, disable=not show_progress) as bar:
        if late is None:
            records = [Record(out[i], texts[i], metas[i] or {}) for i in keep]
            bar.total = len(records)
            writer.write(records, progress=bar.update)
            return out
        docs = [Document(out[i], texts[i], metas[i] or {}) for i in keep]
        offsets = writer.embedder.tokenizer.token_offsets
        records, groups = late_chunk_records(docs, offsets, late, numbers=keep)
        chunks = {doc.id: len(rows) for doc, rows in zip(docs, groups, strict=True)}
        bar.total = len(records)
        if docs:
            with writer.writing():
                try:
                    writer.write(records, documents=groups, progress=bar.update)
                except InputError as exc:
                    # The writer numbers the documents it was given; name them as the caller.
                    def caller(match: re.Match[str]) -> str:
                        i = keep[int(match.group(1))]
                        return f"texts[{i}] (id {out[i]!r})"

                    raise InputError(re.sub(r"documents\[(\d+)\]", caller, str(exc))) from exc
                # A document now cut into fewer chunks leaves its old last chunks behind.
                writer.delete_stale_chunks([d.id for d in docs], {r.id for r in records})
    return [f"{doc_id}#{n}" for doc_id in out for n in range(chunks[doc_id])]

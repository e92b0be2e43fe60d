"""Rebuilding a damaged vector index from the texts Chroma still holds.

When a collection's HNSW files are missing, cut or unreadable, its texts, metadata and ids are
still in Chroma's sqlite database. :func:`rebuild_vector_index` moves the damaged segment folder
aside (so Chroma never reads it again), reads every record, embeds the texts anew into a fresh
collection, and swaps it in under the old name. It holds the store's write lock throughout.

Records written by late chunking (``add(..., chunking="late")``) are embedded again the way they
were made: every stored chunk of their document, in order, read as one input
(:func:`reembed`). When a document's chunks have a gap (one was deleted, or an add was cut
short), its chunks cannot get their vectors back, and the rebuild is refused before it writes
anything, naming the documents. (A lost last chunk leaves no gap: nothing stored tells it.)

Each step leaves a state that running it again completes: a half-built ``<name>-rebuild``
collection from an interrupted run is dropped and built again; when the old collection is gone
and the new one complete, it is only renamed. The BM25 snapshot turns stale (a new generation)
and is rebuilt at the next open.

Example:
    >>> n = rebuild_vector_index(Path("./store"), "jinarag", embedder)
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import shutil
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jinarag.errors import StoreError
from jinarag.retrieval.layout import late_chunk_of
from jinarag.retrieval.store.client import drop_system
from jinarag.retrieval.store.collection import ChromaStore, Records
from jinarag.retrieval.store.files import collection_names, vector_folder
from jinarag.retrieval.store.lock import StoreLock

if TYPE_CHECKING:
    from jinarag.inference.embedder import Embedder

__all__ = ["late_documents", "reembed", "rebuild_vector_index"]

logger = logging.getLogger(__name__)

_SUFFIX = "-rebuild"
_BATCH = 256  # texts embedded per step


def rebuild_vector_index(
    path: Path,
    collection: str,
    embedder: Embedder,
    lock_timeout: float = 600.0,
    *,
    locked: bool = False,
) -> int:
    """Re-embed every record of ``collection`` in the embedded store at ``path`` into a new
    vector index (see the module docstring); returns how many records it holds. ``locked``:
    the caller holds the store's write lock already.

    Raises:
        StoreBusyError: another process kept writing to the store for ``lock_timeout``.
        StoreError: Chroma cannot read the records either (its database is damaged too), or
            a late-chunked document lost a chunk (the store is left as it was).
    """
    name, dim = str(embedder.name), int(embedder.dim)
    temp = f"{collection}{_SUFFIX}"
    with contextlib.nullcontext() if locked else StoreLock(path, lock_timeout):
        if collection not in (names := collection_names(path)) and temp in names:
            # An earlier run stopped between dropping the old collection and the rename.
            new = ChromaStore(path, None, temp, embedder=name, dim=dim)
            new.call("rename the rebuilt collection", new.collection.modify, name=collection)
            drop_system(new.client)
            return new.count()
        damaged = vector_folder(path, collection)
        aside = None
        if damaged is not None and damaged.exists():
            aside = path / f"jinarag-damaged-{damaged.name}"
            shutil.rmtree(aside, ignore_errors=True)
            damaged.rename(aside)  # Chroma must never load it again
        old = ChromaStore(path, None, collection, embedder=name, dim=dim)
        records = old.raw_records(None)
        try:
            late_documents(records, records)  # refuse before anything is written
        except StoreError as exc:
            drop_system(old.client)
            if aside is not None and damaged is not None:  # leave the store as it was
                shutil.rmtree(damaged, ignore_errors=True)
                aside.rename(damaged)
            raise StoreError(
                f"cannot rebuild the vector index of collection {collection!r} in {path}: {exc}"
            ) from None
        _drop(old, temp)
        new = ChromaStore(path, None, temp, embedder=name, dim=dim)
        ids = _in_documents(records)
        by_doc: dict[str, Records] = {}
        for record_id, (text, meta) in records.items():
            if (key := late_chunk_of(record_id, meta)) is not None:
                by_doc.setdefault(key[0], {})[record_id] = (text, meta)

        def fetch(doc_ids: Sequence[str]) -> Records:
            return {i: r for d in doc_ids for i, r in by_doc.get(d, {}).items()}

        done = 0
        for batch in _batches(ids, records):
            texts = [records[i][0] for i in batch]
            metas = [records[i][1] or None for i in batch]  # the content hash included
            vectors = reembed(embedder, batch, texts, metas, fetch)
            for rows in new.slices(len(batch)):
                new.upsert(batch[rows], vectors[rows], texts[rows], metas[rows])
            done += len(batch)
            logger.info("rebuilt %d of %d records", done, len(ids))
        new.set_generation(uuid.uuid4().hex)  # the BM25 snapshot is rebuilt at the next open
        _drop(old, collection)
        new.call("rename the rebuilt collection", new.collection.modify, name=collection)
        drop_system(new.client)  # the next client on this folder sees the swap from disk
        if damaged is not None and damaged.exists():  # Chroma may have made it again, empty
            shutil.rmtree(damaged, ignore_errors=True)
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
        return len(ids)


def late_documents(
    wanted: Mapping[str, tuple[str, Mapping[str, Any]]], stored: Records
) -> dict[tuple[str, str], list[str]]:
    """The chunk ids, in order, of each late-chunked document that a record of ``wanted``
    (``{id: (text, metadata)}``) belongs to, found among ``stored``, keyed by
    ``(doc_id, doc_hash)``.

    Raises:
        StoreError: a document's stored chunks are not numbered 0, 1, ... without a gap (one
            of them was deleted, or an add was cut short): their vectors depend on the whole
            document, which the store no longer holds. The message names the documents. A
            lost last chunk leaves no gap and goes unseen.
    """
    keys = {late_chunk_of(i, meta) for i, (_, meta) in wanted.items()}
    groups = {key[:2] for key in keys if key is not None}
    found: dict[tuple[str, str], dict[int, str]] = {group: {} for group in groups}
    for record_id, (_, meta) in itertools.chain(stored.items(), wanted.items()):
        key = late_chunk_of(record_id, meta)
        if key is not None and key[:2] in found:
            found[key[:2]][key[2]] = record_id
    broken = []
    for (doc_id, _), chunks in sorted(found.items()):
        missing = sorted(set(range(max(chunks) + 1)) - set(chunks))
        if missing:
            broken.append(f"{doc_id!r} lacks chunk {', '.join(map(str, missing[:5]))}")
    if broken:
        more = f" (and {len(broken) - 5} more)" if len(broken) > 5 else ""
        raise StoreError(
            f"late-chunked documents have lost chunks: {'; '.join(broken[:5])}{more}. A chunk's "
            "vector depends on its whole document, so these chunks cannot be embedded again. "
            "Add each document again (add([text], ids=[doc_id], chunking='late')), or delete "
            "its chunks (delete(where={'doc_id': doc_id})), then repair."
        )
    return {group: [chunks[n] for n in sorted(chunks)] for group, chunks in found.items()}


def reembed(
    embedder: Embedder,
    ids: Sequence[str],
    texts: Sequence[str],
    metas: Sequence[Mapping[str, Any] | None],
    fetch: Callable[[Sequence[str]], Records],
) -> np.ndarray:
    """Vectors for stored records embedded again from their texts, float32 (len(ids), dim).

    Plain records are embedded one by one (:meth:`Embedder.embed_documents`). A chunk written
    by late chunking is embedded with all stored chunks of its document, in order, as
    :meth:`jinarag.HybridIndex.add` made it: its own vector alone would lose the document's
    context. ``fetch(doc_ids)`` returns ``{id: (text, metadata)}`` holding at least every
    stored record with one of those ``doc_id`` values (the chunks outside ``ids``).

    Raises:
        StoreError: a document's chunks are not all stored (see :func:`late_documents`).
    """
    vectors = np.zeros((len(ids), int(embedder.dim)), dtype=np.float32)
    keys = [late_chunk_of(i, meta) for i, meta in zip(ids, metas, strict=True)]
    plain = [row for row, key in enumerate(keys) if key is None]
    if plain:
        vectors[plain] = embedder.embed_documents([texts[row] for row in plain])
    late = [row for row, key in enumerate(keys) if key is not None]
    if not late:
        return vectors
    given: Records = {ids[row]: (texts[row], dict(metas[row] or {})) for row in late}
    doc_ids = sorted({key[0] for key in keys if key is not None})
    stored = {**fetch(doc_ids), **given}
    documents = late_documents(given, stored)
    groups = list(documents)
    embedded = embedder.embed_late_chunks_many(
        [[stored[i][0] for i in documents[group]] for group in groups]
    )
    at = {ids[row]: row for row in late}
    for group, rows in zip(groups, embedded, strict=True):
        for chunk_id, vector in zip(documents[group], rows, strict=True):
            if chunk_id in at:
                vectors[at[chunk_id]] = vector
    return vectors


def _in_documents(records: Records) -> list[str]:
    """The ids of ``records``: plain records first, then each late-chunked document's chunks
    together and in order (a document is embedded in one piece)."""
    keys = {i: late_chunk_of(i, meta) for i, (_, meta) in records.items()}
    plain = [i for i, key in keys.items() if key is None]
    late = sorted((key, i) for i, key in keys.items() if key is not None)
    return plain + [i for _, i in late]


def _batches(ids: list[str], records: Records) -> list[list[str]]:
    """``ids`` in steps of about :data:`_BATCH`, never splitting a late-chunked document."""
    out: list[list[str]] = [[]]
    last: tuple[str, str] | None = None
    for record_id in ids:
        key = late_chunk_of(record_id, records[record_id][1])
        group = key[:2] if key is not None else None
        if len(out[-1]) >= _BATCH and (group is None or group != last):
            out.append([])
        out[-1].append(record_id)
        last = group
    return [batch for batch in out if batch]


def _drop(store: ChromaStore, collection: str) -> None:
    """Delete ``collection`` from ``store``'s client when it exists."""
    names = {c.name for c in store.call("list collections", store.client.list_collections)}
    if collection in names:
        store.call(f"delete collection {collection!r}", store.client.delete_collection, collection)

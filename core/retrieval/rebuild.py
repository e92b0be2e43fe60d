"""Rebuilding a damaged vector index from the texts Chroma still holds.

When a collection's HNSW files are missing, cut or unreadable, its texts, metadata and ids are
still in Chroma's sqlite database. :func:`rebuild_vector_index` moves the damaged segment folder
aside (so Chroma never reads it again), reads every record, embeds the texts anew into a fresh
collection, and swaps it in under the old name. It holds the store's write lock throughout.

Each step leaves a state that running it again completes: a half-built ``<name>-rebuild``
collection from an interrupted run is dropped and built again; when the old collection is gone
and the new one complete, it is only renamed. The BM25 snapshot turns stale (a new generation)
and is rebuilt at the next open.

Example:
    >>> n = rebuild_vector_index(Path("./store"), "jinarag", embedder)
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from jinarag.retrieval.chroma_client import drop_system
from jinarag.retrieval.chroma_files import collection_names, vector_folder
from jinarag.retrieval.chroma_store import ChromaStore
from jinarag.retrieval.lock import StoreLock

if TYPE_CHECKING:
    from jinarag.inference.embedder import Embedder

__all__ = ["rebuild_vector_index"]

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
        StoreError: Chroma cannot read the records either (its database is damaged too).
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
        _drop(old, temp)
        new = ChromaStore(path, None, temp, embedder=name, dim=dim)
        ids = list(records)
        for start in range(0, len(ids), _BATCH):
            chunk = ids[start : start + _BATCH]
            texts = [records[i][0] for i in chunk]
            vectors = np.asarray(embedder.embed_documents(texts), dtype=np.float32)
            metas = [records[i][1] or None for i in chunk]  # the content hash included
            for rows in new.slices(len(chunk)):
                new.upsert(chunk[rows], vectors[rows], texts[rows], metas[rows])
            logger.info("rebuilt %d of %d records", start + len(chunk), len(ids))
        new.set_generation(uuid.uuid4().hex)  # the BM25 snapshot is rebuilt at the next open
        _drop(old, collection)
        new.call("rename the rebuilt collection", new.collection.modify, name=collection)
        drop_system(new.client)  # the next client on this folder sees the swap from disk
        if damaged is not None and damaged.exists():  # Chroma may have made it again, empty
            shutil.rmtree(damaged, ignore_errors=True)
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
        return len(ids)


def _drop(store: ChromaStore, collection: str) -> None:
    """Delete ``collection`` from ``store``'s client when it exists."""
    names = {c.name for c in store.call("list collections", store.client.list_collections)}
    if collection in names:
        store.call(f"delete collection {collection!r}", store.client.delete_collection, collection)

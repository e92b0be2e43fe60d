"""The Chroma side of the hybrid index: one client, one collection, our errors.

:class:`ChromaStore` connects (an embedded store in a folder, a server at a URL, or a private
in-memory database, see :mod:`jinarag.retrieval.store.client`), opens or claims the
collection (cosine space, tagged with the embedder's name and dimension), keeps the write
generation in the collection's metadata, stores each record's content hash (so unchanged
records are never written again), and cuts every bulk operation into batches Chroma accepts
(:meth:`ChromaStore.slices`, :mod:`jinarag.retrieval.store.paging`). Each call to Chroma goes
through :meth:`ChromaStore.call`, which turns Chroma's, httpx's and the OS's failures into ours
with one table, :data:`jinarag.retrieval.store.errors.ERRORS`.

Example:
    >>> store = ChromaStore(None, None, "notes", embedder="small", dim=512)
    >>> store.count()
    0
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from jinarag.errors import InputError
from jinarag.retrieval.layout import HASH_KEY, visible
from jinarag.retrieval.store.client import (
    META_DIM,
    META_EMBEDDER,
    META_WEIGHTS,
    claim,
    connect,
    drop_system,
    memory_client,
    seen,
    server_client,
)
from jinarag.retrieval.store.errors import run, unreachable
from jinarag.retrieval.store.paging import by_ids, listing, slices
from jinarag.retrieval.store.redaction import redact_url

__all__ = ["ChromaStore", "Filter", "Records"]

logger = logging.getLogger(__name__)

_META_GENERATION = "jinarag:generation"
# HNSW search breadth for new collections (Chroma's default is 100). At least as wide as the
# candidate lists we ask for, so a shorter list is exactly the head of a longer one.
_EF_SEARCH = 200

Records = dict[str, tuple[str, dict[str, Any]]]
"""``{id: (text, metadata)}``."""
Filter = dict[str, Any] | None
"""A Chroma ``where`` filter on metadata (None: every record)."""


class ChromaStore:
    """One Chroma collection holding our records and vectors.

    Args:
        path: the folder of an embedded store (not used when ``url`` is given); None with
            neither: a private in-memory database, dropped by :meth:`close`.
        url: a Chroma server, e.g. ``"http://127.0.0.1:8000"``.
        collection: the collection name.
        embedder, dim: the embedder's name and vector size, recorded in (and checked against)
            the collection's metadata.

    Raises:
        StoreUnavailableError: the server at ``url`` cannot be reached.
        EmbedderMismatchError: the collection was built with another embedder.
        StoreError, StoreCorruptError: the store folder cannot be used (see
            :data:`jinarag.retrieval.store.errors.ERRORS`).

    Example:
        >>> store = ChromaStore(Path("./store"), None, "jinarag", embedder="small", dim=512)
        >>> for rows in store.slices(len(ids)):  # batches Chroma accepts
        ...     store.delete(ids[rows])
    """

    def __init__(
        self, path: Path | None, url: str | None, collection: str, *, embedder: str, dim: int
    ) -> None:
        self.path = path
        self.url = url
        self.name = collection
        self.embedder = embedder
        self.dim = dim
        self.shown_url = redact_url(url) if url is not None else None
        self.where = _place(path, self.shown_url)  # where the records live, for messages
        self._finalizer: weakref.finalize | None = None
        self._seen = seen(self.where) if url is None and path is not None else None
        self._epoch = self._seen.epoch if self._seen is not None else 0
        self.client = self._connect()
        self.collection = self._open()
        self.max_batch = int(self.call("read the batch size", self.client.get_max_batch_size))

    # -- calling Chroma -----------------------------------------------------------------------

    def call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one Chroma call, turning its failures into ours (see
        :func:`jinarag.retrieval.store.errors.run`)."""
        return run(self, what, fn, *args, **kwargs)

    def slices(self, n: int | None = None) -> Iterator[slice]:
        """Consecutive slices of at most one Chroma batch covering ``range(n)``; endless when
        ``n`` is None (for paging through a listing until a page comes back short)."""
        return slices(self.max_batch, n)

    def _get(self, what: str) -> Callable[..., dict[str, Any]]:
        """The collection's ``get``, its failures ours."""
        return partial(self.call, what, self.collection.get)

    # -- connecting ---------------------------------------------------------------------------

    def _connect(self) -> Any:
        if self.url is not None:
            try:
                return server_client(self.url)
            except InputError:
                raise
            except Exception as exc:
                raise unreachable(self, "connect", exc) from exc
        if self.path is not None:
            return connect(self.path, self.call)
        client, self._finalizer = memory_client(self)
        return client

    def close(self) -> None:
        """Drop an in-memory store's database (a stored collection needs no closing)."""
        if self._finalizer is not None:
            self._finalizer()

    def _follow(self, generation: str | None) -> None:
        """Reopen an embedded store that another process wrote (see
        :mod:`jinarag.retrieval.store.client`): its vector index in memory is stale."""
        if self._seen is None:  # a server or an in-memory store: nothing is cached here
            return
        if self._seen.note(self.name, generation):
            drop_system(self.client)
            logger.info("%s was written by another process; reopening it", self.where)
        if self._epoch != self._seen.epoch:
            self._epoch = self._seen.epoch
            self.client = self._connect()
            self.collection = self.call(
                f"open collection {self.name!r}", self.client.get_collection, self.name
            )

    # -- the collection and its metadata ------------------------------------------------------

    def _open(self) -> Any:
        self.collection = self.call(
            f"open collection {self.name!r}",
            self.client.get_or_create_collection,
            self.name,
            configuration={"hnsw": {"space": "cosine", "ef_search": _EF_SEARCH}},
            metadata={META_EMBEDDER: self.embedder, META_DIM: self.dim},
            embedding_function=None,  # we always pass vectors; Chroma must never embed
        )
        meta = dict(self.collection.metadata or {})
        self._follow(meta.get(_META_GENERATION))  # before anything reads the vectors
        if claim(self, self.collection, meta):
            self._set_metadata(
                self.collection, {**meta, META_EMBEDDER: self.embedder, META_DIM: self.dim}
            )
        return self.collection

    def _set_metadata(self, collection: Any, meta: dict[str, Any]) -> None:
        # Chroma refuses "hnsw:*" keys in modify() (the space is fixed at creation).
        clean = {k: v for k, v in meta.items() if not k.startswith("hnsw:")}
        self.call("update the collection metadata", collection.modify, metadata=clean)

    def _fresh_metadata(self) -> dict[str, Any]:
        # Read anew: our collection object caches the metadata it was opened with.
        fresh = self.call("read the collection", self.client.get_collection, self.name)
        return dict(fresh.metadata or {})

    def generation(self) -> str | None:
        """The write generation recorded in the collection (None before the first write);
        reading it also reopens an embedded store another process wrote (see :meth:`_follow`)."""
        generation = self._fresh_metadata().get(_META_GENERATION)
        self._follow(generation)
        return generation

    def set_generation(self, generation: str) -> None:
        """Record a new write generation, keeping the rest of the collection's metadata."""
        self._set_metadata(
            self.collection, {**self._fresh_metadata(), _META_GENERATION: generation}
        )
        if self._seen is not None:  # our own write: this process's copy stays current
            self._seen.generations[self.name] = generation

    def record_weights(self, digest: str) -> None:
        """Record the SHA-256 of the embedder's weights file (``jinarag:weights``), keeping the
        rest of the collection's metadata: a later ``--model`` is then checked by its weights,
        whatever name or path it is given by."""
        self._set_metadata(self.collection, {**self._fresh_metadata(), META_WEIGHTS: digest})

    # -- records ------------------------------------------------------------------------------

    def count(self) -> int:
        """How many records the collection holds."""
        return int(self.call("count", self.collection.count))

    def ids(self, where: Filter = None) -> list[str]:
        """Every id (matching ``where``, when given), paged in batches."""
        pages = listing(self._get("list ids"), self.max_batch, where=where, include=[])
        return [record_id for got in pages for record_id in got["ids"]]

    def metadatas(self, where: Filter = None) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(id, metadata as stored)`` of every record (matching ``where``), paged in batches:
        what a catalog of a large collection reads, without its texts or vectors."""
        get = self._get("list metadata")
        for got in listing(get, self.max_batch, where=where, include=["metadatas"]):
            for record_id, meta in zip(got["ids"], got["metadatas"], strict=True):
                yield record_id, dict(meta or {})

    def records(self, ids: Sequence[str] | None, where: Filter = None) -> Records:
        """``{id: (text, metadata)}`` for these ids (in batches) or, with None, all records;
        with ``where``, only the matching ones. Our own keys (``jinarag:*``) are left out."""
        return {
            doc_id: (text, visible(meta))
            for doc_id, (text, meta) in self.raw_records(ids, where).items()
        }

    def raw_records(self, ids: Sequence[str] | None, where: Filter = None) -> Records:
        """Like :meth:`records`, with the metadata exactly as stored (our keys included)."""
        get, include = self._get("read records"), ["documents", "metadatas"]
        out: Records = {}
        for got in by_ids(get, self.max_batch, ids, where=where, include=include):
            for i, t, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True):
                out[i] = (t if t is not None else "", dict(m or {}))
        return out

    def hashes(self, ids: Sequence[str]) -> dict[str, str | None]:
        """``{id: stored content hash}`` for the records among ``ids`` that exist (None for a
        record written before hashes were stored)."""
        get = self._get("read record hashes")
        out: dict[str, str | None] = {}
        for got in by_ids(get, self.max_batch, ids, include=["metadatas"]):
            for i, m in zip(got["ids"], got["metadatas"], strict=True):
                out[i] = (m or {}).get(HASH_KEY)
        return out

    def documents(self, ids: Sequence[str]) -> tuple[list[str], list[str]]:
        """``(ids, texts)`` of the records among ``ids`` (one batch at most) that still exist."""
        got = self.call("read documents", self.collection.get, ids=ids, include=["documents"])
        return got["ids"], [t if t is not None else "" for t in got["documents"]]

    def embeddings(self, ids: Sequence[str]) -> tuple[list[str], Any]:
        """``(ids, vectors)`` as stored, for the records among ``ids`` (one batch at most)."""
        got = self.call("read vectors", self.collection.get, ids=ids, include=["embeddings"])
        return got["ids"], got["embeddings"]

    def upsert(
        self,
        ids: Sequence[str],
        vectors: Any,
        texts: Sequence[str],
        metadatas: Sequence[dict[str, Any] | None],
        hashes: Sequence[str] | None = None,
    ) -> None:
        """Insert or replace one batch of records (at most :attr:`max_batch`), each with its
        content hash (``hashes``) stored under :data:`HASH_KEY` when given."""
        if hashes is not None:
            metadatas = [{**(m or {}), HASH_KEY: h} for m, h in zip(metadatas, hashes, strict=True)]
        self.call(
            "upsert records",
            self.collection.upsert,
            ids=ids,
            embeddings=vectors,
            documents=texts,
            metadatas=metadatas,
        )

    def update_metadata(self, ids: Sequence[str], metadatas: Sequence[dict[str, Any]]) -> None:
        """Replace the metadata of one batch of existing records, their vectors untouched
        (Chroma merges: a key set to None is removed)."""
        self.call("update metadata", self.collection.update, ids=ids, metadatas=metadatas)

    def delete(self, ids: Sequence[str]) -> None:
        """Delete one batch of ids (at most :attr:`max_batch`); unknown ids are ignored."""
        self.call("delete records", self.collection.delete, ids=ids)

    def query(self, vector: Any, n: int, where: Filter) -> list[tuple[str, float]]:
        """The ``n`` nearest records as ``(id, cosine similarity)``, best first."""
        return self.query_many([vector], n, where)[0]

    def query_many(
        self, vectors: Any, n: int, where: Filter = None
    ) -> list[list[tuple[str, float]]]:
        """:meth:`query` for several vectors in one call (one batch at most)."""
        got = self.call(
            "query",
            self.collection.query,
            query_embeddings=vectors,
            n_results=n,
            where=where,
            include=["distances"],  # texts are fetched for the final hits only
        )
        # Chroma's cosine distance is 1 - cosine similarity; report the similarity.
        return [
            [(doc_id, 1.0 - float(dist)) for doc_id, dist in zip(row_ids, row_dist, strict=True)]
            for row_ids, row_dist in zip(got["ids"], got["distances"], strict=True)
        ]


def _place(path: Path | None, shown_url: str | None) -> str:
    if shown_url is not None:
        return f"the Chroma server at {shown_url}"
    return str(path) if path is not None else "memory"

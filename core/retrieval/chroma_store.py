"""The Chroma side of the hybrid index: one client, one collection, our errors.

:class:`ChromaStore` connects (an embedded store in a folder, a server at a URL, or a private
in-memory database), opens or claims the collection (cosine space, tagged with the embedder's
name and dimension), keeps the write generation in the collection's metadata, and cuts every
bulk operation into batches Chroma accepts (:meth:`ChromaStore.slices`). Each call to Chroma
goes through :meth:`ChromaStore.call`, which turns Chroma's, httpx's and the OS's failures
into ours with one table, :data:`_ERRORS`.

Example:
    >>> store = ChromaStore(None, None, "notes", embedder="small", dim=512)
    >>> store.count()
    0
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import uuid
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import chromadb
import httpx
from chromadb.config import Settings
from chromadb.errors import InvalidArgumentError

from jinarag.errors import (
    EmbedderMismatchError,
    InputError,
    JinaragError,
    StoreError,
    StoreUnavailableError,
)

__all__ = ["ChromaStore", "Records"]

logger = logging.getLogger(__name__)

_META_EMBEDDER = "jinarag:embedder"
_META_DIM = "jinarag:dim"
_META_GENERATION = "jinarag:generation"
# HNSW search breadth for new collections (Chroma's default is 100). At least as wide as the
# candidate lists we ask for, so a shorter list is exactly the head of a longer one.
_EF_SEARCH = 200

Records = dict[str, tuple[str, dict[str, Any]]]
"""``{id: (text, metadata)}``."""


def _raised_by_chroma(exc: BaseException) -> bool:
    # ChromaError, and the few plain exceptions Chroma defines (migrations, auth, configuration).
    return type(exc).__module__.split(".")[0] in ("chromadb", "chromadb_rust_bindings")


def _unreachable(store: ChromaStore, what: str, exc: BaseException) -> JinaragError:
    return StoreUnavailableError(
        f"cannot reach the Chroma server at {store.url} ({type(exc).__name__}: {exc}). "
        "Start it (chroma run --path DIR --host HOST --port PORT) or fix the URL, then try "
        "again; add() is an upsert, so repeating an interrupted add completes it."
    )


def _failed(store: ChromaStore, what: str, exc: BaseException) -> JinaragError:
    return StoreError(f"Chroma failed to {what} in {store.where}: {exc}")


def _lost(store: ChromaStore, what: str, exc: BaseException) -> JinaragError:
    # A dropped connection means the server went away; on an embedded store, a local failure.
    return (_unreachable if store.url is not None else _failed)(store, what, exc)


def _rejected(store: ChromaStore, what: str, exc: BaseException) -> JinaragError:
    return InputError(f"Chroma rejected the request to {what}: {exc}")


_Match = type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
_Make = Callable[["ChromaStore", str, BaseException], JinaragError]

_ERRORS: tuple[tuple[_Match, _Make], ...] = (
    (httpx.TransportError, _unreachable),
    ((ConnectionError, TimeoutError), _lost),
    # Chroma's argument errors: a bad where filter, bad metadata, a bad collection name, ...
    ((ValueError, InvalidArgumentError), _rejected),
    (_raised_by_chroma, _failed),
)
"""How a failed Chroma call becomes our error: ``(exception classes or a predicate, factory)``,
the first match wins; an exception no row matches propagates unchanged."""


def _matches(match: _Match, exc: BaseException) -> bool:
    if isinstance(match, type | tuple):
        return isinstance(exc, match)
    return match(exc)


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
        self.where = _place(path, url)  # where the records live, for messages
        self._finalizer: weakref.finalize | None = None
        self.client = self._connect()
        self.collection = self._open()
        self.max_batch = int(self.call("read the batch size", self.client.get_max_batch_size))

    # -- calling Chroma -----------------------------------------------------------------------

    def call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one Chroma call, turning its failures into our errors (see :data:`_ERRORS`)."""
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            for match, make in _ERRORS:
                if _matches(match, exc):
                    raise make(self, what, exc) from exc
            raise

    def slices(self, n: int | None = None) -> Iterator[slice]:
        """Consecutive slices of at most one Chroma batch covering ``range(n)``; endless when
        ``n`` is None (for paging through a listing until a page comes back short)."""
        step = self.max_batch
        for start in range(0, n, step) if n is not None else itertools.count(0, step):
            yield slice(start, start + step)

    # -- connecting ---------------------------------------------------------------------------

    def _connect(self) -> Any:
        if self.url is not None:
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise InputError(
                    f"url must look like http://HOST:PORT (a Chroma server), got {self.url!r}"
                )
            port = parts.port if parts.port is not None else 8000
            try:
                return chromadb.HttpClient(
                    host=parts.hostname,
                    port=port,
                    ssl=parts.scheme == "https",
                    settings=Settings(anonymized_telemetry=False),
                )
            except Exception as exc:
                raise _unreachable(self, "connect", exc) from exc
        if self.path is not None:
            where = self.where
            client, _ = _local(lambda s: chromadb.PersistentClient(path=where, settings=s), where)
            return client
        # In memory: Chroma shares one in-memory system per process, so give this store a
        # database of its own; otherwise two indexes with the same collection name would mix.
        database = f"jinarag-{uuid.uuid4().hex}"
        admin, settings = _local(chromadb.AdminClient, "memory")
        admin.create_database(database)
        self._finalizer = weakref.finalize(self, _drop_database, admin, database)
        return chromadb.EphemeralClient(settings=settings, database=database)

    def close(self) -> None:
        """Drop an in-memory store's database (a stored collection needs no closing)."""
        if self._finalizer is not None:
            self._finalizer()

    # -- the collection and its metadata ------------------------------------------------------

    def _open(self) -> Any:
        collection = self.call(
            f"open collection {self.name!r}",
            self.client.get_or_create_collection,
            self.name,
            configuration={"hnsw": {"space": "cosine", "ef_search": _EF_SEARCH}},
            metadata={_META_EMBEDDER: self.embedder, _META_DIM: self.dim},
            embedding_function=None,  # we always pass vectors; Chroma must never embed
        )
        space = (collection.configuration or {}).get("hnsw", {}) or {}
        if space.get("space", "cosine") != "cosine":
            raise StoreError(
                f"collection {self.name!r} in {self.where} uses {space['space']!r} "
                "distance; HybridIndex needs cosine. Use another collection name."
            )
        meta = dict(collection.metadata or {})
        if meta.get(_META_EMBEDDER) is None:
            # Made by someone else: claim it if its vectors can be ours (same dimension).
            self._check_dim_of_stored(collection)
            self._set_metadata(
                collection, {**meta, _META_EMBEDDER: self.embedder, _META_DIM: self.dim}
            )
        elif meta.get(_META_EMBEDDER) != self.embedder or meta.get(_META_DIM) != self.dim:
            raise EmbedderMismatchError(
                f"collection {self.name!r} in {self.where} was built with embedder "
                f"{meta.get(_META_EMBEDDER)!r} (dim {meta.get(_META_DIM)}), but this index uses "
                f"{self.embedder!r} (dim {self.dim}); mixing them would compare vectors from "
                "different spaces. Open it with the same embedder, or use another collection "
                "name or path."
            )
        return collection

    def _check_dim_of_stored(self, collection: Any) -> None:
        got = self.call("read a stored vector", collection.get, limit=1, include=["embeddings"])
        vectors = got.get("embeddings")
        if vectors is not None and len(vectors) and len(vectors[0]) != self.dim:
            raise EmbedderMismatchError(
                f"collection {self.name!r} in {self.where} holds {len(vectors[0])}-d "
                f"vectors but embedder {self.embedder!r} makes {self.dim}-d ones; use another "
                "collection name."
            )
        if vectors is not None and len(vectors):
            logger.warning(
                "collection %r has records but no record of its embedder; assuming %r",
                self.name,
                self.embedder,
            )

    def _set_metadata(self, collection: Any, meta: dict[str, Any]) -> None:
        # Chroma refuses "hnsw:*" keys in modify() (the space is fixed at creation).
        clean = {k: v for k, v in meta.items() if not k.startswith("hnsw:")}
        self.call("update the collection metadata", collection.modify, metadata=clean)

    def _fresh_metadata(self) -> dict[str, Any]:
        # Read anew: our collection object caches the metadata it was opened with.
        fresh = self.call("read the collection", self.client.get_collection, self.name)
        return dict(fresh.metadata or {})

    def generation(self) -> str | None:
        """The write generation recorded in the collection (None before the first write)."""
        return self._fresh_metadata().get(_META_GENERATION)

    def set_generation(self, generation: str) -> None:
        """Record a new write generation, keeping the rest of the collection's metadata."""
        self._set_metadata(
            self.collection, {**self._fresh_metadata(), _META_GENERATION: generation}
        )

    # -- records ------------------------------------------------------------------------------

    def count(self) -> int:
        """How many records the collection holds."""
        return int(self.call("count", self.collection.count))

    def ids(self, where: dict[str, Any] | None = None) -> list[str]:
        """Every id (matching ``where``, when given), paged in batches."""
        ids: list[str] = []
        for page in self.slices():
            got = self.call(
                "list ids",
                self.collection.get,
                where=where,
                include=[],
                limit=self.max_batch,
                offset=page.start,
            )["ids"]
            ids.extend(got)
            if len(got) < self.max_batch:
                break
        return ids

    def records(self, ids: Sequence[str] | None, where: dict[str, Any] | None = None) -> Records:
        """``{id: (text, metadata)}`` for these ids (in batches) or, with None, all records;
        with ``where``, only the matching ones."""
        chunks = [None] if ids is None else [ids[s] for s in self.slices(len(ids))]
        out: Records = {}
        for chunk in chunks:
            got = self.call(
                "read records",
                self.collection.get,
                ids=chunk,
                where=where,
                include=["documents", "metadatas"],
            )
            for i, t, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True):
                out[i] = (t if t is not None else "", dict(m or {}))
        return out

    def documents(self, ids: Sequence[str]) -> tuple[list[str], list[str]]:
        """``(ids, texts)`` of the records among ``ids`` (one batch at most) that still exist."""
        got = self.call("read documents", self.collection.get, ids=ids, include=["documents"])
        return got["ids"], [t if t is not None else "" for t in got["documents"]]

    def upsert(
        self,
        ids: Sequence[str],
        vectors: Any,
        texts: Sequence[str],
        metadatas: Sequence[dict[str, Any] | None],
    ) -> None:
        """Insert or replace one batch of records (at most :attr:`max_batch`)."""
        self.call(
            "upsert records",
            self.collection.upsert,
            ids=ids,
            embeddings=vectors,
            documents=texts,
            metadatas=metadatas,
        )

    def delete(self, ids: Sequence[str]) -> None:
        """Delete one batch of ids (at most :attr:`max_batch`); unknown ids are ignored."""
        self.call("delete records", self.collection.delete, ids=ids)

    def query(self, vector: Any, n: int, where: dict[str, Any] | None) -> list[tuple[str, float]]:
        """The ``n`` nearest records as ``(id, cosine similarity)``, best first."""
        got = self.call(
            "query",
            self.collection.query,
            query_embeddings=[vector],
            n_results=n,
            where=where,
            include=["distances"],  # texts are fetched for the final hits only
        )
        # Chroma's cosine distance is 1 - cosine similarity; report the similarity.
        return [
            (doc_id, 1.0 - float(dist))
            for doc_id, dist in zip(got["ids"][0], got["distances"][0], strict=True)
        ]


def _place(path: Path | None, url: str | None) -> str:
    if url is not None:
        return f"the Chroma server at {url}"
    return str(path) if path is not None else "memory"


def _local(make: Any, where: str) -> tuple[Any, Settings]:
    """An embedded Chroma client (and its settings) with telemetry off. Chroma allows one set
    of settings per store and process: when this process already opened the store with
    Chroma's defaults, share that instance rather than fail."""
    settings = Settings(anonymized_telemetry=False)
    try:
        return make(settings), settings
    except ValueError as exc:
        if "different settings" not in str(exc):
            raise
    settings = Settings()
    try:
        return make(settings), settings
    except ValueError as exc:
        raise StoreError(
            f"this process already opened the Chroma store {where!r} with other settings "
            f"({exc}); open the index before other Chroma clients, or with the same settings"
        ) from exc


def _drop_database(admin: Any, database: str) -> None:
    with contextlib.suppress(Exception):
        admin.delete_database(database)

"""HybridIndex: one Chroma collection and one BM25 index over the same records, fused at search.

Records are ``(id, text, metadata)``. Chroma is the source of truth: it stores the texts, the
metadata and our vectors. The BM25 index is derived from it, kept in memory, and saved beside
the store with the collection state it was built from, so a restart does not re-tokenise
everything; when that state no longer matches Chroma, the BM25 index is rebuilt from Chroma.

Every write goes in the same order, so a crash at any point leaves a state that the next open
repairs: (1) a new generation id is written to the collection's metadata, which makes the BM25
snapshot stale; (2) the records go to Chroma in batches; (3) the BM25 index follows each batch
Chroma acknowledged; (4) the snapshot is saved atomically with the new generation. The
snapshot never holds a record Chroma has not acknowledged.

Example:
    >>> import jinarag
    >>> emb = jinarag.Embedder.from_pretrained("small")
    >>> index = jinarag.HybridIndex("./store", embedder=emb)
    >>> ids = index.add(["Lift grows with the angle of attack.", "Heat flux at Mach 5.",
    ...                  "Buckling of thin shells."])
    >>> hit = index.search("angle of attack", k=1)[0]
    >>> hit.text, hit.score_space, hit.dense.rank, hit.bm25.rank
    ('Lift grows with the angle of attack.', 'rrf', 1, 1)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import uuid
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

import chromadb
import numpy as np
from chromadb.config import Settings

from jinarag.errors import (
    EmbedderMismatchError,
    InputError,
    StoreError,
    StoreUnavailableError,
)
from jinarag.retrieval import fusion as _fusion
from jinarag.retrieval.bm25 import BM25Index, Tokenizer
from jinarag.validation import check_texts

if TYPE_CHECKING:
    from jinarag.inference.embedder import Embedder
    from jinarag.inference.reranker import Reranker

__all__ = [
    "DEFAULT_CANDIDATES",
    "DEFAULT_FUSION",
    "DEFAULT_RERANK_TOP",
    "DEFAULT_RRF_K",
    "DEFAULT_WEIGHTS",
    "MODES",
    "SCORE_SPACES",
    "Hit",
    "HybridIndex",
    "SourceScore",
]

logger = logging.getLogger(__name__)

MODES = ("hybrid", "dense", "bm25")
SCORE_SPACES = ("cosine", "bm25", "rrf", "relative", "dbsf", "sigmoid", "none")

# Fusion defaults, tuned on the odd-numbered Cranfield queries with MiniLM
# (`python -m jinarag.evaluate tune tests/data/cranfield`); docs/hybrid-search.md has the sweep.
# RRF stays the default method (rank-only, so it does not depend on how an embedder's scores
# are distributed); DBSF scored higher on Cranfield and is one argument away: fusion="dbsf".
DEFAULT_FUSION = "rrf"
DEFAULT_WEIGHTS = {  # (dense, bm25), per fusion method
    "rrf": (0.75, 1.0),
    "relative": (1.0, 0.75),
    "dbsf": (1.0, 1.0),
}
DEFAULT_RRF_K = 60
DEFAULT_CANDIDATES = 100  # per source, before fusion
DEFAULT_RERANK_TOP = 50  # fused results handed to the reranker

_META_EMBEDDER = "jinarag:embedder"
_META_DIM = "jinarag:dim"
_META_GENERATION = "jinarag:generation"
_BM25_DIR = "jinarag-bm25"
# HNSW search breadth for new collections (Chroma's default is 100). At least as wide as the
# candidate lists we ask for, so a shorter list is exactly the head of a longer one.
_EF_SEARCH = 200


class SourceScore(NamedTuple):
    """A record's place in one source's ranking: ``rank`` from 1, and that source's score."""

    rank: int
    score: float


@dataclass(frozen=True)
class Hit:
    """One search result.

    Attributes:
        id, text, metadata: the stored record (``metadata`` is a copy; change it freely).
        score: the score the results are sorted by; ``score_space`` says what it is:
            ``"cosine"`` (cosine similarity, dense mode), ``"bm25"`` (BM25 score, bm25 mode),
            ``"rrf"`` / ``"relative"`` / ``"dbsf"`` (the fused score, hybrid mode),
            ``"sigmoid"`` (reranker relevance in (0, 1)), ``"none"`` (from :meth:`HybridIndex.get`).
        dense, bm25: the record's :class:`SourceScore` in each source that returned it (dense
            scores are cosine similarities), None when that source did not return it.
        rerank_score: the reranker's sigmoid score when the results were reranked.

    Example:
        >>> hit.scored_metadata()["dense_rank"]
        1
    """

    id: str
    text: str
    metadata: dict[str, Any]
    score: float
    score_space: str
    dense: SourceScore | None = None
    bm25: SourceScore | None = None
    rerank_score: float | None = None

    def scored_metadata(self) -> dict[str, Any]:
        """A new dict: the stored metadata plus ``score``, ``score_space`` and, for the
        sources present, ``dense_rank``, ``dense_score``, ``bm25_rank``, ``bm25_score``,
        ``rerank_score``. Framework adapters put this on their documents."""
        out = dict(self.metadata)
        out["score"] = self.score
        out["score_space"] = self.score_space
        if self.dense is not None:
            out["dense_rank"], out["dense_score"] = self.dense
        if self.bm25 is not None:
            out["bm25_rank"], out["bm25_score"] = self.bm25
        if self.rerank_score is not None:
            out["rerank_score"] = self.rerank_score
        return out


@dataclass
class _Found:
    """The two ranked candidate lists of one query, before fusion."""

    dense: list[tuple[str, float]] = field(default_factory=list)
    bm25: list[tuple[str, float]] = field(default_factory=list)


def _positive_int(name: str, value: Any, *, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_ids(ids: Any, n: int | None = None, *, unique: bool = True) -> list[str]:
    ids = check_texts(ids, "ids")
    if n is not None and len(ids) != n:
        raise InputError(f"got {len(ids)} ids for {n} texts; pass one id per text, or none")
    for i, doc_id in enumerate(ids):
        if not doc_id:
            raise InputError(f"ids[{i}] is empty; ids must be non-empty strings")
    if not unique:
        return list(dict.fromkeys(ids))
    seen: set[str] = set()
    dupes = sorted({i for i in ids if i in seen or seen.add(i)})  # type: ignore[func-returns-value]
    if dupes:
        raise InputError(f"duplicate ids in one call: {dupes[:5]}; each id may appear once")
    return ids


def _content_id(text: str, metadata: Mapping[str, Any] | None) -> str:
    blob = json.dumps([text, dict(metadata or {})], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


def _ids_digest(ids: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for doc_id in sorted(ids):
        digest.update(doc_id.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


class HybridIndex:
    """Dense (Chroma) plus keyword (BM25) search over one set of records.

    Args:
        path: folder of the embedded Chroma store; the BM25 snapshot is saved in
            ``path/jinarag-bm25/``. With ``url``, only the snapshot goes there. With neither,
            the index lives in memory and is private to this object.
        url: a Chroma server, e.g. ``"http://127.0.0.1:8000"`` (started with ``chroma run``).
        collection: the Chroma collection name (3-512 characters of ``[a-zA-Z0-9._-]``).
        embedder: the :class:`jinarag.Embedder` that makes the vectors (documents side for
            records, query side for queries). The collection records its name and dimension.
        bm25: the BM25 variant, ``"okapi"``, ``"bm25l"`` or ``"bm25plus"``.
        k1, b, epsilon, delta: BM25 parameters (None: the library defaults).
        stopwords: BM25 stopwords: ``"english"`` (default, tuned on Cranfield), None, or a list.
        bm25_backend: ``"rank_bm25"`` or ``"bm25s"`` (``pip install 'jinarag[fast-bm25]'``).
        reranker: a :class:`jinarag.Reranker` used by ``search`` unless ``rerank=False``.
        fusion, weights, rrf_k, candidates, rerank_top: defaults for :meth:`search`. With
            ``weights=None`` each fusion method uses its tuned :data:`DEFAULT_WEIGHTS`.
        batch_size: records embedded and written per step of :meth:`add`.

    Raises:
        StoreUnavailableError: the server at ``url`` cannot be reached.
        EmbedderMismatchError: the collection was built with another embedder.

    Example:
        >>> index = jinarag.HybridIndex("./store", embedder=emb)
        >>> ids = index.add(["first text", "second text"], metadatas=[{"lang": "en"}, None])
        >>> [h.id for h in index.search("second", k=1, where={"lang": "en"})]
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        url: str | None = None,
        collection: str = "jinarag",
        embedder: Embedder | None = None,
        bm25: str = "okapi",
        *,
        k1: float | None = None,
        b: float | None = None,
        epsilon: float | None = None,
        delta: float | None = None,
        stopwords: str | Sequence[str] | None = "english",
        bm25_backend: str = "rank_bm25",
        reranker: Reranker | None = None,
        fusion: str = DEFAULT_FUSION,
        weights: Sequence[float] | None = None,
        rrf_k: float = DEFAULT_RRF_K,
        candidates: int = DEFAULT_CANDIDATES,
        rerank_top: int = DEFAULT_RERANK_TOP,
        batch_size: int = 256,
    ) -> None:
        if embedder is None:
            raise InputError(
                "HybridIndex needs an embedder: "
                "HybridIndex(path, embedder=jinarag.Embedder.from_pretrained('small'))"
            )
        if fusion not in _fusion.FUSION_METHODS:
            raise InputError(
                f"unknown fusion {fusion!r}; choose one of {', '.join(_fusion.FUSION_METHODS)}"
            )
        self.embedder = embedder
        self.reranker = reranker
        self.fusion = fusion
        self.weights = tuple(_fusion.normalize_weights(weights, 2)) if weights is not None else None
        _fusion.rrf([], k=rrf_k)  # validates k
        self.rrf_k = rrf_k
        self.candidates = _positive_int("candidates", candidates)
        self.rerank_top = _positive_int("rerank_top", rerank_top)
        self.batch_size = _positive_int("batch_size", batch_size)
        self.url = url
        self.path = Path(path) if path is not None else None
        self.collection_name = collection
        self._bm25 = BM25Index(
            bm25,
            k1=k1,
            b=b,
            epsilon=epsilon,
            delta=delta,
            backend=bm25_backend,
            tokenizer=Tokenizer(stopwords),
        )
        self._snapshot = (
            self.path / _BM25_DIR / f"{collection}.json" if self.path is not None else None
        )
        self._client, self._where = self._connect()
        self._collection = self._open_collection()
        self._max_batch = self._call("read the batch size", self._client.get_max_batch_size)
        self._generation: str | None = None
        self._sync(force=False)

    # -- connecting ---------------------------------------------------------------------------

    def _connect(self) -> tuple[Any, str]:
        settings = Settings(anonymized_telemetry=False)
        if self.url is not None:
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise InputError(
                    f"url must look like http://HOST:PORT (a Chroma server), got {self.url!r}"
                )
            port = parts.port if parts.port is not None else 8000
            try:
                client = chromadb.HttpClient(
                    host=parts.hostname, port=port, ssl=parts.scheme == "https", settings=settings
                )
            except Exception as exc:
                raise self._unavailable(exc) from exc
            return client, f"the Chroma server at {self.url}"
        if self.path is not None:
            where = str(self.path)
            client, _ = _local(lambda s: chromadb.PersistentClient(path=where, settings=s), where)
            return client, where
        # In memory: Chroma shares one in-memory system per process, so give this index a
        # database of its own; otherwise two indexes with the same collection name would mix.
        database = f"jinarag-{uuid.uuid4().hex}"
        admin, settings = _local(chromadb.AdminClient, "memory")
        admin.create_database(database)
        self._finalizer = weakref.finalize(self, _drop_database, admin, database)
        return chromadb.EphemeralClient(settings=settings, database=database), "memory"

    def _unavailable(self, exc: BaseException) -> StoreUnavailableError:
        return StoreUnavailableError(
            f"cannot reach the Chroma server at {self.url} ({type(exc).__name__}: {exc}). "
            "Start it (chroma run --path DIR --host HOST --port PORT) or fix the URL, then try "
            "again; add() is an upsert, so repeating an interrupted add completes it."
        )

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one Chroma call, turning its failures into our errors."""
        import httpx

        try:
            return fn(*args, **kwargs)
        except httpx.TransportError as exc:
            raise self._unavailable(exc) from exc
        except (ConnectionError, TimeoutError) as exc:
            if self.url is not None:
                raise self._unavailable(exc) from exc
            raise StoreError(f"Chroma failed to {what} in {self._where}: {exc}") from exc
        except ValueError as exc:  # Chroma's argument errors (bad where, bad metadata, ...)
            raise InputError(f"Chroma rejected the request to {what}: {exc}") from exc
        except Exception as exc:
            if type(exc).__module__.startswith("chromadb"):
                if exc.__class__.__name__ == "InvalidArgumentError":
                    raise InputError(f"Chroma rejected the request to {what}: {exc}") from exc
                raise StoreError(f"Chroma failed to {what} in {self._where}: {exc}") from exc
            raise

    def _open_collection(self) -> Any:
        name, dim = str(self.embedder.name), int(self.embedder.dim)
        collection = self._call(
            f"open collection {self.collection_name!r}",
            self._client.get_or_create_collection,
            self.collection_name,
            configuration={"hnsw": {"space": "cosine", "ef_search": _EF_SEARCH}},
            metadata={_META_EMBEDDER: name, _META_DIM: dim},
            embedding_function=None,  # we always pass vectors; Chroma must never embed
        )
        space = (collection.configuration or {}).get("hnsw", {}) or {}
        if space.get("space", "cosine") != "cosine":
            raise StoreError(
                f"collection {self.collection_name!r} in {self._where} uses {space['space']!r} "
                "distance; HybridIndex needs cosine. Use another collection name."
            )
        meta = dict(collection.metadata or {})
        if meta.get(_META_EMBEDDER) is None:
            # Made by someone else: claim it if its vectors can be ours (same dimension).
            self._check_dim_of_stored(collection, dim)
            self._set_metadata(collection, {**meta, _META_EMBEDDER: name, _META_DIM: dim})
        elif meta.get(_META_EMBEDDER) != name or meta.get(_META_DIM) != dim:
            raise EmbedderMismatchError(
                f"collection {self.collection_name!r} in {self._where} was built with embedder "
                f"{meta.get(_META_EMBEDDER)!r} (dim {meta.get(_META_DIM)}), but this index uses "
                f"{name!r} (dim {dim}); mixing them would compare vectors from different spaces. "
                "Open it with the same embedder, or use another collection name or path."
            )
        return collection

    def _check_dim_of_stored(self, collection: Any, dim: int) -> None:
        got = self._call("read a stored vector", collection.get, limit=1, include=["embeddings"])
        vectors = got.get("embeddings")
        if vectors is not None and len(vectors) and len(vectors[0]) != dim:
            raise EmbedderMismatchError(
                f"collection {self.collection_name!r} in {self._where} holds {len(vectors[0])}-d "
                f"vectors but embedder {self.embedder.name!r} makes {dim}-d ones; use another "
                "collection name."
            )
        if vectors is not None and len(vectors):
            logger.warning(
                "collection %r has records but no record of its embedder; assuming %r",
                self.collection_name,
                self.embedder.name,
            )

    def _set_metadata(self, collection: Any, meta: dict[str, Any]) -> None:
        # Chroma refuses "hnsw:*" keys in modify() (the space is fixed at creation).
        clean = {k: v for k, v in meta.items() if not k.startswith("hnsw:")}
        self._call("update the collection metadata", collection.modify, metadata=clean)

    # -- keeping BM25 in step with Chroma -----------------------------------------------------

    def _read_generation(self) -> str | None:
        fresh = self._call("read the collection", self._client.get_collection, self.collection_name)
        return (fresh.metadata or {}).get(_META_GENERATION)

    def _chroma_ids(self, where: dict[str, Any] | None = None) -> list[str]:
        ids: list[str] = []
        while True:
            page = self._call(
                "list ids",
                self._collection.get,
                where=where,
                include=[],
                limit=self._max_batch,
                offset=len(ids),
            )["ids"]
            ids.extend(page)
            if len(page) < self._max_batch:
                return ids

    def _state(self, ids: Sequence[str], generation: str | None) -> dict[str, Any]:
        return {"count": len(ids), "ids_sha256": _ids_digest(ids), "generation": generation}

    def _sync(self, force: bool) -> None:
        """Make the BM25 index match Chroma: load the snapshot if it is current, else rebuild."""
        generation = self._read_generation()
        ids = self._chroma_ids()
        state = self._state(ids, generation)
        if not force and self._snapshot is not None and self._bm25.load(self._snapshot) == state:
            self._generation = generation
            return
        self._bm25.clear()
        for start in range(0, len(ids), self._max_batch):
            chunk = ids[start : start + self._max_batch]
            got = self._call(
                "read documents", self._collection.get, ids=chunk, include=["documents"]
            )
            texts = [t if t is not None else "" for t in got["documents"]]
            self._bm25.upsert(got["ids"], texts)
        self._generation = generation
        if set(self._bm25.ids) != set(ids):  # records deleted while we read: try again
            self._sync(force=True)
            return
        self._save_snapshot()

    def _save_snapshot(self) -> None:
        if self._snapshot is not None:
            self._bm25.save(self._snapshot, self._state(self._bm25.ids, self._generation))

    def _fresh(self) -> None:
        # Cheap check for writes by other processes: they change the generation or the count.
        if self._read_generation() != self._generation or self._call(
            "count", self._collection.count
        ) != len(self._bm25):
            self._sync(force=True)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Bracket a write: a new generation first (the snapshot on disk turns stale), the
        snapshot saved last. If the body fails, nothing is saved: the old snapshot stays,
        marked stale by the generation, and the next search or open rebuilds from Chroma."""
        self._fresh()  # start from what Chroma holds, including other processes' writes
        generation = uuid.uuid4().hex
        fresh = self._call("read the collection", self._client.get_collection, self.collection_name)
        self._set_metadata(
            self._collection, {**(fresh.metadata or {}), _META_GENERATION: generation}
        )
        self._generation = None
        yield
        self._generation = generation
        self._save_snapshot()

    # -- records ------------------------------------------------------------------------------

    def add(
        self,
        texts: Sequence[str],
        ids: Sequence[str] | None = None,
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
        *,
        show_progress: bool = False,
    ) -> list[str]:
        """Insert or replace records; returns their ids.

        Args:
            texts: the texts to store and index.
            ids: one id per text; default: a hash of the text and metadata (so adding the same
                record twice stores it once).
            metadatas: one dict (or None) per text; values must be str, int, float or bool.
            show_progress: show a progress bar.

        Raises:
            InputError: non-string texts or ids, duplicate ids, lengths that differ.
            StoreUnavailableError: the Chroma server went away; repeat the call to finish.
        """
        texts = check_texts(texts)
        if metadatas is not None:
            if isinstance(metadatas, Mapping) or not isinstance(metadatas, Sequence):
                raise InputError("metadatas must be a list with one dict (or None) per text")
            if len(metadatas) != len(texts):
                raise InputError(f"got {len(metadatas)} metadatas for {len(texts)} texts")
            for i, meta in enumerate(metadatas):
                if meta is not None and not isinstance(meta, Mapping):
                    raise InputError(
                        f"metadatas[{i}] is {type(meta).__name__}; pass a dict or None"
                    )
        metas = [
            dict(m) if m else None
            for m in (metadatas if metadatas is not None else [None] * len(texts))
        ]
        if ids is None:
            out = [_content_id(t, m) for t, m in zip(texts, metas, strict=True)]
            first: dict[str, int] = {}
            for i, doc_id in enumerate(out):
                first.setdefault(doc_id, i)  # identical records: store once
            keep = sorted(first.values())
        else:
            out = _check_ids(ids, len(texts))
            keep = list(range(len(texts)))
        if not texts:
            return []
        bar = _progress(len(keep), show_progress, "indexing")
        done = 0
        try:
            with self._writing():
                for start in range(0, len(keep), self.batch_size):
                    rows = keep[start : start + self.batch_size]
                    self._write_batch(
                        [out[i] for i in rows], [texts[i] for i in rows], [metas[i] for i in rows]
                    )
                    done += len(rows)
                    if bar is not None:
                        bar.update(len(rows))
        except InputError as exc:
            if done == 0:
                raise
            raise InputError(
                f"{exc} ({done} of {len(keep)} records were stored before this error; fix the "
                "input and repeat the call: add() is an upsert)"
            ) from exc
        finally:
            if bar is not None:
                bar.close()
        return out

    def _write_batch(
        self, ids: list[str], texts: list[str], metas: list[dict[str, Any] | None]
    ) -> None:
        vectors = np.asarray(self.embedder.embed_documents(texts), dtype=np.float32)
        for start in range(0, len(ids), self._max_batch):
            end = start + self._max_batch
            self._call(
                "upsert records",
                self._collection.upsert,
                ids=ids[start:end],
                embeddings=vectors[start:end],
                documents=texts[start:end],
                metadatas=metas[start:end],
            )
            self._bm25.upsert(ids[start:end], texts[start:end])

    def delete(
        self, ids: Sequence[str] | None = None, *, where: dict[str, Any] | None = None
    ) -> None:
        """Delete records by id and/or by metadata filter (both given: records matching both).

        Unknown ids are ignored. Raises InputError when neither is given.
        """
        if ids is None and where is None:
            raise InputError("delete() needs ids, a where filter, or both")
        targets = _check_ids(ids, unique=False) if ids is not None else None
        if where is not None:
            matching = self._chroma_ids(where)
            targets = matching if targets is None else sorted(set(targets) & set(matching))
        assert targets is not None
        if not targets:
            return
        with self._writing():
            for start in range(0, len(targets), self._max_batch):
                chunk = targets[start : start + self._max_batch]
                self._call("delete records", self._collection.delete, ids=chunk)
                self._bm25.delete(chunk)

    def get(
        self, ids: Sequence[str] | None = None, *, where: dict[str, Any] | None = None
    ) -> list[Hit]:
        """The stored records with these ids (in the order given; missing ids are skipped)
        and/or matching ``where``; with neither, every record. Scores are 0.0, space ``"none"``."""
        wanted = _check_ids(ids, unique=False) if ids is not None else None
        records = self._fetch(wanted, where)
        order = wanted if wanted is not None else list(records)
        return [
            Hit(i, records[i][0], dict(records[i][1]), 0.0, "none") for i in order if i in records
        ]

    def _fetch(
        self, ids: list[str] | None, where: dict[str, Any] | None = None
    ) -> dict[str, tuple[str, dict[str, Any]]]:
        """``{id: (text, metadata)}`` for these ids (in chunks Chroma accepts) or all records."""
        chunks = (
            [None]
            if ids is None
            else [ids[i : i + self._max_batch] for i in range(0, len(ids), self._max_batch)]
        )
        out: dict[str, tuple[str, dict[str, Any]]] = {}
        for chunk in chunks:
            got = self._call(
                "read records",
                self._collection.get,
                ids=chunk,
                where=where,
                include=["documents", "metadatas"],
            )
            for i, t, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True):
                out[i] = (t if t is not None else "", dict(m or {}))
        return out

    def count(self) -> int:
        """How many records the index holds."""
        return int(self._call("count", self._collection.count))

    @property
    def bm25_index(self) -> BM25Index:
        """The derived BM25 index (read it; write through :meth:`add` and :meth:`delete`)."""
        return self._bm25

    def refresh(self) -> None:
        """Rebuild the BM25 index from Chroma (needed only after another program changed the
        text of an existing id directly in Chroma; other outside writes are noticed)."""
        self._sync(force=True)

    # -- search -------------------------------------------------------------------------------

    def search(
        self,
        query: str,
        k: int = 10,
        mode: str = "hybrid",
        fusion: str | None = None,
        weights: Sequence[float] | None = None,
        where: dict[str, Any] | None = None,
        candidates: int | None = None,
        rerank: Reranker | bool | None = None,
        rerank_top: int | None = None,
        rrf_k: float | None = None,
        query_embedding: Sequence[float] | np.ndarray | None = None,
    ) -> list[Hit]:
        """The ``k`` best records for ``query``.

        Args:
            query: the query text.
            k: how many results at most (fewer when fewer records match).
            mode: ``"hybrid"`` (both sources, fused), ``"dense"`` or ``"bm25"``.
            fusion: ``"rrf"``, ``"relative"`` or ``"dbsf"`` (hybrid mode; see
                :mod:`jinarag.fusion`). Default: the index's.
            weights: ``(dense, bm25)`` weights for fusion. Default: the index's.
            where: a Chroma metadata filter, e.g. ``{"lang": "en"}``; applied to both sources
                before ranking.
            candidates: results taken from each source before fusion (and in single-source
                modes, before keeping ``k``). Default: the index's.
            rerank: a Reranker, True (the index's), False (none), None (the index's, if any).
            rerank_top: how many fused results the reranker reorders (at least ``k``).
            rrf_k: the RRF constant. Default: the index's.
            query_embedding: the query's vector when it was already computed (e.g. by a
                pipeline's text embedder with the same model); default: embedded here.
                BM25 and the reranker still read ``query``.

        Raises:
            InputError: a bad ``k``, mode, fusion, weights or filter, with the valid choices.
        """
        if not isinstance(query, str):
            raise InputError(f"query must be a string, got {type(query).__name__} {query!r}")
        k = _positive_int("k", k)  # type: ignore[assignment]
        if mode not in MODES:
            raise InputError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        fusion = fusion if fusion is not None else self.fusion
        if fusion not in _fusion.FUSION_METHODS:
            raise InputError(
                f"unknown fusion {fusion!r}; choose one of {', '.join(_fusion.FUSION_METHODS)}"
            )
        if weights is not None and mode != "hybrid":
            raise InputError(f"weights apply to mode='hybrid' only (got mode={mode!r})")
        if weights is not None:
            weights = _fusion.normalize_weights(weights, 2)
        else:
            weights = self.weights if self.weights is not None else DEFAULT_WEIGHTS[fusion]
        rrf_k = rrf_k if rrf_k is not None else self.rrf_k
        if mode == "hybrid":
            _fusion.rrf([], k=rrf_k)  # validates rrf_k
        if where is not None and not isinstance(where, dict):
            raise InputError(f"where must be a dict (a Chroma filter), got {where!r}")
        reranker = self._pick_reranker(rerank)
        pool = k
        if reranker is not None:
            rerank_top = _positive_int("rerank_top", rerank_top, allow_none=True)
            pool = max(k, rerank_top if rerank_top is not None else self.rerank_top)
        n_cand = _positive_int("candidates", candidates, allow_none=True)
        if n_cand is None:
            # Single-source modes ask for as many as hybrid does too: the approximate
            # nearest-neighbour search is most accurate well inside its result list, and
            # dense mode then returns exactly the head of hybrid's dense candidates.
            n_cand = max(pool, self.candidates)
        elif n_cand < pool:
            raise InputError(f"candidates ({n_cand}) must be at least k ({pool}) results")

        vector = self._query_vector(query_embedding)
        found = self._retrieve(query, mode, n_cand, where, vector)
        if mode == "dense":
            ranked, space = found.dense, "cosine"
        elif mode == "bm25":
            ranked, space = found.bm25, "bm25"
        else:
            ranked = _fusion.fuse(fusion, [found.dense, found.bm25], weights, rrf_k)
            space = fusion
        hits = self._hits(found, ranked[:pool], space)
        if reranker is not None and hits:
            hits = self._rerank(reranker, query, hits)
        return hits[:k]

    def sources(
        self, query: str, candidates: int | None = None, where: dict[str, Any] | None = None
    ) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
        """The two ranked candidate lists before fusion: ``(dense, bm25)``, each a list of
        ``(id, score)`` best first (cosine similarities, BM25 scores). Feed them to
        :func:`jinarag.fusion.fuse` to try other fusion settings without searching again.
        """
        if not isinstance(query, str):
            raise InputError(f"query must be a string, got {type(query).__name__} {query!r}")
        n = _positive_int("candidates", candidates, allow_none=True)
        found = self._retrieve(query, "hybrid", n if n is not None else self.candidates, where)
        return list(found.dense), list(found.bm25)

    def _pick_reranker(self, rerank: Reranker | bool | None) -> Reranker | None:
        if rerank is None:
            return self.reranker
        if rerank is False:
            return None
        if rerank is True:
            if self.reranker is None:
                raise InputError(
                    "rerank=True but this index has no reranker; pass "
                    "HybridIndex(..., reranker=jinarag.Reranker.from_pretrained('turbo')) or "
                    "rerank=<a Reranker>"
                )
            return self.reranker
        if not callable(getattr(rerank, "score", None)):
            raise InputError(f"rerank must be a Reranker, True, False or None, got {rerank!r}")
        return rerank

    def _query_vector(self, query_embedding: Sequence[float] | np.ndarray | None) -> Any:
        """A given query vector, checked against the embedder's dimension (None passes)."""
        if query_embedding is None:
            return None
        vector = np.asarray(query_embedding, dtype=np.float32)
        if vector.shape != (self.embedder.dim,) or not np.isfinite(vector).all():
            raise InputError(
                f"query_embedding must be {self.embedder.dim} finite floats (the dimension of "
                f"{self.embedder.name}), got shape {vector.shape}; embed the query with the "
                "index's embedder, or leave query_embedding out."
            )
        return vector

    def _retrieve(
        self,
        query: str,
        mode: str,
        n_cand: int,
        where: dict[str, Any] | None,
        vector: np.ndarray | None = None,
    ) -> _Found:
        """Both sources' candidate lists (only the ones ``mode`` needs)."""
        self._fresh()
        found = _Found()
        if len(self._bm25) == 0:
            return found
        if mode in ("hybrid", "dense"):
            if vector is None:
                vector = np.asarray(self.embedder.embed_query(query), dtype=np.float32)
            got = self._call(
                "query",
                self._collection.query,
                query_embeddings=[vector],
                n_results=min(n_cand, len(self._bm25)),
                where=where,
                include=["distances"],  # texts are fetched for the final hits only
            )
            # Chroma's cosine distance is 1 - cosine similarity; report the similarity.
            found.dense = [
                (doc_id, 1.0 - float(dist))
                for doc_id, dist in zip(got["ids"][0], got["distances"][0], strict=True)
            ]
        if mode in ("hybrid", "bm25"):
            allowed = set(self._chroma_ids(where)) if where is not None else None
            found.bm25 = self._bm25.search(query, n_cand, allowed)
        return found

    def _hits(self, found: _Found, ranked: list[tuple[str, float]], space: str) -> list[Hit]:
        dense = {doc_id: SourceScore(r, s) for r, (doc_id, s) in enumerate(found.dense, start=1)}
        bm25 = {doc_id: SourceScore(r, s) for r, (doc_id, s) in enumerate(found.bm25, start=1)}
        records = self._fetch([doc_id for doc_id, _ in ranked]) if ranked else {}
        return [
            Hit(
                doc_id,
                records[doc_id][0],
                dict(records[doc_id][1]),
                float(score),
                space,
                dense.get(doc_id),
                bm25.get(doc_id),
            )
            for doc_id, score in ranked
            if doc_id in records  # deleted by another process since we ranked it
        ]

    def _rerank(self, reranker: Reranker, query: str, hits: list[Hit]) -> list[Hit]:
        scores = np.asarray(reranker.score(query, [h.text for h in hits], activation="sigmoid"))
        order = sorted(range(len(hits)), key=lambda i: -float(scores[i]))
        return [
            Hit(
                hits[i].id,
                hits[i].text,
                dict(hits[i].metadata),
                float(scores[i]),
                "sigmoid",
                hits[i].dense,
                hits[i].bm25,
                float(scores[i]),
            )
            for i in order
        ]

    # -- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        """Release an in-memory index's storage (a stored index needs no closing)."""
        finalizer = getattr(self, "_finalizer", None)
        if finalizer is not None:
            finalizer()

    def __enter__(self) -> HybridIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"HybridIndex(collection={self.collection_name!r}, store={self._where!r}, "
            f"embedder={self.embedder.name!r}, records={len(self._bm25)})"
        )


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


def _progress(total: int, show: bool, desc: str) -> Any:
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="rec")

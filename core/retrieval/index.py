"""HybridIndex: one Chroma collection and one BM25 index over the same records, fused at search.

A thin facade: the store (:mod:`jinarag.retrieval.store`), the BM25 side
(:mod:`jinarag.retrieval.keyword`), the one writer (:mod:`jinarag.retrieval.write`), search
(:mod:`jinarag.retrieval.search`) and ingestion (:mod:`jinarag.retrieval.ingest`) do the work.

Records are ``(id, text, metadata)``. Chroma is the source of truth: it stores the texts, the
metadata and our vectors. The BM25 index is derived from it, kept in memory, and saved beside
the store with the collection state it was built from; when that state no longer matches
Chroma, the BM25 index is rebuilt from Chroma. Every write goes in the same order, so a crash
at any point leaves a state that the next open repairs: the store's write lock is taken, a new
generation id makes the BM25 snapshot stale, the records go to Chroma in batches (each with a
hash of its text and metadata, so an unchanged record is never written again), BM25 follows
each batch Chroma acknowledged, and the snapshot is saved atomically at the end.
:meth:`HybridIndex.verify` checks that every record is reachable and BM25 equals Chroma.

Every write path (:meth:`HybridIndex.add`, plain or late-chunked, :meth:`HybridIndex.add_files`
in this process or on Ray) makes records in the one layout (:mod:`jinarag.retrieval.layout`)
and writes them through the one :class:`~jinarag.retrieval.write.writer.Writer`.

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
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jinarag.retrieval.ingest.chunking import chunking_settings, text_chunking
from jinarag.retrieval.ingest.late import LATE_CHUNK_KEYS
from jinarag.retrieval.ingest.run import IngestReport, add_files
from jinarag.retrieval.ingest.texts import add_texts
from jinarag.retrieval.keyword.bm25 import BM25Index, Tokenizer
from jinarag.retrieval.options_check import check_index_options
from jinarag.retrieval.search.hits import SCORE_SPACES, Hit, SourceScore
from jinarag.retrieval.search.plan import (
    DEFAULT_CANDIDATES,
    DEFAULT_FUSION,
    DEFAULT_RERANK_TOP,
    DEFAULT_RRF_K,
    DEFAULT_STEMMER,
    DEFAULT_STOPWORDS,
    DEFAULT_WEIGHTS,
    MODES,
    SearchDefaults,
    candidate_lists,
    check_query_vector,
    plan_search,
    run_search,
    search_defaults,
    stored_hits,
)
from jinarag.retrieval.store.collection import ChromaStore
from jinarag.retrieval.store.files import check_store_files, snapshot_path
from jinarag.retrieval.store.lock import StoreLock, check_timeout
from jinarag.retrieval.write.mirror import BM25Mirror
from jinarag.retrieval.write.verify import VerifyReport, verify_index
from jinarag.retrieval.write.writer import Writer
from jinarag.validation import check_instance, known_keywords, positive_int

if TYPE_CHECKING:
    from jinarag.inference.embedder import Embedder
    from jinarag.inference.reranker import Reranker
    from jinarag.retrieval.ingest.executor import Executor

__all__ = [
    "CHUNKING",
    "DEFAULT_CANDIDATES",
    "DEFAULT_FUSION",
    "DEFAULT_RERANK_TOP",
    "DEFAULT_RRF_K",
    "DEFAULT_STEMMER",
    "DEFAULT_STOPWORDS",
    "DEFAULT_WEIGHTS",
    "LATE_CHUNK_KEYS",
    "MODES",
    "SCORE_SPACES",
    "Hit",
    "HybridIndex",
    "SourceScore",
    "VerifyReport",
    "checked_index",
]

CHUNKING = (None, "late")  # what HybridIndex.add(chunking=...) accepts
DEFAULT_LOCK_TIMEOUT = 600.0  # seconds a writer waits for another one (an add may take minutes)


def _search_default(name: str) -> property:
    return property(
        lambda self: getattr(self.defaults, name),
        doc=f"The ``{name}`` searches fall back on (read-only; see :attr:`defaults`).",
    )


@known_keywords
class HybridIndex:
    """Dense (Chroma) plus keyword (BM25) search over one set of records
    (docs/hybrid-search.md has every option at length).

    Args:
        path: folder of the embedded Chroma store and the BM25 snapshot; with ``url`` the
            snapshot and the write lock only; with neither, in memory and private.
        url: a Chroma server, e.g. ``"http://127.0.0.1:8000"`` (``chroma run``).
        collection: the Chroma collection name (3-512 characters of ``[a-zA-Z0-9._-]``).
        embedder: the :class:`jinarag.Embedder` of records and queries (recorded by name and
            dimension in the collection).
        bm25, k1, b, epsilon, delta, stopwords, stemmer, bm25_backend: the BM25 side
            (:class:`~jinarag.retrieval.keyword.bm25.BM25Index`); the analyser is stored with
            the snapshot, and changing it rebuilds BM25.
        reranker, fusion, weights, rrf_k, candidates, rerank_top: the :attr:`defaults` of
            :meth:`search`; unset, from ``path/jinarag-fusion.json`` (``jinarag tune``), else
            the shipped ones.
        batch_size: records embedded and written per step of a write.
        lock_timeout: seconds a write waits for another process writing to the same store.

    Raises:
        StoreError and its kinds (unreachable, another embedder's, damaged), naming the fix.

    Example:
        >>> index = jinarag.HybridIndex("./store", embedder=emb)
        >>> ids = index.add(["first text", "second text"], metadatas=[{"lang": "en"}, None])
    """

    fusion = _search_default("fusion")
    weights = _search_default("weights")
    method_weights = _search_default("method_weights")
    rrf_k = _search_default("rrf_k")
    candidates = _search_default("candidates")
    rerank_top = _search_default("rerank_top")
    reranker = _search_default("reranker")
    tuned = _search_default("tuned")

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
        stopwords: str | Sequence[str] | None = DEFAULT_STOPWORDS,
        stemmer: str | None = DEFAULT_STEMMER,
        bm25_backend: str = "auto",
        reranker: Reranker | None = None,
        fusion: str | None = None,
        weights: Sequence[float] | None = None,
        rrf_k: float | None = None,
        candidates: int | None = None,
        rerank_top: int = DEFAULT_RERANK_TOP,
        batch_size: int = 256,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        check_index_options(path, url, collection, embedder, k1=k1, b=b, epsilon=epsilon,
                            delta=delta)  # fmt: skip
        self.embedder = embedder
        self.path = Path(path) if path is not None else None
        self.url = url
        self.collection_name = collection
        self.defaults: SearchDefaults = search_defaults(
            self.path, reranker, fusion, weights, rrf_k, candidates, rerank_top
        )
        self.batch_size = positive_int("batch_size", batch_size)
        timeout = check_timeout(lock_timeout)
        analyser = Tokenizer(stopwords, stemmer)
        self._bm25 = BM25Index(bm25, k1=k1, b=b, epsilon=epsilon, delta=delta,
                               backend=bm25_backend, tokenizer=analyser)  # fmt: skip
        self._mirror = _open_mirror(self.path, url, collection, embedder, self._bm25, timeout)
        self._writer = Writer(self._mirror.store, self._mirror, embedder, self.batch_size)

    @property
    def store(self) -> ChromaStore:
        """The Chroma collection (read it; write through :attr:`writer`)."""
        return self._mirror.store

    @property
    def writer(self) -> Writer:
        """The one :class:`~jinarag.retrieval.write.writer.Writer` of this index."""
        return self._writer

    @property
    def bm25_index(self) -> BM25Index:
        """The derived BM25 index (read it; write through :meth:`add` and :meth:`delete`)."""
        return self._bm25

    def add(
        self,
        texts: Sequence[str],
        ids: Sequence[str] | None = None,
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
        *,
        show_progress: bool = False,
        chunking: str | None = None,
        chunk_tokens: int | None = None,
        chunk_by: str | None = None,
    ) -> list[str]:
        """Insert or replace records; returns their ids (an unchanged record is not written
        again, so repeating an add writes nothing).

        Args:
            texts, ids, metadatas: the records; ids default to a hash of text and metadata;
                metadata values are str, int, finite float, bool or a list of one of those.
            show_progress: show a progress bar.
            chunking: None (each text a record) or ``"late"``: each text a document, cut into
                chunks (``f"{doc_id}#{i}"``, with ``doc_id``, ``chunk``, ``span_start``,
                ``span_end``) embedded by late chunking; returns the chunk ids.
            chunk_tokens, chunk_by: late chunking's chunk size (default 256 tokens) or
                ``chunk_by="sentences"``.

        Raises:
            InputError: bad records or settings, checked before anything is written.
            StoreUnavailableError, StoreBusyError: repeat the call to finish.
        """
        late = text_chunking(self.embedder, chunking, chunk_tokens, chunk_by)
        return add_texts(self._writer, texts, ids, metadatas, late, show_progress)

    def add_files(
        self,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        root: str | os.PathLike[str] | None = None,
        sync: bool = False,
        chunk_tokens: int | None = None,
        overlap: int | None = None,
        chunking: str | None = None,
        executor: Executor | None = None,
        show_progress: bool = False,
    ) -> IngestReport:
        """Index files (txt, md, html, jsonl; folders recursively), kept in step with them:
        unchanged files skipped, changed ones replaced (docs/ingestion.md).

        Args:
            paths, root: a file or folder, or a list of them; the folder record ids are
                relative to.
            sync: remove the records of files gone from the folders scanned.
            chunk_tokens, overlap, chunking: chunk size (default: the model's limit, at most
                512; late 256), tokens shared by neighbours (default 1/8), None or ``"late"``.
            executor: ``LocalExecutor`` (default) or ``ingest.ray_executor.RayExecutor``.
            show_progress: a progress bar on stderr.

        Raises:
            InputError: a bad path, root or setting (before any write), or a bad file (what was
                written before it stays; fix it and run again).
        """
        settings = chunking_settings(self.embedder, chunk_tokens, overlap, chunking)
        return add_files(
            self._writer,
            paths,
            exclude=[self.path] if self.path is not None else [],
            root=root,
            sync=sync,
            chunking=settings,
            executor=executor,
            show_progress=show_progress,
        )

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Make several writes one: the write lock taken once, the BM25 snapshot saved once."""
        with self._writer.writing():
            yield

    def delete(
        self, ids: Sequence[str] | None = None, *, where: dict[str, Any] | None = None
    ) -> None:
        """Delete records by id and/or metadata filter (both: records matching both)."""
        self._writer.delete_matching(ids, where)

    def get(
        self, ids: Sequence[str] | None = None, *, where: dict[str, Any] | None = None
    ) -> list[Hit]:
        """The stored records with these ids (in the order given; missing ids are skipped)
        and/or matching ``where``; with neither, every record. Scores are 0.0, space ``"none"``."""
        return stored_hits(self.store, ids, where)

    def count(self) -> int:
        """How many records the index holds."""
        return self.store.count()

    def verify(self, repair: bool = False) -> VerifyReport:
        """Check that every record is reachable by dense search and BM25 equals Chroma; with
        ``repair``, mend what is not (:mod:`jinarag.retrieval.write.verify`)."""
        return verify_index(self._mirror, self.embedder, self.store.where, repair)

    def refresh(self) -> None:
        """Rebuild BM25 from Chroma (after another program changed a text in Chroma itself)."""
        self._mirror.sync(force=True)

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
        """The ``k`` best records for ``query``: ``mode`` ``"hybrid"`` (fused), ``"dense"``
        or ``"bm25"``; ``fusion`` ``"rrf"``, ``"relative"`` or ``"dbsf"`` with ``(dense,
        bm25)`` ``weights`` and ``rrf_k``; ``where`` a Chroma filter for both sources;
        ``candidates`` per source before fusion; ``rerank`` a Reranker, True, False or None
        (the index's), reordering ``rerank_top`` fused results; ``query_embedding`` a vector
        already computed with the same model. Unset arguments fall back on :attr:`defaults`.
        A bad argument is an InputError naming the valid choices.
        """
        plan = plan_search(
            self.defaults, query, k, mode, fusion, weights, where, candidates, rerank,
            rerank_top, rrf_k,
        )  # fmt: skip
        vector = check_query_vector(query_embedding, self.embedder.dim, self.embedder.name)
        return run_search(self._mirror, self.embedder, plan, query, vector)

    def sources(
        self, query: str, candidates: int | None = None, where: dict[str, Any] | None = None
    ) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
        """The two ranked candidate lists before fusion: ``(dense, bm25)``, each a list of
        ``(id, score)`` best first. Feed them to :func:`jinarag.fusion.fuse` to try other
        fusion settings without searching again."""
        return candidate_lists(self._mirror, self.embedder, self.defaults, query, candidates, where)

    def close(self) -> None:
        """Release an in-memory index's storage (a stored index needs no closing)."""
        self.store.close()

    def __enter__(self) -> HybridIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"HybridIndex(collection={self.collection_name!r}, store={self.store.where!r}, "
            f"embedder={self.embedder.name!r}, records={len(self._bm25)})"
        )


def _open_mirror(
    path: Path | None,
    url: str | None,
    collection: str,
    embedder: Embedder,
    bm25: BM25Index,
    lock_timeout: float,
) -> BM25Mirror:
    """Open the store (its files checked first, under its lock when it is busy) and the BM25
    index kept equal to it. With a URL the records live on the server and ``path`` holds the
    snapshot and the lock only."""
    snapshot = snapshot_path(path, collection) if path is not None else None
    lock = StoreLock(path, lock_timeout) if path is not None else None
    if path is not None and url is None:
        check_store_files(path, collection, snapshot, wait=lock)
    store = ChromaStore(path, url, collection, embedder=str(embedder.name), dim=int(embedder.dim))
    return BM25Mirror(store, bm25, snapshot, lock)


def checked_index(index: Any, name: str = "index") -> HybridIndex:
    """``index`` when it is a :class:`HybridIndex` (what the adapters' retrievers take), else
    an InputError saying how to open one."""
    return check_instance(
        name,
        index,
        HybridIndex,
        "open one with jinarag.HybridIndex(path=..., embedder=jinarag.Embedder."
        "from_pretrained(...)) and pass it",
    )

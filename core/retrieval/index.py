"""HybridIndex: one Chroma collection and one BM25 index over the same records, fused at search.

Records are ``(id, text, metadata)``. Chroma is the source of truth: it stores the texts, the
metadata and our vectors. The BM25 index is derived from it, kept in memory, and saved beside
the store with the collection state it was built from, so a restart does not re-tokenise
everything; when that state no longer matches Chroma, the BM25 index is rebuilt from Chroma.

Every write goes in the same order, so a crash at any point leaves a state that the next open
repairs: (0) the store's write lock is taken (one writer at a time, across processes) and the
snapshot path checked; (1) a new generation id is written to the collection's metadata, which
makes the BM25 snapshot stale; (2) the records go to Chroma in batches, each with a hash of its
text and metadata: records whose stored hash is the same are skipped (never written again), a
changed text is deleted and added anew, changed metadata replaced in place
(:mod:`jinarag.retrieval.write.plan`); (3) the BM25 index follows each batch Chroma acknowledged;
(4) a final generation is recorded and the snapshot saved atomically with it. The snapshot never
holds a record Chroma has not acknowledged. :meth:`HybridIndex.verify` checks that every record
is reachable by dense search and BM25 equals Chroma, and repairs what is not.

With ``add(..., chunking="late")`` each text is a whole document: it is split into chunks
(:mod:`jinarag.retrieval.ingest.late`), the model reads the whole document, and each chunk's vector is
the mean of its own tokens' states. The records are the chunks; each carries a hash of its whole
document, so when a document changes every one of its chunks is embedded and written again.

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
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jinarag.errors import InputError
from jinarag.retrieval.ingest.late import (
    DEFAULT_CHUNK_TOKENS,
    LATE_CHUNK_BY,
    LATE_CHUNK_KEYS,
    late_chunk_records,
)
from jinarag.retrieval.keyword.bm25 import BM25Index, Tokenizer
from jinarag.retrieval.search import fusion as _fusion
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
    check_query_vector,
    plan_search,
    rank,
    rerank_hits,
    retrieve,
    to_hits,
)
from jinarag.retrieval.search.settings import FUSION_FILE, FusionSettings, read_fusion_settings
from jinarag.retrieval.store.collection import ChromaStore
from jinarag.retrieval.store.files import check_store_files
from jinarag.retrieval.store.lock import StoreLock
from jinarag.retrieval.write.mirror import BM25Mirror
from jinarag.retrieval.write.plan import Batch, write
from jinarag.retrieval.write.records import assign_ids, check_ids, check_metadatas
from jinarag.retrieval.write.verify import VerifyReport, verify_index
from jinarag.validation import check_choice, check_text, check_texts, positive_int

if TYPE_CHECKING:
    from jinarag.inference.embedder import Embedder
    from jinarag.inference.reranker import Reranker
    from jinarag.retrieval.ingest.run import Executor, IngestReport

__all__ = [
    "DEFAULT_CANDIDATES",
    "DEFAULT_FUSION",
    "DEFAULT_RERANK_TOP",
    "DEFAULT_RRF_K",
    "DEFAULT_STEMMER",
    "DEFAULT_STOPWORDS",
    "DEFAULT_WEIGHTS",
    "CHUNKING",
    "LATE_CHUNK_KEYS",
    "MODES",
    "SCORE_SPACES",
    "Hit",
    "HybridIndex",
    "SourceScore",
    "VerifyReport",
]

_BM25_DIR = "jinarag-bm25"
CHUNKING = (None, "late")  # what HybridIndex.add(chunking=...) accepts
_DOC_ID_BATCH = 256  # document ids per "$in" filter when looking for stale chunks
DEFAULT_LOCK_TIMEOUT = 600.0  # seconds a writer waits for another one (an add may take minutes)


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
        stopwords: BM25 stopwords: ``"english"`` (:data:`DEFAULT_STOPWORDS`), None, or a list.
        stemmer: the BM25 stemmer: a Snowball name such as ``"english"``
            (:data:`DEFAULT_STEMMER`) or None. Stopwords and stemmer are stored with the BM25
            snapshot and applied to documents and queries alike; changing them rebuilds BM25.
        bm25_backend: ``"auto"`` (default: rank-bm25 below 20,000 records, bm25s from there
            on when installed), ``"rank_bm25"`` or ``"bm25s"``
            (``pip install 'jinarag[fast-bm25]'``).
        reranker: a :class:`jinarag.Reranker` used by ``search`` unless ``rerank=False``.
        fusion, weights, rrf_k, candidates, rerank_top: defaults for :meth:`search`. Left
            at None, they come from ``path/jinarag-fusion.json`` when that file exists
            (written by ``jinarag tune``), else from the shipped :data:`DEFAULT_FUSION`,
            :data:`DEFAULT_RRF_K`, :data:`DEFAULT_CANDIDATES`; with ``weights=None`` each
            fusion method uses its own weights (the file's, else :data:`DEFAULT_WEIGHTS`).
        batch_size: records embedded and written per step of :meth:`add`.
        lock_timeout: seconds a write (:meth:`add`, :meth:`delete`, :meth:`verify`) waits
            for another process writing to the same store before :class:`StoreBusyError`.
            Writers to one store take turns through a lock file in ``path`` (``jinarag.lock``),
            also with ``url``; with neither there is no local store to lock (in memory, the
            index is private; several writers to one server without a ``path`` must take turns
            themselves). Searches never wait for it.

    Raises:
        StoreUnavailableError: the server at ``url`` cannot be reached.
        EmbedderMismatchError: the collection was built with another embedder.
        StoreCorruptError: the store is damaged (its vector index files, its database, or the
            BM25 snapshot path); the message names the path and the repair.
        StoreError: the store folder cannot be used (a file, read-only, no permission).

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
        if embedder is None:
            raise InputError(
                "HybridIndex needs an embedder: "
                "HybridIndex(path, embedder=jinarag.Embedder.from_pretrained('small'))"
            )
        self.embedder = embedder
        self.reranker = reranker
        # Fusion defaults: the arguments, else the store's tuned file, else the shipped ones.
        tuned = _tuned_settings(Path(path)) if path is not None else None
        if fusion is None:
            fusion = tuned.fusion if tuned is not None else DEFAULT_FUSION
        if rrf_k is None:
            rrf_k = tuned.rrf_k if tuned is not None else DEFAULT_RRF_K
        if candidates is None:
            candidates = tuned.candidates if tuned is not None else DEFAULT_CANDIDATES
        self.tuned = tuned
        self.fusion = check_choice("fusion", fusion, _fusion.FUSION_METHODS)
        self.weights = tuple(_fusion.normalize_weights(weights, 2)) if weights is not None else None
        self.method_weights = {**DEFAULT_WEIGHTS, **(tuned.weights if tuned is not None else {})}
        _fusion.rrf([], k=rrf_k)  # validates k
        self.rrf_k = rrf_k
        self.candidates = positive_int("candidates", candidates)
        self.rerank_top = positive_int("rerank_top", rerank_top)
        self.batch_size = positive_int("batch_size", batch_size)
        if (
            isinstance(lock_timeout, bool)
            or not isinstance(lock_timeout, int | float)
            or not math.isfinite(lock_timeout)
            or lock_timeout < 0
        ):
            raise InputError(f"lock_timeout must be seconds (a number >= 0), got {lock_timeout!r}")
        self.url = url
        self.path = Path(path) if path is not None else None
        self.collection_name = collection
        bm25_index = BM25Index(
            bm25,
            k1=k1,
            b=b,
            epsilon=epsilon,
            delta=delta,
            backend=bm25_backend,
            tokenizer=Tokenizer(stopwords, stemmer),
        )
        snapshot = self.path / _BM25_DIR / f"{collection}.json" if self.path is not None else None
        lock = StoreLock(self.path, lock_timeout) if self.path is not None else None
        if self.path is not None and url is None:
            check_store_files(self.path, collection, snapshot, wait=lock)
        # With a URL the records live on the server and the path holds the snapshot only.
        self._store = ChromaStore(
            self.path, url, collection, embedder=str(embedder.name), dim=int(embedder.dim)
        )
        self._mirror = BM25Mirror(self._store, bm25_index, snapshot, lock)
        self._bm25 = bm25_index

    # -- records ------------------------------------------------------------------------------

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
        """Insert or replace records; returns their ids (also of records already stored).

        A record whose text and metadata are already stored under its id is not written again
        (its stored content hash says so), so repeating an add, or indexing the same files
        twice, writes nothing the second time.

        Args:
            texts: the texts to store and index.
            ids: one id per text; default: a hash of the text and metadata (so adding the same
                record twice stores it once).
            metadatas: one dict (or None) per text; keys are strings, values str, int (64-bit),
                finite float, bool, or a non-empty list of one of those (docs/hybrid-search.md).
            show_progress: show a progress bar.
            chunking: None (each text is one record) or ``"late"``: each text is a whole
                document, split into chunks that are embedded by late chunking (the model
                reads the whole document; a chunk's vector is the mean of its own tokens'
                states, so a chunk that says "it" still knows what "it" is). The records
                written are the chunks: id ``f"{doc_id}#{i}"`` (``doc_id`` the given id, else
                the hash id a record would get), metadata the document's plus ``doc_id``,
                ``chunk`` (0, 1, ...), ``span_start`` and ``span_end`` (the chunk is
                ``text[span_start:span_end]``) and ``doc_hash`` (a hash of the whole
                document: when it changes, every chunk is embedded again). Chunks a document
                had before and no longer has (records with its ``doc_id``) are deleted. A
                document longer than the model's ``max_length`` is read in overlapping
                windows. The call returns the chunk ids, document by document.
            chunk_tokens: with ``chunking="late"``, about how many tokens per chunk (default
                256); chunks end at word starts.
            chunk_by: with ``chunking="late"``, ``"tokens"`` (default: ``chunk_tokens`` per
                chunk) or ``"sentences"`` (one chunk per sentence).

        Raises:
            InputError: non-string texts or ids, duplicate ids, lengths that differ, metadata
                Chroma cannot store, an unknown ``chunking`` or ``chunk_by``, ``chunk_tokens``
                or ``chunk_by`` without ``chunking="late"``, a blank document or a document
                metadata key late chunking sets (all checked before anything is written).
            StoreUnavailableError: the Chroma server went away; repeat the call to finish.
            StoreBusyError: another process kept writing to the store for ``lock_timeout``.

        Example:
            >>> ids = index.add(["Wings lift. They also stall."], ids=["wings"],
            ...                 chunking="late", chunk_by="sentences")
            >>> ids
            ['wings#0', 'wings#1']
        """
        check_choice("chunking", chunking, CHUNKING)
        if chunking == "late":
            return self._add_late(texts, ids, metadatas, show_progress, chunk_tokens, chunk_by)
        for name, value in (("chunk_tokens", chunk_tokens), ("chunk_by", chunk_by)):
            if value is not None:
                raise InputError(
                    f"{name}={value!r} applies to late chunking only; pass chunking='late' as "
                    f"well, or leave {name} out"
                )
        texts = check_texts(texts)
        given = check_ids(ids, len(texts)) if ids is not None else None
        metas = check_metadatas(metadatas, len(texts), given, texts)
        out, keep = assign_ids(texts, metas, given)
        if not texts:
            return []
        from tqdm.auto import tqdm

        done = 0
        bar = tqdm(total=len(keep), desc="indexing", unit="rec", disable=not show_progress)
        try:
            with bar, self._mirror.writing():
                for start in range(0, len(keep), self.batch_size):
                    rows = keep[start : start + self.batch_size]
                    plan = Batch(out, texts, metas, rows).plan(self._store)
                    write(self._mirror, self.embedder, plan)
                    done += len(rows)
                    bar.update(len(rows))
        except InputError as exc:
            if done == 0:
                raise
            raise InputError(
                f"{exc} ({done} of {len(keep)} records were stored before this error; fix the "
                "input and repeat the call: add() is an upsert)"
            ) from exc
        return out

    def _add_late(
        self,
        texts: Sequence[str],
        ids: Sequence[str] | None,
        metadatas: Sequence[Mapping[str, Any] | None] | None,
        show_progress: bool,
        chunk_tokens: int | None,
        chunk_by: str | None,
    ) -> list[str]:
        """:meth:`add` with ``chunking="late"``: everything is checked and split first, the
        writes are planned, only the documents that need writing are embedded, then written."""
        from tqdm.auto import tqdm

        size = positive_int(
            "chunk_tokens", chunk_tokens if chunk_tokens is not None else DEFAULT_CHUNK_TOKENS
        )
        by = check_choice("chunk_by", chunk_by if chunk_by is not None else "tokens", LATE_CHUNK_BY)
        texts = check_texts(texts)
        given = check_ids(ids, len(texts)) if ids is not None else None
        metas = check_metadatas(metadatas, len(texts), given, texts)
        doc_ids, keep = assign_ids(texts, metas, given)
        records = late_chunk_records(
            [texts[i] for i in keep],
            [doc_ids[i] for i in keep],
            [metas[i] for i in keep],
            self.embedder.tokenizer.token_offsets,
            by=by,
            chunk_tokens=size,
            numbers=keep,
        )
        chunks_of = {doc_ids[i]: len(rows) for i, rows in zip(keep, records.rows, strict=True)}
        out = [f"{doc_id}#{n}" for doc_id in doc_ids for n in range(chunks_of[doc_id])]
        if not keep:
            return out
        chunk_ids, chunk_texts, chunk_metas = records.ids, records.texts, records.metas
        doc_rows = records.rows
        # Filled below for the documents the plans say need writing; the others are skipped.
        vectors = np.zeros((len(chunk_ids), int(self.embedder.dim)), dtype=np.float32)
        n = len(chunk_ids)
        bar = tqdm(total=n, desc="indexing", unit="chunk", disable=not show_progress)
        with bar, self._mirror.writing():
            plans = []
            for at in range(0, n, self.batch_size):
                rows = list(range(at, min(at + self.batch_size, n)))
                batch = Batch(chunk_ids, chunk_texts, chunk_metas, rows, vectors)
                plans.append(batch.plan(self._store))
            needed = {row for plan in plans for row in plan.new + plan.moved}
            docs = [d for d, rows in enumerate(doc_rows) if needed.intersection(rows)]
            if docs:
                # Every chunk of a document that changed, since each one's vector depends on
                # all of it; all before the first write, so a bad document stops nothing halfway.
                try:
                    embedded = self.embedder.embed_late_chunks_many(
                        [[chunk_texts[row] for row in doc_rows[d]] for d in docs],
                        show_progress=show_progress,
                    )
                except InputError as exc:
                    # The embedder numbers the documents it was given; name them as the caller.
                    def caller(match: re.Match[str]) -> str:
                        i = keep[docs[int(match.group(1))]]
                        return f"texts[{i}] (id {doc_ids[i]!r})"

                    raise InputError(re.sub(r"documents\[(\d+)\]", caller, str(exc))) from exc
                for d, got in zip(docs, embedded, strict=True):
                    vectors[doc_rows[d]] = got
            for plan in plans:
                write(self._mirror, self.embedder, plan)
                bar.update(len(plan.batch.rows))
            # A document now split into fewer chunks leaves its old last chunks behind.
            written = set(chunk_ids)
            kept_ids = [doc_ids[i] for i in keep]
            stale = sorted(
                {
                    found
                    for at in range(0, len(kept_ids), _DOC_ID_BATCH)
                    for found in self._store.ids(
                        {"doc_id": {"$in": kept_ids[at : at + _DOC_ID_BATCH]}}
                    )
                }
                - written
            )
            self._mirror.delete(stale)
        return out

    def add_files(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        root: str | os.PathLike[str] | None = None,
        sync: bool = False,
        chunk_tokens: int | None = None,
        overlap: int | None = None,
        chunking: str | None = None,
        executor: Executor | None = None,
        show_progress: bool = False,
    ) -> IngestReport:
        """Index files (txt, md, html, jsonl; folders searched recursively) and keep the index
        in step with them: unchanged files are skipped without embedding anything, changed
        ones replaced, and with ``sync=True`` files gone from the folders given are removed.

        Each record's id comes from its file's path relative to ``root`` (default: each folder
        given, or a file's own folder), never from how the path was typed; a JSONL line keeps
        its ``_id``. Records carry ``source`` (that relative path), ``doc_id`` and ``chunk``.

        Args:
            paths: files and folders.
            root: the folder ids are relative to (every path must lie inside it).
            sync: remove the records of files gone from disk (in the folders scanned).
            chunk_tokens: tokens per chunk (default: the model's limit, at most 512; with
                late chunking 256).
            overlap: tokens shared by consecutive chunks (default: 1/8 of a chunk; not with
                late chunking).
            chunking: None (chunks embedded on their own) or ``"late"``.
            executor: who chunks and embeds: :class:`jinarag.retrieval.ingest.run.LocalExecutor`
                (default, this process) or ``jinarag.retrieval.ingest.ray_executor.RayExecutor``.
            show_progress: a progress bar (chunks, rate and time left) on stderr.

        Returns:
            An :class:`~jinarag.retrieval.ingest.run.IngestReport`: sources added, updated,
            unchanged, removed, missing (gone, kept without ``sync``) and skipped with the
            reason; chunks written and removed.

        Raises:
            InputError: a path that does not exist or lies outside ``root``, a file of an
                unsupported type named explicitly, bad chunk settings (before any write);
                a bad file met while writing (what was written before it stays; fix it and
                run again to finish).
        """
        from jinarag.retrieval.ingest.run import add_files, chunking_settings

        settings = chunking_settings(self.embedder, chunk_tokens, overlap, chunking)
        return add_files(
            self,
            paths,
            root=root,
            sync=sync,
            chunking=settings,
            executor=executor,
            show_progress=show_progress,
        )

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Make several writes one: the store's write lock is taken once (waiting up to
        ``lock_timeout``), and the BM25 snapshot saved once, at the end. Other processes'
        writes wait; readers see each batch as Chroma acknowledges it.

        Example:
            >>> with index.writing():
            ...     index.add(texts_a, ids=ids_a)
            ...     index.delete(old_ids)
        """
        with self._mirror.writing():
            yield

    def delete(
        self, ids: Sequence[str] | None = None, *, where: dict[str, Any] | None = None
    ) -> None:
        """Delete records by id and/or by metadata filter (both given: records matching both).

        Unknown ids are ignored. Raises InputError when neither is given.
        """
        if ids is None and where is None:
            raise InputError("delete() needs ids, a where filter, or both")
        targets = check_ids(ids, unique=False) if ids is not None else None
        if where is not None:
            matching = self._store.ids(where)
            targets = matching if targets is None else sorted(set(targets) & set(matching))
        assert targets is not None
        if not targets:
            return
        with self._mirror.writing():
            self._mirror.delete(targets)

    def get(
        self, ids: Sequence[str] | None = None, *, where: dict[str, Any] | None = None
    ) -> list[Hit]:
        """The stored records with these ids (in the order given; missing ids are skipped)
        and/or matching ``where``; with neither, every record. Scores are 0.0, space ``"none"``."""
        wanted = check_ids(ids, unique=False) if ids is not None else None
        records = self._store.records(wanted, where)
        order = wanted if wanted is not None else list(records)
        return [
            Hit(i, records[i][0], dict(records[i][1]), 0.0, "none") for i in order if i in records
        ]

    def count(self) -> int:
        """How many records the index holds."""
        return self._store.count()

    @property
    def bm25_index(self) -> BM25Index:
        """The derived BM25 index (read it; write through :meth:`add` and :meth:`delete`)."""
        return self._bm25

    def verify(self, repair: bool = False) -> VerifyReport:
        """Check that every record Chroma counts is reachable by dense search and that BM25
        and its snapshot equal Chroma; with ``repair``, mend what is not (unreachable records
        are deleted and added again with their stored vectors, BM25 is rebuilt from Chroma).

        Takes the store's write lock (it may wait ``lock_timeout``). Costs one query per
        record; ``jinarag verify STORE`` runs it in a separate process.

        Example:
            >>> report = index.verify(repair=True)
            >>> report.healthy, report.found_unreachable, report.repaired_vectors
            (True, 0, 0)
        """
        return verify_index(self._mirror, self.embedder, self._store.where, repair)

    def refresh(self) -> None:
        """Rebuild the BM25 index from Chroma (needed only after another program changed the
        text of an existing id directly in Chroma; other outside writes are noticed)."""
        self._mirror.sync(force=True)

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
        plan = plan_search(
            self, query, k, mode, fusion, weights, where, candidates, rerank, rerank_top, rrf_k
        )
        vector = check_query_vector(query_embedding, self.embedder.dim, self.embedder.name)
        found = retrieve(
            self._mirror, self.embedder, query, plan.mode, plan.candidates, plan.where, vector
        )
        ranked, space = rank(plan, found)
        records = self._store.records([doc_id for doc_id, _ in ranked]) if ranked else {}
        hits = to_hits(found, ranked, records, space)
        if plan.reranker is not None and hits:
            hits = rerank_hits(plan.reranker, query, hits)
        return hits[: plan.k]

    def sources(
        self, query: str, candidates: int | None = None, where: dict[str, Any] | None = None
    ) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
        """The two ranked candidate lists before fusion: ``(dense, bm25)``, each a list of
        ``(id, score)`` best first (cosine similarities, BM25 scores). Feed them to
        :func:`jinarag.fusion.fuse` to try other fusion settings without searching again.
        """
        check_text(query, "query")
        n = positive_int("candidates", candidates, allow_none=True)
        n_cand = n if n is not None else self.candidates
        found = retrieve(self._mirror, self.embedder, query, "hybrid", n_cand, where)
        return list(found.dense), list(found.bm25)

    # -- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        """Release an in-memory index's storage (a stored index needs no closing)."""
        self._store.close()

    def __enter__(self) -> HybridIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"HybridIndex(collection={self.collection_name!r}, store={self._store.where!r}, "
            f"embedder={self.embedder.name!r}, records={len(self._bm25)})"
        )


def _tuned_settings(folder: Path) -> FusionSettings | None:
    """The store's tuned fusion settings (None when there are none). Only a folder this process
    can list holds them: a store path that is a file, or a folder without permission, is the
    store's own error, which opening Chroma names (with the fix)."""
    try:
        with os.scandir(folder):
            pass
    except OSError:
        return None
    return read_fusion_settings(folder / FUSION_FILE)

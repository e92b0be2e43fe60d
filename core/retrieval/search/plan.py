"""One search, step by step: plan (the call's arguments checked, the index's defaults filled
in), retrieve (each source's candidates), rank (fuse them), build the hits, rerank.

The tuned search defaults live here (:mod:`jinarag.retrieval.index` re-exports them).
Nothing here changes the records; :class:`jinarag.HybridIndex` runs these steps in order.

Example:
    >>> plan = plan_search(index, "angle of attack", k=3, mode="hybrid")
    >>> plan.fusion, plan.candidates
    ('rrf', 100)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jinarag.errors import InputError
from jinarag.retrieval.search import fusion as _fusion
from jinarag.retrieval.search.hits import Hit, SourceScore
from jinarag.retrieval.search.settings import FusionSettings, tuned_settings
from jinarag.retrieval.write.records import check_ids, check_where
from jinarag.validation import check_choice, check_text, describe, positive_int

if TYPE_CHECKING:
    from jinarag.inference.embedder import Embedder
    from jinarag.inference.reranker import Reranker
    from jinarag.retrieval.store.collection import ChromaStore, Records
    from jinarag.retrieval.write.mirror import BM25Mirror

__all__ = [
    "DEFAULT_CANDIDATES",
    "DEFAULT_FUSION",
    "DEFAULT_RERANK_TOP",
    "DEFAULT_RRF_K",
    "DEFAULT_STEMMER",
    "DEFAULT_STOPWORDS",
    "DEFAULT_WEIGHTS",
    "MODES",
    "Candidates",
    "SearchDefaults",
    "SearchPlan",
    "check_query_vector",
    "plan_search",
    "rank",
    "rerank_hits",
    "retrieve",
    "run_search",
    "search_defaults",
    "candidate_lists",
    "stored_hits",
    "to_hits",
]

MODES = ("hybrid", "dense", "bm25")

# Search defaults, chosen by their worst case over two collections: the setting whose smallest
# nDCG@10 gain over the better single source, on the odd-numbered queries of Cranfield and of
# CACM (MiniLM, 256 tokens), is largest (jinarag.evaluation.tuning.sweep_worst_case). The even
# halves report them; docs/hybrid-search.md has the tables.
DEFAULT_FUSION = "rrf"
DEFAULT_WEIGHTS = {  # (dense, bm25), per fusion method: each one's best at DEFAULT_CANDIDATES
    "rrf": (0.75, 1.0),
    "relative": (0.75, 1.0),
    "dbsf": (0.75, 1.0),
}
DEFAULT_RRF_K = 100
DEFAULT_CANDIDATES = 100  # per source, before fusion
DEFAULT_RERANK_TOP = 50  # fused results handed to the reranker
# The BM25 analyser: English stopwords removed, then Snowball English stems. Chosen over
# stopwords only, stems only and neither: it gives BM25 and every fusion the best worst case.
DEFAULT_STOPWORDS = "english"
DEFAULT_STEMMER = "english"


@dataclass(frozen=True)
class SearchDefaults:
    """The settings a search call falls back on: a :class:`HybridIndex`'s, from its arguments,
    else the store's tuned file (:mod:`jinarag.retrieval.search.settings`), else the shipped
    defaults above. Build it with :func:`search_defaults`."""

    reranker: Reranker | None
    fusion: str
    weights: Sequence[float] | None
    method_weights: Mapping[str, Sequence[float]]  # used when weights is None
    rrf_k: float
    candidates: int
    rerank_top: int
    tuned: FusionSettings | None = None


def search_defaults(
    folder: Path | None,
    reranker: Reranker | None = None,
    fusion: str | None = None,
    weights: Sequence[float] | None = None,
    rrf_k: float | None = None,
    candidates: int | None = None,
    rerank_top: int = DEFAULT_RERANK_TOP,
) -> SearchDefaults:
    """Checked defaults: the arguments, else ``folder``'s tuned settings, else the shipped."""
    tuned = tuned_settings(folder) if folder is not None else None
    fusion = fusion if fusion is not None else (tuned.fusion if tuned else DEFAULT_FUSION)
    rrf_k = _rrf_k(rrf_k if rrf_k is not None else (tuned.rrf_k if tuned else DEFAULT_RRF_K))
    if reranker is not None:
        _check_reranker("reranker", reranker)
    if candidates is None:
        candidates = tuned.candidates if tuned is not None else DEFAULT_CANDIDATES
    return SearchDefaults(
        reranker=reranker,
        fusion=check_choice("fusion", fusion, _fusion.FUSION_METHODS),
        weights=tuple(_fusion.normalize_weights(weights, 2)) if weights is not None else None,
        method_weights={**DEFAULT_WEIGHTS, **(tuned.weights if tuned is not None else {})},
        rrf_k=rrf_k,
        candidates=positive_int("candidates", candidates),
        rerank_top=positive_int("rerank_top", rerank_top),
        tuned=tuned,
    )


@dataclass(frozen=True)
class SearchPlan:
    """One search call's settings, checked, with the index's defaults filled in."""

    k: int
    mode: str
    fusion: str
    weights: Sequence[float]
    rrf_k: float
    where: dict[str, Any] | None
    reranker: Reranker | None
    pool: int  # fused results kept: k, or more for the reranker to reorder
    candidates: int  # results taken from each source before fusion


def plan_search(
    defaults: SearchDefaults,
    query: Any,
    k: Any = 10,
    mode: str = "hybrid",
    fusion: str | None = None,
    weights: Sequence[float] | None = None,
    where: dict[str, Any] | None = None,
    candidates: int | None = None,
    rerank: Reranker | bool | None = None,
    rerank_top: int | None = None,
    rrf_k: float | None = None,
) -> SearchPlan:
    """Check :meth:`HybridIndex.search`'s arguments and fill in ``defaults``' settings.

    Raises:
        InputError: a bad ``k``, mode, fusion, weights or filter, with the valid choices.
    """
    check_text(query, "query")
    n = positive_int("k", k)
    assert n is not None  # allow_none is off
    check_choice("mode", mode, MODES)
    fusion = check_choice(
        "fusion", fusion if fusion is not None else defaults.fusion, _fusion.FUSION_METHODS
    )
    if weights is not None and mode != "hybrid":
        raise InputError(f"weights apply to mode='hybrid' only (got mode={mode!r})")
    if weights is not None:
        weights = _fusion.normalize_weights(weights, 2)
    else:
        weights = (
            defaults.weights if defaults.weights is not None else defaults.method_weights[fusion]
        )
    rrf_k = _rrf_k(rrf_k) if rrf_k is not None else defaults.rrf_k
    where = check_where(where)
    reranker = _pick_reranker(defaults.reranker, rerank)
    top = positive_int("rerank_top", rerank_top, allow_none=True)  # checked, used or not
    pool = n
    if reranker is not None:
        pool = max(n, top if top is not None else defaults.rerank_top)
    n_cand = positive_int("candidates", candidates, allow_none=True)
    if n_cand is None:
        # Single-source modes ask for as many as hybrid does too: the approximate
        # nearest-neighbour search is most accurate well inside its result list, and
        # dense mode then returns exactly the head of hybrid's dense candidates.
        n_cand = max(pool, defaults.candidates)
    elif n_cand < pool:
        raise InputError(f"candidates ({n_cand}) must be at least k ({pool}) results")
    return SearchPlan(n, mode, fusion, weights, rrf_k, where, reranker, pool, n_cand)


def _pick_reranker(default: Reranker | None, rerank: Reranker | bool | None) -> Reranker | None:
    if rerank is None:
        return default
    if rerank is False:
        return None
    if rerank is True:
        if default is None:
            raise InputError(
                "rerank=True but this index has no reranker; pass "
                "HybridIndex(..., reranker=jinarag.Reranker.from_pretrained('turbo')) or "
                "rerank=<a Reranker>"
            )
        return default
    return _check_reranker("rerank", rerank, ", True, False or None")


def _check_reranker(name: str, reranker: Any, alternatives: str = " or None") -> Reranker:
    """``reranker`` when it scores (query, documents): a jinarag Reranker or a remote one."""
    if not callable(getattr(reranker, "score", None)):
        raise InputError(
            f"{name} must be a Reranker{alternatives}, got {describe(reranker)}; pass "
            "jinarag.Reranker.from_pretrained('turbo')"
            + (" (an Embedder goes to embedder=)" if hasattr(reranker, "embed_query") else "")
        )
    return reranker


def _rrf_k(value: Any) -> float:
    """RRF's rank constant, checked by :func:`~jinarag.retrieval.search.fusion.rrf` and
    named as the option it came from."""
    try:
        _fusion.rrf([], k=value)
    except InputError as exc:
        raise InputError(f"rrf_k={value!r:.60} is refused: {exc}") from None
    return value


def check_query_vector(
    query_embedding: Sequence[float] | np.ndarray | None, dim: int, embedder: str
) -> np.ndarray | None:
    """A given query vector as float32, checked against the embedder's dimension (None passes)."""
    if query_embedding is None:
        return None
    try:
        raw = np.asarray(query_embedding)
    except (TypeError, ValueError):  # ragged nesting, or an object numpy cannot read
        raw = np.asarray(None)
    if raw.dtype.kind not in "iuf":  # strings, bools, None, objects: not a vector
        raise InputError(
            f"query_embedding must be {dim} finite floats, got {type(query_embedding).__name__} "
            f"{query_embedding!r:.60}; pass the query's vector (a list or array of numbers), "
            "or leave query_embedding out to embed the query here."
        )
    vector = raw.astype(np.float32)
    if vector.shape != (dim,) or not np.isfinite(vector).all():
        raise InputError(
            f"query_embedding must be {dim} finite floats (the dimension of {embedder}), got "
            f"shape {vector.shape}; embed the query with the index's embedder, or leave "
            "query_embedding out."
        )
    return vector


@dataclass
class Candidates:
    """The two ranked candidate lists of one query, before fusion: ``(id, score)`` best first."""

    dense: list[tuple[str, float]] = field(default_factory=list)
    bm25: list[tuple[str, float]] = field(default_factory=list)


def retrieve(
    mirror: BM25Mirror,
    embedder: Embedder,
    query: str,
    mode: str,
    n_cand: int,
    where: dict[str, Any] | None,
    vector: np.ndarray | None = None,
) -> Candidates:
    """Both sources' candidate lists (only the ones ``mode`` needs), ``n_cand`` at most each."""
    mirror.fresh()
    found = Candidates()
    if len(mirror.bm25) == 0:
        return found
    if mode in ("hybrid", "dense"):
        if vector is None:
            vector = np.asarray(embedder.embed_query(query), dtype=np.float32)
        found.dense = mirror.store.query(vector, min(n_cand, len(mirror.bm25)), where)
    if mode in ("hybrid", "bm25"):
        allowed = set(mirror.store.ids(where)) if where is not None else None
        found.bm25 = mirror.bm25.search(query, n_cand, allowed)
    return found


def rank(plan: SearchPlan, found: Candidates) -> tuple[list[tuple[str, float]], str]:
    """The ranking the mode asks for (fused in hybrid mode), cut to the plan's pool, and the
    space its scores are in."""
    if plan.mode == "dense":
        return found.dense[: plan.pool], "cosine"
    if plan.mode == "bm25":
        return found.bm25[: plan.pool], "bm25"
    fused = _fusion.fuse(plan.fusion, [found.dense, found.bm25], plan.weights, plan.rrf_k)
    return fused[: plan.pool], plan.fusion


def to_hits(
    found: Candidates, ranked: list[tuple[str, float]], records: Records, space: str
) -> list[Hit]:
    """One :class:`Hit` per ranked id still in ``records``, with each source's rank and score."""
    dense = {doc_id: SourceScore(r, s) for r, (doc_id, s) in enumerate(found.dense, start=1)}
    bm25 = {doc_id: SourceScore(r, s) for r, (doc_id, s) in enumerate(found.bm25, start=1)}
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


def rerank_hits(reranker: Reranker, query: str, hits: list[Hit]) -> list[Hit]:
    """New hits in the reranker's order, scored by its sigmoid relevance."""
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


def run_search(
    mirror: BM25Mirror,
    embedder: Embedder,
    plan: SearchPlan,
    query: str,
    vector: np.ndarray | None = None,
) -> list[Hit]:
    """The steps of one search in order: retrieve, rank, build the hits, rerank, keep ``k``."""
    found = retrieve(mirror, embedder, query, plan.mode, plan.candidates, plan.where, vector)
    ranked, space = rank(plan, found)
    records = mirror.store.records([doc_id for doc_id, _ in ranked]) if ranked else {}
    hits = to_hits(found, ranked, records, space)
    if plan.reranker is not None and hits:
        hits = rerank_hits(plan.reranker, query, hits)
    return hits[: plan.k]


def candidate_lists(
    mirror: BM25Mirror,
    embedder: Embedder,
    defaults: SearchDefaults,
    query: str,
    candidates: int | None = None,
    where: dict[str, Any] | None = None,
) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """:meth:`HybridIndex.sources`: both candidate lists before fusion, ``(dense, bm25)``."""
    check_text(query, "query")
    n = positive_int("candidates", candidates, allow_none=True)
    check_where(where)
    found = retrieve(
        mirror, embedder, query, "hybrid", n if n is not None else defaults.candidates, where
    )
    return list(found.dense), list(found.bm25)


def stored_hits(
    store: ChromaStore, ids: Sequence[str] | None, where: dict[str, Any] | None
) -> list[Hit]:
    """:meth:`HybridIndex.get`: the stored records with these ids (in the order given; missing
    ids skipped) and/or matching ``where`` (neither: every record), as hits scored 0.0."""
    wanted = check_ids(ids, unique=False) if ids is not None else None
    records = store.records(wanted, check_where(where))
    order = wanted if wanted is not None else list(records)
    return [Hit(i, records[i][0], dict(records[i][1]), 0.0, "none") for i in order if i in records]

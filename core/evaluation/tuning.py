"""The fusion sweep that chose HybridIndex's defaults: weights, RRF k and candidate counts tried
on the tuning queries, from candidate lists retrieved once.

:func:`sweep` scores every setting on one collection; :func:`sweep_worst_case` runs it on
several and ranks each setting by its worst case: the smallest gain, over the collections, of
its nDCG@10 over the better single source (dense or BM25) of that collection. A default must
help on every collection, not shine on one.

Reproduce it (odd-numbered queries; ``jinarag eval DATASET_DIR`` then reports the even ones)::

    jinarag eval tests/data/cranfield --tune

Example:
    >>> lists = source_lists(index, dataset, select_queries(dataset, "odd"))
    >>> sweep(lists, dataset, select_queries(dataset, "odd")).defaults()
    >>> sweep_worst_case({"cranfield": (lists, dataset, odd), "cacm": (...)}).best()
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jinarag.errors import InputError
from jinarag.evaluation.beir import Dataset
from jinarag.evaluation.metrics import ndcg_at_k, recall_at_k
from jinarag.evaluation.runner import judged_ids
from jinarag.retrieval.search import fusion as _fusion
from jinarag.validation import (
    check_choice,
    check_instance,
    check_number,
    ordered_list,
    positive_int,
)

if TYPE_CHECKING:  # needs chromadb: only the caller's index is used here
    from jinarag.retrieval.index import HybridIndex

__all__ = [
    "CANDIDATES_GRID",
    "RRF_K_GRID",
    "WEIGHT_GRID",
    "Lists",
    "SweepResult",
    "format_sweep",
    "single_sources",
    "source_lists",
    "sweep",
    "sweep_worst_case",
]

WEIGHT_GRID = (
    (1.0, 0.25),
    (1.0, 0.5),
    (1.0, 0.75),
    (1.0, 1.0),
    (0.75, 1.0),
    (0.5, 1.0),
    (0.25, 1.0),
)
RRF_K_GRID = (1, 5, 10, 20, 40, 60, 100)
CANDIDATES_GRID = (20, 50, 100, 200)

Lists = dict[str, tuple[list[tuple[str, float]], list[tuple[str, float]]]]
"""``{query_id: (dense, bm25)}``: each source's ``(doc_id, score)`` candidates, best first."""


@dataclass
class SweepResult:
    """Every setting tried, with its mean nDCG@10 and Recall@100 on the tuning queries.

    ``key`` is the row field that ranks the settings: ``"ndcg10"`` for one collection,
    ``"worst_gain"`` for :func:`sweep_worst_case` (whose rows also hold each collection's
    numbers under ``"collections"``).
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    key: str = "ndcg10"

    def best(self, fusion: str | None = None, candidates: int | None = None) -> dict[str, Any]:
        """The best row (of one fusion method, at one candidate count, when given): the highest
        :attr:`key`; on a tie the fewer candidates (cheaper), then the earlier row of the grid."""
        if fusion is not None:
            check_choice("fusion", fusion, _fusion.FUSION_METHODS)
        positive_int("candidates", candidates, allow_none=True)
        pool = [
            (n, r)
            for n, r in enumerate(self.rows)
            if (fusion is None or r["fusion"] == fusion)
            and (candidates is None or r["candidates"] == candidates)
        ]
        if not pool:
            raise InputError(f"the sweep has no rows for fusion {fusion!r}")
        _, row = min(pool, key=lambda p: (-round(p[1][self.key], 12), p[1]["candidates"], p[0]))
        return row

    def defaults(self, fusion: str = "rrf") -> dict[str, Any]:
        """The defaults this sweep implies with ``fusion`` as the default method: that method's
        best row gives the candidate count (and RRF's k), then each method's best weights at
        that candidate count. ``"best_fusion"`` names the method of the best row overall."""
        top = self.best(check_choice("fusion", fusion, _fusion.FUSION_METHODS))
        at = {m: self.best(m, top["candidates"]) for m in _fusion.FUSION_METHODS}
        return {
            "weights": {m: row["weights"] for m, row in at.items()},
            "rrf_k": at["rrf"]["rrf_k"],
            "candidates": top["candidates"],
            "best_fusion": self.best()["fusion"],
        }


def source_lists(
    index: HybridIndex, dataset: Dataset, query_ids: Sequence[str], candidates: int = 200
) -> Lists:
    """Each query's ``(dense, bm25)`` candidate lists (see :meth:`HybridIndex.sources`)."""
    check_instance("dataset", dataset, Dataset, "read one with load_beir(folder)")
    positive_int("candidates", candidates)
    ids = ordered_list(query_ids, "query_ids", "query ids", "'1'", one="id")
    for number, q in enumerate(ids):
        if q not in dataset.queries:
            raise InputError(
                f"query_ids[{number}]={q!r:.60} is not a query of {dataset.name!r}; take the ids "
                "from select_queries(dataset)"
            )
    return {q: index.sources(dataset.queries[q], candidates=candidates) for q in ids}


def sweep(
    lists: Lists,
    dataset: Dataset,
    query_ids: Sequence[str],
    *,
    weights: Sequence[tuple[float, float]] = WEIGHT_GRID,
    rrf_ks: Sequence[float] = RRF_K_GRID,
    candidates: Sequence[int] = CANDIDATES_GRID,
) -> SweepResult:
    """Try fusion settings on ``query_ids``, from lists retrieved once with the largest
    candidate count (:func:`source_lists`): a smaller count uses the top of those lists, which
    is what a search with that count returns, up to the approximate nearest-neighbour search.
    Recall@100 always fuses at least 100 candidates per source, as :meth:`HybridIndex.search`
    does for ``k=100``."""
    grid = _checked_grid(weights, rrf_ks, candidates)
    query_ids = _tuning_ids(lists, dataset, query_ids)
    if not query_ids:
        raise InputError(f"no judged queries to tune on in {dataset.name!r}")
    weights, rrf_ks, candidates = grid
    result = SweepResult()
    settings: list[tuple[str, tuple[float, float], float | None, int]] = []
    for c, w in itertools.product(candidates, weights):
        settings += [("rrf", w, k, c) for k in rrf_ks]
        settings += [("relative", w, None, c), ("dbsf", w, None, c)]
    for method, w, k, c in settings:
        rrf_k = k if k is not None else _fusion.RRF_K
        ndcgs, recalls = [], []
        for q in query_ids:
            dense, bm25 = lists[q]
            top = _fusion.fuse(method, [dense[:c], bm25[:c]], w, rrf_k)
            ndcgs.append(ndcg_at_k([d for d, _ in top], dataset.qrels[q], 10))
            if c < 100:
                top = _fusion.fuse(method, [dense[:100], bm25[:100]], w, rrf_k)
            recalls.append(recall_at_k([d for d, _ in top], dataset.qrels[q], 100))
        result.rows.append(
            {
                "fusion": method,
                "weights": w,
                "rrf_k": k,
                "candidates": c,
                "ndcg10": statistics.fmean(ndcgs),
                "recall100": statistics.fmean(recalls),
            }
        )
    return result


def _checked_grid(
    weights: Sequence[tuple[float, float]], rrf_ks: Sequence[float], candidates: Sequence[int]
) -> tuple[list[tuple[float, float]], list[float], list[int]]:
    """The sweep's grid as lists, each value checked (InputError naming the first bad one)."""
    pairs = ordered_list(weights, "weights", "(dense, bm25) pairs", "(1.0, 0.5)", "pair")
    ks = ordered_list(rrf_ks, "rrf_ks", "numbers", "60", "number")
    counts = ordered_list(candidates, "candidates", "integers", "100", "integer")
    for pair in pairs:
        _fusion.normalize_weights(pair, 2)
    for number, k in enumerate(ks):
        check_number(f"rrf_ks[{number}]", k, low=0)
    for number, count in enumerate(counts):
        positive_int(f"candidates[{number}]", count)
    return pairs, ks, counts


def _tuning_ids(lists: Lists, dataset: Dataset, query_ids: Sequence[str]) -> list[str]:
    """``query_ids`` as a list, each judged and with candidate lists; else an InputError."""
    check_instance("lists", lists, Mapping, "make them with source_lists(index, dataset, ids)")
    ids = judged_ids(dataset, query_ids)
    for number, q in enumerate(ids):
        if q not in lists:
            raise InputError(
                f"query_ids[{number}]={q!r:.60} has no candidate lists; make them with "
                "source_lists(index, dataset, query_ids)"
            )
    return ids


def single_sources(lists: Lists, dataset: Dataset, query_ids: Sequence[str]) -> dict[str, float]:
    """Mean nDCG@10 of each source alone: ``{"dense": ..., "bm25": ...}``."""
    query_ids = _tuning_ids(lists, dataset, query_ids)
    if not query_ids:
        raise InputError(f"no judged queries to score in {dataset.name!r}")
    return {
        source: statistics.fmean(
            ndcg_at_k([d for d, _ in lists[q][i]], dataset.qrels[q], 10) for q in query_ids
        )
        for i, source in enumerate(("dense", "bm25"))
    }


def sweep_worst_case(
    runs: Mapping[str, tuple[Lists, Dataset, Sequence[str]]],
    *,
    weights: Sequence[tuple[float, float]] = WEIGHT_GRID,
    rrf_ks: Sequence[float] = RRF_K_GRID,
    candidates: Sequence[int] = CANDIDATES_GRID,
) -> SweepResult:
    """Sweep each collection (``{name: (lists, dataset, query_ids)}``) with the same grid and
    rank every setting by its worst case: ``worst_gain`` is the smallest, over the
    collections, of its nDCG@10 minus the better single source's on that collection.

    Each row keeps the setting, ``worst_gain``, the worst ``ndcg10`` and ``recall100``, and
    ``collections``: ``{name: {"ndcg10", "recall100", "gain"}}``.
    """
    check_instance("runs", runs, Mapping, "pass {name: (lists, dataset, query_ids)}")
    if not runs:
        raise InputError("sweep_worst_case needs at least one collection")
    grid = {"weights": weights, "rrf_ks": rrf_ks, "candidates": candidates}
    swept = {name: sweep(lists, ds, qids, **grid) for name, (lists, ds, qids) in runs.items()}
    best_single = {
        name: max(single_sources(lists, ds, qids).values())
        for name, (lists, ds, qids) in runs.items()
    }
    result = SweepResult(key="worst_gain")
    for rows in zip(*(r.rows for r in swept.values()), strict=True):
        per = {
            name: {
                "ndcg10": row["ndcg10"],
                "recall100": row["recall100"],
                "gain": row["ndcg10"] - best_single[name],
            }
            for name, row in zip(swept, rows, strict=True)
        }
        setting = {key: rows[0][key] for key in ("fusion", "weights", "rrf_k", "candidates")}
        result.rows.append(
            {
                **setting,
                "worst_gain": min(c["gain"] for c in per.values()),
                "ndcg10": min(c["ndcg10"] for c in per.values()),
                "recall100": min(c["recall100"] for c in per.values()),
                "collections": per,
            }
        )
    return result


def format_sweep(result: SweepResult, top: int = 10) -> str:
    """Markdown tables of each fusion method's ``top`` settings by :attr:`SweepResult.key`
    (with each collection's nDCG@10 and gain for a worst-case sweep)."""
    check_instance("result", result, SweepResult, "pass what sweep() returned")
    positive_int("top", top)
    names = list(result.rows[0].get("collections", {})) if result.rows else []
    lines = []
    for method in _fusion.FUSION_METHODS:
        rows = sorted(
            (r for r in result.rows if r["fusion"] == method), key=lambda r: -r[result.key]
        )[:top]
        lines.append(
            f"\n{method}: best {len(rows)} of {sum(r['fusion'] == method for r in result.rows)}"
        )
        head = "| weights (dense, bm25) | rrf k | candidates | nDCG@10 | Recall@100 |"
        rule = "|---|---:|---:|---:|---:|"
        if names:
            head = head.replace("nDCG@10 | Recall@100", "worst gain | worst nDCG@10")
            head += "".join(f" {n} nDCG@10 (gain) |" for n in names)
            rule += "---:|" * len(names)
        lines += [head, rule]
        for r in rows:
            k = "-" if r["rrf_k"] is None else r["rrf_k"]
            if names:
                cells = f"{r['worst_gain']:+.4f} | {r['ndcg10']:.4f} |" + "".join(
                    f" {c['ndcg10']:.4f} ({c['gain']:+.4f}) |" for c in r["collections"].values()
                )
            else:
                cells = f"{r['ndcg10']:.4f} | {r['recall100']:.4f} |"
            lines.append(f"| {r['weights']} | {k} | {r['candidates']} | {cells}")
    return "\n".join(lines)

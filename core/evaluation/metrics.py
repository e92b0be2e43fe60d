"""Ranking metrics over judged data, computed by ``ir-measures`` (trec_eval's own code through
pytrec_eval): nDCG@k, Recall@k, MAP (average precision), MRR (reciprocal rank) and P@k.

Example:
    >>> ndcg_at_k(["d3", "d1"], {"d1": 1, "d2": 1}, k=10)
    0.38685280723454163
    >>> query_metrics(["d3", "d1"], {"d1": 1, "d2": 1})["mrr"]
    0.5
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from jinarag.validation import check_instance, ordered_list, positive_int

__all__ = ["METRICS", "ndcg_at_k", "query_metrics", "recall_at_k"]

# The metrics of one query that the eval runner reports, by name: (ir-measures measure, cutoff).
METRICS = {
    "ndcg10": ("nDCG", 10),
    "recall100": ("R", 100),
    "map": ("AP", 100),
    "mrr": ("RR", 100),
    "p10": ("P", 10),
}


def _checked(
    ranking: Sequence[str], judgements: Mapping[str, int], k: int
) -> tuple[list[str], int]:
    """The ranking as a list and ``k``, or an InputError naming the bad argument."""
    listed = ordered_list(ranking, "ranking", "document ids", "'doc-1'", one="id")
    check_instance("judgements", judgements, Mapping, "pass {doc_id: relevance}, e.g. qrels[q]")
    n = positive_int("k", k)
    assert n is not None  # allow_none is off
    return listed, n


def _measures(
    ranking: list[str], judgements: Mapping[str, int], wanted: Mapping[str, tuple[str, int]]
) -> dict[str, float]:
    """``wanted`` ({name: (measure, cutoff)}) of one query, by trec_eval's definitions."""
    import ir_measures  # imported when used: it loads pytrec_eval's C extension

    measures = {name: ir_measures.parse_measure(f"{m}@{k}") for name, (m, k) in wanted.items()}
    # A run is scored by rank: the first id gets the highest score (ties would be re-sorted).
    run = {"q": {doc: float(len(ranking) - i) for i, doc in enumerate(dict.fromkeys(ranking))}}
    qrels = {"q": {doc: int(rel) for doc, rel in judgements.items()}}
    found = ir_measures.calc_aggregate(list(measures.values()), qrels, run)
    return {name: float(found.get(measure, 0.0)) for name, measure in measures.items()}


def query_metrics(ranking: Sequence[str], judgements: Mapping[str, int]) -> dict[str, float]:
    """Every metric of :data:`METRICS` for one query's ranking."""
    ranking, _ = _checked(ranking, judgements, 1)
    return _measures(ranking, judgements, METRICS)


def ndcg_at_k(ranking: Sequence[str], judgements: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k with linear gains (``Σ rel_i / log2(i + 1)``), as trec_eval and BEIR compute it."""
    ranking, k = _checked(ranking, judgements, k)
    return _measures(ranking, judgements, {"m": ("nDCG", k)})["m"]


def recall_at_k(ranking: Sequence[str], judgements: Mapping[str, int], k: int = 100) -> float:
    """The share of the relevant documents found in the first ``k`` results."""
    ranking, k = _checked(ranking, judgements, k)
    return _measures(ranking, judgements, {"m": ("R", k)})["m"]

"""Ranking metrics over judged data: nDCG@k and Recall@k, as trec_eval and BEIR compute them.

Example:
    >>> ndcg_at_k(["d3", "d1"], {"d1": 1, "d2": 1}, k=10)
    0.38685280723454163
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from jinarag.validation import check_instance, ordered_list, positive_int

__all__ = ["ndcg_at_k", "recall_at_k"]


def _checked(
    ranking: Sequence[str], judgements: Mapping[str, int], k: int
) -> tuple[list[str], int]:
    """The ranking as a list and ``k``, or an InputError naming the bad argument."""
    listed = ordered_list(ranking, "ranking", "document ids", "'doc-1'", one="id")
    check_instance("judgements", judgements, Mapping, "pass {doc_id: relevance}, e.g. qrels[q]")
    n = positive_int("k", k)
    assert n is not None  # allow_none is off
    return listed, n


def ndcg_at_k(ranking: Sequence[str], judgements: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k with linear gains (``Σ rel_i / log2(i + 1)``), as trec_eval and BEIR compute it."""
    ranking, k = _checked(ranking, judgements, k)
    dcg = sum(judgements.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranking[:k]))
    ideal = sorted((r for r in judgements.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranking: Sequence[str], judgements: Mapping[str, int], k: int = 100) -> float:
    """The share of the relevant documents found in the first ``k`` results."""
    ranking, k = _checked(ranking, judgements, k)
    relevant = {d for d, r in judgements.items() if r > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:k])) / len(relevant)

"""Score fusion: pure functions that merge ranked lists of ids into one ranking.

Each source is a ranked list of ``(id, score)`` pairs, best first (for example the dense and
the BM25 results of one query). Every function returns one list of ``(id, fused_score)``,
best first. Nothing here knows about Chroma, BM25 or models, so each method is easy to test
and to reuse.

Methods:

* ``"rrf"``, weighted reciprocal rank fusion: ``Σ_s w_s / (k + rank_s(id))`` with ranks from 1.
  It ignores the raw scores, so it needs no normalisation; ``k`` (60 by default) flattens the
  difference between the top ranks.
* ``"relative"``, relative-score fusion: each source's scores are min-max scaled to [0, 1]
  (best = 1, worst = 0; a source whose scores are all equal gives each of them 1), then
  ``Σ_s w_s · scaled_s(id)``; an id missing from a source gets 0 from it.
* ``"dbsf"``, distribution-based score fusion: each source's scores are scaled with the
  interval ``mean ± 3·std`` mapped to [0, 1] (clipped; equal scores give 0.5), then summed
  with the weights as above. The scale comes from the spread of all the scores rather than
  from the two extremes, so the lowest score of a source does not automatically count as 0.

Duplicates inside one source list are collapsed first: an id keeps its first (best) place
and score, and the ranks after it move up.

Example:
    >>> dense = [("a", 0.9), ("b", 0.8)]
    >>> bm25 = [("b", 12.0), ("c", 7.5)]
    >>> [doc_id for doc_id, _ in fuse("rrf", [dense, bm25])]
    ['b', 'a', 'c']
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from jinarag.errors import InputError
from jinarag.validation import check_choice, ordered_list

__all__ = [
    "FUSION_METHODS",
    "RRF_K",
    "Ranking",
    "dbsf",
    "dedupe",
    "fuse",
    "normalize_weights",
    "relative_score",
    "rrf",
]

Ranking = Sequence[tuple[str, float]]

RRF_K = 60
"""The default reciprocal-rank constant (the value of the original RRF paper)."""


def dedupe(ranking: Ranking, name: str = "ranking") -> list[tuple[str, float]]:
    """Collapse repeated ids in one ranked list, keeping each id's first (best) entry.

    Raises:
        InputError: ``ranking`` is not a list of ``(id, score)`` pairs with numeric scores
            (``name`` names it in the message).

    Example:
        >>> dedupe([("a", 3.0), ("b", 2.0), ("a", 1.0)])
        [('a', 3.0), ('b', 2.0)]
    """
    seen: set[str] = set()
    out: list[tuple[str, float]] = []
    for position, item in enumerate(ordered_list(ranking, name, "(id, score) pairs", "('a', 0.9)")):
        try:
            doc_id, score = item
            if isinstance(score, str | bytes):
                raise TypeError("a score is a number")
            value = float(score)
        except (TypeError, ValueError) as exc:
            raise InputError(
                f"{name}[{position}] is {type(item).__name__} {item!r:.60}; each entry of a "
                "ranking is an (id, score) pair with a number as score, best first"
            ) from exc
        if doc_id not in seen:
            seen.add(doc_id)
            out.append((doc_id, value))
    return out


def normalize_weights(weights: Sequence[float] | None, n_sources: int) -> list[float]:
    """Check per-source weights and return them as floats (all 1.0 when ``weights`` is None).

    Weights need not sum to 1; only their ratios matter to the ranking.

    Raises:
        InputError: the number of weights differs from the number of sources, a weight is
            negative or not finite, or every weight is zero.
    """
    if weights is None:
        return [1.0] * n_sources
    if isinstance(weights, str | bytes) or not isinstance(weights, Sequence):
        raise InputError(
            f"weights must be a sequence of {n_sources} numbers (one per source), got "
            f"{type(weights).__name__} {weights!r:.60}"
        )
    if len(weights) != n_sources:
        raise InputError(
            f"weights has {len(weights)} values but there are {n_sources} sources to fuse; "
            f"pass {n_sources} weights, e.g. {[1.0] * n_sources}"
        )
    out: list[float] = []
    for i, w in enumerate(weights):
        if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w) or w < 0:
            raise InputError(f"weights[{i}] is {w!r}; each weight must be a finite number >= 0")
        out.append(float(w))
    if not any(out):
        raise InputError(
            f"weights are all zero ({list(weights)!r}); give at least one source a weight > 0"
        )
    return out


def _sorted(scores: dict[str, float], first_seen: dict[str, int]) -> list[tuple[str, float]]:
    return sorted(scores.items(), key=lambda item: (-item[1], first_seen[item[0]]))


def _prepare(
    rankings: Sequence[Ranking], weights: Sequence[float] | None
) -> tuple[list[list[tuple[str, float]]], list[float], dict[str, int]]:
    listed = ordered_list(rankings, "rankings", "ranked lists", "[('a', 0.9), ('b', 0.4)]")
    lists = [dedupe(r, f"rankings[{i}]") for i, r in enumerate(listed)]
    ws = normalize_weights(weights, len(lists))
    # Tie order: best rank in any source first, then source order (round robin over the lists).
    first_seen: dict[str, int] = {}
    for rank in range(max((len(r) for r in lists), default=0)):
        for ranking in lists:
            if rank < len(ranking):
                first_seen.setdefault(ranking[rank][0], len(first_seen))
    return lists, ws, first_seen


def rrf(
    rankings: Sequence[Ranking], weights: Sequence[float] | None = None, k: float = RRF_K
) -> list[tuple[str, float]]:
    """Weighted reciprocal rank fusion: ``score(id) = Σ_s w_s / (k + rank_s(id))``.

    Args:
        rankings: one ranked list of ``(id, score)`` per source, best first.
        weights: one weight per source (default: all 1).
        k: the rank constant, ``>= 0``.

    Example:
        >>> rrf([[("a", 1.0), ("b", 0.5)], [("b", 9.0)]], k=0)
        [('b', 1.5), ('a', 1.0)]
    """
    if isinstance(k, bool) or not isinstance(k, int | float) or not math.isfinite(k) or k < 0:
        raise InputError(f"rrf k must be a finite number >= 0, got {k!r}; the usual value is 60")
    lists, ws, first_seen = _prepare(rankings, weights)
    fused: dict[str, float] = {}
    for ranking, w in zip(lists, ws, strict=True):
        for rank, (doc_id, _) in enumerate(ranking, start=1):
            fused[doc_id] = fused.get(doc_id, 0.0) + w / (k + rank)
    return _sorted(fused, first_seen)


def _combine(
    lists: list[list[tuple[str, float]]],
    ws: list[float],
    first_seen: dict[str, int],
    scale: Callable[[list[float]], list[float]],
) -> list[tuple[str, float]]:
    fused = dict.fromkeys(first_seen, 0.0)
    for ranking, w in zip(lists, ws, strict=True):
        if not ranking:
            continue
        scaled = scale([score for _, score in ranking])
        for (doc_id, _), s in zip(ranking, scaled, strict=True):
            fused[doc_id] += w * s
    return _sorted(fused, first_seen)


def _min_max(scores: list[float]) -> list[float]:
    lo, hi = min(scores), max(scores)
    if hi == lo:
        return [1.0] * len(scores)
    return [(s - lo) / (hi - lo) for s in scores]


def _three_sigma(scores: list[float]) -> list[float]:
    mean = sum(scores) / len(scores)
    std = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores))
    if std == 0.0:
        return [0.5] * len(scores)
    lo, hi = mean - 3 * std, mean + 3 * std
    return [min(1.0, max(0.0, (s - lo) / (hi - lo))) for s in scores]


def relative_score(
    rankings: Sequence[Ranking], weights: Sequence[float] | None = None
) -> list[tuple[str, float]]:
    """Relative-score fusion: min-max scale each source to [0, 1], then a weighted sum.

    Example:
        >>> relative_score([[("a", 0.9), ("b", 0.7), ("x", 0.5)], [("b", 10.0), ("c", 2.0)]])
        [('b', 1.5), ('a', 1.0), ('c', 0.0), ('x', 0.0)]
    """
    lists, ws, first_seen = _prepare(rankings, weights)
    return _combine(lists, ws, first_seen, _min_max)


def dbsf(
    rankings: Sequence[Ranking], weights: Sequence[float] | None = None
) -> list[tuple[str, float]]:
    """Distribution-based score fusion: scale each source by ``mean ± 3·std``, then a weighted
    sum (see the module docstring)."""
    lists, ws, first_seen = _prepare(rankings, weights)
    return _combine(lists, ws, first_seen, _three_sigma)


FUSION_METHODS = ("rrf", "relative", "dbsf")
"""The fusion methods :func:`fuse` accepts."""


def fuse(
    method: str,
    rankings: Sequence[Ranking],
    weights: Sequence[float] | None = None,
    k: float = RRF_K,
) -> list[tuple[str, float]]:
    """Fuse ranked lists with one of :data:`FUSION_METHODS` (``k`` is used by ``"rrf"`` only).

    Raises:
        InputError: an unknown method, or bad weights or ``k``.
    """
    check_choice("fusion", method, FUSION_METHODS)
    if method == "rrf":
        return rrf(rankings, weights, k)
    if method == "relative":
        return relative_score(rankings, weights)
    return dbsf(rankings, weights)

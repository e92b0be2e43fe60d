"""The eval metrics (ir-measures, trec_eval's definitions) against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from jinarag.errors import InputError
from jinarag.evaluation.metrics import ndcg_at_k, query_metrics, recall_at_k

# Ranked d3, d1, d2, d4; judged d1 (1) and d2 (2) relevant, d4 judged not relevant, d5 relevant
# but never retrieved.
RANKING = ["d3", "d1", "d2", "d4"]
JUDGED = {"d1": 1, "d2": 2, "d4": 0, "d5": 1}


def test_each_metric_equals_its_definition_worked_by_hand():
    got = query_metrics(RANKING, JUDGED)
    relevant = 3  # d1, d2, d5
    assert got["mrr"] == pytest.approx(1 / 2)  # the first relevant result is second
    assert got["p10"] == pytest.approx(2 / 10)  # two relevant in the first ten
    assert got["recall100"] == pytest.approx(2 / relevant)
    assert got["map"] == pytest.approx((1 / 2 + 2 / 3) / relevant)  # precision at each hit
    dcg = 1 / math.log2(3) + 2 / math.log2(4)  # d1 (gain 1) at rank 2, d2 (gain 2) at rank 3
    ideal = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert got["ndcg10"] == pytest.approx(dcg / ideal)
    assert ndcg_at_k(RANKING, JUDGED, 10) == pytest.approx(got["ndcg10"])
    assert recall_at_k(RANKING, JUDGED, 2) == pytest.approx(1 / relevant)


def test_nothing_retrieved_or_nothing_relevant_scores_zero():
    assert set(query_metrics([], JUDGED).values()) == {0.0}
    assert set(query_metrics(RANKING, {"d1": 0}).values()) == {0.0}


def test_bad_arguments_are_named():
    with pytest.raises(InputError, match="k must be a positive integer, got 0"):
        ndcg_at_k(RANKING, JUDGED, 0)
    with pytest.raises(InputError, match="ranking must be a list of document ids"):
        query_metrics("d1", JUDGED)

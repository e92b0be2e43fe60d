"""Fusion: pure functions over ranked id lists (no models, no stores)."""

from __future__ import annotations

import copy
import math
import random

import pytest

from jinarag.errors import InputError
from jinarag.retrieval.search import fusion


def _random_lists(seed: int) -> list[list[tuple[str, float]]]:
    rng = random.Random(seed)
    ids = [f"d{i}" for i in range(30)]
    out = []
    for _ in range(2):
        chosen = rng.sample(ids, rng.randint(1, 20))
        scores = sorted((rng.uniform(-3, 20) for _ in chosen), reverse=True)
        out.append(list(zip(chosen, scores, strict=True)))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_rrf_matches_the_formula(seed):
    lists = _random_lists(seed)
    weights, k = (0.3, 1.7), 7
    got = dict(fusion.rrf(lists, weights, k))
    # Written from the definition, independently of the implementation's loop.
    for doc_id in {d for ranking in lists for d, _ in ranking}:
        expected = 0.0
        for w, ranking in zip(weights, lists, strict=True):
            ids = [d for d, _ in ranking]
            if doc_id in ids:
                expected += w / (k + ids.index(doc_id) + 1)
        assert got[doc_id] == pytest.approx(expected)


@pytest.mark.parametrize("method", fusion.FUSION_METHODS)
@pytest.mark.parametrize("seed", range(3))
def test_every_method_returns_each_id_once_sorted_by_score(method, seed):
    lists = _random_lists(seed)
    fused = fusion.fuse(method, lists)
    ids = [d for d, _ in fused]
    assert sorted(ids) == sorted({d for ranking in lists for d, _ in ranking})
    scores = [s for _, s in fused]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("method", fusion.FUSION_METHODS)
def test_a_zero_weight_source_does_not_change_the_order(method):
    dense = [("a", 0.9), ("b", 0.8), ("c", 0.1)]
    bm25 = [("c", 30.0), ("x", 20.0), ("b", 1.0)]
    fused = fusion.fuse(method, [dense, bm25], weights=[1.0, 0.0])
    order = [d for d, _ in fused if d in {"a", "b", "c"}]
    assert order == ["a", "b", "c"]
    fused = fusion.fuse(method, [dense, bm25], weights=[0.0, 2.0])
    assert [d for d, _ in fused if d in {"c", "x", "b"}] == ["c", "x", "b"]


def test_weights_shift_the_winner():
    dense = [("a", 0.9), ("b", 0.5)]
    bm25 = [("b", 12.0), ("a", 3.0)]
    assert fusion.rrf([dense, bm25], [2.0, 1.0])[0][0] == "a"
    assert fusion.rrf([dense, bm25], [1.0, 2.0])[0][0] == "b"


@pytest.mark.parametrize("method", fusion.FUSION_METHODS)
def test_duplicates_in_one_source_are_collapsed_first(method):
    with_dupes = [("a", 5.0), ("b", 4.0), ("a", 3.0), ("c", 2.0), ("b", 1.0)]
    clean = [("a", 5.0), ("b", 4.0), ("c", 2.0)]
    other = [("c", 1.0), ("d", 0.5)]
    assert fusion.fuse(method, [with_dupes, other]) == fusion.fuse(method, [clean, other])


def test_rrf_counts_a_duplicate_once():
    fused = dict(fusion.rrf([[("a", 1.0), ("a", 0.5), ("b", 0.2)]], k=0))
    assert fused == {"a": 1.0, "b": 0.5}  # b moved up to rank 2 after the collapse


def test_dedupe_keeps_first_and_does_not_mutate():
    ranking = [("x", 2.0), ("y", 1.0), ("x", 0.0)]
    before = copy.deepcopy(ranking)
    assert fusion.dedupe(ranking) == [("x", 2.0), ("y", 1.0)]
    assert ranking == before


def test_relative_score_scales_each_source_to_unit_range():
    fused = dict(fusion.relative_score([[("a", 10.0), ("b", 6.0), ("c", 2.0)]]))
    assert fused == {"a": 1.0, "b": 0.5, "c": 0.0}
    # Equal scores (or one hit) all count as the best of their source.
    assert dict(fusion.relative_score([[("a", 3.0), ("b", 3.0)]])) == {"a": 1.0, "b": 1.0}


def test_relative_score_is_invariant_to_each_source_scale():
    dense = [("a", 0.9), ("b", 0.7), ("c", 0.2)]
    bm25 = [("c", 14.0), ("b", 9.0), ("d", 1.0)]
    scaled = [(d, 1000 * s + 5) for d, s in bm25]
    plain = fusion.relative_score([dense, bm25])
    rescaled = fusion.relative_score([dense, scaled])
    assert [d for d, _ in plain] == [d for d, _ in rescaled]
    assert [s for _, s in plain] == pytest.approx([s for _, s in rescaled])


def test_dbsf_maps_mean_to_half_and_clips():
    scores = [10.0, 9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0]
    ranking = [(f"d{i}", s) for i, s in enumerate(scores)]
    fused = dict(fusion.dbsf([ranking]))
    mean = sum(scores) / len(scores)
    std = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores))
    for doc_id, s in ranking:
        assert fused[doc_id] == pytest.approx((s - (mean - 3 * std)) / (6 * std))
    assert all(0.0 <= v <= 1.0 for v in fused.values())
    assert dict(fusion.dbsf([[("a", 2.0), ("b", 2.0)]])) == {"a": 0.5, "b": 0.5}


def test_dbsf_scale_comes_from_the_spread_not_the_extremes():
    # Min-max gives the lowest score of a source 0; DBSF gives it 0 only when it lies
    # 3 standard deviations below the mean.
    bm25 = [(f"b{i}", 10.0 - i) for i in range(5)]
    assert dict(fusion.relative_score([bm25]))["b4"] == 0.0
    assert dict(fusion.dbsf([bm25]))["b4"] > 0.0


def test_ties_are_deterministic():
    a = [("a", 1.0)]
    b = [("b", 1.0)]
    assert [d for d, _ in fusion.rrf([a, b])] == ["a", "b"]
    assert [d for d, _ in fusion.rrf([b, a])] == ["b", "a"]


def test_empty_inputs():
    for method in fusion.FUSION_METHODS:
        assert fusion.fuse(method, [[], []]) == []
    assert fusion.fuse("rrf", [[], [("a", 1.0)]]) == [("a", pytest.approx(1 / 61))]


def test_inputs_are_not_mutated():
    lists = _random_lists(11)
    before = copy.deepcopy(lists)
    for method in fusion.FUSION_METHODS:
        fusion.fuse(method, lists, weights=[1.0, 2.0])
    assert lists == before


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([1.0], "1 values but there are 2 sources"),
        ([1.0, 2.0, 3.0], "3 values but there are 2 sources"),
        ([0.0, 0.0], "all zero"),
        ([1.0, -1.0], "weights[1] is -1.0"),
        ([1.0, float("nan")], "weights[1] is nan"),
        (["1", 2], "weights[0] is '1'"),
        ("12", "sequence of 2 numbers"),
    ],
)
def test_bad_weights_are_input_errors(weights, message):
    for method in fusion.FUSION_METHODS:
        with pytest.raises(InputError) as info:
            fusion.fuse(method, [[("a", 1.0)], [("b", 1.0)]], weights=weights)
        assert message in str(info.value)


def test_unknown_method_and_bad_k():
    with pytest.raises(InputError, match="choose one of rrf, relative, dbsf"):
        fusion.fuse("borda", [[("a", 1.0)]])
    with pytest.raises(InputError, match="k must be a finite number >= 0"):
        fusion.rrf([[("a", 1.0)]], k=-1)
    assert isinstance(InputError("x"), ValueError)

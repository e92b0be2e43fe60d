"""Reranker on tiny random cross-encoders: parity with the reference, activations, rank vs
score, batching invariants, pair truncation that spares the query, save/load."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from reference_jinabert import ReferenceModel
from tiny_checkpoints import VARIANTS

import jinarag

RERANKERS = [name for name, spec in VARIANTS.items() if spec.head == "reranker"]
ATOL = 1e-5
MAX_LENGTH = 128


def _max_length(name: str) -> int:
    # Classic BERT has 64 positions; the BPE tokenizers cut these short texts into many pieces.
    return 64 if VARIANTS[name].arch == "classic" else MAX_LENGTH


QUERY = "flutter of thin panels at supersonic speed"
DOCS = [
    "Panel flutter at supersonic mach number: experiments in a wind tunnel.",
    "heat",
    "",
    "The laminar boundary layer on a flat plate with a pressure gradient, compared with "
    "approximate solutions and measured skin friction.",
    "Buckling of thin cylindrical shells under axial load",
    "shock wave ahead of a blunt nose cone",
    "flutter",
]


@pytest.fixture(scope="module")
def rerankers(tiny_checkpoints):
    return {
        name: jinarag.Reranker.from_pretrained(
            tiny_checkpoints[name], device="cpu", max_length=_max_length(name)
        )
        for name in RERANKERS
    }


@pytest.fixture(scope="module")
def references(tiny_checkpoints):
    return {name: ReferenceModel(tiny_checkpoints[name]) for name in RERANKERS}


@pytest.mark.parametrize("name", RERANKERS)
def test_raw_logits_match_the_reference(rerankers, references, name):
    logits = rerankers[name].score(QUERY, DOCS, activation=None)
    expected = references[name].logits(QUERY, DOCS, max_length=_max_length(name)).numpy()
    assert logits.dtype == np.float32
    assert logits.shape == (len(DOCS),)
    np.testing.assert_allclose(logits, expected, rtol=0, atol=ATOL)
    # Random heads give logits of both signs, so the sigmoid below is a real check.
    assert logits.std() > 0.01


@pytest.mark.parametrize("name", RERANKERS)
def test_sigmoid_is_the_default_activation(rerankers, name):
    rr = rerankers[name]
    logits = rr.score(QUERY, DOCS, activation=None).astype(np.float64)
    expected = 1.0 / (1.0 + np.exp(-logits))
    np.testing.assert_allclose(rr.score(QUERY, DOCS), expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(
        rr.score(QUERY, DOCS, activation="sigmoid"), expected, rtol=0, atol=1e-6
    )
    scores = rr.score(QUERY, DOCS)
    assert ((scores > 0) & (scores < 1)).all()


@pytest.mark.parametrize("name", RERANKERS)
def test_half_precision_storage_computes_in_float32(rerankers, tiny_checkpoints, name):
    import json

    stored = json.loads((tiny_checkpoints[name] / "config.json").read_text())["torch_dtype"]
    assert stored == VARIANTS[name].storage_dtype
    assert {p.dtype for p in rerankers[name].model.parameters()} == {torch.float32}


@pytest.mark.parametrize("name", RERANKERS)
def test_batch_equals_single(rerankers, name):
    rr = rerankers[name]
    batched = rr.score(QUERY, DOCS, batch_size=len(DOCS), activation=None)
    single = np.array([rr.score(QUERY, [d], activation=None)[0] for d in DOCS])
    np.testing.assert_allclose(batched, single, rtol=0, atol=ATOL)


@pytest.mark.parametrize("batch_size", [1, 2, 3])
def test_input_order_is_restored_after_length_sorting(rerankers, batch_size):
    rr = rerankers["reranker_fp16"]
    reference = np.array([rr.score(QUERY, [d], activation=None)[0] for d in DOCS])
    scores = rr.score(QUERY, DOCS, batch_size=batch_size, activation=None)
    np.testing.assert_allclose(scores, reference, atol=ATOL)
    permutation = [4, 0, 6, 2, 5, 1, 3]
    permuted = rr.score(
        QUERY, [DOCS[i] for i in permutation], batch_size=batch_size, activation=None
    )
    np.testing.assert_allclose(permuted, reference[permutation], atol=ATOL)


@pytest.mark.parametrize("name", RERANKERS)
@pytest.mark.parametrize("top_n", [None, 3, 1, 100])
def test_rank_agrees_with_score(rerankers, name, top_n):
    rr = rerankers[name]
    scores = rr.score(QUERY, DOCS)
    ranked = rr.rank(QUERY, DOCS, top_n=top_n)
    expected_len = len(DOCS) if top_n is None else min(top_n, len(DOCS))
    assert len(ranked) == expected_len
    assert all(isinstance(r, jinarag.RankedDocument) for r in ranked)
    best_first = sorted(range(len(DOCS)), key=lambda i: -scores[i])[:expected_len]
    assert [r.index for r in ranked] == best_first
    for r in ranked:
        assert r.text == DOCS[r.index]
        assert math.isclose(r.score, float(scores[r.index]), abs_tol=1e-7)
    assert [r.score for r in ranked] == sorted((r.score for r in ranked), reverse=True)


def test_rank_with_raw_logits(rerankers):
    rr = rerankers["reranker_bf16"]
    logits = rr.score(QUERY, DOCS, activation=None)
    ranked = rr.rank(QUERY, DOCS, activation=None)
    np.testing.assert_allclose([r.score for r in ranked], np.sort(logits)[::-1], atol=1e-6)


def test_empty_documents(rerankers):
    rr = rerankers["reranker_fp16"]
    out = rr.score(QUERY, [])
    assert out.shape == (0,)
    assert out.dtype == np.float32
    assert rr.rank(QUERY, []) == []


def test_inputs_are_not_mutated(rerankers):
    docs = list(DOCS)
    rerankers["reranker_fp16"].rank(QUERY, docs, top_n=2)
    assert docs == DOCS


@pytest.mark.parametrize("name", RERANKERS)
def test_long_pairs_cut_the_document_never_the_query(tiny_checkpoints, references, name):
    ref = references[name]
    tok = ref.tokenizer()
    query = "supersonic panel flutter and buckling of thin shells"
    long_doc = " ".join(["the heat transfer in a laminar boundary layer"] * 10)
    query_enc = tok.encode(query, add_special_tokens=False)
    # Room for the query, the pair's special tokens and 8 document tokens.
    max_length = len(query_enc.ids) + tok.num_special_tokens_to_add(True) + 8
    rr = jinarag.Reranker.from_pretrained(
        tiny_checkpoints[name], device="cpu", max_length=max_length
    )
    with pytest.warns(UserWarning):
        logit = rr.score(query, [long_doc], activation=None)[0]

    # The reference cuts only the second sequence; the query's tokens all survive.
    ids, _ = ref.encode_pair(query, long_doc, max_length)
    assert len(ids) == max_length
    assert _contains(ids, query_enc.ids)
    expected = ref.logits(query, [long_doc], max_length=max_length)[0].item()
    assert logit == pytest.approx(expected, abs=ATOL)

    # Had the query lost its last 3 tokens (and the document gained 3), the score would differ:
    # the check above can fail.
    doc_enc = tok.encode(long_doc, add_special_tokens=False)
    query_enc.truncate(len(query_enc.ids) - 3)
    doc_enc.truncate(8 + 3)
    wrong = tok.post_process(query_enc, doc_enc)
    assert len(wrong.ids) == max_length
    assert abs(ref.logit_of_ids(list(wrong.ids), list(wrong.type_ids)).item() - logit) > 1e-4


def _contains(seq: list[int], sub: list[int]) -> bool:
    return any(seq[i : i + len(sub)] == sub for i in range(len(seq) - len(sub) + 1))


def test_wordpiece_pairs_use_token_types_zero_then_one(rerankers, references):
    # A model that ignored the pair template's type ids would still score, but differently.
    ref = references["reranker_bf16"]
    ids, types = ref.encode_pair(QUERY, DOCS[0], MAX_LENGTH)
    assert set(types) == {0, 1}
    ours = rerankers["reranker_bf16"].score(QUERY, [DOCS[0]], activation=None)[0]
    assert ours == pytest.approx(ref.logit_of_ids(ids, types).item(), abs=ATOL)
    assert abs(ours - ref.logit_of_ids(ids, [0] * len(ids)).item()) > 1e-4


@pytest.mark.parametrize("name", RERANKERS)
def test_save_then_load_gives_identical_scores(rerankers, tmp_path, name):
    rr = rerankers[name]
    rr.save_pretrained(tmp_path / "saved")
    for filename in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (tmp_path / "saved" / filename).is_file(), filename
    again = jinarag.Reranker.from_pretrained(
        tmp_path / "saved", device="cpu", max_length=rr.max_length
    )
    # Bit-identical weights; outputs equal up to kernel rounding (memory layout may differ).
    before, after = rr.model.state_dict(), again.model.state_dict()
    assert before.keys() == after.keys()
    for key in before:
        assert torch.equal(before[key], after[key]), key
    np.testing.assert_allclose(
        again.score(QUERY, DOCS, activation=None),
        rr.score(QUERY, DOCS, activation=None),
        rtol=0,
        atol=1e-6,
    )
    assert again.config == rr.config


def test_show_progress_gives_the_same_scores(rerankers, capfd):
    rr = rerankers["reranker_fp16"]
    quiet = rr.score(QUERY, DOCS, batch_size=2)
    capfd.readouterr()
    loud = rr.score(QUERY, DOCS, batch_size=2, show_progress=True)
    err = capfd.readouterr().err
    np.testing.assert_array_equal(loud, quiet)
    assert f"{len(DOCS)}/{len(DOCS)}" in err, err

"""Embedder on tiny random checkpoints: parity with the reference, batching invariants,
truncation, prefixes, save/load, progress bar."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from reference_jinabert import ReferenceModel
from tiny_checkpoints import VARIANTS

import jinarag

EMBEDDERS = [name for name, spec in VARIANTS.items() if spec.head == "embedder"]
ATOL = 1e-5

TEXTS = [
    "Experimental investigation of the aerodynamics of a wing in a slipstream.",
    "heat",
    "",
    "The boundary layer in simple shear flow past a flat plate; laminar, turbulent and "
    "transitional regions are compared with measured skin friction at high reynolds number.",
    "Supersonic flutter of thin panels",
    "shock wave, nose cone!",
]


def _max_length(name: str) -> int:
    return 48 if VARIANTS[name].arch == "classic" else 96


@pytest.fixture(scope="module")
def embedders(tiny_checkpoints):
    return {
        name: jinarag.Embedder.from_pretrained(
            tiny_checkpoints[name], device="cpu", max_length=_max_length(name)
        )
        for name in EMBEDDERS
    }


@pytest.fixture(scope="module")
def references(tiny_checkpoints):
    return {name: ReferenceModel(tiny_checkpoints[name]) for name in EMBEDDERS}


def _embed_one_by_one(emb, texts, **kwargs):
    return np.stack([emb.embed([t], **kwargs)[0] for t in texts])


@pytest.mark.parametrize("name", EMBEDDERS)
def test_unnormalised_embeddings_are_the_reference_mean_pooling(embedders, references, name):
    emb, ref = embedders[name], references[name]
    ours = emb.embed(TEXTS, normalize=False)
    expected = ref.embed(TEXTS, max_length=_max_length(name), normalize=False).numpy()
    assert ours.dtype == np.float32
    assert ours.shape == (len(TEXTS), emb.dim)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=ATOL)


@pytest.mark.parametrize("name", EMBEDDERS)
def test_normalised_embeddings_are_unit_vectors_along_the_reference(embedders, references, name):
    emb, ref = embedders[name], references[name]
    ours = emb.embed(TEXTS)
    expected = ref.embed(TEXTS, max_length=_max_length(name), normalize=True).numpy()
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=ATOL)


@pytest.mark.parametrize("name", EMBEDDERS)
def test_batch_equals_single(embedders, name):
    emb = embedders[name]
    batched = emb.embed(TEXTS, batch_size=len(TEXTS), normalize=False)
    single = _embed_one_by_one(emb, TEXTS, normalize=False)
    np.testing.assert_allclose(batched, single, rtol=0, atol=ATOL)


@pytest.mark.parametrize("batch_size", [1, 2, 3, 64])
def test_input_order_is_restored_after_length_sorting(embedders, batch_size):
    emb = embedders["v2_geglu_12h"]
    single = _embed_one_by_one(emb, TEXTS)
    # Lengths are deliberately not monotonic, so sorting moves rows across batches.
    np.testing.assert_allclose(emb.embed(TEXTS, batch_size=batch_size), single, atol=ATOL)
    permutation = [3, 0, 5, 2, 4, 1]
    permuted = emb.embed([TEXTS[i] for i in permutation], batch_size=batch_size)
    np.testing.assert_allclose(permuted, single[permutation], atol=ATOL)


def test_duplicates_and_distinct_texts(embedders):
    emb = embedders["v2_geglu_8h"]
    out = emb.embed(["flutter", "heat transfer", "flutter"], batch_size=2)
    # Different batches (one padded, one not): equal up to float rounding.
    np.testing.assert_allclose(out[0], out[2], rtol=0, atol=ATOL)
    assert np.abs(out[0] - out[1]).max() > 1e-3


def test_inputs_are_not_mutated(embedders):
    texts = list(TEXTS)
    embedders["v2_geglu_8h"].embed(texts, batch_size=2)
    assert texts == TEXTS


def test_tuples_and_generators_are_accepted(embedders):
    emb = embedders["v2_geglu_8h"]
    expected = emb.embed(TEXTS[:3])
    np.testing.assert_array_equal(emb.embed(tuple(TEXTS[:3])), expected)
    np.testing.assert_array_equal(emb.embed(t for t in TEXTS[:3]), expected)


def test_embed_documents_is_embed(embedders):
    emb = embedders["v2_reglu"]
    np.testing.assert_array_equal(emb.embed_documents(TEXTS), emb.embed(TEXTS))


def test_query_side_without_prefix_equals_document_side(embedders):
    emb = embedders["v2_geglu_8h"]
    docs = emb.embed(TEXTS)
    np.testing.assert_allclose(emb.embed_queries(TEXTS), docs, atol=ATOL)
    query = emb.embed_query(TEXTS[0])
    assert query.shape == (emb.dim,)
    assert query.dtype == np.float32
    np.testing.assert_allclose(query, docs[0], atol=ATOL)


def test_prefixes_are_prepended_on_their_side_only(tiny_checkpoints, embedders):
    plain = embedders["v2_geglu_8h"]
    emb = jinarag.Embedder.from_pretrained(
        tiny_checkpoints["v2_geglu_8h"],
        device="cpu",
        max_length=96,
        query_prefix="search query: ",
        document_prefix="search document: ",
    )
    text = TEXTS[0]
    np.testing.assert_allclose(
        emb.embed_query(text), plain.embed(["search query: " + text])[0], atol=ATOL
    )
    np.testing.assert_allclose(
        emb.embed_queries([text, TEXTS[1]]),
        plain.embed(["search query: " + text, "search query: " + TEXTS[1]]),
        atol=ATOL,
    )
    np.testing.assert_allclose(
        emb.embed([text]), plain.embed(["search document: " + text]), atol=ATOL
    )
    assert np.abs(emb.embed_query(text) - emb.embed([text])[0]).max() > 1e-3


@pytest.mark.parametrize("name", EMBEDDERS)
def test_dim_and_default_max_length(tiny_checkpoints, name):
    emb = jinarag.Embedder.from_pretrained(tiny_checkpoints[name], device="cpu")
    assert emb.dim == VARIANTS[name].hidden
    # The checkpoint's own limit: 8192 for ALiBi models (tokenizer and config agree), the
    # position table for classic BERT.
    assert emb.max_length == VARIANTS[name].max_position_embeddings
    assert emb.embed(["x"]).shape == (1, emb.dim)


def test_empty_list_gives_an_empty_matrix(embedders):
    emb = embedders["v2_geglu_8h"]
    for call in (emb.embed, emb.embed_documents, emb.embed_queries):
        out = call([])
        assert out.shape == (0, emb.dim)
        assert out.dtype == np.float32


def _record(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn()
    return result, [w for w in caught if issubclass(w.category, UserWarning)]


def test_long_texts_are_truncated_with_exactly_one_warning(tiny_checkpoints, references):
    emb = jinarag.Embedder.from_pretrained(
        tiny_checkpoints["v2_geglu_8h"], device="cpu", max_length=16
    )
    long_a = " ".join(["flutter of thin panels at supersonic speed"] * 6)
    long_b = " ".join(["boundary layer separation"] * 9)
    texts = [long_a, "short text", long_b]
    out, caught = _record(lambda: emb.embed(texts, batch_size=2))
    assert len(caught) == 1, [str(w.message) for w in caught]
    assert "16" in str(caught[0].message)
    # The truncated embedding is the one of the first 16 tokens, [CLS] and [SEP] included.
    expected = references["v2_geglu_8h"].embed(texts, max_length=16).numpy()
    np.testing.assert_allclose(out, expected, atol=ATOL)
    assert np.abs(out[0] - emb.embed(["flutter of thin panels"])[0]).max() > 1e-3

    _, none = _record(lambda: emb.embed(["short text", "heat"]))
    assert none == []


@pytest.mark.parametrize("name", ["classic", "v2_geglu_12h"])
def test_text_longer_than_the_model_limit_is_truncated_not_crashing(tiny_checkpoints, name):
    emb = jinarag.Embedder.from_pretrained(tiny_checkpoints[name], device="cpu", max_length=24)
    long = " ".join(["the drag coefficient of a sphere"] * 40)
    out, caught = _record(lambda: emb.embed([long]))
    assert len(caught) == 1
    prefix = ReferenceModel(tiny_checkpoints[name]).embed([long], max_length=24).numpy()
    np.testing.assert_allclose(out, prefix, atol=ATOL)


def test_show_progress_gives_the_same_result_and_draws_a_bar(embedders, capfd):
    emb = embedders["v2_geglu_8h"]
    quiet = emb.embed(TEXTS, batch_size=2)
    capfd.readouterr()
    loud = emb.embed(TEXTS, batch_size=2, show_progress=True)
    err = capfd.readouterr().err
    np.testing.assert_array_equal(loud, quiet)
    assert f"{len(TEXTS)}/{len(TEXTS)}" in err, err


@pytest.mark.parametrize("name", ["v2_geglu_8h", "code", "classic", "v2_prefixed_mlm", "v2_bin"])
def test_save_then_load_gives_identical_embeddings(embedders, tmp_path, name):
    emb = embedders[name]
    emb.save_pretrained(tmp_path / "saved")
    for filename in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (tmp_path / "saved" / filename).is_file(), filename
    again = jinarag.Embedder.from_pretrained(
        tmp_path / "saved", device="cpu", max_length=emb.max_length
    )
    assert again.dim == emb.dim
    # Bit-identical weights; outputs equal up to kernel rounding (memory layout may differ).
    before, after = emb.model.state_dict(), again.model.state_dict()
    assert before.keys() == after.keys()
    for key in before:
        assert torch.equal(before[key], after[key]), key
    np.testing.assert_allclose(again.embed(TEXTS), emb.embed(TEXTS), rtol=0, atol=1e-6)
    # The round trip must keep the architecture, not only the tensors.
    assert again.config == emb.config


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_compute_stays_finite_and_close(tiny_checkpoints, embedders, dtype):
    # Padded keys must not saturate or turn rows into NaN in half precision.
    emb = jinarag.Embedder.from_pretrained(
        tiny_checkpoints["v2_geglu_8h"], device="cpu", dtype=dtype, max_length=96
    )
    assert str(emb.model.embeddings.word_embeddings.weight.dtype) == f"torch.{dtype}"
    half = emb.embed(TEXTS, batch_size=len(TEXTS))
    assert half.dtype == np.float32
    assert np.isfinite(half).all()
    full = embedders["v2_geglu_8h"].embed(TEXTS)
    assert (half * full).sum(1).min() > 0.98


def test_model_runs_in_float32_on_cpu_with_auto_dtype(embedders):
    for emb in embedders.values():
        assert {p.dtype for p in emb.model.parameters()} == {torch.float32}


def test_truncation_warns_with_its_own_category_and_numbers(tiny_checkpoints):
    import pickle

    emb = jinarag.Embedder.from_pretrained(
        tiny_checkpoints["v2_geglu_8h"], device="cpu", max_length=16
    )
    texts = ["short text", *[" ".join(["boundary layer separation"] * 9)] * 7]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", jinarag.TruncationWarning)
        emb.embed(texts)
    (warning,) = [w for w in caught if issubclass(w.category, jinarag.TruncationWarning)]
    assert issubclass(warning.category, UserWarning)  # filters on UserWarning still apply
    message = warning.message
    assert (message.count, message.total, message.max_length, message.what) == (7, 8, 16, "texts")
    assert message.summary == "7 of 8 texts exceeded max_length=16 tokens and were truncated"
    assert str(message).startswith(message.summary + " (indices 1, 2, 3, 4, 5 …)")
    assert "truncate=False" in str(message)
    copy = pickle.loads(pickle.dumps(message))
    assert (str(copy), copy.count) == (str(message), 7)
    # Ignoring the category silences it, and nothing else is raised in its place.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", jinarag.TruncationWarning)
        emb.embed(texts)
    assert caught == []

"""Checkpoint resolution and loading: local directories, the Hugging Face cache (offline),
aliases, weight formats and prefixes, tokenizer fallback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tiny_checkpoints import build_checkpoint, install_in_hf_cache, spec_with, use_hf_cache

import jinarag
from jinarag.models.checkpoint import EMBEDDER_ALIASES, RERANKER_ALIASES, resolve_checkpoint

TEXTS = ["a wing in a slipstream", "heat transfer at hypersonic speed", ""]
SMALL = "jinaai/jina-embeddings-v2-small-en"
TURBO = "jinaai/jina-reranker-v1-turbo-en"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _embed(path, **kwargs):
    return jinarag.Embedder.from_pretrained(path, device="cpu", **kwargs).embed(TEXTS)


def assert_same_weights(actual, expected, atol: float = 1e-6) -> None:
    """Two loads of the same weights: equal up to float32 rounding (the CPU kernels may sum in
    another order for weights at another memory alignment). Weights of another seed differ by
    more than 1e-3 (see test_safetensors_is_preferred_over_pytorch_model_bin)."""
    np.testing.assert_allclose(actual, expected, rtol=0, atol=atol)


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache that the environment and huggingface_hub point at."""
    return use_hf_cache(monkeypatch, tmp_path / "hf-home" / "hub")


def test_aliases_are_the_documented_ones():
    assert {
        "small": SMALL,
        "base": "jinaai/jina-embeddings-v2-base-en",
        "base-de": "jinaai/jina-embeddings-v2-base-de",
        "base-zh": "jinaai/jina-embeddings-v2-base-zh",
        "base-es": "jinaai/jina-embeddings-v2-base-es",
        "base-code": "jinaai/jina-embeddings-v2-base-code",
    }.items() <= EMBEDDER_ALIASES.items()
    assert {
        "reranker": "jinaai/jina-reranker-v1-base-en",
        "base": "jinaai/jina-reranker-v1-base-en",
        "turbo": TURBO,
        "tiny": "jinaai/jina-reranker-v1-tiny-en",
    }.items() <= RERANKER_ALIASES.items()


def test_a_local_directory_resolves_to_itself(tiny_checkpoints):
    path = tiny_checkpoints["v2_geglu_8h"]
    assert resolve_checkpoint(path) == path.resolve()
    assert resolve_checkpoint(str(path)) == path.resolve()
    assert resolve_checkpoint(path, kind="reranker") == path.resolve()
    # A local checkpoint is named by its resolved path: the name identifies the vector space.
    assert jinarag.Embedder.from_pretrained(str(path), device="cpu").name == str(path.resolve())


def test_an_alias_in_the_hf_cache_loads_offline(tiny_checkpoints, hf_cache):
    snapshot = install_in_hf_cache(hf_cache, SMALL, tiny_checkpoints["v2_geglu_8h"], commit=COMMIT)
    assert resolve_checkpoint("small").resolve() == snapshot.resolve()
    emb = jinarag.Embedder.from_pretrained("small", device="cpu")
    assert emb.name == SMALL
    expected = _embed(tiny_checkpoints["v2_geglu_8h"])
    assert_same_weights(emb.embed(TEXTS), expected)
    # The hub id itself, a pinned revision and local_files_only resolve to the same snapshot.
    assert_same_weights(_embed(SMALL), expected)
    assert_same_weights(_embed("small", revision=COMMIT), expected)
    assert_same_weights(_embed("small", local_files_only=True), expected)


def test_a_reranker_alias_in_the_hf_cache_loads_offline(tiny_checkpoints, hf_cache):
    install_in_hf_cache(hf_cache, TURBO, tiny_checkpoints["reranker_fp16"])
    rr = jinarag.Reranker.from_pretrained("turbo", device="cpu", max_length=128)
    direct = jinarag.Reranker.from_pretrained(
        tiny_checkpoints["reranker_fp16"], device="cpu", max_length=128
    )
    assert rr.name == TURBO
    docs = ["panel flutter", "heat transfer"]
    assert_same_weights(rr.score("flutter", docs), direct.score("flutter", docs))


@pytest.mark.slow
def test_a_fresh_process_finds_the_cache_from_the_environment_alone(tiny_checkpoints, tmp_path):
    cache = tmp_path / "hub"
    install_in_hf_cache(cache, SMALL, tiny_checkpoints["v2_geglu_8h"])
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    code = "import jinarag; e = jinarag.Embedder.from_pretrained('small'); print(e.dim, e.name)"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["32", SMALL]


def _twin(tmp_path: Path, name: str, **changes) -> Path:
    """The v2_geglu_8h weights (same seed) written another way."""
    return build_checkpoint(spec_with("v2_geglu_8h", **changes), tmp_path / name)


def test_bert_prefix_mlm_head_and_alibi_buffer_do_not_change_the_model(tiny_checkpoints, tmp_path):
    twin = _twin(tmp_path, "prefixed", prefix="bert.", mlm_head=True, extra_buffers=True)
    assert_same_weights(_embed(twin), _embed(tiny_checkpoints["v2_geglu_8h"]))


def test_pytorch_model_bin_loads_the_same_weights(tiny_checkpoints, tmp_path):
    twin = _twin(tmp_path, "bin", weights_format="bin")
    assert not (twin / "model.safetensors").exists()
    assert_same_weights(_embed(twin), _embed(tiny_checkpoints["v2_geglu_8h"]))


def test_safetensors_is_preferred_over_pytorch_model_bin(tiny_checkpoints, tmp_path):
    both = _twin(tmp_path, "both", weights_format="bin", seed=99)  # a different .bin
    shutil.copy(tiny_checkpoints["v2_geglu_8h"] / "model.safetensors", both)
    assert_same_weights(_embed(both), _embed(tiny_checkpoints["v2_geglu_8h"]))
    assert np.abs(_embed(both) - _embed(_twin(tmp_path, "other", seed=99))).max() > 1e-3


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_storage_loads_close_to_float32(tiny_checkpoints, tmp_path, dtype):
    twin = _twin(tmp_path, dtype, storage_dtype=dtype)
    emb = jinarag.Embedder.from_pretrained(twin, device="cpu")
    assert str(emb.model.embeddings.word_embeddings.weight.dtype) == "torch.float32"
    full = _embed(tiny_checkpoints["v2_geglu_8h"])
    half = emb.embed(TEXTS)
    # Rounded weights: close, not equal (exact parity is checked against the reference).
    assert 0 < np.abs(half - full).max() < 0.05


@pytest.mark.parametrize("name", ["v2_geglu_8h", "classic"])
def test_vocab_txt_is_used_when_tokenizer_json_is_missing(tiny_checkpoints, tmp_path, name):
    copy = shutil.copytree(tiny_checkpoints[name], tmp_path / name)
    (copy / "tokenizer.json").unlink()
    texts = [*TEXTS, "Shock-wave/boundary-layer interaction, UPPER case; 3.5 degrees!"]
    emb = jinarag.Embedder.from_pretrained(copy, device="cpu")
    direct = jinarag.Embedder.from_pretrained(tiny_checkpoints[name], device="cpu")
    assert_same_weights(emb.embed(texts), direct.embed(texts))


def test_a_cross_encoder_body_can_be_used_as_an_embedder(tiny_checkpoints):
    # The pooler and classifier are not part of an embedding; they are set aside, not an error.
    emb = jinarag.Embedder.from_pretrained(tiny_checkpoints["reranker_bf16"], device="cpu")
    assert emb.embed(TEXTS).shape == (len(TEXTS), 32)


# --------------------------------------------------------------------------- loading options

EMBEDDER = "v2_geglu_8h"
# Every loading option with a value other than its default (revision is not used for a local
# directory, but it is still checked and kept).
EVERY_OPTION = {
    "device": "cpu",
    "dtype": "bfloat16",
    "max_length": 32,
    "revision": "main",
    "local_files_only": True,
    "max_batch_tokens": 256,
    "attention": "eager",
    "num_threads": 1,
    "backend": "torch",
}


def test_load_options_fields_defaults_and_exports():
    from jinarag.options import LoadOptions

    assert jinarag.LoadOptions is LoadOptions
    assert "LoadOptions" in jinarag.__all__
    assert LoadOptions.names() == (
        "device",
        "dtype",
        "max_length",
        "revision",
        "local_files_only",
        "max_batch_tokens",
        "quantize",
        "attention",
        "num_threads",
        "backend",
    )
    # quantize="int8" computes from float32, so it has a test of its own (test_engine.py).
    assert set(LoadOptions.names()) - set(EVERY_OPTION) == {"quantize"}
    assert LoadOptions().to_dict() == {
        "device": "auto",
        "dtype": "auto",
        "max_length": None,
        "revision": None,
        "local_files_only": None,
        "max_batch_tokens": None,
        "quantize": None,
        "attention": "auto",
        "num_threads": None,
        "backend": "auto",
    }


def test_load_options_dict_round_trip_is_plain_data():
    import json

    import torch

    options = jinarag.LoadOptions(**EVERY_OPTION)
    assert jinarag.LoadOptions.from_dict(json.loads(json.dumps(options.to_dict()))) == options
    # torch values serialise as their names, which load the same way.
    typed = jinarag.LoadOptions(device=torch.device("cpu"), dtype=torch.float16)
    assert typed.to_dict()["device"] == "cpu"
    assert typed.to_dict()["dtype"] == "float16"
    assert jinarag.LoadOptions.from_dict({}) == jinarag.LoadOptions()
    assert jinarag.LoadOptions.from_dict({"max_length": np.int64(64)}).max_length == 64


def test_load_options_from_dict_refuses_unknown_keys_and_non_mappings():
    with pytest.raises(jinarag.InputError) as info:
        jinarag.LoadOptions.from_dict({"max_length": 64, "quantise": True})
    assert "quantise" in str(info.value)
    assert "max_batch_tokens" in str(info.value)
    with pytest.raises(jinarag.InputError, match="mapping"):
        jinarag.LoadOptions.from_dict(["max_length", 64])


@pytest.mark.parametrize(
    ("field", "bad", "named"),
    [
        ("device", "gpu0", "gpu0"),
        ("device", 0, "device=0"),
        ("dtype", "float8", "float8"),
        ("dtype", None, "dtype=None"),
        ("max_length", 2, "max_length=2"),
        ("max_length", 64.0, "64.0"),
        ("max_length", True, "True"),
        ("revision", "", "revision=''"),
        ("revision", 3, "revision=3"),
        ("local_files_only", "yes", "'yes'"),
        ("max_batch_tokens", 0, "max_batch_tokens"),
        ("max_batch_tokens", -5, "-5"),
        ("backend", "onnx", "backend='onnx'"),
        ("backend", None, "backend=None"),
    ],
)
def test_bad_option_values_are_refused_when_the_options_are_built(field, bad, named):
    with pytest.raises(jinarag.InputError) as info:
        jinarag.LoadOptions(**{field: bad})
    assert named in str(info.value)


def test_an_unknown_keyword_names_itself_and_the_accepted_ones(tiny_checkpoints):
    path = tiny_checkpoints[EMBEDDER]
    with pytest.raises(jinarag.InputError) as info:
        jinarag.Embedder.from_pretrained(path, token="hf_secret_value")
    message = str(info.value)
    assert "Embedder.from_pretrained" in message
    assert "token" in message
    assert "hf_secret_value" not in message  # values may be secrets: never echoed
    for name in (*EVERY_OPTION, "query_prefix", "document_prefix"):
        assert name in message
    # A reranker has no prefixes; a near miss gets a suggestion.
    with pytest.raises(jinarag.InputError) as info:
        jinarag.Reranker.from_pretrained(tiny_checkpoints["reranker_bf16"], max_len=16)
    assert "did you mean max_length?" in str(info.value)
    assert "query_prefix" not in str(info.value)


def test_options_as_a_value_equal_options_as_keywords(tiny_checkpoints):
    path = tiny_checkpoints[EMBEDDER]
    options = jinarag.LoadOptions(**EVERY_OPTION)
    by_value = jinarag.Embedder.from_pretrained(path, options)
    by_keywords = jinarag.Embedder.from_pretrained(path, **EVERY_OPTION)
    for model in (by_value, by_keywords):
        assert model.options == options
        assert model.max_length == 32
        assert model.max_batch_tokens == 256
        assert str(model.dtype) == "torch.bfloat16"
        assert model.device.type == "cpu"
        assert model.model.attn_implementation == "eager"
    # bfloat16: one rounding of a component in 8 bits of mantissa, should the kernels sum in
    # another order.
    assert_same_weights(by_value.embed(TEXTS), by_keywords.embed(TEXTS), atol=1e-2)
    # Keywords override the fields of `options`; subclass keywords still reach the subclass.
    mixed = jinarag.Embedder.from_pretrained(path, options, max_length=24, query_prefix="q: ")
    assert mixed.max_length == 24
    assert mixed.options.dtype == "bfloat16"
    assert mixed.query_prefix == "q: "


def test_options_must_be_a_load_options(tiny_checkpoints):
    with pytest.raises(jinarag.InputError, match="LoadOptions"):
        jinarag.Embedder.from_pretrained(tiny_checkpoints[EMBEDDER], "cpu")


def test_defaults_leave_the_engine_and_checkpoint_limits(tiny_checkpoints):
    from jinarag.inference.batching import DEFAULT_MAX_BATCH_TOKENS

    model = jinarag.Embedder.from_pretrained(tiny_checkpoints[EMBEDDER], device="cpu")
    assert model.options == jinarag.LoadOptions(device="cpu")
    assert model.max_batch_tokens == DEFAULT_MAX_BATCH_TOKENS


def _forward_calls(model, call):
    """``call()``'s result and the (rows, longest) shape of each forward pass it made."""
    calls = []
    # The embedding layer runs once per pass, for embedders and cross-encoders alike.
    hook = model.model.embeddings.register_forward_hook(
        lambda module, args, out: calls.append(tuple(args[0].shape))
    )
    try:
        return call(), calls
    finally:
        hook.remove()


@pytest.mark.parametrize("kind", ["embedder", "reranker"])
def test_max_batch_tokens_bounds_each_forward_pass(tiny_checkpoints, kind):
    texts = [" ".join(["wing slipstream lift"] * n) for n in (1, 6, 2, 9, 3, 4, 7, 5)]
    if kind == "embedder":
        path, cls = tiny_checkpoints[EMBEDDER], jinarag.Embedder

        def run(model):
            return model.embed(texts, batch_size=8)
    else:
        path, cls = tiny_checkpoints["reranker_bf16"], jinarag.Reranker

        def run(model):
            return model.score("lift", texts, batch_size=8)

    # The torch engine's passes are counted (OpenVINO's: tests/test_backends.py).
    roomy = cls.from_pretrained(path, device="cpu", dtype="float32", backend="torch")
    tight = cls.from_pretrained(
        path, device="cpu", dtype="float32", max_batch_tokens=64, backend="torch"
    )
    roomy_out, roomy_calls = _forward_calls(roomy, lambda: run(roomy))
    tight_out, tight_calls = _forward_calls(tight, lambda: run(tight))
    assert len(roomy_calls) == 1
    assert len(tight_calls) > 2
    # Each batch stays within the budget unless it is a single row.
    assert all(rows * longest <= 64 or rows == 1 for rows, longest in tight_calls)
    np.testing.assert_allclose(tight_out, roomy_out, atol=1e-5)
    # A loaded model's budget can be changed in place.
    tight.max_batch_tokens = 100_000
    assert len(_forward_calls(tight, lambda: run(tight))[1]) == 1


def test_load_or_use_takes_options_and_checks_them_even_for_a_loaded_model(tiny_checkpoints):
    from jinarag.inference.resolve import load_or_use

    path = tiny_checkpoints[EMBEDDER]
    loaded = load_or_use(
        "embedder",
        "Adapter",
        path,
        None,
        options=jinarag.LoadOptions(max_length=24),
        device="cpu",
    )
    assert loaded.max_length == 24
    assert loaded.options.device == "cpu"
    assert load_or_use("embedder", "Adapter", None, loaded, max_length=16) is loaded
    with pytest.raises(jinarag.InputError) as info:
        load_or_use("embedder", "Adapter", None, loaded, cache_folder="/tmp")
    assert "Adapter" in str(info.value)
    assert "cache_folder" in str(info.value)


def test_default_loaders_take_options(tiny_checkpoints):
    from jinarag.inference.defaults import load_embedder, load_reranker

    embedder, note = load_embedder(
        str(tiny_checkpoints[EMBEDDER]), jinarag.LoadOptions(max_length=24), device="cpu"
    )
    assert note is None
    assert (embedder.max_length, embedder.options.device) == (24, "cpu")
    reranker, note = load_reranker(str(tiny_checkpoints["reranker_bf16"]), max_batch_tokens=128)
    assert note is None
    assert reranker.max_batch_tokens == 128
    with pytest.raises(jinarag.InputError, match="token"):
        load_embedder(str(tiny_checkpoints[EMBEDDER]), token="x")

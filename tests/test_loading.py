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
    np.testing.assert_array_equal(emb.embed(TEXTS), expected)
    # The hub id itself, a pinned revision and local_files_only resolve to the same snapshot.
    np.testing.assert_array_equal(_embed(SMALL), expected)
    np.testing.assert_array_equal(_embed("small", revision=COMMIT), expected)
    np.testing.assert_array_equal(_embed("small", local_files_only=True), expected)


def test_a_reranker_alias_in_the_hf_cache_loads_offline(tiny_checkpoints, hf_cache):
    install_in_hf_cache(hf_cache, TURBO, tiny_checkpoints["reranker_fp16"])
    rr = jinarag.Reranker.from_pretrained("turbo", device="cpu", max_length=128)
    direct = jinarag.Reranker.from_pretrained(
        tiny_checkpoints["reranker_fp16"], device="cpu", max_length=128
    )
    assert rr.name == TURBO
    docs = ["panel flutter", "heat transfer"]
    np.testing.assert_array_equal(rr.score("flutter", docs), direct.score("flutter", docs))


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
    np.testing.assert_array_equal(_embed(twin), _embed(tiny_checkpoints["v2_geglu_8h"]))


def test_pytorch_model_bin_loads_the_same_weights(tiny_checkpoints, tmp_path):
    twin = _twin(tmp_path, "bin", weights_format="bin")
    assert not (twin / "model.safetensors").exists()
    np.testing.assert_array_equal(_embed(twin), _embed(tiny_checkpoints["v2_geglu_8h"]))


def test_safetensors_is_preferred_over_pytorch_model_bin(tiny_checkpoints, tmp_path):
    both = _twin(tmp_path, "both", weights_format="bin", seed=99)  # a different .bin
    shutil.copy(tiny_checkpoints["v2_geglu_8h"] / "model.safetensors", both)
    np.testing.assert_array_equal(_embed(both), _embed(tiny_checkpoints["v2_geglu_8h"]))
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
    np.testing.assert_array_equal(emb.embed(texts), direct.embed(texts))


def test_a_cross_encoder_body_can_be_used_as_an_embedder(tiny_checkpoints):
    # The pooler and classifier are not part of an embedding; they are set aside, not an error.
    emb = jinarag.Embedder.from_pretrained(tiny_checkpoints["reranker_bf16"], device="cpu")
    assert emb.embed(TEXTS).shape == (len(TEXTS), 32)

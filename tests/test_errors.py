"""Every error the core promises, raised with a message that names the bad value and the fix."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from tiny_checkpoints import (
    add_weight,
    drop_weight,
    replace_weight,
    truncate_weights,
    use_hf_cache,
)

import jinarag
from jinarag.errors import (
    CheckpointError,
    EmbedderMismatchError,
    InputError,
    JinaragError,
    ModelNotFoundError,
    StoreError,
    StoreUnavailableError,
)

SMALL = "jinaai/jina-embeddings-v2-small-en"
TURBO = "jinaai/jina-reranker-v1-turbo-en"


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache, offline."""
    return use_hf_cache(monkeypatch, tmp_path / "hf-home" / "hub")


# --------------------------------------------------------------------------- the tree


def test_the_error_tree():
    for cls in (ModelNotFoundError, CheckpointError, InputError, StoreError):
        assert issubclass(cls, JinaragError)
    assert issubclass(StoreUnavailableError, StoreError)
    assert issubclass(EmbedderMismatchError, StoreError)
    # Code that already guards against ValueError keeps working.
    assert issubclass(InputError, ValueError)
    assert not issubclass(CheckpointError, ValueError)
    for cls in (JinaragError, ModelNotFoundError, CheckpointError, InputError, StoreError):
        assert getattr(jinarag, cls.__name__) is cls


# --------------------------------------------------------------------------- model not found


def test_unknown_alias_lists_the_places_tried_and_the_fix(hf_cache):
    with pytest.raises(ModelNotFoundError) as info:
        jinarag.Embedder.from_pretrained("smal")
    message = str(info.value)
    assert "'smal'" in message
    assert "local directory" in message
    assert "small" in message  # the known aliases, for the typo
    assert "Fix:" in message


def test_a_missing_local_path_is_named(tmp_path):
    missing = tmp_path / "no-such-checkpoint"
    with pytest.raises(ModelNotFoundError) as info:
        jinarag.Embedder.from_pretrained(missing)
    assert str(missing) in str(info.value)


@pytest.mark.parametrize(
    ("cls", "alias", "repo_id"),
    [(jinarag.Embedder, "small", SMALL), (jinarag.Reranker, "turbo", TURBO)],
)
def test_an_alias_missing_from_an_empty_cache_offline(hf_cache, cls, alias, repo_id):
    with pytest.raises(ModelNotFoundError) as info:
        cls.from_pretrained(alias)
    message = str(info.value)
    assert repo_id in message
    assert str(hf_cache) in message  # the cache it looked in
    assert "HF_HUB_OFFLINE" in message  # why nothing was downloaded, and what to change
    assert "local" in message.lower()


def test_local_files_only_is_named_when_it_prevented_the_download(hf_cache):
    with pytest.raises(ModelNotFoundError) as info:
        jinarag.Embedder.from_pretrained("someone/not-cached", local_files_only=True)
    assert "someone/not-cached" in str(info.value)
    assert "local_files_only" in str(info.value)


# --------------------------------------------------------------------------- broken checkpoints


@pytest.fixture
def copy_of(tiny_checkpoints, tmp_path):
    def copy(name):
        return shutil.copytree(tiny_checkpoints[name], tmp_path / name)

    return copy


@pytest.mark.parametrize("keep", [0.5, 0.999, 0.0])
def test_truncated_safetensors_is_a_checkpoint_error(copy_of, keep):
    ckpt = copy_of("v2_geglu_8h")
    truncate_weights(ckpt, keep)
    with pytest.raises(CheckpointError) as info:
        jinarag.Embedder.from_pretrained(ckpt)
    assert "model.safetensors" in str(info.value)


def test_garbage_weights_are_a_checkpoint_error(copy_of):
    ckpt = copy_of("v2_bin")
    (ckpt / "pytorch_model.bin").write_bytes(b"not a pickle at all" * 10)
    with pytest.raises(CheckpointError) as info:
        jinarag.Embedder.from_pretrained(ckpt)
    assert "pytorch_model.bin" in str(info.value)


def test_a_missing_weight_is_named(copy_of):
    ckpt = copy_of("v2_geglu_8h")
    drop_weight(ckpt, "encoder.layer.1.mlp.wo.bias")
    with pytest.raises(CheckpointError) as info:
        jinarag.Embedder.from_pretrained(ckpt)
    assert "encoder.layer.1.mlp.wo.bias" in str(info.value)
    assert "missing" in str(info.value).lower()


def test_an_unexpected_weight_is_named(copy_of):
    ckpt = copy_of("v2_geglu_8h")
    add_weight(ckpt, "encoder.layer.0.attention.self.rotary.inv_freq", torch.ones(4))
    with pytest.raises(CheckpointError) as info:
        jinarag.Embedder.from_pretrained(ckpt)
    assert "encoder.layer.0.attention.self.rotary.inv_freq" in str(info.value)
    assert "unexpected" in str(info.value).lower()


def test_a_weight_of_the_wrong_shape_is_named(copy_of):
    ckpt = copy_of("v2_geglu_8h")
    replace_weight(ckpt, "encoder.layer.0.mlp.gated_layers.weight", torch.zeros(37, 32))
    with pytest.raises(CheckpointError) as info:
        jinarag.Embedder.from_pretrained(ckpt)
    assert "encoder.layer.0.mlp.gated_layers.weight" in str(info.value)


def test_an_embedder_checkpoint_is_not_a_reranker(tiny_checkpoints):
    with pytest.raises(CheckpointError) as info:
        jinarag.Reranker.from_pretrained(tiny_checkpoints["v2_geglu_8h"])
    assert "classifier" in str(info.value)


def test_half_written_config_is_a_checkpoint_error(copy_of):
    ckpt = copy_of("v2_geglu_8h")
    text = (ckpt / "config.json").read_text()
    (ckpt / "config.json").write_text(text[: len(text) // 2])
    with pytest.raises(CheckpointError) as info:
        jinarag.Embedder.from_pretrained(ckpt)
    assert "config.json" in str(info.value)


def test_unsupported_position_embeddings_are_named(copy_of):
    ckpt = copy_of("v2_geglu_8h")
    config = json.loads((ckpt / "config.json").read_text())
    config["position_embedding_type"] = "rotary"
    (ckpt / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError) as info:
        jinarag.Embedder.from_pretrained(ckpt)
    assert "rotary" in str(info.value)


def test_a_directory_without_weights_is_a_checkpoint_error(copy_of):
    ckpt = copy_of("v2_geglu_8h")
    (ckpt / "model.safetensors").unlink()
    with pytest.raises(CheckpointError) as info:
        jinarag.Embedder.from_pretrained(ckpt)
    assert "model.safetensors" in str(info.value)


def test_a_directory_without_tokenizer_is_a_checkpoint_error(copy_of):
    ckpt = copy_of("v2_geglu_12h")  # BPE: no vocab.txt to fall back on
    (ckpt / "tokenizer.json").unlink()
    with pytest.raises(CheckpointError) as info:
        jinarag.Embedder.from_pretrained(ckpt)
    assert "tokenizer.json" in str(info.value)


def test_a_corrupt_tokenizer_is_a_checkpoint_error(copy_of):
    ckpt = copy_of("v2_geglu_8h")
    (ckpt / "tokenizer.json").write_text('{"version": "1.0", "model": ')
    with pytest.raises(CheckpointError) as info:
        jinarag.Embedder.from_pretrained(ckpt)
    assert "tokenizer" in str(info.value)


# --------------------------------------------------------------------------- bad inputs


@pytest.fixture(scope="module")
def emb(tiny_checkpoints):
    return jinarag.Embedder.from_pretrained(
        tiny_checkpoints["v2_geglu_8h"], device="cpu", max_length=16
    )


@pytest.fixture(scope="module")
def rr(tiny_checkpoints):
    return jinarag.Reranker.from_pretrained(
        tiny_checkpoints["reranker_bf16"], device="cpu", max_length=24
    )


@pytest.mark.parametrize(("bad", "type_name"), [(None, "NoneType"), (3, "int"), (b"x", "bytes")])
def test_a_non_string_text_is_named_by_its_index(emb, bad, type_name):
    for call in (emb.embed, emb.embed_documents, emb.embed_queries):
        with pytest.raises(InputError) as info:
            call(["fine", "also fine", bad])
        assert "[2]" in str(info.value)
        assert type_name in str(info.value)


def test_a_single_string_instead_of_a_list_is_refused(emb):
    with pytest.raises(InputError) as info:
        emb.embed("a wing in a slipstream")
    assert "list" in str(info.value)


def test_embed_query_refuses_a_non_string(emb):
    with pytest.raises(InputError) as info:
        emb.embed_query(None)
    assert "NoneType" in str(info.value)


def test_truncate_false_refuses_a_long_text_by_index(emb):
    long = " ".join(["boundary layer separation"] * 10)
    with pytest.raises(InputError) as info:
        emb.embed(["short", long], truncate=False)
    message = str(info.value)
    assert "[1]" in message
    assert "max_length=16" in message
    assert "truncate=True" in message
    emb.embed(["short", "heat"], truncate=False)  # short texts pass


def test_reranker_inputs_are_checked(rr):
    with pytest.raises(InputError) as info:
        rr.score(None, ["a document"])
    assert "query" in str(info.value)
    with pytest.raises(InputError) as info:
        rr.score("query", ["a document", None])
    assert "documents[1]" in str(info.value)
    with pytest.raises(InputError) as info:
        rr.rank("query", ["a document", 7])
    assert "documents[1]" in str(info.value)


def test_unknown_activation_is_named(rr):
    with pytest.raises(InputError) as info:
        rr.score("query", ["a document"], activation="softmax")
    assert "softmax" in str(info.value)


def test_a_query_that_leaves_no_room_for_the_document(rr):
    with pytest.raises(InputError) as info:
        rr.score(" ".join(["flutter"] * 40), ["a document"])
    assert "query" in str(info.value)
    assert "max_length=24" in str(info.value)


def test_truncate_false_refuses_a_long_document(rr):
    with pytest.raises(InputError) as info:
        rr.score("flutter", ["short", " ".join(["heat transfer"] * 30)], truncate=False)
    assert "documents[1]" in str(info.value)


@pytest.mark.parametrize("batch_size", [0, -1, 1.5])
def test_a_bad_batch_size_is_named(emb, rr, batch_size):
    with pytest.raises(InputError, match="batch_size"):
        emb.embed(["a"], batch_size=batch_size)
    with pytest.raises(InputError, match="batch_size"):
        rr.score("q", ["a"], batch_size=batch_size)


def test_a_negative_top_n_is_named(rr):
    with pytest.raises(InputError, match="top_n"):
        rr.rank("q", ["a"], top_n=-1)


def test_max_length_beyond_the_position_table_is_refused(tiny_checkpoints):
    with pytest.raises(InputError) as info:
        jinarag.Embedder.from_pretrained(tiny_checkpoints["classic"], max_length=65)
    assert "65" in str(info.value)
    assert "64" in str(info.value)


def test_unknown_dtype_and_device_are_named(tiny_checkpoints):
    with pytest.raises(InputError, match="float8"):
        jinarag.Embedder.from_pretrained(tiny_checkpoints["v2_geglu_8h"], dtype="float8")
    with pytest.raises(InputError, match="gpu0"):
        jinarag.Embedder.from_pretrained(tiny_checkpoints["v2_geglu_8h"], device="gpu0")

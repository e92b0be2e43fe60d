"""The XLM-RoBERTa family (jina-embeddings-v3, jina-reranker-v2) against transformers' classes.

Tiny random checkpoints in the real layouts (tests/tiny_xlmr_checkpoints.py) are loaded by
jinarag and, with the same weights mapped to transformers' names, by
``JinaEmbeddingsV3Model`` (the task's LoRA merged into the base weights, W + s·B@A, and the
fused Wqkv split into q/k/v) and ``XLMRobertaForSequenceClassification``.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file
from tiny_xlmr_checkpoints import V3_TASKS, build_reranker_v2, build_v3, lora_keys

from jinarag.errors import CheckpointError
from jinarag.models.checkpoint import load_encoder

TOLERANCE = 1e-5
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def v3_dir(tmp_path_factory):
    return build_v3(tmp_path_factory.mktemp("xlmr") / "v3")


@pytest.fixture(scope="module")
def reranker_dir(tmp_path_factory):
    return build_reranker_v2(tmp_path_factory.mktemp("xlmr") / "reranker-v2")


def _load(directory, kind="embedder"):
    model, config = load_encoder(directory, kind=kind, device=CPU, dtype=torch.float32)
    return model, config


# -- transformers' models with our weights -----------------------------------------------------


def _merged(state: dict, key: str, task: int | None, scaling: float, embedding: bool):
    """``key``'s weight with task ``task``'s adapter merged in (the base weight for None)."""
    original, a_key, b_key = lora_keys(key)
    weight = state[original]
    if task is None:
        return weight
    a, b = state[a_key][task], state[b_key][task]
    return weight + scaling * (a @ b if embedding else b @ a)


def hf_v3(directory, task: int | None):
    from transformers import JinaEmbeddingsV3Config, JinaEmbeddingsV3Model

    _, config = _load(directory)
    state = load_file(str(directory / "model.safetensors"))
    s = config.lora_scaling
    hf_config = JinaEmbeddingsV3Config(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size,
        max_position_embeddings=config.position_table_size,
        type_vocab_size=config.type_vocab_size,
        layer_norm_eps=config.layer_norm_eps,
        pad_token_id=config.pad_token_id,
        rope_parameters={"rope_type": "default", "rope_theta": config.rotary_emb_base},
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    hf_config._attn_implementation = "eager"
    model = JinaEmbeddingsV3Model(hf_config, add_pooling_layer=False)
    ours = {
        "embeddings.word_embeddings.weight": _merged(
            state, "roberta.embeddings.word_embeddings.weight", task, s, True
        ),
        "embeddings.token_type_embeddings.weight": _merged(
            state, "roberta.embeddings.token_type_embeddings.weight", task, s, True
        ),
        "embeddings.LayerNorm.weight": state["roberta.emb_ln.weight"],
        "embeddings.LayerNorm.bias": state["roberta.emb_ln.bias"],
    }
    for i in range(config.num_hidden_layers):
        src, dst = f"roberta.encoder.layers.{i}.", f"layers.{i}."
        wqkv = _merged(state, src + "mixer.Wqkv.weight", task, s, False)
        for name, w, b in zip(
            ("q_proj", "k_proj", "v_proj"),
            wqkv.chunk(3),
            state[src + "mixer.Wqkv.bias"].chunk(3),
            strict=True,
        ):
            ours[f"{dst}self_attn.{name}.weight"], ours[f"{dst}self_attn.{name}.bias"] = w, b
        for src_name, dst_name in (
            ("mixer.out_proj", "self_attn.o_proj"),
            ("mlp.fc1", "mlp.fc1"),
            ("mlp.fc2", "mlp.fc2"),
        ):
            ours[f"{dst}{dst_name}.weight"] = _merged(
                state, f"{src}{src_name}.weight", task, s, False
            )
            ours[f"{dst}{dst_name}.bias"] = state[f"{src}{src_name}.bias"]
        for src_name, dst_name in (
            ("norm1", "post_attention_layernorm"),
            ("norm2", "post_mlp_layernorm"),
        ):
            for p in ("weight", "bias"):
                ours[f"{dst}{dst_name}.{p}"] = state[f"{src}{src_name}.{p}"]
    model.load_state_dict(ours, strict=True)
    return model.eval()


def hf_reranker(directory):
    from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification

    _, config = _load(directory, "reranker")
    state = load_file(str(directory / "model.safetensors"))
    hf_config = XLMRobertaConfig(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size,
        max_position_embeddings=config.position_table_size,
        type_vocab_size=config.type_vocab_size,
        layer_norm_eps=config.layer_norm_eps,
        pad_token_id=config.pad_token_id,
        num_labels=1,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    hf_config._attn_implementation = "eager"
    model = XLMRobertaForSequenceClassification(hf_config)
    r = "roberta."
    ours = {k: v for k, v in state.items() if k.startswith("classifier.")}
    for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        ours[f"{r}embeddings.{name}.weight"] = state[f"{r}embeddings.{name}.weight"]
    for p in ("weight", "bias"):
        ours[f"{r}embeddings.LayerNorm.{p}"] = state[f"{r}emb_ln.{p}"]
    for i in range(config.num_hidden_layers):
        src, dst = f"{r}encoder.layers.{i}.", f"{r}encoder.layer.{i}."
        for p in ("weight", "bias"):
            q, k, v = state[f"{src}mixer.Wqkv.{p}"].chunk(3)
            ours[f"{dst}attention.self.query.{p}"] = q
            ours[f"{dst}attention.self.key.{p}"] = k
            ours[f"{dst}attention.self.value.{p}"] = v
            ours[f"{dst}attention.output.dense.{p}"] = state[f"{src}mixer.out_proj.{p}"]
            ours[f"{dst}attention.output.LayerNorm.{p}"] = state[f"{src}norm1.{p}"]
            ours[f"{dst}intermediate.dense.{p}"] = state[f"{src}mlp.fc1.{p}"]
            ours[f"{dst}output.dense.{p}"] = state[f"{src}mlp.fc2.{p}"]
            ours[f"{dst}output.LayerNorm.{p}"] = state[f"{src}norm2.{p}"]
    model.load_state_dict(ours, strict=True)
    return model.eval()


# -- inputs ------------------------------------------------------------------------------------


def _batch(lengths: list[int], vocab: int, pad: int, seed: int = 0):
    """Right-padded rows of random ids (<s> … </s>), several lengths in one batch."""
    gen = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.full((len(lengths), width), pad, dtype=torch.long)
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.randint(5, vocab - 1, (n,), generator=gen)
        ids[row, 0], ids[row, n - 1] = 0, 2
    mask = (torch.arange(width)[None] < torch.tensor(lengths)[:, None]).long()
    return ids, mask


def _packed(ids, mask):
    """The rows of a padded batch packed into one row: sequence ids 1, 2, …; positions
    restarting with each sequence."""
    pieces = [ids[r, : int(mask[r].sum())] for r in range(len(ids))]
    packed_ids = torch.cat(pieces)[None]
    sequence_ids = torch.cat([torch.full((len(p),), i + 1) for i, p in enumerate(pieces)])[None]
    positions = torch.cat([torch.arange(len(p)) for p in pieces])[None]
    return packed_ids, sequence_ids, positions


LENGTHS = [9, 3, 14, 6]


# -- jina-embeddings-v3 ------------------------------------------------------------------------


@pytest.mark.parametrize("task", [None, *range(len(V3_TASKS))])
def test_v3_matches_transformers_for_every_task(v3_dir, task):
    model, config = _load(v3_dir)
    reference = hf_v3(v3_dir, task)
    ids, mask = _batch(LENGTHS, config.vocab_size, config.pad_token_id)
    with torch.no_grad():
        expected = reference(input_ids=ids, attention_mask=mask).last_hidden_state
        for backend in ("sdpa", "eager", "flex"):
            model.attn_implementation = backend
            ours = model(ids, mask, task=task)
            valid = mask.bool()
            diff = (ours - expected)[valid].abs().max().item()
            assert diff < TOLERANCE, (task, backend, diff)
            pooled = (ours * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
            pooled_ref = (expected * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
            assert (pooled - pooled_ref).abs().max().item() < TOLERANCE


@pytest.mark.parametrize("backend", ["sdpa", "eager", "flex"])
def test_v3_packed_rows_equal_padded_rows(v3_dir, backend):
    model, config = _load(v3_dir)
    model.attn_implementation = backend
    ids, mask = _batch(LENGTHS, config.vocab_size, config.pad_token_id, seed=1)
    packed_ids, sequence_ids, positions = _packed(ids, mask)
    with torch.no_grad():
        padded = model(ids, mask, task=1)[mask.bool()]
        packed = model(packed_ids, sequence_ids, position_ids=positions, task=1)[0]
    assert (padded - packed).abs().max().item() < TOLERANCE


def test_v3_per_row_tasks_equal_one_task_per_batch(v3_dir):
    model, config = _load(v3_dir)
    ids, mask = _batch(LENGTHS, config.vocab_size, config.pad_token_id, seed=2)
    tasks = torch.tensor([0, 4, 2, 1])
    with torch.no_grad():
        mixed = model(ids, mask, task=tasks)
        for row, task in enumerate(tasks.tolist()):
            alone = model(ids[row : row + 1], mask[row : row + 1], task=task)[0]
            valid = mask[row].bool()
            assert (mixed[row][valid] - alone[valid]).abs().max().item() < TOLERANCE


def test_v3_tasks_differ_from_each_other(v3_dir):
    model, config = _load(v3_dir)
    ids, mask = _batch([7], config.vocab_size, config.pad_token_id)
    with torch.no_grad():
        outputs = [model(ids, mask, task=t) for t in range(len(V3_TASKS))]
    assert all((outputs[0] - other).abs().max() > 1e-3 for other in outputs[1:])


def test_v3_config_facts(v3_dir):
    _, config = _load(v3_dir)
    assert config.tasks == tuple(V3_TASKS)
    assert config.rotary and config.max_position_embeddings == 8192
    assert config.lora_scaling == 0.25
    assert config.task_instructions["retrieval.query"].startswith("Represent the query")
    assert config.matryoshka_dimensions[-1] == config.hidden_size


# -- jina-reranker-v2 --------------------------------------------------------------------------


def test_reranker_v2_matches_transformers(reranker_dir):
    model, config = _load(reranker_dir, "reranker")
    reference = hf_reranker(reranker_dir)
    ids, mask = _batch(LENGTHS, config.vocab_size, config.pad_token_id, seed=3)
    with torch.no_grad():
        expected = reference(input_ids=ids, attention_mask=mask).logits[:, 0]
        for backend in ("sdpa", "eager", "flex"):
            model.attn_implementation = backend
            ours = model.relevance(model(ids, mask)[:, 0])
            assert (ours - expected).abs().max().item() < TOLERANCE, backend
        packed_ids, sequence_ids, positions = _packed(ids, mask)
        model.attn_implementation = "sdpa"
        hidden = model(packed_ids, sequence_ids, position_ids=positions)[0]
        starts = torch.cumsum(torch.tensor([0, *mask.sum(1).tolist()[:-1]]), 0)
        packed = model.relevance(hidden[starts])
    assert (packed - expected).abs().max().item() < TOLERANCE
    assert config.max_position_embeddings == 64 and not config.rotary


# -- strict loading ----------------------------------------------------------------------------


def _rewrite(directory, change) -> None:
    path = directory / "model.safetensors"
    state = load_file(str(path))
    change(state)
    save_file(state, str(path), metadata={"format": "pt"})


def test_missing_adapter_is_a_checkpoint_error(tmp_path):
    directory = build_v3(tmp_path / "v3")
    key = "roberta.encoder.layers.1.mlp.fc2.parametrizations.weight.0.lora_B"
    _rewrite(directory, lambda state: state.pop(key))
    with pytest.raises(CheckpointError, match=r"encoder\.layers\.1\.mlp\.fc2.*lora_B"):
        _load(directory)


def test_adapters_for_fewer_tasks_are_a_checkpoint_error(tmp_path):
    directory = build_v3(tmp_path / "v3")
    key = "roberta.encoder.layers.0.mixer.Wqkv.parametrizations.weight.0.lora_A"

    def drop_task(state):
        state[key] = state[key][:4].contiguous()

    _rewrite(directory, drop_task)
    with pytest.raises(CheckpointError, match=r"Wqkv.*4 tasks.*lists 5"):
        _load(directory)


def test_unexpected_key_is_a_checkpoint_error(tmp_path):
    directory = build_reranker_v2(tmp_path / "r")
    _rewrite(directory, lambda state: state.update(extra=torch.zeros(2)))
    with pytest.raises(CheckpointError, match="unexpected weights: extra"):
        _load(directory, "reranker")


def test_v3_is_not_a_reranker(v3_dir):
    with pytest.raises(CheckpointError, match="classifier.dense"):
        _load(v3_dir, "reranker")

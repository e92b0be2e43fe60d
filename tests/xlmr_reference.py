"""transformers' own classes loaded with a jina XLM-RoBERTa checkpoint's weights: the
implementations we did not write, that tests/test_xlm_roberta.py and benchmarks/v3_cpu.py
compare jinarag with. Read from the checkpoint's ``config.json`` and ``model.safetensors``
directly (no jinarag code): jina-embeddings-v3 as ``JinaEmbeddingsV3Model`` (a task's LoRA
merged into the base weights, W + s·B@A, the fused Wqkv split into q/k/v), jina-reranker-v2 as
``XLMRobertaForSequenceClassification``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import load_file
from tiny_xlmr_checkpoints import lora_keys

__all__ = ["hf_reranker", "hf_v3"]


def _config(directory: Path) -> dict[str, Any]:
    return json.loads((Path(directory) / "config.json").read_text())


def _sizes(config: dict[str, Any]) -> dict[str, Any]:
    """The architecture sizes transformers' configs take, as the checkpoint states them."""
    names = (
        "vocab_size",
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "intermediate_size",
        "max_position_embeddings",
        "type_vocab_size",
        "layer_norm_eps",
        "pad_token_id",
    )
    return {name: config[name] for name in names}


def _merged(state: dict, key: str, task: int | None, scaling: float, embedding: bool):
    """``key``'s weight with task ``task``'s adapter merged in (the base weight for None)."""
    original, a_key, b_key = lora_keys(key)
    weight = state[original]
    if task is None:
        return weight
    a, b = state[a_key][task], state[b_key][task]
    return weight + scaling * (a @ b if embedding else b @ a)


def hf_v3(directory: Path, task: int | None, attention: str = "eager") -> Any:
    """transformers' ``JinaEmbeddingsV3Model`` with the checkpoint's weights, task ``task``'s
    adapter merged in (the base weights for None)."""
    from transformers import JinaEmbeddingsV3Config, JinaEmbeddingsV3Model

    config = _config(directory)
    state = load_file(str(directory / "model.safetensors"))
    s = config["lora_alpha"] / config["lora_rank"]
    hf_config = JinaEmbeddingsV3Config(
        **_sizes(config),
        rope_parameters={"rope_type": "default", "rope_theta": config["rotary_emb_base"]},
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        attn_implementation=attention,
    )
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
    for i in range(config["num_hidden_layers"]):
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


def hf_reranker(directory: Path) -> Any:
    """transformers' ``XLMRobertaForSequenceClassification`` with the checkpoint's weights."""
    from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification

    config = _config(directory)
    state = load_file(str(directory / "model.safetensors"))
    hf_config = XLMRobertaConfig(
        **_sizes(config),
        num_labels=1,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        attn_implementation="eager",
    )
    model = XLMRobertaForSequenceClassification(hf_config)
    r = "roberta."
    ours = {k: v for k, v in state.items() if k.startswith("classifier.")}
    for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        ours[f"{r}embeddings.{name}.weight"] = state[f"{r}embeddings.{name}.weight"]
    for p in ("weight", "bias"):
        ours[f"{r}embeddings.LayerNorm.{p}"] = state[f"{r}emb_ln.{p}"]
    for i in range(config["num_hidden_layers"]):
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

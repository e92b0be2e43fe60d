"""Tiny random XLM-RoBERTa-family checkpoints in the exact layout of the Jina models.

- ``build_v3``: jina-embeddings-v3's layout: ``config.json`` with ``model_type: "xlm-roberta"``,
  rotary positions, ``lora_adaptations`` (all five tasks), ``task_instructions``,
  ``matryoshka_dimensions``; ``model.safetensors`` under ``roberta.`` with the fused
  ``mixer.Wqkv`` and every linear and embedding weight stored as a torch parametrization
  (``parametrizations.weight.original`` plus ``parametrizations.weight.0.lora_A`` / ``lora_B``).
- ``build_reranker_v2``: jina-reranker-v2-base-multilingual's layout: absolute positions
  (``max_position_embeddings`` = tokens + 2), ``classifier.dense`` / ``classifier.out_proj``.

Both get a tiny XLM-R-style SentencePiece (Unigram, Metaspace) ``tokenizer.json`` with
``<s>``=0, ``<pad>``=1, ``</s>``=2, ``<unk>``=3 and ``<mask>`` last. Sizes are odd on purpose
(hidden 40, intermediate 37) and the adapters random, not zero, so that a transposed A or B,
a wrong task index or a mis-split Q|K|V cannot go unnoticed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors.torch import save_file
from tiny_checkpoints import _PROSE

__all__ = [
    "V3_TASKS",
    "V3_INSTRUCTIONS",
    "build_reranker_v2",
    "build_v3",
    "lora_keys",
    "v3_config",
    "write_xlmr_tokenizer",
]

V3_TASKS = ["retrieval.query", "retrieval.passage", "separation", "classification", "text-matching"]
V3_INSTRUCTIONS = {
    "retrieval.query": "Represent the query for retrieving evidence documents: ",
    "retrieval.passage": "Represent the document for retrieval: ",
    "separation": "",
    "classification": "",
    "text-matching": "",
}
_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]


def write_xlmr_tokenizer(out: Path, *, model_max_length: int) -> int:
    """Write an XLM-R-style SentencePiece Unigram tokenizer; return its vocabulary size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    extra = ["represent", "query", "retrieving", "evidence", "documents", "document", "retrieval"]
    words = sorted(set(_PROSE.split()) | set(extra))
    chars = sorted(set("".join(words)) | set("0123456789.,:;!?'-()"))
    pieces = [("▁" + w, -3.0 - 0.01 * i) for i, w in enumerate(words)]
    pieces += [("▁", -4.0)] + [(c, -6.0 - 0.01 * i) for i, c in enumerate(chars)]
    pieces += [("▁" + c, -7.0) for c in chars if not c.isalpha()]
    vocab = [(s, 0.0) for s in _SPECIALS] + pieces + [("<mask>", 0.0)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=3, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    tok.add_special_tokens([*_SPECIALS, "<mask>"])
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    special = {
        "bos_token": "<s>",
        "cls_token": "<s>",
        "eos_token": "</s>",
        "mask_token": "<mask>",
        "pad_token": "<pad>",
        "sep_token": "</s>",
        "unk_token": "<unk>",
    }
    _write_json(out / "special_tokens_map.json", special)
    _write_json(
        out / "tokenizer_config.json",
        {
            "clean_up_tokenization_spaces": True,
            "model_max_length": model_max_length,
            "tokenizer_class": "XLMRobertaTokenizer",
            **special,
        },
    )
    return tok.get_vocab_size()


def v3_config(
    vocab_size: int, *, hidden: int = 40, heads: int = 4, layers: int = 2, intermediate: int = 37
) -> dict:
    """jina-embeddings-v3's config.json, at a tiny size (the real one: hidden 1024, 16 heads,
    24 layers, intermediate 4096)."""
    repo = "jinaai/xlm-roberta-flash-implementation"
    return {
        "_name_or_path": "jinaai/jina-embeddings-v3",
        "architectures": ["XLMRobertaModel"],
        "attention_probs_dropout_prob": 0.1,
        "auto_map": {
            "AutoConfig": f"{repo}--configuration_xlm_roberta.XLMRobertaFlashConfig",
            "AutoModel": f"{repo}--modeling_lora.XLMRobertaLoRA",
        },
        "bos_token_id": 0,
        "classifier_dropout": None,
        "emb_pooler": None,
        "eos_token_id": 2,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": hidden,
        "initializer_range": 0.02,
        "intermediate_size": intermediate,
        "layer_norm_eps": 1e-05,
        "load_trained_adapters": True,
        "lora_adaptations": list(V3_TASKS),
        "lora_alpha": 1,
        "lora_dropout_p": 0.0,
        "lora_main_params_trainable": False,
        "lora_rank": 4,
        "matryoshka_dimensions": [4, 8, 16, 32, hidden],
        "max_position_embeddings": 8194,
        "model_type": "xlm-roberta",
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "output_past": True,
        "pad_token_id": 1,
        "position_embedding_type": "rotary",
        "rotary_emb_base": 20000.0,
        "torch_dtype": "float32",
        "transformers_version": "4.30.2",
        "truncate_dim": None,
        "type_vocab_size": 1,
        "use_cache": True,
        "use_flash_attn": True,
        "vocab_size": vocab_size,
        "task_instructions": dict(V3_INSTRUCTIONS),
    }


def reranker_v2_config(vocab_size: int, *, hidden: int = 40, heads: int = 4, tokens: int = 64):
    """jina-reranker-v2-base-multilingual's config.json, at a tiny size."""
    return {
        "_name_or_path": "jina-reranker-v2-base-multilingual",
        "architectures": ["XLMRobertaForSequenceClassification"],
        "attention_probs_dropout_prob": 0.1,
        "auto_map": {
            "AutoConfig": "configuration_xlm_roberta.XLMRobertaFlashConfig",
            "AutoModel": "modeling_xlm_roberta.XLMRobertaModel",
            "AutoModelForSequenceClassification": (
                "modeling_xlm_roberta.XLMRobertaForSequenceClassification"
            ),
        },
        "bos_token_id": 0,
        "classifier_dropout": None,
        "emb_pooler": None,
        "eos_token_id": 2,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": hidden,
        "num_labels": 1,
        "id2label": {"0": "LABEL_0"},
        "initializer_range": 0.02,
        "intermediate_size": 37,
        "label2id": {"LABEL_0": 0},
        "layer_norm_eps": 1e-5,
        "max_position_embeddings": tokens + 2,
        "num_attention_heads": heads,
        "num_hidden_layers": 2,
        "output_past": True,
        "pad_token_id": 1,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
        "transformers_version": "4.40.0",
        "type_vocab_size": 1,
        "use_cache": False,
        "use_flash_attn": True,
        "vocab_size": vocab_size,
    }


def _shapes(config: dict) -> dict[str, tuple[tuple[int, ...], str]]:
    """Each base weight (without prefix): its shape and kind (linear/embedding/other)."""
    hidden, inter = config["hidden_size"], config["intermediate_size"]
    shapes: dict[str, tuple[tuple[int, ...], str]] = {
        "embeddings.word_embeddings.weight": ((config["vocab_size"], hidden), "embedding"),
        "embeddings.token_type_embeddings.weight": (
            (config["type_vocab_size"], hidden),
            "embedding",
        ),
        "emb_ln.weight": ((hidden,), "norm"),
        "emb_ln.bias": ((hidden,), "bias"),
    }
    if config["position_embedding_type"] == "absolute":
        table = config["max_position_embeddings"]
        shapes["embeddings.position_embeddings.weight"] = ((table, hidden), "embedding")
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layers.{i}."
        for name, (fan_out, fan_in) in {
            "mixer.Wqkv": (3 * hidden, hidden),
            "mixer.out_proj": (hidden, hidden),
            "mlp.fc1": (inter, hidden),
            "mlp.fc2": (hidden, inter),
        }.items():
            shapes[p + name + ".weight"] = ((fan_out, fan_in), "linear")
            shapes[p + name + ".bias"] = ((fan_out,), "bias")
        for norm in ("norm1", "norm2"):
            shapes[p + norm + ".weight"] = ((hidden,), "norm")
            shapes[p + norm + ".bias"] = ((hidden,), "bias")
    return shapes


def lora_keys(base_key: str) -> tuple[str, str, str]:
    """The parametrization keys that replace ``<module>.weight``: original, lora_A, lora_B."""
    module = base_key.removesuffix(".weight")
    p = f"{module}.parametrizations.weight"
    return f"{p}.original", f"{p}.0.lora_A", f"{p}.0.lora_B"


def _random(shape: tuple[int, ...], kind: str, gen: torch.Generator) -> torch.Tensor:
    noise = torch.randn(shape, generator=gen)
    if kind == "norm":
        return 1.0 + 0.1 * noise
    if kind == "bias":
        return 0.1 * noise
    if kind == "embedding":
        return noise
    return noise / math.sqrt(shape[-1])


def build_v3(out: Path, *, seed: int = 11, pooler: bool = True, **sizes) -> Path:
    """jina-embeddings-v3 at a tiny size (LoRA on every linear and embedding, pooler too)."""
    out = Path(out)
    vocab = write_xlmr_tokenizer(out, model_max_length=8194)
    config = v3_config(vocab, **sizes)
    gen = torch.Generator().manual_seed(seed)
    tasks, rank = len(config["lora_adaptations"]), config["lora_rank"]
    shapes = _shapes(config)
    if pooler:  # XLMRobertaLoRA builds its model with the pooling layer
        shapes["pooler.dense.weight"] = ((config["hidden_size"],) * 2, "linear")
        shapes["pooler.dense.bias"] = ((config["hidden_size"],), "bias")
    state = {}
    for key, (shape, kind) in shapes.items():
        if kind not in ("linear", "embedding"):
            state["roberta." + key] = _random(shape, kind, gen)
            continue
        original, a_key, b_key = lora_keys("roberta." + key)
        state[original] = _random(shape, kind, gen)
        if kind == "linear":  # A: T,r,in  B: T,out,r
            a_shape, b_shape = (tasks, rank, shape[1]), (tasks, shape[0], rank)
        else:  # A: T,rows,r  B: T,r,dim
            a_shape, b_shape = (tasks, shape[0], rank), (tasks, rank, shape[1])
        state[a_key] = torch.randn(a_shape, generator=gen) / math.sqrt(a_shape[-1])
        state[b_key] = torch.randn(b_shape, generator=gen) / math.sqrt(b_shape[-1])
    _save(out, config, state)
    return out


def build_reranker_v2(out: Path, *, seed: int = 12, tokens: int = 64) -> Path:
    """jina-reranker-v2-base-multilingual at a tiny size (``tokens`` positions)."""
    out = Path(out)
    vocab = write_xlmr_tokenizer(out, model_max_length=tokens)
    config = reranker_v2_config(vocab, tokens=tokens)
    gen = torch.Generator().manual_seed(seed)
    shapes = _shapes(config)
    hidden = config["hidden_size"]
    state = {"roberta." + k: _random(s, kind, gen) for k, (s, kind) in shapes.items()}
    state["classifier.dense.weight"] = _random((hidden, hidden), "linear", gen)
    state["classifier.dense.bias"] = _random((hidden,), "bias", gen)
    state["classifier.out_proj.weight"] = _random((1, hidden), "linear", gen)
    state["classifier.out_proj.bias"] = _random((1,), "bias", gen)
    _save(out, config, state)
    return out


def _save(out: Path, config: dict, state: dict[str, torch.Tensor]) -> None:
    _write_json(out / "config.json", config)
    state = {k: v.contiguous() for k, v in state.items()}
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")

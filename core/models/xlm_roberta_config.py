"""The ``config.json`` of an XLM-RoBERTa-family checkpoint, read and checked field by field.

Two Jina models use this family, both in the layout of Jina's XLM-RoBERTa "flash"
implementation (``model_type: "xlm-roberta"``):

- jina-embeddings-v3: rotary positions (``position_embedding_type: "rotary"``,
  ``rotary_emb_base``), task LoRA adapters (``lora_adaptations`` in adapter-index order,
  ``lora_rank``, ``lora_alpha``, ``task_instructions``), Matryoshka dimensions.
- jina-reranker-v2-base-multilingual: learned absolute positions that start after the padding
  id (as in XLM-R), a RoBERTa classification head with one label.

Like :mod:`jinarag.models.config`, a value the model cannot run with is a CheckpointError
naming the file, the field and the value.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinarag.errors import CheckpointError
from jinarag.models.config import (
    RESTORE,
    check_mapping,
    positive_int,
    read_json,
    required_sizes,
)

__all__ = [
    "XLMRobertaConfig",
    "check_adapters",
    "is_xlm_roberta",
    "read_xlm_roberta_config",
    "xlmr_state",
]

MODEL_TYPES = ("xlm-roberta",)
POSITION_TYPES = ("rotary", "absolute")
# The feed-forward activations of the reference (exact GELU, or its tanh form).
HIDDEN_ACTS = ("gelu", "gelu_new", "gelu_fast", "gelu_pytorch_tanh")


def is_xlm_roberta(raw: Any) -> bool:
    """Whether a parsed ``config.json`` describes an XLM-RoBERTa-family checkpoint."""
    if not isinstance(raw, Mapping):
        return False
    architectures = raw.get("architectures")
    names = architectures if isinstance(architectures, list) else []
    if raw.get("model_type") is not None:
        return raw.get("model_type") in MODEL_TYPES
    return "lora_adaptations" in raw or any(
        isinstance(n, str) and n.startswith("XLMRoberta") for n in names
    )


@dataclass(frozen=True)
class XLMRobertaConfig:
    """The architecture facts of an XLM-RoBERTa-family checkpoint.

    ``max_position_embeddings`` is the number of tokens a sequence may have: the config's
    value less the ``pad_token_id + 1`` positions XLM-R reserves (8194 → 8192 for
    jina-embeddings-v3, 1026 → 1024 for jina-reranker-v2); ``position_table_size`` is the
    config's own value, the rows of the absolute position table.
    """

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    position_table_size: int
    type_vocab_size: int = 1
    layer_norm_eps: float = 1e-5
    pad_token_id: int = 1
    position_embedding_type: str = "rotary"
    rotary_emb_base: float = 10000.0
    hidden_act: str = "gelu"
    num_labels: int = 1
    lora_adaptations: tuple[str, ...] = ()
    lora_rank: int = 4
    lora_alpha: float = 1.0
    task_instructions: Mapping[str, str] = field(default_factory=dict)
    matryoshka_dimensions: tuple[int, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    family = "xlm-roberta"
    alibi = False  # what the loading code asks of every config: no ALiBi here

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def rotary(self) -> bool:
        return self.position_embedding_type == "rotary"

    @property
    def tasks(self) -> tuple[str, ...]:
        """The task adapters, in adapter-index order (empty without LoRA)."""
        return self.lora_adaptations

    @property
    def lora_scaling(self) -> float:
        return self.lora_alpha / self.lora_rank

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, source: str = "config.json") -> XLMRobertaConfig:
        check_mapping(raw, source)
        sizes = required_sizes(raw, source, f"it is not an XLM-RoBERTa config. {RESTORE}")
        hidden, heads = sizes["hidden_size"], sizes["num_attention_heads"]
        if hidden % heads or (hidden // heads) % 2:
            raise CheckpointError(
                f"{source}: hidden_size {hidden} over num_attention_heads {heads} must give an "
                f"even head size (rotary positions rotate pairs). {RESTORE}"
            )
        position_type = raw.get("position_embedding_type", "absolute")
        if position_type not in POSITION_TYPES:
            raise CheckpointError(
                f"{source}: position_embedding_type={position_type!r:.60} is not supported for "
                f"XLM-RoBERTa checkpoints; jinarag runs {', '.join(map(repr, POSITION_TYPES))}."
            )
        hidden_act = raw.get("hidden_act", "gelu")
        if hidden_act not in HIDDEN_ACTS:
            raise CheckpointError(
                f"{source}: hidden_act={hidden_act!r:.60} is not supported; expected one of "
                f"{', '.join(HIDDEN_ACTS)}."
            )
        pad = raw.get("pad_token_id", 1)
        if isinstance(pad, bool) or not isinstance(pad, int) or not 0 <= pad < sizes["vocab_size"]:
            raise CheckpointError(
                f"{source}: pad_token_id={pad!r:.60} must be an integer from 0 to vocab_size - 1. "
                f"{RESTORE}"
            )
        table = _positive_int(raw, "max_position_embeddings", source, default=514)
        if table <= pad + 1:
            raise CheckpointError(
                f"{source}: max_position_embeddings={table} leaves no position after the "
                f"{pad + 1} XLM-R reserves (pad_token_id + 1). {RESTORE}"
            )
        tasks = _tasks(raw, source)
        return cls(
            **sizes,
            max_position_embeddings=table - pad - 1,
            position_table_size=table,
            type_vocab_size=_positive_int(raw, "type_vocab_size", source, default=1),
            layer_norm_eps=_positive_float(raw, "layer_norm_eps", source, 1e-5),
            pad_token_id=pad,
            position_embedding_type=position_type,
            rotary_emb_base=_positive_float(raw, "rotary_emb_base", source, 10000.0),
            hidden_act=hidden_act,
            num_labels=_num_labels(raw, source),
            lora_adaptations=tasks,
            lora_rank=_positive_int(raw, "lora_rank", source, default=4),
            lora_alpha=_positive_float(raw, "lora_alpha", source, 1.0),
            task_instructions=_instructions(raw, tasks, source),
            matryoshka_dimensions=_matryoshka(raw, hidden, source),
            raw=dict(raw),
        )


def _positive_int(raw: Mapping[str, Any], key: str, source: str, *, default: int = 1) -> int:
    # Jina's configs write null for an option they leave at its default.
    return positive_int(raw, key, source, default=default, null_is_default=True)


def _positive_float(raw: Mapping[str, Any], key: str, source: str, default: float) -> float:
    value = raw.get(key, default)
    if value is None:
        value = default
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise CheckpointError(
            f"{source}: {key}={value!r:.60} must be a positive finite number. {RESTORE}"
        )
    return float(value)


def _num_labels(raw: Mapping[str, Any], source: str) -> int:
    id2label = raw.get("id2label")
    if id2label is not None and not isinstance(id2label, Mapping):
        raise CheckpointError(
            f"{source}: id2label={id2label!r:.60} must be an object mapping label ids to names. "
            f"{RESTORE}"
        )
    return _positive_int(raw, "num_labels", source, default=len(id2label) if id2label else 1)


def _tasks(raw: Mapping[str, Any], source: str) -> tuple[str, ...]:
    tasks = raw.get("lora_adaptations")
    if tasks is None:
        return ()
    if (
        not isinstance(tasks, list)
        or not tasks
        or not all(isinstance(t, str) and t for t in tasks)
        or len(set(tasks)) != len(tasks)
    ):
        raise CheckpointError(
            f"{source}: lora_adaptations={tasks!r:.80} must be a list of distinct task names "
            f"(one per adapter, in adapter order). {RESTORE}"
        )
    return tuple(tasks)


def _instructions(raw: Mapping[str, Any], tasks: tuple[str, ...], source: str) -> dict[str, str]:
    """Each task's text prefix (``""`` for a task the config gives none)."""
    given = raw.get("task_instructions")
    if given is None:
        return dict.fromkeys(tasks, "")
    if not isinstance(given, Mapping) or not all(isinstance(v, str) for v in given.values()):
        raise CheckpointError(
            f"{source}: task_instructions={given!r:.80} must map task names to text prefixes. "
            f"{RESTORE}"
        )
    unknown = [key for key in given if key not in tasks]
    if unknown:
        raise CheckpointError(
            f"{source}: task_instructions names {', '.join(map(repr, unknown))}, which "
            f"lora_adaptations ({', '.join(tasks) or 'none'}) does not list. {RESTORE}"
        )
    return {task: given.get(task, "") for task in tasks}


def _matryoshka(raw: Mapping[str, Any], hidden: int, source: str) -> tuple[int, ...]:
    dims = raw.get("matryoshka_dimensions")
    if dims is None:
        return ()
    if not isinstance(dims, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= hidden for d in dims
    ):
        raise CheckpointError(
            f"{source}: matryoshka_dimensions={dims!r:.80} must be a list of integers from 1 "
            f"to hidden_size={hidden}. {RESTORE}"
        )
    return tuple(sorted(set(dims)))


def read_xlm_roberta_config(directory: Path) -> XLMRobertaConfig:
    path = directory / "config.json"
    return XLMRobertaConfig.from_dict(read_json(path), source=str(path))


def xlmr_state(state: dict[str, Any], *, keep_head: bool) -> dict[str, Any]:
    """Strip the ``roberta.`` prefix; drop the pooler (no Jina head reads it), MLM heads and
    position-id buffers; drop the classifier of a checkpoint loaded as an embedder."""
    out: dict[str, Any] = {}
    for key, tensor in state.items():
        key = key.removeprefix("roberta.")
        if key.startswith(("pooler.", "lm_head.")) or key.endswith("position_ids"):
            continue
        if not keep_head and key.startswith("classifier."):
            continue
        out[key] = tensor
    return out


def check_adapters(directory: Path, config: XLMRobertaConfig, state: dict[str, Any]) -> None:
    """Every adapter tensor holds one slice per task of ``lora_adaptations``."""
    tasks = len(config.tasks)
    for key, tensor in state.items():
        if tasks and key.endswith((".lora_A", ".lora_B")) and tensor.shape[0] != tasks:
            raise CheckpointError(
                f"{directory}: {key} holds adapters for {tensor.shape[0]} tasks, but "
                f"config.json's lora_adaptations lists {tasks} ({', '.join(config.tasks)}): "
                "an adapter is missing, or the config belongs to another checkpoint. Restore "
                "config.json and model.safetensors from the same download."
            )

"""A checkpoint's ``config.json``: read, checked field by field, and held as :class:`EncoderConfig`.

Every field the encoder uses is checked here, at load, for its type and range, so a corrupt
config is a :class:`~jinarag.errors.CheckpointError` naming the file, the field and the value,
never a ``ZeroDivisionError`` or a shape error inside the first forward pass. The JSON readers
are shared by the other small files of a checkpoint (tokenizer and sentence-transformers
configs).
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinarag.errors import CheckpointError

__all__ = [
    "ACTIVATION_NAMES",
    "MODEL_TYPES",
    "REQUIRED_SIZES",
    "RESTORE",
    "EncoderConfig",
    "check_mapping",
    "positive_int",
    "read_config",
    "read_json",
    "read_json_object",
    "required_sizes",
]

# The activations of the original BERT FFN that the encoder implements (jinarag.models.encoder).
ACTIVATION_NAMES = (
    "gelu",
    "gelu_new",
    "gelu_pytorch_tanh",
    "gelu_fast",
    "relu",
    "silu",
    "swish",
)
_FEED_FORWARD_TYPES = ("geglu", "reglu", "original")
# What config.json's model_type may say: jina-embeddings-v2, jina-reranker-v1, their code
# variant and classic BERT (MiniLM among them) all say "bert"; an absent one is read as BERT.
MODEL_TYPES = ("bert",)
_QK_POST_NORM_MARKER = "qk-post-norm"


@dataclass(frozen=True)
class EncoderConfig:
    """The architecture facts of a checkpoint, read from its Hugging Face ``config.json``."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    type_vocab_size: int = 2
    max_position_embeddings: int = 512
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    position_embedding_type: str = "absolute"  # "alibi" (JinaBERT) or "absolute" (BERT)
    feed_forward_type: str = "original"  # "geglu" / "reglu" (JinaBERT) or "original" (BERT)
    hidden_act: str = "gelu"
    qk_post_norm: bool = False  # the jina-bert-v2-qk-post-norm code model
    num_labels: int = 1
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def alibi(self) -> bool:
        return self.position_embedding_type == "alibi"

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, source: str = "config.json") -> EncoderConfig:
        """Read a Hugging Face BERT / JinaBERT config; a value the model cannot run with (a wrong
        type, a size below 1, an unsupported option) raises CheckpointError naming the field."""
        check_mapping(raw, source)
        model_type = raw.get("model_type")
        if model_type is not None and model_type not in MODEL_TYPES:
            raise CheckpointError(
                f"{source}: model_type={model_type!r:.60} is not supported; jinarag runs "
                f"model_type {', '.join(map(repr, MODEL_TYPES))} checkpoints (jina-embeddings-v2, "
                "jina-reranker-v1, BERT) and 'xlm-roberta' ones in Jina's layout "
                "(jina-embeddings-v3, jina-reranker-v2). Load this model with the library it "
                "was made for, or point jinarag at one of those."
            )
        # Every size the modules are built with: a bad one would surface as a torch error later.
        sizes = required_sizes(
            raw,
            source,
            "it is not a BERT-family config. Point jinarag at a jina-embeddings-v2, "
            "jina-reranker-v1 or BERT checkpoint.",
        )
        hidden, heads = sizes["hidden_size"], sizes["num_attention_heads"]
        if hidden % heads:
            raise CheckpointError(
                f"{source}: hidden_size {hidden} is not divisible by num_attention_heads "
                f"{heads}; the config is corrupt. {RESTORE}"
            )
        position_type = raw.get("position_embedding_type", "absolute")
        if position_type not in ("alibi", "absolute"):
            raise CheckpointError(
                f"{source}: position_embedding_type={position_type!r} is not supported; "
                "jinarag runs 'alibi' (JinaBERT) and 'absolute' (BERT) checkpoints."
            )
        default_ff = "geglu" if position_type == "alibi" else "original"
        feed_forward_type = raw.get("feed_forward_type", default_ff)
        if feed_forward_type not in _FEED_FORWARD_TYPES:
            raise CheckpointError(
                f"{source}: feed_forward_type={feed_forward_type!r} is not supported; "
                f"expected one of {', '.join(_FEED_FORWARD_TYPES)}."
            )
        hidden_act = raw.get("hidden_act", "gelu")
        # Only the original FFN reads hidden_act (the gated MLPs fix their activation).
        if feed_forward_type == "original" and (
            not isinstance(hidden_act, str) or hidden_act not in ACTIVATION_NAMES
        ):
            raise CheckpointError(
                f"{source}: hidden_act={hidden_act!r} is not supported; "
                f"expected one of {', '.join(sorted(ACTIVATION_NAMES))}."
            )
        layer_norm_eps = raw.get("layer_norm_eps", 1e-12)
        if (
            isinstance(layer_norm_eps, bool)
            or not isinstance(layer_norm_eps, numbers.Real)
            or not math.isfinite(layer_norm_eps)
            or layer_norm_eps <= 0
        ):
            raise CheckpointError(
                f"{source}: layer_norm_eps={layer_norm_eps!r} must be a positive finite number "
                f"(BERT and Jina use 1e-12). {RESTORE}"
            )
        pad_token_id = raw["pad_token_id"] if raw.get("pad_token_id") is not None else 0
        if (
            isinstance(pad_token_id, bool)
            or not isinstance(pad_token_id, numbers.Integral)
            or not 0 <= pad_token_id < sizes["vocab_size"]
        ):
            raise CheckpointError(
                f"{source}: pad_token_id={pad_token_id!r} must be an integer from 0 to "
                f"vocab_size - 1 = {sizes['vocab_size'] - 1}. {RESTORE}"
            )
        id2label = raw.get("id2label")
        if id2label is not None and not isinstance(id2label, Mapping):
            raise CheckpointError(
                f"{source}: id2label={id2label!r:.60} must be an object mapping label ids to "
                f"names. {RESTORE}"
            )
        # The code model is only recognisable by where its remote code lives.
        provenance = " ".join([str(raw.get("_name_or_path", "")), str(raw.get("auto_map", ""))])
        return cls(
            **sizes,
            type_vocab_size=positive_int(raw, "type_vocab_size", source, default=2),
            max_position_embeddings=positive_int(
                raw, "max_position_embeddings", source, default=512
            ),
            layer_norm_eps=float(layer_norm_eps),
            pad_token_id=int(pad_token_id),
            position_embedding_type=position_type,
            feed_forward_type=feed_forward_type,
            hidden_act=hidden_act,
            qk_post_norm=_QK_POST_NORM_MARKER in provenance,
            num_labels=positive_int(
                raw, "num_labels", source, default=len(id2label) if id2label else 1
            ),
            raw=dict(raw),
        )


RESTORE = "Restore config.json from the original checkpoint (copy or download it again)."


def positive_int(
    raw: Mapping[str, Any],
    key: str,
    source: str,
    *,
    default: int = 1,
    null_is_default: bool = False,
) -> int:
    """``raw[key]`` (``default`` when absent, or null with ``null_is_default``) as an int >= 1,
    else CheckpointError naming it."""
    value = raw.get(key, default)
    if value is None and null_is_default:
        value = default
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise CheckpointError(
            f"{source}: {key}={value!r:.60} must be a positive integer. {RESTORE}"
        )
    return int(value)


def check_mapping(raw: Any, source: str) -> None:
    """CheckpointError when a config file does not hold a JSON object."""
    if not isinstance(raw, Mapping):
        raise CheckpointError(
            f"{source} holds {json.dumps(raw, default=repr)[:60]}, not a JSON object: the "
            "file is corrupt or not a model config. Copy or download the checkpoint again."
        )


# The sizes every encoder config must state.
REQUIRED_SIZES = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
)


def required_sizes(raw: Mapping[str, Any], source: str, not_this: str) -> dict[str, int]:
    """:data:`REQUIRED_SIZES` of ``raw``, each a positive integer; a missing one is a
    CheckpointError ending in ``not_this`` (what the file is not, and what to do)."""
    missing = [key for key in REQUIRED_SIZES if key not in raw]
    if missing:
        raise CheckpointError(f"{source} lacks {', '.join(missing)}: {not_this}")
    return {key: positive_int(raw, key, source) for key in REQUIRED_SIZES}


def read_json(path: Path) -> Any:
    """The JSON value in one checkpoint file; CheckpointError naming the file when it cannot
    be read or parsed (JSONDecodeError and UnicodeDecodeError are both ValueErrors)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise CheckpointError(
            f"{path} cannot be read as JSON ({exc}); the checkpoint is corrupt or half-written: "
            "copy or download it again."
        ) from exc


def read_json_object(path: Path) -> dict[str, Any]:
    """:func:`read_json` for a file that must hold an object (tokenizer and sentence-transformers
    configs); any other JSON value is a CheckpointError naming the file."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise CheckpointError(
            f"{path} holds {json.dumps(data)[:40]}, not a JSON object; the checkpoint is "
            "corrupt: copy or download it again."
        )
    return data


def read_config(directory: Path) -> EncoderConfig:
    path = directory / "config.json"
    return EncoderConfig.from_dict(read_json(path), source=str(path))

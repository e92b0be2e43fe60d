"""Finding and loading checkpoints: local directory → Hugging Face cache → Hub download.

We never run code from a model repository (no ``trust_remote_code``): the architecture comes
from ``config.json`` and our own ``jinarag.models.encoder``.
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Literal

import torch

from jinarag.errors import CheckpointError, CheckpointWarning, ModelNotFoundError, warn
from jinarag.models.config import EncoderConfig, read_config, read_json
from jinarag.models.encoder import Encoder
from jinarag.models.xlm_roberta import XLMRobertaEncoder
from jinarag.models.xlm_roberta_config import (
    XLMRobertaConfig,
    check_adapters,
    is_xlm_roberta,
    xlmr_state,
)

__all__ = [
    "EMBEDDER_ALIASES",
    "RERANKER_ALIASES",
    "WEIGHT_ALIGNMENT",
    "aligned",
    "load_encoder",
    "repo_id_for",
    "resolve_checkpoint",
    "weights_path",
]

Kind = Literal["embedder", "reranker"]

EMBEDDER_ALIASES = {
    "small": "jinaai/jina-embeddings-v2-small-en",
    "base": "jinaai/jina-embeddings-v2-base-en",
    "base-en": "jinaai/jina-embeddings-v2-base-en",
    "base-de": "jinaai/jina-embeddings-v2-base-de",
    "base-zh": "jinaai/jina-embeddings-v2-base-zh",
    "base-es": "jinaai/jina-embeddings-v2-base-es",
    "base-code": "jinaai/jina-embeddings-v2-base-code",
    "v3": "jinaai/jina-embeddings-v3",
}
RERANKER_ALIASES = {
    "reranker": "jinaai/jina-reranker-v1-base-en",
    "base": "jinaai/jina-reranker-v1-base-en",
    "turbo": "jinaai/jina-reranker-v1-turbo-en",
    "tiny": "jinaai/jina-reranker-v1-tiny-en",
    "reranker-v2": "jinaai/jina-reranker-v2-base-multilingual",
}
_ALIASES: dict[Kind, dict[str, str]] = {"embedder": EMBEDDER_ALIASES, "reranker": RERANKER_ALIASES}

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# What a download fetches: config, tokenizer files and one weights file (safetensors first).
_METADATA_PATTERNS = [
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "sentence_bert_config.json",
]
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# Keys real checkpoints carry that inference does not use.
_DROPPED_PREFIXES = ("cls.",)
_DROPPED_SUFFIXES = ("position_ids", "alibi")


def _offline(local_files_only: bool | None) -> bool:
    if local_files_only is not None:
        return local_files_only
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def repo_id_for(name: str, kind: Kind) -> str:
    """The Hugging Face repo id an alias stands for (other names are returned unchanged)."""
    return _ALIASES[kind].get(name, name)


def _has_checkpoint(path: Path) -> bool:
    return (path / "config.json").is_file() and any((path / w).is_file() for w in WEIGHT_FILES)


def resolve_checkpoint(
    name_or_path: str | os.PathLike[str],
    *,
    kind: Kind = "embedder",
    revision: str | None = None,
    local_files_only: bool | None = None,
) -> Path:
    """Return the local directory of a checkpoint, downloading it only when allowed.

    Order: an existing local directory; an alias or Hub id found in the Hugging Face cache;
    a download from the Hub unless ``local_files_only`` or ``HF_HUB_OFFLINE=1``.

    Raises:
        ModelNotFoundError: nothing worked; the message lists every place tried and the fix.
        CheckpointError: a local directory exists but holds no usable checkpoint.
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not _has_checkpoint(path):
            present = ", ".join(sorted(p.name for p in path.iterdir())[:12]) or "nothing"
            raise CheckpointError(
                f"{path} is not a checkpoint directory: it needs config.json and one of "
                f"{' or '.join(WEIGHT_FILES)} (found: {present}). Point at the folder that "
                "holds them, e.g. one written by save_pretrained()."
            )
        return path.resolve()

    name = os.fspath(name_or_path)
    repo_id = repo_id_for(name, kind)
    tried = [f"local directory {path.resolve()} (does not exist)"]
    if not _REPO_ID.match(repo_id):
        raise ModelNotFoundError(
            _not_found_message(
                name,
                repo_id,
                kind,
                tried,
                hint="it is neither a directory, "
                "a known alias nor a Hugging Face repo id (owner/name)",
            )
        )

    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        snapshot = Path(
            snapshot_download(
                repo_id, revision=revision, local_files_only=True, allow_patterns=_patterns()
            )
        )
        if _has_checkpoint(snapshot):
            return snapshot
        tried.append(
            f"Hugging Face cache {constants.HF_HUB_CACHE} (incomplete snapshot {snapshot})"
        )
    except (LocalEntryNotFoundError, FileNotFoundError, OSError):
        tried.append(f"Hugging Face cache {constants.HF_HUB_CACHE} (no snapshot of {repo_id})")

    if _offline(local_files_only):
        why = "local_files_only=True" if local_files_only else "HF_HUB_OFFLINE=1"
        tried.append(f"download from https://huggingface.co/{repo_id} (skipped: {why})")
    else:
        try:
            snapshot = Path(
                snapshot_download(repo_id, revision=revision, allow_patterns=_patterns())
            )
            if not (snapshot / WEIGHT_FILES[0]).is_file():
                # Older repos ship only the pickle; fetch it when there is no safetensors.
                snapshot = Path(
                    snapshot_download(repo_id, revision=revision, allow_patterns=[WEIGHT_FILES[1]])
                )
            if _has_checkpoint(snapshot):
                return snapshot
            tried.append(f"download from https://huggingface.co/{repo_id} (no weights in repo)")
        except Exception as exc:  # network errors come in many types; report, don't crash
            reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            tried.append(f"download from https://huggingface.co/{repo_id} ({reason})")
    raise ModelNotFoundError(_not_found_message(name, repo_id, kind, tried))


def _patterns() -> list[str]:
    return [*_METADATA_PATTERNS, WEIGHT_FILES[0]]


def _not_found_message(
    name: str, repo_id: str, kind: Kind, tried: list[str], hint: str | None = None
) -> str:
    alias_note = f" (alias for {repo_id})" if repo_id != name else ""
    aliases = ", ".join(sorted(_ALIASES[kind]))
    lines = [f"Could not find the {kind} model {name!r}{alias_note}; tried:"]
    lines += [f"  - {place}" for place in tried]
    if hint:
        lines.append(f"{name!r}: {hint}.")
    lines.append(
        "Fix: pass the path of a local checkpoint directory (config.json, model.safetensors, "
        "tokenizer.json), or allow the download (unset HF_HUB_OFFLINE, pass "
        f"local_files_only=False, check the network). Known {kind} aliases: {aliases}."
    )
    return "\n".join(lines)


def weights_path(directory: Path) -> Path:
    """The weights file a checkpoint directory is loaded from (safetensors first)."""
    for filename in WEIGHT_FILES:
        if (directory / filename).is_file():
            return directory / filename
    raise CheckpointError(f"{directory} has no weights: expected {' or '.join(WEIGHT_FILES)}.")


def _read_weights(directory: Path) -> dict[str, torch.Tensor]:
    for filename in WEIGHT_FILES:
        path = directory / filename
        if not path.is_file():
            continue
        try:
            if filename.endswith(".safetensors"):
                from safetensors.torch import load_file

                return load_file(str(path))
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # safetensors/pickle raise several types for a bad file
            refused = _refused_pickle(exc)
            if refused is not None:
                raise CheckpointError(
                    f"{path} was refused: its pickle asks to {refused}, and a pickle can carry "
                    "code, so jinarag only loads pickled files that hold plain tensors. The file "
                    "may be malicious, or saved with objects besides the weights. Prefer a "
                    "model.safetensors from the model's source; if you trust this file, convert "
                    "it to safetensors in an isolated, trusted environment (load it there with "
                    "the library that wrote it, then save_pretrained(..., "
                    "safe_serialization=True) or safetensors.torch.save_file(state_dict, "
                    "'model.safetensors')) and remove pytorch_model.bin."
                ) from None  # torch's own message suggests turning the safety check off
            # An UnpicklingError is not chained: its text advises weights_only=False.
            raise CheckpointError(
                f"{path} is corrupt or half-written ({type(exc).__name__}: "
                f"{_torch_reason(exc)}). Delete it and copy or download the checkpoint again."
            ) from (None if isinstance(exc, pickle.UnpicklingError) else exc)
    raise CheckpointError(f"{directory} has no weights: expected {' or '.join(WEIGHT_FILES)}.")


# What torch's weights-only unpickler says when a pickle wants more than tensors (a global
# to import, an object to build, a function to call): a refusal, not damage.
_REFUSALS = (
    (re.compile(r"GLOBAL (\S+)"), "import {0}"),
    (re.compile(r"call reduce for unrecognized function (.+)"), "call {0}"),
    (re.compile(r"Can only (?:create new object|build) .*? but got (.+)"), "build {0}"),
)


def _refused_pickle(exc: Exception) -> str | None:
    """What a refused pickle asked for (e.g. "import posix.system"), or None for other errors."""
    if not isinstance(exc, pickle.UnpicklingError):
        return None
    for pattern, template in _REFUSALS:
        found = pattern.search(str(exc))
        if found is not None:
            return template.format(found.group(1).strip().rstrip("."))
    return None


def _torch_reason(exc: Exception) -> str:
    """``exc``'s message without torch's advice to load with ``weights_only=False`` (which
    would run whatever the pickle holds) or to allowlist globals."""
    unsafe = ("weights_only", "Weights only", "safe_globals", "torch.load", "https://")
    lines = [line.strip() for line in str(exc).splitlines()]
    kept = [line for line in lines if line and not any(word in line for word in unsafe)]
    return " ".join(kept)[:300] if kept else "unreadable pickle"


def _normalise_keys(state: dict[str, torch.Tensor], *, keep_head: bool) -> dict[str, torch.Tensor]:
    """Strip the optional ``bert.`` prefix; drop MLM heads, position ids and ALiBi buffers."""
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if key.startswith(_DROPPED_PREFIXES) or key.endswith(_DROPPED_SUFFIXES):
            continue
        key = key.removeprefix("bert.")
        if not keep_head and key.startswith(("pooler.", "classifier.")):
            continue  # embedders pool the hidden states themselves
        out[key] = tensor
    return out


# Bytes weights are aligned to in memory: a cache line, and what AVX-512 loads at once.
# safetensors hands out tensors at the file's offsets (8 + header length + data offset), which
# land 16-60 bytes off a line; MKL's kernels take another code path for such weights.
WEIGHT_ALIGNMENT = 64


def aligned(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` itself when it is off the CPU or starts at a :data:`WEIGHT_ALIGNMENT`-byte
    boundary, else a copy of it in storage that does. Values are unchanged."""
    if tensor.device.type != "cpu" or tensor.data_ptr() % WEIGHT_ALIGNMENT == 0:
        return tensor
    size = tensor.numel() * tensor.element_size()
    raw = torch.empty(size + WEIGHT_ALIGNMENT, dtype=torch.uint8)
    start = (-raw.data_ptr()) % WEIGHT_ALIGNMENT
    return raw[start : start + size].view(tensor.dtype).view(tensor.shape).copy_(tensor)


def _key_list(keys: set[str]) -> str:
    shown = sorted(keys)[:10]
    more = f" … and {len(keys) - 10} more" if len(keys) > 10 else ""
    return ", ".join(shown) + more


def load_encoder(
    directory: Path, *, kind: Kind, device: torch.device, dtype: torch.dtype
) -> tuple[Encoder | XLMRobertaEncoder, EncoderConfig | XLMRobertaConfig]:
    """Build the encoder a checkpoint describes and load its weights, strictly.

    The family comes from ``config.json``: XLM-RoBERTa (jina-embeddings-v3,
    jina-reranker-v2) or BERT (JinaBERT v2, jina-reranker-v1, classic BERT). The module is
    created on the meta device and the loaded tensors are assigned to it, so weights live in
    memory once (no random init that is then overwritten). CPU weights start at 64-byte
    boundaries (:func:`aligned`).
    """
    with_classifier = kind == "reranker"
    raw_config = read_json(directory / "config.json")
    config: EncoderConfig | XLMRobertaConfig
    if is_xlm_roberta(raw_config):
        config = XLMRobertaConfig.from_dict(raw_config, source=str(directory / "config.json"))
    else:
        config = read_config(directory)
    if with_classifier and config.num_labels != 1:
        raise CheckpointError(
            f"{directory} has num_labels={config.num_labels}; a reranker needs a single-logit "
            "classifier (a cross-encoder saved with num_labels=1)."
        )
    with torch.device("meta"):
        model: Encoder | XLMRobertaEncoder = (
            XLMRobertaEncoder(config, with_classifier=with_classifier)
            if isinstance(config, XLMRobertaConfig)
            else Encoder(config, with_classifier=with_classifier)
        )
    raw_state = _read_weights(directory)
    prefix = "roberta." if isinstance(config, XLMRobertaConfig) else "bert."
    if not with_classifier and any(
        key.removeprefix(prefix).startswith("classifier.") for key in raw_state
    ):
        # Mean-pooling a cross-encoder is occasionally meant, so a warning, not an error.
        warn(
            CheckpointWarning(
                f"{directory} is a cross-encoder (it has classifier.* weights) loaded as an "
                "Embedder: its classifier is dropped and its hidden states mean-pooled, which "
                "is rarely what it was trained for. To score (query, document) pairs load it "
                "with jinarag.Reranker.from_pretrained(...); filter jinarag.CheckpointWarning "
                "if the embedding is intended."
            )
        )
    if isinstance(config, XLMRobertaConfig):
        state = xlmr_state(raw_state, keep_head=with_classifier)
        check_adapters(directory, config, state)
    else:
        state = _normalise_keys(raw_state, keep_head=with_classifier)
    expected = set(model.state_dict())
    missing, unexpected = expected - state.keys(), state.keys() - expected
    if missing or unexpected:
        problems = []
        if missing:
            problems.append(f"missing weights: {_key_list(missing)}")
        if unexpected:
            problems.append(f"unexpected weights: {_key_list(unexpected)}")
        if with_classifier:
            problems.append(
                "a reranker needs classifier.dense and classifier.out_proj weights"
                if isinstance(config, XLMRobertaConfig)
                else "a reranker needs pooler.dense and classifier weights"
            )
        if any(".lora_" in key for key in missing | unexpected):
            problems.append(
                "task adapters (parametrizations.weight.0.lora_A/lora_B) go with "
                "config.json's lora_adaptations: both or neither"
            )
        raise CheckpointError(
            f"{directory} does not match its config.json ({'; '.join(problems)}). The file is "
            "incomplete or belongs to another architecture: re-download it, or check that "
            "config.json describes these weights."
        )
    wrong_shape = [
        f"{key} {tuple(state[key].shape)} != {tuple(param.shape)}"
        for key, param in model.state_dict().items()
        if state[key].shape != param.shape
    ]
    if wrong_shape:
        raise CheckpointError(
            f"{directory}: weights do not match config.json shapes: {'; '.join(wrong_shape[:5])}."
            " The config and weights come from different models."
        )
    del raw_state  # tensors are moved one at a time: the old copy of each is freed as we go
    for key in list(state):
        state[key] = aligned(state.pop(key).to(device=device, dtype=dtype))
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval(), config

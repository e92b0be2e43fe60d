"""What Embedder and Reranker share: loading, input checks, batched inference, saving."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np
import torch

from jinarag.errors import CheckpointError, InputError, warn
from jinarag.inference import pipeline
from jinarag.inference.batching import default_max_batch_tokens
from jinarag.inference.pipeline import Head, RunSpec
from jinarag.models.checkpoint import Kind, load_encoder, repo_id_for, resolve_checkpoint
from jinarag.models.config import EncoderConfig, read_json_object
from jinarag.models.encoder import Encoder
from jinarag.models.placement import (
    resolve_attention,
    resolve_backend,
    resolve_device,
    resolve_dtype,
    xlm_roberta_backend,
)
from jinarag.models.quantization import quantize_linears
from jinarag.models.tokenization import TOKENIZER_FILES, Encoded, TextTokenizer
from jinarag.models.xlm_roberta import XLMRobertaEncoder
from jinarag.models.xlm_roberta_config import XLMRobertaConfig
from jinarag.options import MIN_MAX_LENGTH, LoadOptions
from jinarag.validation import check_instance, check_path, known_keywords, positive_int

if TYPE_CHECKING:
    from jinarag.models.openvino_runtime import OpenVINOEncoder

__all__ = ["PretrainedModel"]

Self = TypeVar("Self", bound="PretrainedModel")
# Files copied verbatim by save_pretrained (the tokenizer writes tokenizer.json itself).
_EXTRA_FILES = ("sentence_bert_config.json", *TOKENIZER_FILES[1:])
_NAME_OR_PATH = "a local checkpoint directory, a Hugging Face repo id or an alias such as 'small'"


def _default_max_length(directory: Path, config: EncoderConfig) -> int:
    """The length the checkpoint's authors use: sentence-transformers' max_seq_length, else the
    tokenizer's model_max_length, else the position limit.

    A max_seq_length that is not a usable length (not an integer, under MIN_MAX_LENGTH, or past
    the position table of a model without ALiBi) is a CheckpointError naming the file; the
    tokenizer's model_max_length is only a hint (tokenizers often hold a huge "no limit" there),
    used when it is a length the model can read."""
    limit = config.max_position_embeddings
    path = directory / "sentence_bert_config.json"
    if path.is_file():
        value = read_json_object(path).get("max_seq_length")  # CheckpointError when corrupt
        if value is not None:
            return _checked_seq_length(path, value, None if config.alibi else limit)
    path = directory / "tokenizer_config.json"
    if path.is_file():
        value = read_json_object(path).get("model_max_length")
        if isinstance(value, int) and 1 < value <= limit:
            return value
    return limit


def _init_text(key: str, value: Any) -> str:
    """A string init option (a prefix), checked before anything is loaded."""
    return check_instance(key, value, str, "pass a string, '' for none")


def _checked_seq_length(path: Path, value: Any, limit: int | None) -> int:
    """sentence-transformers' ``max_seq_length``, or a CheckpointError naming the file."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < MIN_MAX_LENGTH
        or (limit is not None and value > limit)
    ):
        span = (
            f"from {MIN_MAX_LENGTH} to {limit} (config.json's max_position_embeddings)"
            if limit
            else f"of at least {MIN_MAX_LENGTH}"
        )
        raise CheckpointError(
            f"{path}: max_seq_length={value!r:.60} must be an integer {span} (the tokens the "
            "model reads per text); restore the file from the original checkpoint, or delete "
            "the key to use the model's own limit."
        )
    return value


class PretrainedModel:
    """A loaded encoder checkpoint with its tokenizer. Subclasses say what to compute.

    ``options`` are the :class:`~jinarag.LoadOptions` it was loaded with; ``max_length`` and
    ``max_batch_tokens`` are the limits in force (the checkpoint's and the engine's defaults
    filled in), and may be changed on a loaded model. ``runtime`` runs the encoder instead of
    ``model`` (``backend="openvino"``: an exported copy of it; ``model`` still runs the rows
    it leaves to torch and the reranker's head); None: ``model`` runs everything.
    """

    kind: ClassVar[Kind]
    # Keywords of a subclass's __init__ that from_pretrained passes through (besides options);
    # each is a string (Embedder's prefixes).
    init_options: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        model: Encoder | XLMRobertaEncoder,
        tokenizer: TextTokenizer,
        *,
        name: str,
        source: Path,
        max_length: int,
        options: LoadOptions | None = None,
        runtime: OpenVINOEncoder | None = None,
    ) -> None:
        self.model = model
        self.runtime = runtime
        self.tokenizer = tokenizer
        self.name = name
        self.source = source
        self.max_length = max_length
        self.options = options if options is not None else LoadOptions()
        self.max_batch_tokens: int = (
            self.options.max_batch_tokens
            if self.options.max_batch_tokens is not None
            else default_max_batch_tokens(self.device)
        )

    @property
    def config(self) -> EncoderConfig | XLMRobertaConfig:
        return self.model.config

    @property
    def backend(self) -> str:
        """What runs the encoder: ``"torch"`` or ``"openvino"`` (``backend="auto"`` resolved)."""
        return "torch" if self.runtime is None else self.runtime.name

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
        options: LoadOptions | None = None,
        **kwargs: Any,
    ) -> Self:
        """Load a checkpoint: a local directory, a Hugging Face repo id, or a short alias.

        Loading options come as a :class:`~jinarag.LoadOptions`, as keywords (``device=``,
        ``dtype=``, ``max_length=``, ``revision=``, ``local_files_only=``,
        ``max_batch_tokens=``, ``quantize=``, ``attention=``, ``num_threads=``, ``backend=``),
        or both: keywords override the fields of ``options``. A subclass's own keywords
        (``Embedder``: ``query_prefix=``, ``document_prefix=``) go to its constructor; any other
        keyword is an InputError listing the accepted ones.

        ``dtype="auto"`` computes in float32 on CPU whatever the stored precision, and in
        float16 on GPU. ``max_length`` defaults to the checkpoint's own limit. ``quantize``,
        ``attention``, ``num_threads`` and ``backend`` are described on
        :class:`~jinarag.LoadOptions`.
        """
        check_path("name_or_path", name_or_path, what=_NAME_OR_PATH)
        options = cls.loading_options(f"{cls.__name__}.from_pretrained", options, kwargs)
        init = {k: _init_text(k, kwargs[k]) for k in cls.init_options if k in kwargs}
        # Device, dtype and backend first: a missing GPU or runtime is reported before any
        # download or read. OpenVINO runs on the CPU (LoadOptions allows no other device).
        torch_device = resolve_device("cpu" if options.backend == "openvino" else options.device)
        torch_dtype = resolve_dtype(options.dtype, torch_device)
        backend = resolve_backend(options, torch_device)
        if backend == "openvino":  # OpenVINO computes in torch_dtype; torch keeps float32
            runtime_dtype, torch_dtype = torch_dtype, torch.float32
        directory = resolve_checkpoint(
            name_or_path,
            kind=cls.kind,
            revision=options.revision,
            local_files_only=options.local_files_only,
        )
        model, config = load_encoder(
            directory, kind=cls.kind, device=torch_device, dtype=torch_dtype
        )
        if isinstance(config, XLMRobertaConfig):
            backend = xlm_roberta_backend(directory.name, options, backend)
        model.attn_implementation = resolve_attention(options.attention, torch_device)
        tokenizer = TextTokenizer.from_dir(
            directory, pad_token_id=config.pad_token_id, vocab_size=config.vocab_size
        )
        runtime = None
        if backend == "openvino":  # exported from the float32 model, before torch's int8
            runtime = _openvino_runtime(
                model, directory, tokenizer, cls.kind, options, runtime_dtype
            )
        if options.quantize is not None:  # torch's own int8 (under openvino: its long rows)
            quantize_linears(model.encoder, options.quantize, torch_device)
        limit = None if config.alibi else config.max_position_embeddings
        max_length = options.max_length
        if max_length is None:
            max_length = _default_max_length(directory, config)
        elif limit and max_length > limit:
            raise InputError(
                f"max_length={max_length!r} is out of range for {directory.name}: use an integer "
                f"from 4 to {limit}, or None for the checkpoint's own limit."
            )
        is_local = Path(os.fspath(name_or_path)).expanduser().is_dir()
        name = str(directory) if is_local else repo_id_for(os.fspath(name_or_path), cls.kind)
        return cls(
            model,
            tokenizer,
            name=name,
            source=directory,
            max_length=max_length,
            options=options,
            runtime=runtime,
            **init,
        )

    @classmethod
    def loading_options(
        cls, owner: str, options: LoadOptions | None, kwargs: dict[str, Any]
    ) -> LoadOptions:
        """``options`` with the loading keywords of ``kwargs`` applied; unknown keywords (not
        options, not ``init_options``) are an InputError naming ``owner``."""
        return LoadOptions.from_kwargs(
            kwargs, owner=owner, base=options, also_accepted=cls.init_options
        )

    # -- inference ------------------------------------------------------------------------

    @property
    def packed(self) -> bool:
        """Whether batches pack several inputs into a row (the flex backend) or pad one per row."""
        return self.runtime is None and self.model.attn_implementation == "flex"

    def run_spec(self, max_tokens: int | None = None, task: int | None = None) -> RunSpec:
        """What the pipeline needs of this model, as it is now (``max_length`` and
        ``max_batch_tokens`` may change on a loaded model); ``max_tokens``: a pass's token
        budget instead of ``max_batch_tokens``; ``task``: the index of the task adapter every
        pass uses (models with adapters only)."""
        encoder = self.runtime if self.runtime is not None else self.model
        if task is not None:
            encoder = partial(self.model, task=task)
        return RunSpec(
            encoder=encoder,
            device=self.device,
            pad_token_id=self.tokenizer.pad_token_id,
            max_length=self.max_length,
            max_batch_tokens=max_tokens if max_tokens is not None else self.max_batch_tokens,
            packed=self.packed,
            num_threads=self.options.num_threads,
        )

    def _run(
        self,
        count: int,
        encode: Callable[[int, int], Encoded],
        head: Head,
        *,
        batch_size: int,
        what: str,
        show_progress: bool = False,
        should_stop: Callable[[], bool] | None = None,
        outputs: int | None = None,
        max_tokens: int | None = None,
        task: int | None = None,
    ) -> np.ndarray:
        """The pipeline (:func:`jinarag.inference.pipeline.run`) over ``count`` inputs."""
        return pipeline.run(
            self.run_spec(max_tokens, task),
            count,
            encode,
            head,
            batch_size=positive_int("batch_size", batch_size),
            what=what,
            show_progress=show_progress,
            should_stop=should_stop,
            outputs=outputs,
        )

    def _run_tokens(
        self,
        encoded: Encoded,
        head: Head,
        *,
        batch_size: int,
        what: str,
        should_stop: Callable[[], bool] | None = None,
        max_tokens: int | None = None,
        task: int | None = None,
    ) -> np.ndarray:
        """:meth:`_run` over inputs tokenised already (one row each, in order)."""

        def window(start: int, stop: int) -> Encoded:
            return Encoded(
                encoded.input_ids[start:stop], encoded.token_type_ids[start:stop], truncated=[]
            )

        return self._run(
            len(encoded),
            window,
            head,
            batch_size=batch_size,
            what=what,
            should_stop=should_stop,
            max_tokens=max_tokens,
            task=task,
        )

    # -- saving ---------------------------------------------------------------------------

    @known_keywords
    def save_pretrained(self, path: str | os.PathLike[str]) -> Path:
        """Write config.json, model.safetensors and the tokenizer files to ``path``."""
        return _save(self, path)

    def __repr__(self) -> str:
        dtype = self.dtype if self.runtime is None else self.runtime.dtype
        backend = f", backend={self.backend}" if self.runtime is not None else ""
        return (
            f"{type(self).__name__}(name={self.name!r}, max_length={self.max_length}, "
            f"device={self.device.type}, dtype={str(dtype).removeprefix('torch.')}{backend})"
        )


def _openvino_runtime(
    model: Encoder,
    directory: Path,
    tokenizer: TextTokenizer,
    kind: Kind,
    options: LoadOptions,
    dtype: torch.dtype,
) -> OpenVINOEncoder | None:
    """``model`` exported to OpenVINO (from the export cache when it is there), computing in
    ``dtype``, quantised by NNCF on jinarag's calibration text when ``options.quantize`` asks
    for int8. None when ``backend="auto"`` and the export failed: the model runs on torch."""
    from jinarag.models.calibration import shipped_calibration
    from jinarag.models.openvino_runtime import load_openvino

    calibration = shipped_calibration() if options.quantize is not None else None
    limit = model.config.max_position_embeddings
    try:
        return load_openvino(
            model,
            directory,
            kind=kind,
            attention=model.attn_implementation,
            calibration=calibration,
            samples=lambda: calibration.samples(tokenizer, kind=kind, max_length=limit),
            dtype=dtype,
        )
    except Exception as exc:
        if options.backend != "auto":
            raise
        # "auto" never fails where torch runs: say why, then run on torch.
        warn(
            f"backend='auto' could not run {directory.name} on OpenVINO "
            f"({type(exc).__name__}: {exc}); it runs on torch. Pass backend='torch' to skip "
            "the attempt, or backend='openvino' to see the error.",
            RuntimeWarning,
        )
        return None


def _save(model: PretrainedModel, path: str | os.PathLike[str]) -> Path:
    """:meth:`PretrainedModel.save_pretrained`."""
    from safetensors.torch import save_file

    check_path("path", path, what="the folder to save to")
    if model.options.quantize is not None:
        raise InputError(
            f"This model was loaded with quantize={model.options.quantize!r}, whose packed "
            "weights have no checkpoint layout: save the model loaded without quantize, and "
            f"pass quantize={model.options.quantize!r} when loading the saved copy."
        )

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    config = dict(model.config.raw)
    config["torch_dtype"] = str(model.dtype).removeprefix("torch.")
    (out / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    state = {k: v.detach().contiguous().cpu() for k, v in model.model.state_dict().items()}
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    model.tokenizer.save(out)
    for filename in _EXTRA_FILES:
        if (model.source / filename).is_file() and model.source.resolve() != out.resolve():
            shutil.copyfile(model.source / filename, out / filename)
    return out

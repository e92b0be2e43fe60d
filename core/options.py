"""How a model is loaded: one :class:`LoadOptions` value that the core and every adapter take.

The core's ``from_pretrained(name, options, **kwargs)``, the LangChain and LlamaIndex fields,
the Haystack init parameters and the Chroma config all list the same options: the fields
below, declared here once. Values are checked when a ``LoadOptions`` is built, and an unknown
keyword is an :class:`~jinarag.errors.InputError` that lists the accepted ones.

A leaf module: it imports only the errors and validation modules (torch only when a value
has to be checked against it), so adapters and configs can use it without loading a model.
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Mapping
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from jinarag.errors import InputError
from jinarag.validation import check_keywords, positive_int

if TYPE_CHECKING:
    import torch

__all__ = [
    "ATTENTION_NAMES",
    "BACKEND_NAMES",
    "DTYPE_NAMES",
    "INIT_OPTIONS",
    "QUANTIZE_NAMES",
    "LoadOptions",
]

# Accepted dtype spellings -> the torch attribute they name.
DTYPE_NAMES: dict[str, str] = {
    "float32": "float32",
    "fp32": "float32",
    "float16": "float16",
    "fp16": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
}
# quantize= modes, and attention backends (jinarag.models.encoder.ATTENTION_BACKENDS).
QUANTIZE_NAMES = ("int8",)
ATTENTION_NAMES = ("sdpa", "flex", "eager")
# Execution backends (jinarag.models.placement.resolve_backend decides what "auto" means), and
# the extra that installs each one's runtime.
BACKEND_NAMES = ("torch", "openvino")
BACKEND_EXTRAS = {"openvino": "pip install 'jinarag[openvino]'"}
# The torch dtypes a model can compute in (float64 too, for exactness checks on CPU).
TORCH_DTYPES = ("float32", "float16", "bfloat16", "float64")
# The keywords each model class takes beside the loading options (Embedder.init_options,
# Reranker.init_options): known here, so a remote model is resolved without importing the
# local classes (and torch).
INIT_OPTIONS: dict[str, tuple[str, ...]] = {
    "embedder": ("query_prefix", "document_prefix"),
    "reranker": (),
}
# The shortest max_length that leaves room for [CLS], [SEP] and some text.
MIN_MAX_LENGTH = 4


def _is_torch(value: Any, name: str) -> bool:
    """Whether ``value`` is a ``torch.<name>`` (no torch import: such a value implies torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, getattr(torch, name))


@dataclass(frozen=True)
class LoadOptions:
    """Options for loading an :class:`~jinarag.Embedder` or :class:`~jinarag.Reranker`.

    Every field has a default, so ``LoadOptions()`` loads the way ``from_pretrained(name)``
    does. Bad values raise :class:`~jinarag.errors.InputError` here, before any loading.

    Example:
        >>> import jinarag
        >>> options = jinarag.LoadOptions(device="cpu", max_length=256)
        >>> embedder = jinarag.Embedder.from_pretrained("small", options)
        >>> same = jinarag.Embedder.from_pretrained("small", device="cpu", max_length=256)
        >>> jinarag.LoadOptions.from_dict(options.to_dict()) == options
        True
    """

    device: str | torch.device = "auto"
    """Where to run: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``,
    ``"cuda:1"``, ... or a ``torch.device``."""
    dtype: str | torch.dtype = "auto"
    """Compute precision: ``"auto"`` (float32 on CPU, float16 on a GPU), ``"float32"``,
    ``"float16"``, ``"bfloat16"`` (or ``fp32``, ``fp16``, ``bf16``), or a ``torch.dtype``."""
    max_length: int | None = None
    """Tokens per text (per query-document pair for a reranker), longer inputs are truncated;
    None: the checkpoint's own limit."""
    revision: str | None = None
    """The Hub branch, tag or commit to load; None: the default branch."""
    local_files_only: bool | None = None
    """True: never download, use the Hugging Face cache only; None: follow ``HF_HUB_OFFLINE``."""
    max_batch_tokens: int | None = None
    """Tokens per forward pass (rows x row length, padding included), which bounds memory;
    None: 16384 on CPU, 65536 on a GPU. A single input longer than this still runs, alone.
    On a GPU out-of-memory error the budget halves and the batch is retried."""
    quantize: str | None = None
    """``"int8"``: the encoder's linear layers in dynamic int8 (CPU only; about twice as fast
    as float32, at a small measured cost in quality, see docs/performance.md); None: off."""
    attention: str = "auto"
    """The attention backend: ``"auto"`` (``"flex"`` on CUDA, ``"sdpa"`` elsewhere),
    ``"sdpa"`` (padded rows, blocked fused attention), ``"flex"`` (texts packed into rows
    with no padding, flex_attention with ALiBi as a score_mod), or ``"eager"`` (reference)."""
    num_threads: int | str | None = None
    """CPU threads for this model's forward passes: None, torch's own count (results
    reproducible to the bit); ``"auto"``, adaptive (torch's count and one thread are both
    timed for each size of pass and the faster used, which follows the machine's load; see
    docs/performance.md); or a number."""
    backend: str = "auto"
    """What runs the encoder: ``"torch"``; ``"openvino"`` (CPU only: the model is exported
    once to an OpenVINO IR, cached under ``$JINARAG_CACHE_DIR`` or ``~/.cache/jinarag``, and
    run by OpenVINO's CPU plugin in float32, in bfloat16 with ``dtype="bfloat16"`` on CPUs
    with bf16 units, or in int8 with ``quantize="int8"`` (NNCF, calibrated on text jinarag
    ships); needs ``pip install 'jinarag[openvino]'``; rows longer than 2048 tokens run on
    torch in float32, which attends in blocks; padded rows only, so not with
    ``attention="flex"``); or ``"auto"``, the fastest backend that gives torch float32's
    vectors on this device: OpenVINO on CPU when its extra is installed (float32, or int8
    when ``quantize="int8"``), else torch (see docs/performance.md)."""

    def __post_init__(self) -> None:
        # Normalised copies (numpy integers become int); the dataclass is frozen.
        object.__setattr__(self, "device", _check_device(self.device))
        object.__setattr__(self, "dtype", _check_dtype(self.dtype))
        object.__setattr__(self, "max_length", _check_max_length(self.max_length))
        if self.revision is not None and (not isinstance(self.revision, str) or not self.revision):
            raise InputError(
                f"revision={self.revision!r} must be a non-empty string (a branch, tag or commit "
                "hash) or None for the default branch."
            )
        if self.local_files_only is not None and not isinstance(self.local_files_only, bool):
            raise InputError(
                f"local_files_only={self.local_files_only!r} must be True, False or None."
            )
        object.__setattr__(
            self,
            "max_batch_tokens",
            positive_int("max_batch_tokens", self.max_batch_tokens, allow_none=True),
        )
        if self.quantize is not None and self.quantize not in QUANTIZE_NAMES:
            raise InputError(
                f"quantize={self.quantize!r} is not supported; use 'int8' (CPU) or None."
            )
        computes_in = str(self.dtype).removeprefix("torch.")
        if self.quantize is not None and computes_in not in ("auto", "float32", "fp32"):
            raise InputError(
                f"quantize={self.quantize!r} computes from float32 weights; drop "
                f"dtype={self.dtype!r} (or pass dtype='float32'), or quantize=None to use it."
            )
        if self.attention not in ("auto", *ATTENTION_NAMES):
            raise InputError(
                f"attention={self.attention!r} is not a backend; use 'auto', "
                f"{', '.join(map(repr, ATTENTION_NAMES))}."
            )
        if self.num_threads != "auto":
            try:
                threads = positive_int("num_threads", self.num_threads, allow_none=True)
            except InputError as exc:
                raise InputError(
                    f"num_threads={self.num_threads!r} is not a thread count: use a positive "
                    "integer, 'auto' (adaptive) or None (torch's own count)."
                ) from exc
            object.__setattr__(self, "num_threads", threads)
        _check_backend(self)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names, in declaration order: what every adapter accepts."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """``{name: default}`` for every option."""
        return {f.name: f.default for f in fields(cls)}

    @classmethod
    def from_kwargs(
        cls,
        kwargs: Mapping[str, Any],
        *,
        owner: str = "LoadOptions",
        base: LoadOptions | None = None,
        also_accepted: Collection[str] = (),
    ) -> LoadOptions:
        """Options from keyword arguments, on top of ``base`` (default: all defaults).

        Keys in ``also_accepted`` are the caller's own keywords: allowed, and ignored here.
        Any other unknown key is an InputError that names it, ``owner``, and every accepted
        keyword.

        Example:
            >>> LoadOptions.from_kwargs({"max_length": 128}).max_length
            128
        """
        check_keywords(owner, kwargs, (*cls.names(), *also_accepted))
        if base is not None and not isinstance(base, LoadOptions):
            raise InputError(
                f"{owner} got options={base!r:.80}, a {type(base).__name__}; pass "
                "jinarag.LoadOptions(...) or the options as keywords (device='cpu', ...)."
            )
        changes = {name: kwargs[name] for name in cls.names() if name in kwargs}
        return replace(base if base is not None else cls(), **changes)

    def to_dict(self) -> dict[str, Any]:
        """Every option as plain JSON/YAML data (a torch dtype or device becomes its name)."""
        data: dict[str, Any] = {name: getattr(self, name) for name in self.names()}
        if not isinstance(self.device, str):
            data["device"] = str(self.device)
        if not isinstance(self.dtype, str):
            data["dtype"] = str(self.dtype).removeprefix("torch.")
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LoadOptions:
        """The options ``to_dict`` wrote; missing keys take their defaults."""
        if not isinstance(data, Mapping):
            raise InputError(
                f"LoadOptions.from_dict needs a mapping, got {type(data).__name__} {data!r:.60}"
            )
        return cls.from_kwargs(data, owner="LoadOptions.from_dict")


def _check_device(device: Any) -> Any:
    if _is_torch(device, "device"):
        return device
    if not isinstance(device, str):
        raise InputError(
            f"device={device!r} must be a string or a torch.device; use 'auto', 'cpu', 'cuda' "
            "or 'cuda:N'."
        )
    if device != "auto":
        import torch

        try:
            torch.device(device)
        except (RuntimeError, ValueError) as exc:
            raise InputError(
                f"device={device!r} is not a torch device; use 'auto', 'cpu', 'cuda' or 'cuda:N'."
            ) from exc
    return device


def _check_dtype(dtype: Any) -> Any:
    if isinstance(dtype, str) and dtype in ("auto", *DTYPE_NAMES):
        return dtype
    # Weights are cast to this dtype: an integer or float8 type would not compute.
    if _is_torch(dtype, "dtype") and str(dtype).removeprefix("torch.") in TORCH_DTYPES:
        return dtype
    raise InputError(
        f"dtype={dtype!r} is not supported; use 'auto', {', '.join(map(repr, DTYPE_NAMES))} "
        f"or one of {', '.join('torch.' + name for name in TORCH_DTYPES)}."
    )


def _check_backend(options: LoadOptions) -> None:
    """The backend's name, and the options it cannot honour (each error names the fix)."""
    backend = options.backend
    if backend not in ("auto", *BACKEND_NAMES):
        raise InputError(
            f"backend={backend!r} is not a backend; use 'auto', "
            f"{', '.join(map(repr, BACKEND_NAMES))}."
        )
    if backend != "openvino":
        return
    device = options.device if isinstance(options.device, str) else str(options.device)
    if device not in ("auto", "cpu"):
        raise InputError(
            f"backend='openvino' runs on the CPU, not on device={device!r}: pass device='cpu' "
            "(or 'auto'), or backend='torch' to run on that device."
        )
    computes_in = str(options.dtype).removeprefix("torch.")
    if computes_in not in ("auto", "float32", "fp32", "bfloat16", "bf16"):
        raise InputError(
            f"backend='openvino' computes in float32 or bfloat16 (or int8 with "
            f"quantize='int8'), not dtype={options.dtype!r}: drop dtype (float32), pass "
            "dtype='bfloat16', or use backend='torch' for that dtype."
        )
    if options.attention == "flex":
        raise InputError(
            "attention='flex' packs texts into rows, which only the torch backend runs; "
            "backend='openvino' runs padded rows (attention 'auto', 'sdpa' or 'eager'), or "
            "pass backend='torch' to use flex."
        )


def _check_max_length(max_length: Any) -> int | None:
    if max_length is None:
        return None
    value = positive_int("max_length", max_length)
    if value < MIN_MAX_LENGTH:
        raise InputError(
            f"max_length={max_length!r} is too short: use at least {MIN_MAX_LENGTH} tokens "
            "([CLS], [SEP] and some text), or None for the checkpoint's own limit."
        )
    return value

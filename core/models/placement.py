"""Where, in what precision and on what backend a model runs: the device, dtype, attention and
execution backend a ``LoadOptions`` asks for, resolved against this machine before any file is
read."""

from __future__ import annotations

import torch

from jinarag.errors import InputError
from jinarag.options import DTYPE_NAMES, LoadOptions

__all__ = [
    "available_devices",
    "resolve_attention",
    "resolve_backend",
    "resolve_device",
    "resolve_dtype",
    "xlm_roberta_backend",
]


def available_devices() -> list[str]:
    """The devices a model can be put on here, e.g. ``["cpu", "cuda", "cuda:0"]``."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += ["cuda", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))]
    if torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def resolve_device(device: str | torch.device) -> torch.device:
    """The torch device for a checked ``LoadOptions.device``; ``"auto"``: CUDA when available,
    else CPU. A device this machine lacks is an InputError listing the ones it has, raised
    before any file is read (torch would fail later, with an AssertionError)."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise InputError(
            f"device={device!r} is not a torch device; use 'auto', 'cpu', 'cuda' or 'cuda:N'."
        ) from exc
    if resolved.type == "cpu":
        return resolved
    backend = getattr(torch, resolved.type, None)  # torch.cuda, torch.mps, torch.xpu, ...
    is_available = getattr(backend, "is_available", None)
    if callable(is_available) and is_available():
        count = getattr(backend, "device_count", lambda: 1)()
        if resolved.index is None or resolved.index < count:
            return resolved
        why = f"there are {count} {resolved.type} device(s), numbered from 0"
    elif resolved.type == "cuda" and not torch.backends.cuda.is_built():
        why = f"this torch ({torch.__version__}) is built without CUDA"
    else:
        why = f"torch sees no {resolved.type} device on this machine"
    shown = device if isinstance(device, str) else str(device)
    raise InputError(
        f"device={shown!r} is not available: {why}. Available here: "
        f"{', '.join(map(repr, available_devices()))}; or pass 'auto' to use a GPU when there "
        "is one."
    )


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """``"auto"``: float32 on CPU (fp16 matmuls are slow there); on an accelerator, float16."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return torch.float32 if device.type == "cpu" else torch.float16
    if dtype not in DTYPE_NAMES:
        raise InputError(
            f"dtype={dtype!r} is not supported; use 'auto', {', '.join(map(repr, DTYPE_NAMES))}."
        )
    return getattr(torch, DTYPE_NAMES[dtype])


def resolve_attention(attention: str, device: torch.device) -> str:
    """``"auto"``: flex attention (packed rows, compiled kernels) on CUDA, blocked SDPA on
    padded rows elsewhere (uncompiled flex materialises its scores: right, but slow)."""
    if attention != "auto":
        return attention
    return "flex" if device.type == "cuda" else "sdpa"


def resolve_backend(options: LoadOptions, device: torch.device) -> str:
    """What runs the encoder, ``"torch"`` or ``"openvino"``: the one place that decides what
    ``backend="auto"`` means. An explicit ``"openvino"`` whose runtime is not installed is an
    InputError naming the extra (``LoadOptions`` has already refused what it cannot run:
    a GPU, float16/bfloat16, flex attention). ``"auto"`` picks OpenVINO only where it gives
    torch float32's vectors (cosine >= 0.9999): on CPU, in float32 (or int8 when asked),
    on padded rows, with the runtime installed (measured 3-4x torch's speed there with the
    same vectors: docs/performance.md, benchmarks/cpu_peers.py)."""
    if options.backend == "openvino":
        from jinarag.models.openvino_runtime import require_openvino

        require_openvino(int8=options.quantize is not None)
        return "openvino"
    if options.backend == "torch":
        return "torch"
    eligible = (
        device.type == "cpu"
        and options.attention != "flex"
        and str(options.dtype).removeprefix("torch.") in ("auto", "float32", "fp32")
    )
    if eligible:
        from jinarag.models.openvino_runtime import require_openvino

        try:
            require_openvino(int8=options.quantize is not None)
        except InputError:
            return "torch"
        return "openvino"
    return "torch"


def xlm_roberta_backend(name: str, options: LoadOptions, backend: str) -> str:
    """The backend an XLM-RoBERTa checkpoint runs on: torch (no OpenVINO export and no int8
    for this family yet); an explicit request for either is an InputError."""
    if options.backend == "openvino" or options.quantize is not None:
        asked = "backend='openvino'" if options.backend == "openvino" else "quantize='int8'"
        raise InputError(
            f"{asked} is not available for {name} (an XLM-RoBERTa checkpoint: "
            "jina-embeddings-v3 or jina-reranker-v2); it runs on torch. Pass backend='torch' "
            "(or 'auto') and quantize=None, and dtype='bfloat16' on a GPU for speed."
        )
    return "torch" if backend == "openvino" else backend

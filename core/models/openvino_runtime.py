"""``backend="openvino"``: the encoder exported to an OpenVINO IR, cached, and run by OpenVINO's
CPU plugin.

Export: our own torch :class:`~jinarag.models.encoder.Encoder` (eval, float32, padded rows with
a 0/1 attention mask, SDPA or eager attention), traced by ``openvino.convert_model`` with the
batch and sequence dimensions left dynamic. Nothing comes from the checkpoint but its weights
and config, which the torch loader has already checked. The IR (XML + weights: data, never
code) is saved uncompressed (float32) in the export cache (:mod:`jinarag.models.export_cache`),
keyed by the checkpoint's weights and config, the OpenVINO, torch and jinarag versions, and the
export options, so the next load reads it instead of exporting.

``quantize="int8"``: the exported IR quantised by NNCF's post-training quantisation (transformer
preset), calibrated on text jinarag ships (:mod:`jinarag.models.calibration`), cached under a
key of its own.

Running: :class:`OpenVINOEncoder` takes the pipeline's padded batch and returns the last hidden
states as a torch float32 tensor (rows, length, hidden), so pooling, late chunking and the
reranker's head run unchanged. It computes in float32 (``INFERENCE_PRECISION_HINT`` f32: the
plugin's own default is bf16 on CPUs with bf16 units), or in bf16 when asked. It is compiled
for the thread count of each pass (the engine's thread policy sets torch's count; a compiled
model per count). The exported graph materialises the ALiBi bias (rows x heads x length²
floats), so a batch is run a few rows at a time within :data:`BIAS_BYTES`, and rows longer
than :data:`LONG_ROW_TOKENS` run on the torch encoder (float32), which attends in blocks and
keeps memory flat up to 8192 tokens.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jinarag.errors import InputError
from jinarag.models.calibration import Calibration
from jinarag.models.checkpoint import weights_path
from jinarag.models.encoder import Encoder, TokenLayout
from jinarag.models.export_cache import ExportCache, file_sha256
from jinarag.options import BACKEND_EXTRAS

__all__ = [
    "BIAS_BYTES",
    "LONG_ROW_TOKENS",
    "OpenVINOEncoder",
    "export_encoder",
    "load_openvino",
    "require_openvino",
]

# Bump when the exported graph changes, so caches of the old graph are not used.
EXPORT_FORMAT = 1
# Rows longer than this run on torch (see the module docstring and docs/performance.md).
LONG_ROW_TOKENS = 2048
# Bytes of materialised attention bias one OpenVINO call may hold; a batch is split by rows.
BIAS_BYTES = TokenLayout.BLOCK_BYTES
# The plugin's inference precision for each compute dtype.
PRECISION_HINTS = {torch.float32: "f32", torch.bfloat16: "bf16"}
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids", "position_ids")
IR_FILES = ("model.xml", "model.bin")
_HASHES: dict[tuple, str] = {}  # a weights file's SHA-256, per (path, inode, size, times)


def require_openvino(int8: bool = False) -> Any:
    """The ``openvino`` module (and NNCF for int8), or an InputError naming the extra."""
    needed = "openvino"
    try:
        openvino = _import_quietly("openvino")

        if int8:
            needed = "nncf"
            _import_quietly("nncf")
    except ImportError as exc:
        what = "backend='openvino'" + (" with quantize='int8'" if int8 else "")
        raise InputError(
            f"{what} needs the {needed} package, which is not installed here: "
            f"{BACKEND_EXTRAS['openvino']} (or pass backend='torch')."
        ) from exc
    return openvino


def _import_quietly(name: str) -> Any:
    """``import name``; for OpenVINO, whose first import reports itself to Intel unless the user
    opted out (see :func:`_no_usage_reports`), as if in CI, where the reporter declines (the
    variable is set for the import only)."""
    if sys.modules.get(name) is not None:
        return sys.modules[name]
    ci = os.environ.get("CI")
    os.environ["CI"] = "true"
    try:
        return importlib.import_module(name)
    finally:
        if ci is None:
            os.environ.pop("CI", None)
        else:
            os.environ["CI"] = ci


@contextmanager
def _no_usage_reports() -> Iterator[None]:
    """OpenVINO's converter and NNCF report usage to Intel (through Google Analytics) unless the
    user has opted out; jinarag's exports report nothing, as its Chroma client reports nothing.
    While jinarag converts and quantises, their telemetry objects are the packages' own stubs
    (best effort: what a version lacks is left alone)."""
    swaps: list[tuple[Any, str, Any]] = []
    try:
        from openvino.tools.ovc import convert_impl, telemetry_stub, telemetry_utils

        swaps += [(module, "tm", telemetry_stub) for module in (convert_impl, telemetry_utils)]
    except ImportError:
        pass
    if "nncf" in sys.modules:
        try:
            from nncf.telemetry import decorator, wrapper

            swaps.append((decorator, "telemetry", wrapper.NNCFTelemetryStub()))
        except (ImportError, AttributeError):
            pass
    swaps = [(owner, name, stub) for owner, name, stub in swaps if hasattr(owner, name)]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in swaps]
    try:
        for owner, name, stub in swaps:
            setattr(owner, name, stub)
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)


class _Traced(torch.nn.Module):
    """The encoder's forward with the four inputs by position (what tracing records)."""

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids, attention_mask, token_type_ids, position_ids):
        return self.encoder(input_ids, attention_mask, token_type_ids, position_ids)


def export_encoder(encoder: Encoder, attention: str) -> Any:
    """``encoder`` (float32, CPU) as an ``openvino.Model`` over padded rows of any count and
    length, attending with ``attention`` ("sdpa" or "eager")."""
    ov = require_openvino()
    rows, length = 2, 9
    input_ids = torch.full((rows, length), 5, dtype=torch.long)
    mask = torch.ones((rows, length), dtype=torch.long)
    mask[1, 6:] = 0  # padding in the example, so the graph keeps the key mask
    types = torch.zeros_like(input_ids)
    positions = torch.arange(length).expand(rows, length).contiguous()
    previous = encoder.attn_implementation
    encoder.attn_implementation = attention
    try:
        with torch.no_grad(), warnings.catch_warnings(), _no_usage_reports():
            warnings.simplefilter("ignore")  # the tracer's notes on Python values it records
            model = ov.convert_model(
                _Traced(encoder.eval()),
                example_input=(input_ids, mask, types, positions),
                input=[(name, [-1, -1], ov.Type.i64) for name in INPUT_NAMES],
            )
    finally:
        encoder.attn_implementation = previous
    model.outputs[0].get_tensor().set_names({"last_hidden_state"})
    return model


def quantize_int8(model: Any, samples: list[dict[str, np.ndarray]]) -> Any:
    """``model`` with NNCF's post-training int8 quantisation, calibrated on ``samples``."""
    import logging

    import nncf

    nncf.set_log_level(logging.ERROR)
    with warnings.catch_warnings(), _no_usage_reports():
        warnings.simplefilter("ignore")
        return nncf.quantize(
            model,
            nncf.Dataset(samples),
            model_type=nncf.ModelType.TRANSFORMER,
            subset_size=len(samples),
        )


class OpenVINOEncoder:
    """The pipeline's encoder (``RunSpec.encoder``) on OpenVINO; see the module docstring.

    ``fallback`` runs rows longer than :data:`LONG_ROW_TOKENS`; ``heads`` is the number of
    ALiBi heads (0: no materialised S² bias, the batch runs whole).
    """

    name = "openvino"

    def __init__(
        self,
        model: Any,
        *,
        fallback: Encoder,
        heads: int,
        int8: bool,
        reload: Callable | None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.ov = require_openvino()
        self.fallback = fallback
        self.heads = heads
        self.int8 = int8
        self.dtype = dtype  # what the plugin computes in (besides int8 layers)
        self._model = model  # dropped after the first compile when it can be reloaded
        self._reload = reload
        self._compiled: dict[int, Any] = {}
        self._requests: dict[int, Any] = {}
        self._lock = threading.Lock()
        self.inputs = [name for name in INPUT_NAMES if _has_input(model, name)]

    def compiled(self, threads: int) -> Any:
        """The model compiled for ``threads`` CPU threads, float32 (int8 where quantised)."""
        if threads not in self._compiled:
            model = self._model if self._model is not None else self._reload()
            config = {
                "INFERENCE_NUM_THREADS": threads,
                "INFERENCE_PRECISION_HINT": PRECISION_HINTS[self.dtype],
                "PERFORMANCE_HINT": "LATENCY",
                "NUM_STREAMS": 1,
            }
            self._compiled[threads] = self.ov.Core().compile_model(model, "CPU", config)
            self._requests[threads] = self._compiled[threads].create_infer_request()
            if self._reload is not None:
                self._model = None  # the cache holds it: no third copy of the weights
        return self._compiled[threads]

    def __call__(
        self,
        input_ids: torch.Tensor,
        sequence_ids: torch.Tensor,
        token_type_ids: torch.Tensor,
        position_ids: torch.Tensor,
    ) -> torch.Tensor:
        rows, length = input_ids.shape
        if length > LONG_ROW_TOKENS:
            return self.fallback(input_ids, sequence_ids, token_type_ids, position_ids)
        assert int(sequence_ids.max()) <= 1, "openvino runs padded rows (one text per row)"
        tensors = (input_ids, sequence_ids, token_type_ids, position_ids)
        arrays = dict(zip(INPUT_NAMES, tensors, strict=True))
        feed = {name: arrays[name].numpy() for name in self.inputs}
        step = rows if not self.heads else max(1, BIAS_BYTES // (self.heads * length**2 * 4))
        threads = torch.get_num_threads()
        outputs = []
        with self._lock:
            self.compiled(threads)
            request = self._requests[threads]
            for start in range(0, rows, step):
                request.infer({name: array[start : start + step] for name, array in feed.items()})
                outputs.append(torch.from_numpy(request.get_output_tensor(0).data.copy()))
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs)

    def __repr__(self) -> str:
        return (
            f"OpenVINOEncoder(int8={self.int8}, dtype={self.dtype}, compiled for threads "
            f"{sorted(self._compiled)})"
        )


def _has_input(model: Any, name: str) -> bool:
    return any(name in port.get_names() for port in model.inputs)


def _sha256(path: Path) -> str:
    stat = path.stat()  # any write or replacement changes the inode, size or ctime
    key = (str(path.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    if key not in _HASHES:
        _HASHES[key] = file_sha256(path)
    return _HASHES[key]


def cache_inputs(
    directory: Path, *, kind: str, attention: str, calibration: Calibration | None
) -> dict[str, Any]:
    """What an export depends on (its cache key is their SHA-256)."""
    ov = require_openvino()
    weights = weights_path(directory)
    return {
        "format": EXPORT_FORMAT,
        "weights": {"file": weights.name, "sha256": _sha256(weights)},
        "config_sha256": hashlib.sha256((directory / "config.json").read_bytes()).hexdigest(),
        "openvino": ov.get_version(),
        "torch": torch.__version__,
        "jinarag": metadata.version("jinarag"),
        "kind": kind,
        "attention": attention,
        "int8": calibration is not None,
        "calibration": calibration.digest if calibration is not None else None,
    }


def _read_or_export(
    cache: ExportCache, inputs: dict[str, Any], make: Callable[[], Any]
) -> tuple[Any, Callable | None]:
    """The cached model for ``inputs`` (verified), or ``make()`` stored in the cache; and a
    function that reads it again (None when the cache could not keep it)."""
    ov = require_openvino()

    def read() -> Any:
        found = cache.load(inputs)
        return (
            None if found is None else ov.Core().read_model(found["model.xml"], found["model.bin"])
        )

    model = read()
    if model is not None:
        return model, read
    model = make()
    stored = cache.store(
        inputs, lambda folder: ov.save_model(model, folder / "model.xml", compress_to_fp16=False)
    )
    return model, (read if stored is not None else None)


def load_openvino(
    encoder: Encoder,
    directory: Path,
    *,
    kind: str,
    attention: str,
    calibration: Calibration | None = None,
    samples: Callable[[], list[dict[str, np.ndarray]]] | None = None,
    cache: ExportCache | None = None,
    dtype: torch.dtype = torch.float32,
) -> OpenVINOEncoder:
    """``encoder`` (loaded from ``directory``) on OpenVINO, computing in ``dtype``: from the
    export cache, or exported (and with ``calibration``, quantised to int8 on ``samples()``)
    and stored there."""
    if dtype == torch.bfloat16:
        check_bf16(require_openvino())
    cache = cache if cache is not None else ExportCache("openvino", IR_FILES)
    fp32_inputs = cache_inputs(directory, kind=kind, attention=attention, calibration=None)

    def float_model() -> tuple[Any, Callable | None]:
        return _read_or_export(cache, fp32_inputs, lambda: export_encoder(encoder, attention))

    if calibration is None:
        model, reload = float_model()
    else:  # the float IR is read (or exported) only when the int8 one is not cached
        assert samples is not None, "int8 needs calibration samples"
        require_openvino(int8=True)
        int8_inputs = cache_inputs(
            directory, kind=kind, attention=attention, calibration=calibration
        )
        model, reload = _read_or_export(
            cache, int8_inputs, lambda: quantize_int8(float_model()[0], samples())
        )
    heads = encoder.config.num_attention_heads if encoder.config.alibi else 0
    return OpenVINOEncoder(
        model,
        fallback=encoder,
        heads=heads,
        int8=calibration is not None,
        reload=reload,
        dtype=dtype,
    )


def check_bf16(ov: Any) -> None:
    """InputError unless OpenVINO's CPU plugin computes bf16 natively here (AVX512_BF16 or
    AMX): elsewhere it would emulate it, slower than float32."""
    capabilities = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    if "BF16" not in capabilities:
        raise InputError(
            "backend='openvino' with dtype='bfloat16' needs a CPU with bf16 units (AVX512_BF16 "
            f"or AMX); this one offers {', '.join(capabilities)}. Drop dtype (float32) or use "
            "quantize='int8' for speed."
        )

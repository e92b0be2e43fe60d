"""``quantize="int8"``: the encoder's linear layers in dynamic int8 on CPU.

Weights are quantised once, symmetrically per output channel; activations are quantised on
each call (per tensor, asymmetric uint8), and oneDNN's quantised linear computes the product
in int8 (AVX-512 VNNI) and writes float32 with the bias added. ``onednn::qlinear_pointwise``
is the kernel torch's own x86 int8 path (torchao's pt2e flow through inductor) lowers to;
``torch.ao.quantization.quantize_dynamic`` is deprecated, and torchao's eager ``quantize_``
ran slower than float32 on CPU when measured (benchmarks/README.md).

Embeddings, LayerNorms, attention and the reranker's pooler and classifier stay in float32:
they are a small share of the work, and the classifier's single logit is where rounding would
show first.
"""

from __future__ import annotations

import torch
from torch import nn

from jinarag.errors import InputError
from jinarag.options import QUANTIZE_NAMES

__all__ = ["Int8Linear", "int8_supported", "quantize_linears"]


# Activations oneDNN can apply inside the int8 linear (config name -> post-op, algorithm).
_FUSED_ACTIVATIONS = {
    "gelu": ("gelu", "none"),  # the exact erf form
    "gelu_new": ("gelu", "tanh"),
    "gelu_pytorch_tanh": ("gelu", "tanh"),
    "gelu_fast": ("gelu", "tanh"),
    "relu": ("relu", ""),
}


class Int8Linear(nn.Module):
    """y = act(x·Wᵀ + b) with W in int8 (per output channel scales) and x quantised per call
    to uint8 (one scale and zero point for the whole input: oneDNN's VNNI kernels multiply
    unsigned by signed bytes; signed activations take a reference path many times slower)."""

    def __init__(
        self, weight: torch.Tensor, bias: torch.Tensor | None, activation: str | None = None
    ) -> None:
        super().__init__()
        weight = weight.detach().float()
        self.out_features, self.in_features = weight.shape
        scales = (weight.abs().amax(dim=1) / 127.0).clamp(min=1e-12)  # out
        quantized = (weight / scales[:, None]).round().clamp(-127, 127).to(torch.int8)
        self.register_buffer("weight_scales", scales)
        self.register_buffer("weight_zero_points", torch.zeros_like(scales, dtype=torch.long))
        # The packed (oneDNN-blocked) weight replaces the plain one: a quarter of float32.
        self.packed_weight = torch.ops.onednn.qlinear_prepack(quantized, None)
        self.register_buffer("bias", bias.detach().float() if bias is not None else None)
        self.activation = activation
        self.post_op, self.algorithm = _FUSED_ACTIVATIONS.get(activation, ("none", ""))

    @classmethod
    def from_linear(cls, linear: nn.Linear, activation: str | None = None) -> Int8Linear:
        return cls(linear.weight, linear.bias, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, self.in_features).float()
        # CPU only, so reading the range back costs nothing, and scalar arithmetic is faster.
        low, high = (float(v) for v in torch.aminmax(flat))
        low, high = min(low, 0.0), max(high, 0.0)  # zero must be representable
        scale = max((high - low) / 255.0, 1e-12)
        zero_point = round(-low / scale)
        quantized = flat.mul(1.0 / scale).add_(zero_point).round_().clamp_(0, 255)
        out = torch.ops.onednn.qlinear_pointwise(
            quantized.to(torch.uint8),
            scale,
            zero_point,
            self.packed_weight,
            self.weight_scales,
            self.weight_zero_points,
            self.bias,
            1.0,
            0,
            torch.float32,
            self.post_op,
            [],
            self.algorithm,
        )
        return out.reshape(*shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        fused = f", then {self.activation}" if self.activation else ""
        return f"in_features={self.in_features}, out_features={self.out_features}, int8{fused}"


def int8_supported() -> bool:
    """Whether this torch build has the oneDNN quantised linear (x86 builds do)."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.onednn, "qlinear_pointwise")


def quantize_linears(layers: nn.Module, mode: str, device: torch.device) -> int:
    """Replace every ``nn.Linear`` under ``layers`` by its ``mode`` version, in place; returns
    how many were replaced."""
    if mode not in QUANTIZE_NAMES:
        raise InputError(f"quantize={mode!r} is not supported; use 'int8' or None.")
    if device.type != "cpu":
        raise InputError(
            f"quantize='int8' runs on CPU only, and this model is on {device}; on a GPU use "
            "dtype='float16' or 'bfloat16' instead, or pass device='cpu'."
        )
    if not int8_supported():
        raise InputError(
            "quantize='int8' needs torch's oneDNN int8 kernels, which this torch build lacks; "
            "use dtype='bfloat16' or quantize=None."
        )
    from jinarag.models.encoder import Intermediate, SelfAttention

    replaced = 0
    for parent in list(layers.modules()):
        if isinstance(parent, SelfAttention) and parent.fused_qkv is None:
            # Q, K and V read the same input: one quantisation and one wider product.
            weight = torch.cat([parent.query.weight, parent.key.weight, parent.value.weight])
            bias = torch.cat([parent.query.bias, parent.key.bias, parent.value.bias])
            parent.fused_qkv = Int8Linear(weight, bias)
            del parent.query, parent.key, parent.value
            replaced += 3
        for name, child in list(parent.named_children()):
            if isinstance(child, Intermediate) and child.activation_name in _FUSED_ACTIVATIONS:
                # The classic FFN's activation runs inside the int8 kernel.
                setattr(parent, name, Int8Linear.from_linear(child.dense, child.activation_name))
                replaced += 1
            elif isinstance(child, nn.Linear):
                setattr(parent, name, Int8Linear.from_linear(child))
                replaced += 1
    return replaced

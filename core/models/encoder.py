"""The BERT-family encoder behind every jinarag model, in one file that reads top to bottom.

Three architectures share it, chosen from ``config.json``:

- JinaBERT v2 (jina-embeddings-v2, jina-reranker-v1): ALiBi instead of position embeddings,
  a gated MLP (GEGLU or REGLU), post-LayerNorm.
- The qk-post-norm variant (jina-embeddings-v2-base-code): LayerNorm on Q and K, a gated MLP
  whose gate is the second half, and two layer-level LayerNorms.
- Classic BERT: absolute position embeddings and the original two-layer FFN.

The config is read and checked in :mod:`jinarag.models.config`.
Order: activations → ALiBi → attention bias → embeddings → attention → MLPs → layer → encoder
→ heads.
Shapes in comments: B batch, S sequence, H hidden, N heads, D head dim, I intermediate.
Module names follow the Hugging Face state-dict keys so checkpoints load without renaming.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from jinarag.models.config import EncoderConfig

__all__ = ["AttentionBias", "Encoder", "alibi_slopes"]

# ---------------------------------------------------------------------------------------------
# Activations (the names EncoderConfig accepts, jinarag.models.config.ACTIVATION_NAMES)
# ---------------------------------------------------------------------------------------------

_ACTIVATIONS = {
    "gelu": lambda x: F.gelu(x),  # the exact erf form
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_fast": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
}
# ---------------------------------------------------------------------------------------------
# ALiBi and the attention bias
# ---------------------------------------------------------------------------------------------


def alibi_slopes(num_heads: int) -> torch.Tensor:
    """The per-head ALiBi slopes m_h, float32, shape (num_heads,).

    For a power of two n: start = 2^(-2^-(log2 n - 3)), slope_i = start^(i+1)
    (8 heads: 2^-1 … 2^-8). Otherwise the slopes of the nearest lower power of two c,
    then every other slope of 2c until there are n.
    """

    def power_of_two(n: int) -> list[float]:
        start = 2.0 ** (-(2.0 ** -(math.log2(n) - 3)))
        return [start ** (i + 1) for i in range(n)]

    if num_heads < 1:
        raise ValueError(f"num_heads must be positive, got {num_heads}")
    if math.log2(num_heads).is_integer():
        slopes = power_of_two(num_heads)
    else:
        closest = 2 ** math.floor(math.log2(num_heads))
        slopes = power_of_two(closest) + power_of_two(2 * closest)[0::2][: num_heads - closest]
    return torch.tensor(slopes, dtype=torch.float32)


class AttentionBias:
    """The additive attention bias of one batch, built for its actual length.

    ``bias[b, h, i, j] = -m_h·|i - j|`` (ALiBi; zero for absolute-position models), with padded
    keys replaced by the dtype's minimum. Replacing rather than adding keeps fp16 from
    overflowing. Long inputs are attended in query blocks, so memory grows as S·block, never
    S² — and never with the model's 8192-position maximum.
    """

    # Bytes of bias (and of SDPA's score matrix) allowed per query block.
    BLOCK_BYTES = 256 * 1024 * 1024

    def __init__(
        self, attention_mask: torch.Tensor, slopes: torch.Tensor | None, dtype: torch.dtype
    ) -> None:
        self.padded_keys = (attention_mask == 0)[:, None, None, :]  # B,1,1,S
        self.slopes = slopes.to(attention_mask.device) if slopes is not None else None
        self.dtype = dtype
        batch, length = attention_mask.shape
        heads = len(slopes) if slopes is not None else 1
        bytes_per_query = batch * heads * length * torch.finfo(dtype).bits // 8
        self.block_size = max(1, min(length, self.BLOCK_BYTES // max(1, bytes_per_query)))
        self._cache: dict[tuple[int, int], torch.Tensor] = {}

    def blocks(self, length: int) -> list[tuple[int, int]]:
        return [(s, min(s + self.block_size, length)) for s in range(0, length, self.block_size)]

    def block(self, start: int, end: int) -> torch.Tensor:
        """Bias for queries start..end against all keys: (B, N, end-start, S) or (B, 1, 1, S)."""
        key = (start, end)
        if key not in self._cache:
            self._cache[key] = self._build(start, end)
        return self._cache[key]

    def _build(self, start: int, end: int) -> torch.Tensor:
        length = self.padded_keys.shape[-1]
        minimum = torch.finfo(self.dtype).min
        device = self.padded_keys.device
        if self.slopes is None:
            zeros = torch.zeros(self.padded_keys.shape, dtype=self.dtype, device=device)
            return zeros.masked_fill(self.padded_keys, minimum)  # B,1,1,S
        queries = torch.arange(start, end, device=device)[:, None]
        keys = torch.arange(length, device=device)[None, :]
        distance = (queries - keys).abs().to(torch.float32)  # Q,S
        bias = -self.slopes[:, None, None] * distance  # N,Q,S
        return bias.to(self.dtype)[None].masked_fill(self.padded_keys, minimum)  # B,N,Q,S


# ---------------------------------------------------------------------------------------------
# Embeddings
# ---------------------------------------------------------------------------------------------


class Embeddings(nn.Module):
    """LN(word[ids] + token_type[tt] (+ position[0..S) for absolute-position models))."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.position_embeddings = (
            None
            if config.alibi
            else nn.Embedding(config.max_position_embeddings, config.hidden_size)
        )
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)  # B,S,H
        if self.position_embeddings is not None:
            positions = torch.arange(input_ids.shape[1], device=input_ids.device)
            x = x + self.position_embeddings(positions)[None]
        return self.LayerNorm(x)


# ---------------------------------------------------------------------------------------------
# Attention
# ---------------------------------------------------------------------------------------------


class SelfAttention(nn.Module):
    """Multi-head attention; Q and K optionally LayerNorm-ed over the full hidden size."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        hidden = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        if config.qk_post_norm:
            self.layer_norm_q = nn.LayerNorm(hidden, eps=config.layer_norm_eps)
            self.layer_norm_k = nn.LayerNorm(hidden, eps=config.layer_norm_eps)
        else:
            self.layer_norm_q = self.layer_norm_k = None

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)  # B,N,S,D

    def forward(self, x: torch.Tensor, bias: AttentionBias, implementation: str) -> torch.Tensor:
        q, k, v = self.query(x), self.key(x), self.value(x)  # B,S,H
        if self.layer_norm_q is not None:
            q, k = self.layer_norm_q(q), self.layer_norm_k(k)
        q, k, v = self.split_heads(q), self.split_heads(k), self.split_heads(v)  # B,N,S,D
        length = x.shape[1]
        contexts = []
        for start, end in bias.blocks(length):
            q_block, block_bias = q[:, :, start:end], bias.block(start, end)
            if implementation == "sdpa":
                # SDPA scales QKᵀ by 1/√D and then adds the bias: exactly the ALiBi recipe.
                context = F.scaled_dot_product_attention(q_block, k, v, attn_mask=block_bias)
            else:
                scores = q_block @ k.transpose(-1, -2) / math.sqrt(self.head_dim) + block_bias
                context = scores.softmax(dim=-1) @ v
            contexts.append(context)  # B,N,Q,D
        context = torch.cat(contexts, dim=2) if len(contexts) > 1 else contexts[0]
        return context.transpose(1, 2).reshape(x.shape)  # B,S,H


class AttentionOutput(nn.Module):
    """LN(dense(context) + x)."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, context: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(context) + x)


class Attention(nn.Module):
    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.self = SelfAttention(config)
        self.output = AttentionOutput(config)

    def forward(self, x: torch.Tensor, bias: AttentionBias, implementation: str) -> torch.Tensor:
        return self.output(self.self(x, bias, implementation), x)


# ---------------------------------------------------------------------------------------------
# MLPs
# ---------------------------------------------------------------------------------------------


class GatedMLP(nn.Module):
    """JinaBERT v2: y = LN(wo(act(h[..., :I]) ⊙ h[..., I:]) + x), h = gated_layers(x)."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.intermediate_size = config.intermediate_size
        self.activation = F.gelu if config.feed_forward_type == "geglu" else F.relu
        self.gated_layers = nn.Linear(config.hidden_size, 2 * config.intermediate_size, bias=False)
        self.wo = nn.Linear(config.intermediate_size, config.hidden_size)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.gated_layers(x)  # B,S,2I
        activated, gate = h[..., : self.intermediate_size], h[..., self.intermediate_size :]
        return self.layernorm(self.wo(self.activation(activated) * gate) + x)


class CodeMLP(nn.Module):
    """qk-post-norm variant: down_layer(h[..., :I] ⊙ act(h[..., I:])); the gate is the 2nd half.

    No residual or LayerNorm here: the layer applies ``layer_norm_2``.
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.intermediate_size = config.intermediate_size
        self.activation = F.gelu if config.feed_forward_type == "geglu" else F.relu
        self.up_gated_layer = nn.Linear(
            config.hidden_size, 2 * config.intermediate_size, bias=False
        )
        self.down_layer = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.up_gated_layer(x)  # B,S,2I
        value, gate = h[..., : self.intermediate_size], h[..., self.intermediate_size :]
        return self.down_layer(value * self.activation(gate))


class Intermediate(nn.Module):
    """Classic BERT FFN, first half: act(dense(x))."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation = _ACTIVATIONS[config.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.dense(x))  # B,S,I


class Output(nn.Module):
    """Classic BERT FFN, second half: LN(dense(h) + x)."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(h) + x)


# ---------------------------------------------------------------------------------------------
# Layer and encoder
# ---------------------------------------------------------------------------------------------


class Layer(nn.Module):
    """One transformer layer, post-LayerNorm, in whichever of the three flavours the config says."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.flavour = (
            "code"
            if config.qk_post_norm
            else "original"
            if config.feed_forward_type == "original"
            else "gated"
        )
        self.attention = Attention(config)
        if self.flavour == "gated":
            self.mlp = GatedMLP(config)
        elif self.flavour == "code":
            self.mlp = CodeMLP(config)
            self.layer_norm_1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
            self.layer_norm_2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        else:
            self.intermediate = Intermediate(config)
            self.output = Output(config)

    def forward(self, x: torch.Tensor, bias: AttentionBias, implementation: str) -> torch.Tensor:
        attended = self.attention(x, bias, implementation)  # B,S,H
        if self.flavour == "gated":
            return self.mlp(attended)
        if self.flavour == "code":
            residual = self.layer_norm_1(attended + x)
            return self.layer_norm_2(residual + self.mlp(residual))
        return self.output(self.intermediate(attended), attended)


class LayerStack(nn.Module):
    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(Layer(config) for _ in range(config.num_hidden_layers))


class Pooler(nn.Module):
    """tanh(dense(h[:, 0])): the [CLS] summary the reranker's classifier reads."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(hidden[:, 0]))  # B,H


class Encoder(nn.Module):
    """Embeddings + layers, and for cross-encoders the pooler and a one-logit classifier.

    ``forward`` returns the last hidden states (B, S, H); ``classify`` the logits (B,).
    ``attn_implementation`` is "sdpa" (default, fused kernels) or "eager" (explicit softmax).
    """

    def __init__(self, config: EncoderConfig, *, with_classifier: bool = False) -> None:
        super().__init__()
        self.config = config
        self.attn_implementation = "sdpa"
        self.embeddings = Embeddings(config)
        self.encoder = LayerStack(config)
        self.pooler = Pooler(config) if with_classifier else None
        self.classifier = (
            nn.Linear(config.hidden_size, config.num_labels) if with_classifier else None
        )

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.attn_implementation not in ("sdpa", "eager"):
            raise ValueError(
                f"attn_implementation must be 'sdpa' or 'eager', got {self.attn_implementation!r}"
            )
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        x = self.embeddings(input_ids, token_type_ids)  # B,S,H
        slopes = alibi_slopes(self.config.num_attention_heads) if self.config.alibi else None
        bias = AttentionBias(attention_mask, slopes, x.dtype)
        for layer in self.encoder.layer:
            x = layer(x, bias, self.attn_implementation)
        return x

    def classify(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        assert self.pooler is not None and self.classifier is not None, "not a cross-encoder"
        hidden = self.forward(input_ids, attention_mask, token_type_ids)
        return self.classifier(self.pooler(hidden))[:, 0]  # B

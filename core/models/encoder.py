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

import inspect
import logging
import math
import re
import types
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from jinarag.errors import PerformanceWarning, warn
from jinarag.models.config import EncoderConfig
from jinarag.options import ATTENTION_NAMES

__all__ = [
    "ATTENTION_BACKENDS",
    "FLEX_COMPILE_BACKEND",
    "FLEX_RECOMPILE_LIMIT",
    "Encoder",
    "TokenLayout",
    "alibi_slopes",
    "flex_shape",
    "positions_from_sequence_ids",
]

# "sdpa": blocked scaled_dot_product_attention with an additive bias (exact; the CPU default).
# "flex": flex_attention with ALiBi as a score_mod and a block mask (compiled on CUDA, in a
# bounded set of shapes: see "compiled flex attention" below).
# "eager": explicit softmax(QKᵀ/√D + bias)V, the reference.
ATTENTION_BACKENDS = ATTENTION_NAMES

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


def positions_from_sequence_ids(sequence_ids: torch.Tensor) -> torch.Tensor:
    """Each token's position within its own sequence: ``[1,1,1,2,2,0] -> [0,1,2,0,1,0]``.

    ``sequence_ids`` (B, S) numbers the sequences packed into a row from 1 (0 is padding);
    a plain 0/1 attention mask is the one-sequence-per-row case.
    """
    length = sequence_ids.shape[1]
    index = torch.arange(length, device=sequence_ids.device).expand_as(sequence_ids)
    starts = torch.ones_like(sequence_ids, dtype=torch.bool)
    starts[:, 1:] = sequence_ids[:, 1:] != sequence_ids[:, :-1]
    return index - (index * starts).cummax(dim=1).values


class TokenLayout:
    """Where each token of a batch sits: which sequence of its row, and at what position.

    Rows hold one sequence each (padded layout, ``sequence_ids`` a 0/1 mask) or several
    (packed layout). A token attends to the tokens of its own sequence only, with the ALiBi
    bias ``-m_h·|p_i - p_j|`` on positions, so a packed sequence sees exactly what it would
    see alone in a row.
    """

    # Bytes of bias (and of SDPA's score matrix) allowed per query block.
    BLOCK_BYTES = 128 * 1024 * 1024

    def __init__(
        self,
        sequence_ids: torch.Tensor,
        position_ids: torch.Tensor | None,
        slopes: torch.Tensor | None,
        dtype: torch.dtype,
    ) -> None:
        self.sequence_ids = sequence_ids
        self.position_ids = (
            position_ids if position_ids is not None else positions_from_sequence_ids(sequence_ids)
        )
        self.packed = bool((sequence_ids > 1).any())
        self.has_padding = bool((sequence_ids == 0).any())
        self.slopes = slopes.to(sequence_ids.device) if slopes is not None else None
        self.dtype = dtype
        batch, length = sequence_ids.shape
        heads = len(slopes) if slopes is not None else 1
        bytes_per_query = batch * heads * length * torch.finfo(dtype).bits // 8
        self.block_size = max(1, min(length, self.BLOCK_BYTES // max(1, bytes_per_query)))
        self._whole: torch.Tensor | None = None  # the one block of a short batch, reused
        self._scratch: torch.Tensor | None = None  # the buffer long batches' blocks reuse
        self._block_masks: dict[tuple[int, int], object] = {}  # flex's, per (rows, length)

    # -- the additive bias, in query blocks (sdpa and eager) ------------------------------

    def blocks(self, length: int) -> list[tuple[int, int]]:
        return [(s, min(s + self.block_size, length)) for s in range(0, length, self.block_size)]

    def block(self, start: int, end: int) -> torch.Tensor:
        """Bias for queries start..end against all keys: (B, N|1, end-start|1, S).

        Keys outside the query's sequence get the dtype's minimum instead of the bias:
        replacing rather than adding keeps fp16 from overflowing. Memory grows as S·block,
        never S², and never with the model's 8192-position maximum.
        """
        if end - start < self.sequence_ids.shape[1]:
            # Several blocks: kept, they would add up to the whole S² bias across the layers
            # that share this layout, so each layer builds its blocks afresh, into one reused
            # buffer (fresh pages cost more than the arithmetic).
            return self._build(start, end, reuse=True)
        if self._whole is None:
            self._whole = self._build(start, end)
        return self._whole

    def _build(self, start: int, end: int, reuse: bool = False) -> torch.Tensor:
        sequence_ids, positions = self.sequence_ids, self.position_ids
        minimum = torch.finfo(self.dtype).min
        device = sequence_ids.device
        if self.packed:
            queries = sequence_ids[:, start:end, None]
            hidden = ((queries != sequence_ids[:, None, :]) | (sequence_ids[:, None, :] == 0))[
                :, None
            ]  # B,1,Q,S
        else:
            # One sequence per row: only padded keys are hidden, whatever the query.
            hidden = (sequence_ids == 0)[:, None, None, :]  # B,1,1,S
        if self.slopes is None:
            zeros = torch.zeros(hidden.shape, dtype=self.dtype, device=device)
            return zeros.masked_fill(hidden, minimum)
        if self.packed:
            distance = (positions[:, start:end, None] - positions[:, None, :]).abs()  # B,Q,S
            distance = distance[:, None].to(torch.float32)  # B,1,Q,S
        else:
            # Positions are 0..S-1 in every row: one (Q, S) distance serves the batch.
            index = torch.arange(sequence_ids.shape[1], device=device, dtype=torch.float32)
            distance = (index[start:end, None] - index[None, :]).abs_()[None, None]  # 1,1,Q,S
        slopes = -self.slopes[None, :, None, None]  # float32: distances are exact there
        shape = (distance.shape[0], len(self.slopes), *distance.shape[2:])
        if reuse and self.dtype == torch.float32:
            if self._scratch is None or self._scratch.shape != shape:
                self._scratch = torch.empty(shape, dtype=self.dtype, device=device)
            bias = torch.mul(slopes, distance, out=self._scratch)  # B|1,N,Q,S
        else:
            bias = (slopes * distance).to(self.dtype)
        if self.packed or self.has_padding:
            bias = bias.masked_fill(hidden, minimum)
        return bias  # B|1,N,Q,S

    # -- flex attention: the same rule as a score_mod and a block mask --------------------

    def flex_arguments(self, shape: tuple[int, int] | None = None) -> dict:
        """``score_mod`` (ALiBi on positions) and ``block_mask`` (own sequence only) for
        :func:`torch.nn.attention.flex_attention.flex_attention`; blocks of keys from other
        sequences are skipped, not computed and masked. ``shape``: (rows, length) to lay the
        batch out in, larger than its own (the compiled path's buckets); the extra tokens are
        sequence 0, padding, masked like a row's tail."""
        from torch.nn.attention.flex_attention import create_block_mask

        sequence_ids, positions, slopes = self.sequence_ids, self.position_ids, self.slopes
        shape = shape or (sequence_ids.shape[0], sequence_ids.shape[1])
        if shape != tuple(sequence_ids.shape):
            sequence_ids, positions = _pad_rows(sequence_ids, shape), _pad_rows(positions, shape)

        def same_sequence(b, h, q, k):
            return (sequence_ids[b, q] == sequence_ids[b, k]) & (sequence_ids[b, k] > 0)

        def alibi(score, b, h, q, k):
            return score - slopes[h] * (positions[b, q] - positions[b, k]).abs()

        if shape not in self._block_masks:
            # Compiled on CUDA, so the mask is built block by block, never as S² booleans.
            self._block_masks[shape] = create_block_mask(
                same_sequence,
                shape[0],
                None,
                shape[1],
                shape[1],
                device=sequence_ids.device,
                _compile=sequence_ids.device.type == "cuda",
            )
        block_mask = self._block_masks[shape]
        return {"score_mod": alibi if slopes is not None else None, "block_mask": block_mask}


def _pad_rows(tensor: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """(R, L) -> shape, zeros after each row and in the added rows."""
    rows, length = shape
    return F.pad(tensor, (0, length - tensor.shape[1], 0, rows - tensor.shape[0]))


# ---------------------------------------------------------------------------------------------
# Embeddings
# ---------------------------------------------------------------------------------------------


class Embeddings(nn.Module):
    """LN(word[ids] + token_type[tt] (+ position[p] for absolute-position models)); p counts
    from 0 in each sequence, packed or not."""

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

    def forward(
        self, input_ids: torch.Tensor, token_type_ids: torch.Tensor, position_ids: torch.Tensor
    ) -> torch.Tensor:
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)  # B,S,H
        if self.position_embeddings is not None:
            x = x + self.position_embeddings(position_ids)
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
        # One projection to Q|K|V in place of the three, set by int8 quantisation
        # (jinarag.models.quantization): the input is quantised once.
        self.fused_qkv: nn.Module | None = None

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)  # B,N,S,D

    def forward(self, x: torch.Tensor, layout: TokenLayout, implementation: str) -> torch.Tensor:
        if self.fused_qkv is not None:
            q, k, v = self.fused_qkv(x).chunk(3, dim=-1)  # B,S,H each
        else:
            q, k, v = self.query(x), self.key(x), self.value(x)  # B,S,H
        if self.layer_norm_q is not None:
            q, k = self.layer_norm_q(q), self.layer_norm_k(k)
        q, k, v = self.split_heads(q), self.split_heads(k), self.split_heads(v)  # B,N,S,D
        length = x.shape[1]
        if implementation == "flex":
            context = _flex(q, k, v, layout)  # B,N,S,D
            return context.transpose(1, 2).reshape(x.shape)  # B,S,H
        contexts = []
        for start, end in layout.blocks(length):
            q_block, block_bias = q[:, :, start:end], layout.block(start, end)
            if implementation == "sdpa":
                # SDPA scales QKᵀ by 1/√D and then adds the bias: exactly the ALiBi recipe.
                context = F.scaled_dot_product_attention(q_block, k, v, attn_mask=block_bias)
            else:
                scores = q_block @ k.transpose(-1, -2) / math.sqrt(self.head_dim) + block_bias
                context = scores.softmax(dim=-1) @ v
            contexts.append(context)  # B,N,Q,D
        context = torch.cat(contexts, dim=2) if len(contexts) > 1 else contexts[0]
        return context.transpose(1, 2).reshape(x.shape)  # B,S,H


# -- compiled flex attention: a bounded set of graphs --------------------------------------
#
# torch.compile keeps its graphs per code object, and past the recompile limit (8 by
# default) runs every new shape uncompiled for the rest of the process: 2-5x slower, with
# one log line. So compiled calls go through regions, each its own copy of _call_flex's code
# object (its own cache and count), one per (device, dtype, heads, head dim, ALiBi or not,
# row length, grad mode), and a call's rows and row length are padded to powers of two (the
# length to at least 128, flex's block; padding is masked). A region then meets one shape per
# power-of-two row count: at most FLEX_RECOMPILE_LIMIT = 16 graphs (passes of up to 2^15
# rows); a model has at most one region per power-of-two length up to its longest row (7 up
# to 8192 tokens). Packed passes at the GPU default (65536-token budget, 2048-token rows)
# meet at most 17 shapes per model: 6 row counts at 2048 and 4096 tokens, 5 at 8192.

# The torch.compile backend of flex attention. None: inductor on CUDA, and no compiling
# elsewhere (uncompiled flex is exact there, and faster than compiling for a test). Set, it
# compiles on every device: tests pass torch._dynamo.testing.CompileCounter() or "eager".
FLEX_COMPILE_BACKEND: str | Callable | None = None
FLEX_RECOMPILE_LIMIT = 16  # graphs per region: row counts 1 .. 2^15
FLEX_MIN_LENGTH = 128  # flex attention's block size
_FLEX_REGIONS: dict[tuple, Callable] = {}
_REGION_PREFIX = "jinarag_flex_"


def flex_shape(rows: int, length: int) -> tuple[int, int]:
    """The (rows, length) a compiled flex call runs at: each rounded up to a power of two,
    the length to at least :data:`FLEX_MIN_LENGTH`."""
    return 1 << (rows - 1).bit_length(), max(FLEX_MIN_LENGTH, 1 << (length - 1).bit_length())


def _flex(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: TokenLayout) -> torch.Tensor:
    """Flex attention of (B, N, S, D) heads: compiled in a region at the bucketed shape, or
    uncompiled at the batch's own shape (where nothing is compiled)."""
    from torch.nn.attention.flex_attention import flex_attention

    if FLEX_COMPILE_BACKEND is None and q.device.type != "cuda":
        return flex_attention(q, k, v, **layout.flex_arguments())
    rows, heads, length, head_dim = q.shape
    shape = flex_shape(rows, length)
    arguments = layout.flex_arguments(shape)
    alibi = arguments["score_mod"] is not None
    # Grad mode is guarded too: a region per mode keeps it from costing recompiles.
    mode = "grad" if q.requires_grad else "inference" if q.is_inference() else "nograd"
    region = _flex_region((q.device, q.dtype, heads, head_dim, alibi, shape[1], mode))
    if shape != (rows, length):
        padding = (0, 0, 0, shape[1] - length, 0, 0, 0, shape[0] - rows)
        q, k, v = F.pad(q, padding), F.pad(k, padding), F.pad(v, padding)
    context = region(q, k, v, arguments["score_mod"], arguments["block_mask"])
    if _LIMIT_WATCH.hits:
        _report_recompile_limit()
    return context[:rows, :, :length]


def _call_flex(query, key, value, score_mod, block_mask):
    # The body of every region: each region compiles its own copy of this code object.
    return torch.nn.attention.flex_attention.flex_attention(
        query, key, value, score_mod=score_mod, block_mask=block_mask
    )


def _flex_region(key: tuple) -> Callable:
    region = _FLEX_REGIONS.get(key)
    if region is not None:
        return region
    device, dtype, heads, head_dim, alibi, length, mode = key
    name = (
        f"{_REGION_PREFIX}{device.type}{device.index or 0}_{str(dtype).split('.')[-1]}_"
        f"{heads}h_{head_dim}d_{'alibi' if alibi else 'plain'}_{length}_{mode}"
    )
    code = _call_flex.__code__.replace(co_name=name)  # a new code object: its own cache
    function = types.FunctionType(code, _call_flex.__globals__, name)
    options: dict = {}
    if "recompile_limit" in inspect.signature(torch.compile).parameters:
        options["recompile_limit"] = FLEX_RECOMPILE_LIMIT
    else:
        # Older torch has one limit for every code object: raise it to ours, never lower it.
        config = torch._dynamo.config
        config.cache_size_limit = max(config.cache_size_limit, FLEX_RECOMPILE_LIMIT)
    backend = FLEX_COMPILE_BACKEND if FLEX_COMPILE_BACKEND is not None else "inductor"
    region = torch.compile(function, backend=backend, dynamic=False, **options)
    _LIMIT_WATCH.install()
    _FLEX_REGIONS[key] = region
    return region


class _RecompileLimitWatch(logging.Filter):
    """Notes torch's "hit config.recompile_limit" record when it names a region (the only
    sign torch gives before running that region's new shapes uncompiled); passes every
    record on unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self.hits: list[str] = []
        self.warned = False
        self._installed = False

    def install(self) -> None:
        if not self._installed:
            logging.getLogger("torch._dynamo.convert_frame").addFilter(self)
            self._installed = True

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "hit config." in record.msg:
            found = re.search(rf"{_REGION_PREFIX}\w+", record.getMessage())
            if found:
                self.hits.append(found.group(0))
        return True


_LIMIT_WATCH = _RecompileLimitWatch()


def _report_recompile_limit() -> None:
    """One PerformanceWarning per process, however many regions reach the limit."""
    region = _LIMIT_WATCH.hits[-1]
    _LIMIT_WATCH.hits.clear()
    if _LIMIT_WATCH.warned:
        return
    _LIMIT_WATCH.warned = True
    warn(
        f"Flex attention reached torch's recompile limit in {region}: from now on, passes of "
        "shapes not compiled yet run flex attention uncompiled (2-5x slower) for the rest of "
        "the process. Fix: fewer distinct shapes (one max_batch_tokens and max_length per "
        "model), a higher jinarag.models.encoder.FLEX_RECOMPILE_LIMIT set before the first "
        "call, or attention='sdpa'.",
        PerformanceWarning,
    )


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

    def forward(self, x: torch.Tensor, layout: TokenLayout, implementation: str) -> torch.Tensor:
        return self.output(self.self(x, layout, implementation), x)


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
        self.activation_name = config.hidden_act
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

    def forward(self, x: torch.Tensor, layout: TokenLayout, implementation: str) -> torch.Tensor:
        attended = self.attention(x, layout, implementation)  # B,S,H
        if self.flavour == "gated":
            return in_token_chunks(self.mlp, attended)
        if self.flavour == "code":
            residual = self.layer_norm_1(attended + x)
            return self.layer_norm_2(residual + in_token_chunks(self.mlp, residual))
        return in_token_chunks(lambda a: self.output(self.intermediate(a), a), attended)


# Longest stretch of a row one feed-forward call takes: the MLP's (tokens, 2I) intermediate is
# its largest tensor, and a long input gets it a slice at a time (the same result: it is per
# token). Rows of ordinary length (and so ordinary batches) run whole.
FFN_CHUNK_TOKENS = 4096


def in_token_chunks(feed_forward, x: torch.Tensor) -> torch.Tensor:
    length = x.shape[1]
    if length <= FFN_CHUNK_TOKENS:
        return feed_forward(x)
    pieces = [
        feed_forward(x[:, start : start + FFN_CHUNK_TOKENS])
        for start in range(0, length, FFN_CHUNK_TOKENS)
    ]
    return torch.cat(pieces, dim=1)


class LayerStack(nn.Module):
    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(Layer(config) for _ in range(config.num_hidden_layers))


class Pooler(nn.Module):
    """tanh(dense(h_cls)): the [CLS] summary the reranker's classifier reads."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, cls_states: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(cls_states))  # n,H


class Encoder(nn.Module):
    """Embeddings + layers, and for cross-encoders the pooler and a one-logit classifier.

    ``forward`` returns the last hidden state of every token (B, S, H): the pooling heads of
    :mod:`jinarag.inference.heads` turn them into embeddings, relevance logits or chunk means.
    ``attention_mask`` is a 0/1 mask (one sequence per row) or, for packed rows, sequence
    ids (1, 2, … for the sequences of a row, 0 for padding); ``position_ids`` default to
    each token's position within its sequence. ``attn_implementation`` is one of
    :data:`ATTENTION_BACKENDS`.
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
        position_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.attn_implementation not in ATTENTION_BACKENDS:
            raise ValueError(
                f"attn_implementation must be one of {ATTENTION_BACKENDS}, got "
                f"{self.attn_implementation!r}"
            )
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        slopes = alibi_slopes(self.config.num_attention_heads) if self.config.alibi else None
        layout = TokenLayout(
            attention_mask, position_ids, slopes, self.embeddings.LayerNorm.weight.dtype
        )
        x = self.embeddings(input_ids, token_type_ids, layout.position_ids)  # B,S,H
        for layer in self.encoder.layer:
            x = layer(x, layout, self.attn_implementation)
        return x

    def relevance(self, cls_states: torch.Tensor) -> torch.Tensor:
        """A cross-encoder's logit (n,) from the last hidden states of the pairs' first tokens."""
        assert self.pooler is not None and self.classifier is not None, "not a cross-encoder"
        return self.classifier(self.pooler(cls_states))[:, 0]  # n

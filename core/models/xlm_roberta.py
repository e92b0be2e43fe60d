"""The XLM-RoBERTa family (jina-embeddings-v3, jina-reranker-v2), in one file, top to bottom.

Both checkpoints come in the layout of Jina's XLM-RoBERTa "flash" implementation:

- jina-embeddings-v3: rotary positions (no position table), post-LayerNorm blocks with a
  fused Q|K|V projection, and task LoRA adapters on every linear and embedding weight, stored
  as torch parametrizations (``<module>.parametrizations.weight.original`` plus
  ``<module>.parametrizations.weight.0.lora_A`` / ``lora_B``, one slice per task). The weight
  of task t is ``W + (alpha/rank)·B[t]@A[t]`` for a linear (A: T,r,in; B: T,out,r) and
  ``W + (alpha/rank)·A[t]@B[t]`` for an embedding (A: T,V,r; B: T,r,H).
- jina-reranker-v2-base-multilingual: learned absolute positions counted from
  ``pad_token_id + 1`` (as XLM-R does), no adapters, a RoBERTa classification head.

The config is read and checked in :mod:`jinarag.models.xlm_roberta_config`. Attention and its
masks (padded rows, or packed rows with a block-diagonal mask) are the ones of
:mod:`jinarag.models.encoder`; rotary positions restart with each packed sequence.
Order: rotary → LoRA weights → embeddings → attention → MLP → block → encoder → head.
Shapes: R rows, L row length, H hidden, N heads, D head dim, T tasks, r LoRA rank.
Module names follow the checkpoint's state-dict keys (less the ``roberta.`` prefix).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from jinarag.models.encoder import ATTENTION_BACKENDS, TokenLayout, _flex, in_token_chunks
from jinarag.models.xlm_roberta_config import XLMRobertaConfig

__all__ = ["Task", "XLMRobertaEncoder", "rotary_tables"]

# A forward pass's adapter: None (the base weights), one task index for every row, or a
# LongTensor (R,) of task indices, one per row.
Task = int | torch.Tensor | None

# ---------------------------------------------------------------------------------------------
# Rotary positions (GPT-NeoX style: the head's first and second halves rotate together)
# ---------------------------------------------------------------------------------------------


def rotary_tables(
    positions: torch.Tensor, head_dim: int, base: float, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of each token's angles, (R, 1, L, D), computed in float32."""
    inv_freq = 1.0 / base ** (
        torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32) / head_dim
    )  # D/2
    angles = positions.to(torch.float32)[..., None] * inv_freq  # R,L,D/2
    angles = torch.cat([angles, angles], dim=-1)[:, None]  # R,1,L,D
    return angles.cos().to(dtype), angles.sin().to(dtype)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-second, first], dim=-1) * sin


# ---------------------------------------------------------------------------------------------
# Weights with task adapters, named as the checkpoint's parametrizations
# ---------------------------------------------------------------------------------------------


class LoRAAdapters(nn.Module):
    """``parametrizations.weight.0``: every task's low-rank pair."""

    def __init__(self, a_shape: tuple[int, ...], b_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.lora_A = nn.Parameter(torch.empty(a_shape))
        self.lora_B = nn.Parameter(torch.empty(b_shape))


class AdaptedWeight(nn.Module):
    """``parametrizations.weight``: the base weight (``original``) and its adapters (``0``)."""

    def __init__(
        self, shape: tuple[int, int], a_shape: tuple[int, ...], b_shape: tuple[int, ...]
    ) -> None:
        super().__init__()
        self.original = nn.Parameter(torch.empty(shape))
        self.add_module("0", LoRAAdapters(a_shape, b_shape))

    @property
    def adapters(self) -> LoRAAdapters:
        return getattr(self, "0")


def _parametrizations(weight: AdaptedWeight) -> nn.ModuleDict:
    return nn.ModuleDict({"weight": weight})


class LoRALinear(nn.Module):
    """y = x Wᵀ + b + s·(x A[t]ᵀ) B[t]ᵀ: the adapter's low-rank path, never a merged copy."""

    def __init__(self, config: XLMRobertaConfig, fan_in: int, fan_out: int) -> None:
        super().__init__()
        tasks, rank = len(config.tasks), config.lora_rank
        self.scaling = config.lora_scaling
        self.parametrizations = _parametrizations(
            AdaptedWeight((fan_out, fan_in), (tasks, rank, fan_in), (tasks, fan_out, rank))
        )
        self.bias = nn.Parameter(torch.empty(fan_out))

    def forward(self, x: torch.Tensor, task: Task) -> torch.Tensor:
        weight = self.parametrizations["weight"]
        y = F.linear(x, weight.original, self.bias)  # R,L,out
        if task is None:
            return y
        a, b = weight.adapters.lora_A[task], weight.adapters.lora_B[task]
        # The low-rank product is added into y in place, scaled on the way (one fused op: a
        # separate multiply and add would read and write y twice more, ~20% of a forward).
        if a.dim() == 2:  # one task for the batch: r,in and out,r
            low = F.linear(x, a)  # R,L,r
            y.view(-1, y.shape[-1]).addmm_(low.view(-1, low.shape[-1]), b.t(), alpha=self.scaling)
            return y
        low = torch.bmm(x, a.transpose(1, 2))  # R,L,r
        return y.baddbmm_(low, b.transpose(1, 2), alpha=self.scaling)


class Linear(nn.Linear):
    """A plain linear layer that takes (and ignores) the task, for checkpoints without LoRA."""

    def forward(self, x: torch.Tensor, task: Task = None) -> torch.Tensor:  # type: ignore[override]
        return super().forward(x)


class LoRAEmbedding(nn.Module):
    """E[ids] + s·A[t][ids] @ B[t]."""

    def __init__(self, config: XLMRobertaConfig, rows: int, dim: int) -> None:
        super().__init__()
        tasks, rank = len(config.tasks), config.lora_rank
        self.scaling = config.lora_scaling
        self.parametrizations = _parametrizations(
            AdaptedWeight((rows, dim), (tasks, rows, rank), (tasks, rank, dim))
        )

    def forward(self, ids: torch.Tensor, task: Task) -> torch.Tensor:
        weight = self.parametrizations["weight"]
        x = F.embedding(ids, weight.original)  # R,L,H
        if task is None:
            return x
        a, b = weight.adapters.lora_A, weight.adapters.lora_B
        if not isinstance(task, torch.Tensor):
            return x + self.scaling * (F.embedding(ids, a[task]) @ b[task])
        low = a[task[:, None], ids]  # R,L,r
        return x + self.scaling * torch.bmm(low, b[task])


class Embedding(nn.Embedding):
    def forward(self, ids: torch.Tensor, task: Task = None) -> torch.Tensor:  # type: ignore[override]
        return super().forward(ids)


def _linear(config: XLMRobertaConfig, fan_in: int, fan_out: int) -> nn.Module:
    return LoRALinear(config, fan_in, fan_out) if config.tasks else Linear(fan_in, fan_out)


def _embedding(config: XLMRobertaConfig, rows: int, dim: int) -> nn.Module:
    return LoRAEmbedding(config, rows, dim) if config.tasks else Embedding(rows, dim)


# ---------------------------------------------------------------------------------------------
# Embeddings
# ---------------------------------------------------------------------------------------------


class Embeddings(nn.Module):
    """word[ids] + token_type[tt] (+ position[pad + 1 + p] for absolute positions)."""

    def __init__(self, config: XLMRobertaConfig) -> None:
        super().__init__()
        self.first_position = config.pad_token_id + 1
        self.word_embeddings = _embedding(config, config.vocab_size, config.hidden_size)
        self.token_type_embeddings = _embedding(config, config.type_vocab_size, config.hidden_size)
        self.position_embeddings = (
            None
            if config.rotary
            else _embedding(config, config.position_table_size, config.hidden_size)
        )

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor,
        position_ids: torch.Tensor,
        task: Task,
    ) -> torch.Tensor:
        x = self.word_embeddings(input_ids, task)  # R,L,H
        if self.position_embeddings is not None:
            x = x + self.position_embeddings(position_ids + self.first_position, task)
        return x + self.token_type_embeddings(token_type_ids, task)


# ---------------------------------------------------------------------------------------------
# Attention
# ---------------------------------------------------------------------------------------------


class Mixer(nn.Module):
    """Multi-head attention from one fused Q|K|V projection; rotary on Q and K."""

    def __init__(self, config: XLMRobertaConfig) -> None:
        super().__init__()
        hidden = config.hidden_size
        self.num_heads, self.head_dim = config.num_attention_heads, config.head_dim
        self.Wqkv = _linear(config, hidden, 3 * hidden)
        self.out_proj = _linear(config, hidden, hidden)

    def forward(
        self,
        x: torch.Tensor,
        layout: TokenLayout,
        rotary: tuple[torch.Tensor, torch.Tensor] | None,
        task: Task,
        implementation: str,
    ) -> torch.Tensor:
        rows, length, hidden = x.shape
        qkv = self.Wqkv(x, task).view(rows, length, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # R,N,L,D each
        if rotary is not None:
            q, k = _rotate(q, *rotary), _rotate(k, *rotary)
        if implementation == "flex":
            context = _flex(q.contiguous(), k.contiguous(), v.contiguous(), layout)
        else:
            contexts = []
            for start, end in layout.blocks(length):
                q_block, bias = q[:, :, start:end], layout.block(start, end)
                if implementation == "sdpa":
                    context = F.scaled_dot_product_attention(q_block, k, v, attn_mask=bias)
                else:
                    scores = q_block @ k.transpose(-1, -2) / math.sqrt(self.head_dim) + bias
                    context = scores.softmax(dim=-1) @ v
                contexts.append(context)  # R,N,Q,D
            context = torch.cat(contexts, dim=2) if len(contexts) > 1 else contexts[0]
        context = context.transpose(1, 2).reshape(rows, length, hidden)  # R,L,H
        return self.out_proj(context, task)


# ---------------------------------------------------------------------------------------------
# MLP, block and encoder
# ---------------------------------------------------------------------------------------------


class Mlp(nn.Module):
    """fc2(GELU(fc1(x)))."""

    def __init__(self, config: XLMRobertaConfig) -> None:
        super().__init__()
        self.approximate = "none" if config.hidden_act == "gelu" else "tanh"
        self.fc1 = _linear(config, config.hidden_size, config.intermediate_size)
        self.fc2 = _linear(config, config.intermediate_size, config.hidden_size)

    def forward(self, x: torch.Tensor, task: Task) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x, task), approximate=self.approximate), task)


class Block(nn.Module):
    """Post-LayerNorm: r = norm1(x + attention(x)); out = norm2(r + mlp(r))."""

    def __init__(self, config: XLMRobertaConfig) -> None:
        super().__init__()
        self.mixer = Mixer(config)
        self.norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = Mlp(config)
        self.norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(
        self,
        x: torch.Tensor,
        layout: TokenLayout,
        rotary: tuple[torch.Tensor, torch.Tensor] | None,
        task: Task,
        implementation: str,
    ) -> torch.Tensor:
        residual = self.norm1(x + self.mixer(x, layout, rotary, task, implementation))
        if isinstance(task, torch.Tensor):  # per-row adapters: the MLP takes whole rows
            return self.norm2(residual + self.mlp(residual, task))
        return self.norm2(residual + in_token_chunks(lambda h: self.mlp(h, task), residual))


class Layers(nn.Module):
    def __init__(self, config: XLMRobertaConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(Block(config) for _ in range(config.num_hidden_layers))


class ClassificationHead(nn.Module):
    """out_proj(tanh(dense(h_first))): RoBERTa's sequence classifier."""

    def __init__(self, config: XLMRobertaConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.out_proj = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, first_states: torch.Tensor) -> torch.Tensor:
        return self.out_proj(torch.tanh(self.dense(first_states)))  # n,labels


class XLMRobertaEncoder(nn.Module):
    """Embeddings, ``emb_ln`` and the blocks; for cross-encoders the classification head.

    ``forward`` returns the last hidden state of every token (R, L, H), like
    :class:`jinarag.models.encoder.Encoder`: ``attention_mask`` is a 0/1 mask or packed
    sequence ids, ``position_ids`` each token's position within its own sequence (rotary and
    absolute positions restart with each packed sequence). ``task`` picks the adapter (see
    :data:`Task`); a model without adapters takes only None.

    Example:
        >>> model = XLMRobertaEncoder(config)  # config: XLMRobertaConfig
        >>> model(ids, mask, task=config.tasks.index("retrieval.query")).shape
        torch.Size([2, 7, 1024])
    """

    def __init__(self, config: XLMRobertaConfig, *, with_classifier: bool = False) -> None:
        super().__init__()
        self.config = config
        self.attn_implementation = "sdpa"
        self.embeddings = Embeddings(config)
        self.emb_ln = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.encoder = Layers(config)
        self.classifier = ClassificationHead(config) if with_classifier else None

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        *,
        task: Task = None,
    ) -> torch.Tensor:
        if self.attn_implementation not in ATTENTION_BACKENDS:
            raise ValueError(
                f"attn_implementation must be one of {ATTENTION_BACKENDS}, got "
                f"{self.attn_implementation!r}"
            )
        if task is not None and not self.config.tasks:
            raise ValueError("this checkpoint has no task adapters: pass task=None")
        if isinstance(task, torch.Tensor):
            task = task.to(device=input_ids.device, dtype=torch.long)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        dtype = self.emb_ln.weight.dtype
        layout = TokenLayout(attention_mask, position_ids, None, dtype)
        positions = layout.position_ids
        x = self.emb_ln(self.embeddings(input_ids, token_type_ids, positions, task))  # R,L,H
        rotary = None
        if self.config.rotary:
            rotary = rotary_tables(
                positions, self.config.head_dim, self.config.rotary_emb_base, dtype
            )
        for block in self.encoder.layers:
            x = block(x, layout, rotary, task, self.attn_implementation)
        return x

    def relevance(self, cls_states: torch.Tensor) -> torch.Tensor:
        """A cross-encoder's logit (n,) from the last hidden states of the pairs' first tokens."""
        assert self.classifier is not None, "not a cross-encoder"
        return self.classifier(cls_states)[:, 0]  # n

"""A standalone JinaBERT v2 embedder, run the way Jina's published remote code runs it.

The yardstick ``benchmarks/gpu.py`` measures jinarag against on the v2 shape. It imports
nothing from jinarag: plain torch modules named after the checkpoint's state-dict keys, so
``model.safetensors`` loads by name, and the ``tokenizers`` library for the texts.

- embeddings: LayerNorm(word + token type); ALiBi takes the place of position embeddings;
- the ALiBi bias, ``-slope_h * |i - j|``, is materialised once at load as a ``(1, N, P, P)``
  buffer (P the config's ``max_position_embeddings``); each forward pass slices it to the
  batch's length and fills the padded keys, a ``(B, N, S, S)`` tensor all layers share;
- attention: Q/K/V linears, ``F.scaled_dot_product_attention`` over padded rows with that
  bias, then LayerNorm(dense(context) + x);
- feed-forward (GEGLU, or REGLU): ``gated_layers`` to 2 x intermediate, the activation of the
  first half times the second half, ``wo`` back to hidden, LayerNorm(... + x);
- pooling: the mean over each text's non-padding tokens, L2-normalised; texts are sorted by
  length (in characters) and padded per batch, as the remote code's ``encode`` does.

Example:
    >>> model = ReferenceEmbedder.from_pretrained(path, device="cuda", dtype=torch.float16)
    >>> model.embed(["a wing in a slipstream"], batch_size=32, max_length=512).shape
    (1, 768)
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["JinaBertV2", "ReferenceEmbedder", "alibi_slopes"]

# Keys a checkpoint may carry that the embedder has no use for (pooler, MLM head, old buffers).
UNUSED_PREFIXES = ("pooler.", "cls.", "encoder.alibi")


def alibi_slopes(heads: int) -> list[float]:
    """The ALiBi paper's head slopes: 2^(-8i/n) for i = 1..n when n is a power of two;
    otherwise those of the power of two c below n, then the odd-numbered slopes of 2c
    (1st, 3rd, ...) until there are n."""

    def geometric(n: int) -> list[float]:
        return [2.0 ** (-8.0 * i / n) for i in range(1, n + 1)]

    if heads & (heads - 1) == 0:
        return geometric(heads)
    below = 2 ** math.floor(math.log2(heads))
    return geometric(below) + geometric(2 * below)[0::2][: heads - below]


class SelfAttention(nn.Module):
    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        batch, length, hidden = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:  # B,S,H -> B,N,S,D
            return t.view(batch, length, self.heads, hidden // self.heads).transpose(1, 2)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # B,N,S,D
        return context.transpose(1, 2).reshape(batch, length, hidden)


class AddAndNorm(nn.Module):
    """LayerNorm(dense(h) + x): the attention output's residual step."""

    def __init__(self, hidden: int, eps: float) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(h) + x)


class GatedFeedForward(nn.Module):
    def __init__(self, hidden: int, intermediate: int, eps: float, activation: str) -> None:
        super().__init__()
        self.intermediate = intermediate
        self.activation = F.relu if activation == "reglu" else F.gelu
        self.gated_layers = nn.Linear(hidden, 2 * intermediate, bias=False)
        self.wo = nn.Linear(intermediate, hidden)
        self.layernorm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.gated_layers(x)  # B,S,2I
        activated, gate = h[..., : self.intermediate], h[..., self.intermediate :]
        return self.layernorm(self.wo(self.activation(activated) * gate) + x)


class Layer(nn.Module):
    def __init__(self, config: dict) -> None:
        super().__init__()
        hidden, eps = config["hidden_size"], config["layer_norm_eps"]
        # A ModuleDict because the checkpoint's key is "attention.self.*".
        self.attention = nn.ModuleDict(
            {
                "self": SelfAttention(hidden, config["num_attention_heads"]),
                "output": AddAndNorm(hidden, eps),
            }
        )
        self.mlp = GatedFeedForward(
            hidden, config["intermediate_size"], eps, config.get("feed_forward_type", "geglu")
        )

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        attended = self.attention["output"](self.attention["self"](x, bias), x)
        return self.mlp(attended)


class Embeddings(nn.Module):
    def __init__(self, config: dict) -> None:
        super().__init__()
        hidden = config["hidden_size"]
        self.word_embeddings = nn.Embedding(config["vocab_size"], hidden)
        self.token_type_embeddings = nn.Embedding(config.get("type_vocab_size", 2), hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=config["layer_norm_eps"])

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(
            self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        )


class Encoder(nn.Module):
    def __init__(self, config: dict) -> None:
        super().__init__()
        self.layer = nn.ModuleList(Layer(config) for _ in range(config["num_hidden_layers"]))


class JinaBertV2(nn.Module):
    """Embeddings + layers; ``forward`` gives the last hidden state of every token (B, S, H)."""

    def __init__(self, config: dict) -> None:
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        self.encoder = Encoder(config)
        self.register_buffer("alibi", torch.empty(0), persistent=False)

    def build_alibi(self) -> None:
        """The whole (1, N, P, P) bias in the model's dtype, once; head by head, so building
        it needs no float32 copy of the whole buffer."""
        positions = self.config["max_position_embeddings"]
        weight = self.embeddings.LayerNorm.weight
        index = torch.arange(positions, device=weight.device, dtype=torch.float32)
        distance = (index[:, None] - index[None, :]).abs_()  # P,P
        slopes = alibi_slopes(self.config["num_attention_heads"])
        shape = (1, len(slopes), positions, positions)
        alibi = torch.empty(shape, dtype=weight.dtype, device=weight.device)
        for head, slope in enumerate(slopes):
            alibi[0, head] = -slope * distance
        self.alibi = alibi

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        length = input_ids.shape[1]
        x = self.embeddings(input_ids, torch.zeros_like(input_ids))
        padding = (attention_mask == 0)[:, None, None, :]  # B,1,1,S
        # Filled with the dtype's minimum (not added to it: fp16 would overflow to -inf).
        bias = self.alibi[:, :, :length, :length].masked_fill(padding, torch.finfo(x.dtype).min)
        for layer in self.encoder.layer:
            x = layer(x, bias)  # bias: B,N,S,S
        return x


class ReferenceEmbedder:
    """:class:`JinaBertV2` with its tokenizer, mean pooling and length-sorted batches."""

    def __init__(self, model: JinaBertV2, tokenizer) -> None:
        self.model = model
        self.tokenizer = tokenizer

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, *, device: str | torch.device, dtype: torch.dtype
    ) -> ReferenceEmbedder:
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        directory = Path(directory)
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
        if config.get("position_embedding_type") != "alibi":
            raise ValueError(f"{directory} is not a JinaBERT v2 checkpoint (no ALiBi)")
        state = {
            key.removeprefix("bert."): value
            for key, value in load_file(str(directory / "model.safetensors")).items()
        }
        state = {k: v for k, v in state.items() if not k.startswith(UNUSED_PREFIXES)}
        model = JinaBertV2(config)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(f"weights do not fit: missing {missing}, unexpected {unexpected}")
        model = model.to(device=device, dtype=dtype).eval()
        model.build_alibi()
        tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        pad_id = config.get("pad_token_id", 0)
        tokenizer.enable_padding(pad_id=pad_id, pad_token=tokenizer.id_to_token(pad_id))
        return cls(model, tokenizer)

    @torch.inference_mode()
    def embed(self, texts: list[str], *, batch_size: int, max_length: int) -> np.ndarray:
        """L2-normalised mean-pooled embeddings (float32, input order)."""
        self.tokenizer.enable_truncation(max_length)
        device = self.model.embeddings.LayerNorm.weight.device
        # Longest (in characters) first, so each batch pads to little more than its texts.
        order = np.argsort([-len(text) for text in texts], kind="stable")
        out = np.empty((len(texts), self.model.config["hidden_size"]), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            chosen = order[start : start + batch_size]
            encoded = self.tokenizer.encode_batch([texts[i] for i in chosen])
            ids = torch.tensor([e.ids for e in encoded], device=device)
            mask = torch.tensor([e.attention_mask for e in encoded], device=device)
            hidden = self.model(ids, mask).float()  # B,S,H
            weights = mask[..., None].float()
            pooled = (hidden * weights).sum(1) / weights.sum(1)
            out[chosen] = F.normalize(pooled, dim=-1).cpu().numpy()
        return out

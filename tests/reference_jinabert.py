"""A deliberately naive reference forward pass for JinaBERT v2, its code variant and classic BERT.

Written from the model facts in docs (DESIGN §4), independently of ``jinarag.models.encoder``: it
reads the raw state dict, computes in float64, loops over layers and heads, and builds the full
``[B, H, S, S]`` ALiBi bias and mask explicitly. Slow and memory hungry on purpose; it is the
yardstick the real encoder is held against.

Example:
    >>> ref = ReferenceModel(checkpoint_dir)
    >>> ids, types = ref.encode("a wing in a slipstream", max_length=16)
    >>> vector = ref.mean_pool([ids], [types])[0]
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

__all__ = ["ReferenceModel", "load_raw_state_dict", "reference_slopes"]

DTYPE = torch.float64
DROPPED_PREFIXES = ("cls.",)
DROPPED_SUFFIXES = ("position_ids", "alibi")


def load_raw_state_dict(ckpt: Path) -> dict[str, torch.Tensor]:
    """Read the weights file as stored, drop the extras, strip ``bert.``, upcast to float64."""
    ckpt = Path(ckpt)
    if (ckpt / "model.safetensors").exists():
        from safetensors.torch import load_file

        raw = load_file(str(ckpt / "model.safetensors"))
    else:
        raw = torch.load(ckpt / "pytorch_model.bin", map_location="cpu", weights_only=True)
    state = {}
    for key, value in raw.items():
        if key.startswith(DROPPED_PREFIXES) or key.endswith(DROPPED_SUFFIXES):
            continue
        key = key[len("bert.") :] if key.startswith("bert.") else key
        state[key] = value.to(DTYPE) if value.is_floating_point() else value
    return state


def reference_slopes(n: int) -> list[float]:
    """ALiBi slopes, closed form: powers of two directly, others by interleaving."""

    def power_of_two(m: int) -> list[float]:
        start = 2.0 ** (-(2.0 ** -(math.log2(m) - 3)))
        return [start ** (i + 1) for i in range(m)]

    if math.log2(n).is_integer():
        return power_of_two(n)
    c = 2 ** math.floor(math.log2(n))
    return power_of_two(c) + power_of_two(2 * c)[0::2][: n - c]


def _layer_norm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, eps: float) -> torch.Tensor:
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * w + b


def _gelu(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def _linear(x: torch.Tensor, sd: dict, name: str) -> torch.Tensor:
    y = x @ sd[f"{name}.weight"].T
    bias = sd.get(f"{name}.bias")
    return y + bias if bias is not None else y


class ReferenceModel:
    """The reference encoder over one checkpoint directory (config.json + weights + tokenizer)."""

    def __init__(self, ckpt: Path) -> None:
        self.path = Path(ckpt)
        self.config = json.loads((self.path / "config.json").read_text())
        self.sd = load_raw_state_dict(self.path)
        c = self.config
        self.hidden = c["hidden_size"]
        self.heads = c["num_attention_heads"]
        self.head_dim = self.hidden // self.heads
        self.intermediate = c["intermediate_size"]
        self.eps = c.get("layer_norm_eps", 1e-12)
        self.alibi = c.get("position_embedding_type", "absolute") == "alibi"
        marker = "jina-bert-v2-qk-post-norm"
        self.is_code = marker in c.get("_name_or_path", "") or marker in json.dumps(
            c.get("auto_map", {})
        )
        self.ffn = c.get("feed_forward_type", "original")

    # ------------------------------------------------------------------ tokenization

    def tokenizer(self):
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        # Some tokenizer.json files carry padding/truncation settings; every call sets its own.
        tok.no_padding()
        tok.no_truncation()
        return tok

    def encode(self, text: str, max_length: int) -> tuple[list[int], list[int]]:
        """Token ids and type ids of one text with its special tokens, cut to ``max_length``."""
        tok = self.tokenizer()
        tok.enable_truncation(max_length)
        enc = tok.encode(text)
        return list(enc.ids), list(enc.type_ids)

    def encode_pair(self, query: str, doc: str, max_length: int) -> tuple[list[int], list[int]]:
        """A (query, document) pair through the tokenizer's pair template; only the document
        side is cut."""
        tok = self.tokenizer()
        tok.enable_truncation(max_length, strategy="only_second")
        enc = tok.encode(query, doc)
        return list(enc.ids), list(enc.type_ids)

    # ------------------------------------------------------------------ forward

    def forward(
        self, ids: list[list[int]], types: list[list[int]] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-pad the sequences, run the encoder; return (hidden [B,S,H], mask [B,S])."""
        types = types if types is not None else [[0] * len(s) for s in ids]
        bsz, seq = len(ids), max(len(s) for s in ids)
        input_ids = torch.zeros(bsz, seq, dtype=torch.long)
        type_ids = torch.zeros(bsz, seq, dtype=torch.long)
        mask = torch.zeros(bsz, seq, dtype=DTYPE)
        for b, (s, t) in enumerate(zip(ids, types, strict=True)):
            input_ids[b, : len(s)] = torch.tensor(s)
            type_ids[b, : len(t)] = torch.tensor(t)
            mask[b, : len(s)] = 1.0
        return self.forward_tensors(input_ids, mask, type_ids), mask

    def forward_tensors(
        self, input_ids: torch.Tensor, mask: torch.Tensor, type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The encoder on padded tensors: ``[B, S]`` ids/mask/types -> ``[B, S, H]`` float64."""
        sd, eps = self.sd, self.eps
        bsz, seq = input_ids.shape
        mask = mask.to(DTYPE)
        type_ids = type_ids if type_ids is not None else torch.zeros_like(input_ids)

        x = sd["embeddings.word_embeddings.weight"][input_ids]
        x = x + sd["embeddings.token_type_embeddings.weight"][type_ids]
        if not self.alibi:
            x = x + sd["embeddings.position_embeddings.weight"][:seq].unsqueeze(0)
        x = _layer_norm(x, sd["embeddings.LayerNorm.weight"], sd["embeddings.LayerNorm.bias"], eps)

        # [B, H, S, S]: key mask plus the symmetric ALiBi bias.
        bias = torch.zeros(bsz, self.heads, seq, seq, dtype=DTYPE)
        bias = bias + ((1.0 - mask) * torch.finfo(DTYPE).min)[:, None, None, :]
        if self.alibi:
            slopes = reference_slopes(self.heads)
            distance = torch.tensor([[abs(i - j) for j in range(seq)] for i in range(seq)])
            for h in range(self.heads):
                bias[:, h] += -slopes[h] * distance.to(DTYPE)

        layer = 0
        while f"encoder.layer.{layer}.attention.self.query.weight" in sd:
            x = self._layer(x, bias, f"encoder.layer.{layer}.")
            layer += 1
        assert layer == self.config["num_hidden_layers"], layer
        return x

    def _layer(self, x: torch.Tensor, bias: torch.Tensor, p: str) -> torch.Tensor:
        sd, eps = self.sd, self.eps
        q = _linear(x, sd, f"{p}attention.self.query")
        k = _linear(x, sd, f"{p}attention.self.key")
        v = _linear(x, sd, f"{p}attention.self.value")
        if self.is_code:
            q = _layer_norm(
                q,
                sd[f"{p}attention.self.layer_norm_q.weight"],
                sd[f"{p}attention.self.layer_norm_q.bias"],
                eps,
            )
            k = _layer_norm(
                k,
                sd[f"{p}attention.self.layer_norm_k.weight"],
                sd[f"{p}attention.self.layer_norm_k.bias"],
                eps,
            )
        heads = []
        d = self.head_dim
        for h in range(self.heads):
            qh, kh, vh = (t[..., h * d : (h + 1) * d] for t in (q, k, v))
            scores = qh @ kh.transpose(-1, -2) / math.sqrt(d) + bias[:, h]
            heads.append(torch.softmax(scores, dim=-1) @ vh)
        ctx = torch.cat(heads, dim=-1)
        attn = _layer_norm(
            _linear(ctx, sd, f"{p}attention.output.dense") + x,
            sd[f"{p}attention.output.LayerNorm.weight"],
            sd[f"{p}attention.output.LayerNorm.bias"],
            eps,
        )
        act = torch.relu if self.ffn == "reglu" else _gelu
        inter = self.intermediate
        if self.is_code:
            r = _layer_norm(
                x + attn, sd[f"{p}layer_norm_1.weight"], sd[f"{p}layer_norm_1.bias"], eps
            )
            h = r @ sd[f"{p}mlp.up_gated_layer.weight"].T
            y = _linear(h[..., :inter] * act(h[..., inter:]), sd, f"{p}mlp.down_layer")
            return _layer_norm(
                r + y, sd[f"{p}layer_norm_2.weight"], sd[f"{p}layer_norm_2.bias"], eps
            )
        if self.ffn in ("geglu", "reglu"):
            h = attn @ sd[f"{p}mlp.gated_layers.weight"].T
            y = _linear(act(h[..., :inter]) * h[..., inter:], sd, f"{p}mlp.wo")
            return _layer_norm(
                y + attn, sd[f"{p}mlp.layernorm.weight"], sd[f"{p}mlp.layernorm.bias"], eps
            )
        h = _gelu(_linear(attn, sd, f"{p}intermediate.dense"))
        y = _linear(h, sd, f"{p}output.dense")
        return _layer_norm(
            y + attn, sd[f"{p}output.LayerNorm.weight"], sd[f"{p}output.LayerNorm.bias"], eps
        )

    # ------------------------------------------------------------------ heads

    def mean_pool(self, ids: list[list[int]], types: list[list[int]] | None = None) -> torch.Tensor:
        """Unnormalised mean of the last hidden states over the real tokens: ``[B, H]``."""
        hidden, mask = self.forward(ids, types)
        return (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1e-9)

    def embed(self, texts: list[str], max_length: int, normalize: bool = True) -> torch.Tensor:
        """Each text encoded alone (no padding at all), mean pooled, optionally L2-normalised."""
        rows = []
        for text in texts:
            ids, types = self.encode(text, max_length)
            rows.append(self.mean_pool([ids], [types])[0])
        out = torch.stack(rows)
        return out / out.norm(dim=-1, keepdim=True) if normalize else out

    def logits(self, query: str, docs: list[str], max_length: int) -> torch.Tensor:
        """Cross-encoder logits ``classifier(tanh(pooler(h[:, 0])))``, one pair at a time."""
        out = []
        for doc in docs:
            ids, types = self.encode_pair(query, doc, max_length)
            out.append(self.logit_of_ids(ids, types))
        return torch.stack(out)

    def logit_of_ids(self, ids: list[int], types: list[int]) -> torch.Tensor:
        """The cross-encoder logit of one already-encoded pair."""
        hidden, _ = self.forward([ids], [types])
        pooled = torch.tanh(_linear(hidden[:, 0], self.sd, "pooler.dense"))
        return _linear(pooled, self.sd, "classifier")[0, 0]

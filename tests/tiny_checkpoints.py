"""Tiny random checkpoints in the exact Hugging Face layout of the Jina models.

Each builder writes a directory the way the Hub serves it: ``config.json`` with the real field
names, ``model.safetensors`` (or ``pytorch_model.bin``) with the real state-dict keys, and the
tokenizer files (``tokenizer.json``, ``tokenizer_config.json``, ``special_tokens_map.json``,
plus ``vocab.txt`` for WordPiece). Weights are random but seeded, with odd sizes so that a
transposed or mis-split tensor cannot go unnoticed.

Example:
    >>> from tiny_checkpoints import build_variant
    >>> path = build_variant("v2_geglu_8h", tmp_path / "v2")
    >>> sorted(p.name for p in path.iterdir())[:2]
    ['config.json', 'model.safetensors']
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

__all__ = [
    "BPE_SPECIALS",
    "VARIANTS",
    "WORDPIECE_SPECIALS",
    "Spec",
    "add_weight",
    "build_all",
    "build_checkpoint",
    "build_variant",
    "drop_weight",
    "install_in_hf_cache",
    "use_hf_cache",
    "make_config",
    "random_state_dict",
    "replace_weight",
    "spec_with",
    "truncate_weights",
    "write_bpe_tokenizer",
    "write_wordpiece_tokenizer",
]

JINA_BERT_REPO = "jinaai/jina-bert-implementation"
JINA_CODE_REPO = "jinaai/jina-bert-v2-qk-post-norm"

# Non-standard ids on purpose: a core that hard-codes BERT's 101/102 fails.
WORDPIECE_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
BPE_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]

# A few hundred words of aeronautics prose: the WordPiece vocabulary and the BPE training text.
_PROSE = """
experimental investigation of the aerodynamics of a wing in a slipstream an study propeller
was made in order to determine spanwise distribution lift increase due different angles attack
and free stream velocity ratios results were intended part evaluation basis for theoretical
treatments this problem comparative span loading curves together with supporting evidence
showed that substantial its effect is influence simple shear flow past flat plate incompressible
fluid small viscosity high speed viscous two dimensional body it usually necessary consider
curved shock wave emitting from nose or leading edge consequently there arises inviscid rotational
region boundary layer equations are presented steady no pressure gradient approximate solutions
heat transfer supersonic hypersonic mach number reynolds temperature surface skin friction drag
coefficient laminar turbulent transition separation point cone cylinder sphere body revolution
axisymmetric jet nozzle combustion chamber panel flutter buckling thin shell structure load
stress strain elastic plastic deformation vibration frequency mode damping aircraft missile
rocket satellite orbit reentry ablation heating radiation gas dynamics density air molecules
dissociation equilibrium nonequilibrium chemical reaction rate catalytic wall similarity method
numerical integration series expansion perturbation asymptotic limit exact analytical theory
experiment measurement tunnel test model data agreement good poor fair comparison previous
authors method new simple general particular case when where which what how why can be used
given obtained found shown derived computed calculated measured observed predicted estimated
"""
_WORDS = _PROSE.split()


@dataclass(frozen=True)
class Spec:
    """The shape of one tiny checkpoint.

    ``arch`` is ``"v2"`` (JinaBERT v2, ALiBi + GLU MLP), ``"code"`` (qk-post-norm) or
    ``"classic"`` (absolute positions, original FFN). ``head`` is ``"embedder"`` or
    ``"reranker"`` (pooler + one-logit classifier).
    """

    arch: str = "v2"
    head: str = "embedder"
    hidden: int = 32
    layers: int = 2
    heads: int = 8
    intermediate: int = 37
    vocab_pad: int = 5  # rows beyond the tokenizer's vocabulary, like the real 30528 vs 30522
    feed_forward_type: str = "geglu"
    tokenizer: str = "wordpiece"  # or "bpe"
    max_position_embeddings: int = 8192
    storage_dtype: str = "float32"  # "float16" / "bfloat16": how the weights are stored
    weights_format: str = "safetensors"  # or "bin"
    prefix: str = ""  # "bert." as in the MaskedLM / SequenceClassification exports
    mlm_head: bool = False  # add the `cls.predictions.*` tensors the loader must drop
    extra_buffers: bool = False  # add `position_ids` / `alibi` buffers the loader must drop
    num_labels_field: bool = False  # reranker: write `num_labels` besides `id2label`
    seed: int = 0
    config_overrides: dict = field(default_factory=dict)


VARIANTS: dict[str, Spec] = {
    # jina-embeddings-v2-small-en shape: 8 heads, GEGLU, WordPiece.
    "v2_geglu_8h": Spec(hidden=32, heads=8, seed=1),
    # base-de/es/zh shape: 12 heads (non-power-of-two slopes), byte-level BPE.
    "v2_geglu_12h": Spec(hidden=48, heads=12, intermediate=41, tokenizer="bpe", seed=2),
    "v2_reglu": Spec(hidden=36, heads=4, feed_forward_type="reglu", layers=3, seed=3),
    # jina-embeddings-v2-base-code: qk-post-norm, BPE.
    "code": Spec(arch="code", hidden=48, heads=12, intermediate=29, tokenizer="bpe", seed=4),
    "classic": Spec(
        arch="classic",
        hidden=32,
        heads=4,
        feed_forward_type="original",
        max_position_embeddings=64,
        extra_buffers=True,
        seed=5,
    ),
    # jina-reranker-v1-turbo/tiny-en: BPE, weights stored fp16, `bert.` prefix, pooler + classifier.
    "reranker_fp16": Spec(
        head="reranker",
        hidden=48,
        heads=12,
        intermediate=31,
        tokenizer="bpe",
        storage_dtype="float16",
        prefix="bert.",
        seed=6,
    ),
    "reranker_bf16": Spec(
        head="reranker",
        hidden=32,
        heads=8,
        storage_dtype="bfloat16",
        prefix="bert.",
        num_labels_field=True,
        seed=7,
    ),
    # A v2 embedder exported from the MaskedLM class: `bert.` prefix, MLM head, alibi buffer.
    "v2_prefixed_mlm": Spec(
        hidden=32, heads=8, prefix="bert.", mlm_head=True, extra_buffers=True, seed=8
    ),
    "v2_bin": Spec(hidden=32, heads=8, weights_format="bin", seed=9),
    # A classic-BERT cross-encoder (absolute positions, WordPiece pairs with type ids 0/1).
    "classic_reranker": Spec(
        arch="classic",
        head="reranker",
        hidden=32,
        heads=4,
        feed_forward_type="original",
        max_position_embeddings=64,
        seed=10,
    ),
}


# --------------------------------------------------------------------------- tokenizers


def _wordpiece_vocab() -> list[str]:
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789")
    punct = list(".,;:!?()-'\"/+=%")
    words = sorted(set(_WORDS))
    suffixes = ["##s", "##ed", "##ing", "##ly", "##al", "##er", "##ion"]
    pieces = [f"##{c}" for c in chars]
    return WORDPIECE_SPECIALS + chars + punct + pieces + suffixes + words


def write_wordpiece_tokenizer(
    out: Path, *, vocab: list[str] | None = None, model_max_length: int = 8192
) -> int:
    """Write a BERT-style uncased WordPiece tokenizer; return its vocabulary size."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    vocab = vocab if vocab is not None else _wordpiece_vocab()
    ids = {tok: i for i, tok in enumerate(vocab)}
    tok = Tokenizer(models.WordPiece(ids, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])],
    )
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.add_special_tokens(WORDPIECE_SPECIALS)
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    (out / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    special = {
        "unk_token": "[UNK]",
        "sep_token": "[SEP]",
        "pad_token": "[PAD]",
        "cls_token": "[CLS]",
        "mask_token": "[MASK]",
    }
    _write_json(out / "special_tokens_map.json", special)
    _write_json(
        out / "tokenizer_config.json",
        {
            "clean_up_tokenization_spaces": True,
            "do_basic_tokenize": True,
            "do_lower_case": True,
            "model_max_length": model_max_length,
            "never_split": None,
            "strip_accents": None,
            "tokenize_chinese_chars": True,
            "tokenizer_class": "BertTokenizer",
            **special,
        },
    )
    return len(vocab)


def write_bpe_tokenizer(out: Path, *, vocab_size: int = 400, model_max_length: int = 8192) -> int:
    """Train and write a RoBERTa-style byte-level BPE tokenizer; return its vocabulary size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=BPE_SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # Sentences of shuffled words so merges span word starts ("Ġthe") and pieces.
    gen = torch.Generator().manual_seed(0)
    lines = []
    for _ in range(200):
        idx = torch.randint(len(_WORDS), (12,), generator=gen).tolist()
        lines.append(" ".join(_WORDS[i] for i in idx))
    tok.train_from_iterator(lines, trainer)
    vocab = tok.get_vocab()
    tok.post_processor = processors.RobertaProcessing(
        ("</s>", vocab["</s>"]), ("<s>", vocab["<s>"]), trim_offsets=True, add_prefix_space=False
    )
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    special = {
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "sep_token": "</s>",
        "pad_token": "<pad>",
        "cls_token": "<s>",
        "mask_token": "<mask>",
    }
    _write_json(out / "special_tokens_map.json", special)
    _write_json(
        out / "tokenizer_config.json",
        {
            "add_prefix_space": False,
            "errors": "replace",
            "model_max_length": model_max_length,
            "trim_offsets": True,
            "tokenizer_class": "RobertaTokenizer",
            **special,
        },
    )
    return tok.get_vocab_size()


# --------------------------------------------------------------------------- config + weights


def make_config(spec: Spec, vocab_size: int) -> dict:
    """The config.json a checkpoint of this shape carries on the Hub."""
    repo = JINA_CODE_REPO if spec.arch == "code" else JINA_BERT_REPO
    if spec.arch == "classic":
        arch_name = "BertForSequenceClassification" if spec.head == "reranker" else "BertModel"
    elif spec.head == "reranker":
        arch_name = "JinaBertForSequenceClassification"
    else:
        arch_name = "JinaBertForMaskedLM"
    config: dict = {
        "_name_or_path": repo if spec.arch != "classic" else "bert-tiny-random",
        "architectures": [arch_name],
        "attention_probs_dropout_prob": 0.0,
        "classifier_dropout": None,
        "gradient_checkpointing": False,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": spec.hidden,
        "initializer_range": 0.02,
        "intermediate_size": spec.intermediate,
        "layer_norm_eps": 1e-12,
        "max_position_embeddings": spec.max_position_embeddings,
        "model_type": "bert",
        "num_attention_heads": spec.heads,
        "num_hidden_layers": spec.layers,
        "pad_token_id": 0,
        "position_embedding_type": "absolute" if spec.arch == "classic" else "alibi",
        "torch_dtype": spec.storage_dtype,
        "transformers_version": "4.26.0",
        "type_vocab_size": 2,
        "use_cache": True,
        "vocab_size": vocab_size,
        "feed_forward_type": spec.feed_forward_type,
    }
    if spec.arch != "classic":
        config["model_max_length"] = spec.max_position_embeddings
        config["emb_pooler"] = "mean"
        config["attn_implementation"] = "torch"
        module = f"{repo}--modeling_bert"
        config["auto_map"] = {
            "AutoConfig": f"{repo}--configuration_bert.JinaBertConfig",
            "AutoModel": f"{module}.JinaBertModel",
            "AutoModelForMaskedLM": f"{module}.JinaBertForMaskedLM",
            "AutoModelForSequenceClassification": f"{module}.JinaBertForSequenceClassification",
        }
    if spec.head == "reranker":
        config["id2label"] = {"0": "LABEL_0"}
        config["label2id"] = {"LABEL_0": 0}
        if spec.num_labels_field:
            config["num_labels"] = 1
    config.update(spec.config_overrides)
    return config


def _shapes(spec: Spec, vocab_size: int) -> dict[str, tuple[int, ...]]:
    """State-dict keys (without prefix) and shapes of the encoder, pooler and head."""
    h, i = spec.hidden, spec.intermediate
    shapes: dict[str, tuple[int, ...]] = {
        "embeddings.word_embeddings.weight": (vocab_size, h),
        "embeddings.token_type_embeddings.weight": (2, h),
        "embeddings.LayerNorm.weight": (h,),
        "embeddings.LayerNorm.bias": (h,),
    }
    if spec.arch == "classic":
        shapes["embeddings.position_embeddings.weight"] = (spec.max_position_embeddings, h)
    for n in range(spec.layers):
        p = f"encoder.layer.{n}."
        for name in ("query", "key", "value"):
            shapes[f"{p}attention.self.{name}.weight"] = (h, h)
            shapes[f"{p}attention.self.{name}.bias"] = (h,)
        shapes[f"{p}attention.output.dense.weight"] = (h, h)
        shapes[f"{p}attention.output.dense.bias"] = (h,)
        shapes[f"{p}attention.output.LayerNorm.weight"] = (h,)
        shapes[f"{p}attention.output.LayerNorm.bias"] = (h,)
        if spec.arch == "v2":
            shapes[f"{p}mlp.gated_layers.weight"] = (2 * i, h)
            shapes[f"{p}mlp.wo.weight"] = (h, i)
            shapes[f"{p}mlp.wo.bias"] = (h,)
            shapes[f"{p}mlp.layernorm.weight"] = (h,)
            shapes[f"{p}mlp.layernorm.bias"] = (h,)
        elif spec.arch == "code":
            for name in ("layer_norm_q", "layer_norm_k"):
                shapes[f"{p}attention.self.{name}.weight"] = (h,)
                shapes[f"{p}attention.self.{name}.bias"] = (h,)
            shapes[f"{p}mlp.up_gated_layer.weight"] = (2 * i, h)
            shapes[f"{p}mlp.down_layer.weight"] = (h, i)
            shapes[f"{p}mlp.down_layer.bias"] = (h,)
            for name in ("layer_norm_1", "layer_norm_2"):
                shapes[f"{p}{name}.weight"] = (h,)
                shapes[f"{p}{name}.bias"] = (h,)
        else:
            shapes[f"{p}intermediate.dense.weight"] = (i, h)
            shapes[f"{p}intermediate.dense.bias"] = (i,)
            shapes[f"{p}output.dense.weight"] = (h, i)
            shapes[f"{p}output.dense.bias"] = (h,)
            shapes[f"{p}output.LayerNorm.weight"] = (h,)
            shapes[f"{p}output.LayerNorm.bias"] = (h,)
    # The real embedders were exported with a pooler too (unused by mean pooling).
    shapes["pooler.dense.weight"] = (h, h)
    shapes["pooler.dense.bias"] = (h,)
    return shapes


def random_state_dict(spec: Spec, vocab_size: int) -> dict[str, torch.Tensor]:
    """Seeded random weights under the real key names, cast to the storage dtype.

    Scales keep activations O(1) so attention is far from uniform and every part of the
    forward pass (slopes, masks, gates) moves the output.
    """
    gen = torch.Generator().manual_seed(spec.seed)
    state: dict[str, torch.Tensor] = {}
    for key, shape in _shapes(spec, vocab_size).items():
        state[spec.prefix + key] = _init(key, shape, gen)
    if spec.head == "reranker":
        # Scaled up so logits spread over both signs and the sigmoid is far from flat.
        scale = 4.0 / math.sqrt(spec.hidden)
        state["classifier.weight"] = scale * torch.randn(1, spec.hidden, generator=gen)
        state["classifier.bias"] = 0.1 * torch.randn(1, generator=gen)
    if spec.mlm_head:
        h = spec.hidden
        state["cls.predictions.bias"] = torch.zeros(vocab_size)
        state["cls.predictions.transform.dense.weight"] = _init("dense.weight", (h, h), gen)
        state["cls.predictions.transform.dense.bias"] = torch.zeros(h)
        state["cls.predictions.transform.LayerNorm.weight"] = torch.ones(h)
        state["cls.predictions.transform.LayerNorm.bias"] = torch.zeros(h)
        state["cls.predictions.decoder.weight"] = _init("dense.weight", (vocab_size, h), gen)
        state["cls.predictions.decoder.bias"] = torch.zeros(vocab_size)
    if spec.extra_buffers:
        if spec.arch == "classic":
            positions = torch.arange(spec.max_position_embeddings).unsqueeze(0)
            state[spec.prefix + "embeddings.position_ids"] = positions
        else:
            # A small stand-in for the precomputed [1, H, P, P] bias some exports carry.
            state[spec.prefix + "encoder.alibi"] = torch.zeros(1, spec.heads, 4, 4)
    dtype = getattr(torch, spec.storage_dtype)
    return {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in state.items()}


def _init(key: str, shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    if "LayerNorm" in key or "layernorm" in key or "layer_norm" in key:
        base = torch.ones(shape) if key.endswith("weight") else torch.zeros(shape)
        return base + 0.1 * torch.randn(shape, generator=gen)
    if key.endswith("bias"):
        return 0.1 * torch.randn(shape, generator=gen)
    if "embeddings" in key:
        return torch.randn(shape, generator=gen)
    return torch.randn(shape, generator=gen) / math.sqrt(shape[-1])


# --------------------------------------------------------------------------- builders


def build_checkpoint(spec: Spec, out: Path, *, wordpiece_vocab: list[str] | None = None) -> Path:
    """Write one checkpoint of shape ``spec`` into ``out`` (created) and return ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    max_len = spec.max_position_embeddings
    if spec.tokenizer == "wordpiece":
        n_tokens = write_wordpiece_tokenizer(out, vocab=wordpiece_vocab, model_max_length=max_len)
    else:
        n_tokens = write_bpe_tokenizer(out, model_max_length=max_len)
    vocab_size = n_tokens + spec.vocab_pad
    _write_json(out / "config.json", make_config(spec, vocab_size))
    state = random_state_dict(spec, vocab_size)
    if spec.weights_format == "bin":
        torch.save(state, out / "pytorch_model.bin")
    else:
        save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    return out


def build_variant(name: str, out: Path) -> Path:
    """Build the named entry of :data:`VARIANTS` into ``out``."""
    return build_checkpoint(VARIANTS[name], out)


def build_all(root: Path) -> dict[str, Path]:
    """Build every variant under ``root/<name>``; return ``{name: path}``."""
    return {name: build_variant(name, Path(root) / name) for name in VARIANTS}


def spec_with(name: str, **changes) -> Spec:
    """A copy of a named variant's spec with some fields changed."""
    return replace(VARIANTS[name], **changes)


# --------------------------------------------------------------------------- Hugging Face cache


def install_in_hf_cache(
    cache: Path, repo_id: str, checkpoint: Path, *, commit: str | None = None
) -> Path:
    """Lay a checkpoint out as ``huggingface_hub`` caches a download; return the snapshot dir.

    ``cache/models--owner--name/{blobs/<sha256>, snapshots/<commit>/<file> -> blob, refs/main}``.
    """
    import hashlib

    commit = commit if commit is not None else hashlib.sha1(repo_id.encode()).hexdigest()
    repo = Path(cache) / ("models--" + repo_id.replace("/", "--"))
    blobs, snapshot = repo / "blobs", repo / "snapshots" / commit
    blobs.mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    for src in sorted(Path(checkpoint).iterdir()):
        data = src.read_bytes()
        blob = blobs / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / src.name).symlink_to(Path("..", "..", "blobs", blob.name))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def use_hf_cache(monkeypatch, cache: Path) -> Path:
    """Point the environment and the imported ``huggingface_hub`` at ``cache``, offline."""
    from huggingface_hub import constants

    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("HF_HOME", str(cache.parent))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads these once at import; the running process needs them patched too.
    monkeypatch.setattr(constants, "HF_HOME", str(cache.parent))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


# --------------------------------------------------------------------------- corruption


def truncate_weights(ckpt: Path, keep_fraction: float = 0.5) -> Path:
    """Cut ``model.safetensors`` short, like an interrupted download or copy."""
    path = Path(ckpt) / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep_fraction)])
    return path


def drop_weight(ckpt: Path, key: str) -> None:
    """Remove one tensor from ``model.safetensors``."""
    path = Path(ckpt) / "model.safetensors"
    state = load_file(str(path))
    del state[key]
    save_file(state, str(path), metadata={"format": "pt"})


def add_weight(ckpt: Path, key: str, tensor: torch.Tensor) -> None:
    """Add one tensor (an unexpected key) to ``model.safetensors``."""
    replace_weight(ckpt, key, tensor)


def replace_weight(ckpt: Path, key: str, tensor: torch.Tensor) -> None:
    """Set one tensor of ``model.safetensors`` (e.g. to a wrong shape)."""
    path = Path(ckpt) / "model.safetensors"
    state = load_file(str(path))
    state[key] = tensor.contiguous()
    save_file(state, str(path), metadata={"format": "pt"})


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")

"""Bad inputs to the Python API, one table row each: the call, the error class, and a piece of
the message that names the bad value. Nothing here may end in a plain Python or torch error,
and nothing may be silently read as something else (a dict as its keys, "no" as True)."""

from __future__ import annotations

import json
import os
import shutil
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tiny_checkpoints import replace_weight

import jinarag
from jinarag.errors import CheckpointError, CheckpointWarning, InputError

EMBEDDER = "v2_geglu_8h"  # WordPiece, hidden 32, vocab 320
RERANKER = "reranker_bf16"
CLASSIC = "classic"  # the original FFN, so hidden_act is read


@pytest.fixture(scope="module")
def emb(tiny_checkpoints) -> jinarag.Embedder:
    return jinarag.Embedder.from_pretrained(tiny_checkpoints[EMBEDDER], device="cpu", max_length=16)


@pytest.fixture(scope="module")
def rr(tiny_checkpoints) -> jinarag.Reranker:
    return jinarag.Reranker.from_pretrained(tiny_checkpoints[RERANKER], device="cpu", max_length=24)


def _raises(call: Callable[[], Any], error: type[Exception], *named: str) -> str:
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    for piece in named:
        assert piece in message, f"{piece!r} not in {message!r}"
    return message


# --------------------------------------------------------------------------- texts and flags

# (id, call on (emb, rr), pieces the InputError must contain)
CALLS: list[tuple[str, Callable[[Any, Any], Any], tuple[str, ...]]] = [
    # A lone surrogate, in every place a text goes.
    (
        "embed-surrogate",
        lambda e, r: e.embed(["ok", "ab\ud800c"]),
        ("texts[1]", "U+D800", "at character 2"),
    ),
    (
        "embed_documents-surrogate",
        lambda e, r: e.embed_documents(["\udfff"]),
        ("texts[0]", "U+DFFF"),
    ),
    (
        "embed_queries-surrogate",
        lambda e, r: e.embed_queries(["a", "b", "\udc80"]),
        ("texts[2]", "U+DC80"),
    ),
    ("embed_query-surrogate", lambda e, r: e.embed_query("x\ud800"), ("text contains", "U+D800")),
    ("score-query-surrogate", lambda e, r: r.score("q\ud800", ["d"]), ("query contains", "U+D800")),
    (
        "score-document-surrogate",
        lambda e, r: r.score("q", ["d", "\udfff"]),
        ("documents[1]", "U+DFFF"),
    ),
    ("rank-document-surrogate", lambda e, r: r.rank("q", ["\ud800"]), ("documents[0]", "U+D800")),
    ("split-surrogate-pair", lambda e, r: e.embed(["\ud83d\ude00"]), ("U+D83D U+DE00", "utf-16")),
    # Mappings and unordered collections: a dict would embed its keys, a set has no order.
    ("embed-dict", lambda e, r: e.embed({"k": "text"}), ("texts", "dict", "list")),
    ("embed-set", lambda e, r: e.embed({"a", "b"}), ("texts", "set", "list")),
    ("embed-frozenset", lambda e, r: e.embed(frozenset({"a"})), ("frozenset",)),
    ("embed-keys", lambda e, r: e.embed({"a": 1}.keys()), ("dict_keys",)),
    ("embed-values", lambda e, r: e.embed({1: "a"}.values()), ("dict_values",)),
    ("embed_queries-set", lambda e, r: e.embed_queries({"a"}), ("texts", "set")),
    ("score-set", lambda e, r: r.score("q", {"a", "b"}), ("documents", "set")),
    ("rank-dict", lambda e, r: r.rank("q", {"d": "text"}), ("documents", "dict")),
    # Flags are bools, not strings or numbers that happen to be truthy.
    ("normalize-str", lambda e, r: e.embed(["a"], normalize="no"), ("normalize", "'no'")),
    ("normalize-int", lambda e, r: e.embed(["a"], normalize=0), ("normalize", "int 0")),
    ("normalize-none", lambda e, r: e.embed(["a"], normalize=None), ("normalize", "None")),
    (
        "embed_query-normalize",
        lambda e, r: e.embed_query("a", normalize="no"),
        ("normalize", "'no'"),
    ),
    (
        "embed_queries-normalize",
        lambda e, r: e.embed_queries(["a"], normalize="False"),
        ("normalize",),
    ),
    (
        "embed_documents-normalize",
        lambda e, r: e.embed_documents(["a"], normalize=1),
        ("normalize",),
    ),
    (
        "show_progress-str",
        lambda e, r: e.embed(["a"], show_progress="yes"),
        ("show_progress", "'yes'"),
    ),
    ("truncate-str", lambda e, r: e.embed(["a"], truncate="no"), ("truncate", "'no'")),
    ("embed_query-truncate", lambda e, r: e.embed_query("a", truncate=1), ("truncate", "int 1")),
    ("empty-input-normalize", lambda e, r: e.embed([], normalize="no"), ("normalize",)),
    ("score-show_progress", lambda e, r: r.score("q", ["a"], show_progress=1), ("show_progress",)),
    ("score-truncate", lambda e, r: r.score("q", ["a"], truncate="no"), ("truncate", "'no'")),
    ("rank-truncate", lambda e, r: r.rank("q", ["a"], truncate="no"), ("truncate",)),
    (
        "score-activation-bool",
        lambda e, r: r.score("q", ["a"], activation=True),
        ("activation True",),
    ),
    (
        "score-activation-str",
        lambda e, r: r.score("q", ["a"], activation="no"),
        ("activation 'no'",),
    ),
    # Integers are not bools (True would mean 1) nor floats.
    ("top_n-bool", lambda e, r: r.rank("q", ["a", "b"], top_n=True), ("top_n", "True")),
    ("top_n-float", lambda e, r: r.rank("q", ["a", "b"], top_n=1.0), ("top_n", "1.0")),
    ("batch_size-bool", lambda e, r: e.embed(["a"], batch_size=True), ("batch_size", "True")),
    ("batch_size-empty-input", lambda e, r: e.embed([], batch_size=0), ("batch_size", "0")),
    ("score-batch_size-bool", lambda e, r: r.score("q", ["a"], batch_size=False), ("batch_size",)),
    ("score-batch_size-empty", lambda e, r: r.score("q", [], batch_size=-2), ("batch_size", "-2")),
]


@pytest.mark.parametrize(("call", "named"), [c[1:] for c in CALLS], ids=[c[0] for c in CALLS])
def test_a_bad_argument_is_an_input_error_naming_it(emb, rr, call, named):
    _raises(lambda: call(emb, rr), InputError, *named)


def test_the_surrogate_error_says_how_to_fix_the_text(emb):
    message = _raises(lambda: emb.embed(["fine", "bad \ud800"]), InputError, "lone surrogate")
    assert "text.encode('utf-8', 'replace').decode()" in message
    fixed = "bad \ud800".encode("utf-8", "replace").decode()
    assert emb.embed(["fine", fixed]).shape == (2, emb.dim)  # the suggested fix works


def test_ordered_iterables_and_numpy_bools_are_accepted(emb, rr):
    texts = ["boundary layer", "heat transfer"]
    expected = emb.embed(texts)
    np.testing.assert_array_equal(emb.embed(t for t in texts), expected)
    np.testing.assert_array_equal(emb.embed(iter(texts)), expected)
    np.testing.assert_array_equal(emb.embed(tuple(texts)), expected)
    np.testing.assert_array_equal(
        emb.embed(texts, normalize=np.bool_(False)), emb.embed(texts, normalize=False)
    )
    assert rr.score("flutter", (d for d in texts)).shape == (2,)
    assert [d.index for d in rr.rank("flutter", texts, top_n=np.int64(1))] in ([0], [1])


# --------------------------------------------------------------------------- device and dtype


def _missing_cuda() -> str:
    """A CUDA device this machine does not have (one past the last GPU, or any without one)."""
    return f"cuda:{torch.cuda.device_count()}" if torch.cuda.is_available() else "cuda"


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"device": _missing_cuda()}, (f"device='{_missing_cuda()}'", "'cpu'", "not available")),
        ({"device": torch.device(_missing_cuda())}, (f"device='{_missing_cuda()}'",)),
        ({"device": "meta"}, ("device='meta'", "'cpu'")),
        ({"device": None}, ("device=None",)),
        ({"dtype": torch.int64}, ("torch.int64", "torch.float32")),
        ({"dtype": torch.bool}, ("torch.bool", "torch.bfloat16")),
        ({"dtype": None}, ("dtype=None",)),
        ({"dtype": "int8"}, ("'int8'", "'float16'")),
    ],
    ids=["cuda", "torch-device", "meta", "device-none", "int64", "bool", "dtype-none", "int8"],
)
def test_device_and_dtype_are_checked_before_any_file_is_read(tmp_path, options, named):
    # The path does not exist: the option error comes first, before ModelNotFoundError.
    missing = tmp_path / "not-read"
    for cls in (jinarag.Embedder, jinarag.Reranker):
        _raises(lambda cls=cls: cls.from_pretrained(missing, **options), InputError, *named)


def test_float64_still_loads(tiny_checkpoints):
    emb = jinarag.Embedder.from_pretrained(
        tiny_checkpoints[EMBEDDER], device="cpu", dtype=torch.float64
    )
    assert emb.embed(["boundary layer"]).dtype == np.float32


# --------------------------------------------------------------------------- config.json values


@pytest.fixture
def copy_of(tiny_checkpoints, tmp_path):
    def copy(name: str) -> Path:
        return Path(shutil.copytree(tiny_checkpoints[name], tmp_path / name))

    return copy


def _edit_config(ckpt: Path, **changes: Any) -> None:
    config = json.loads((ckpt / "config.json").read_text())
    config.update(changes)
    (ckpt / "config.json").write_text(json.dumps(config))


# (variant, field, bad value, piece of the message)
CONFIG_ROWS: list[tuple[str, str, Any, str]] = [
    (EMBEDDER, "num_attention_heads", 0, "num_attention_heads=0"),
    (EMBEDDER, "num_attention_heads", -8, "num_attention_heads=-8"),
    (EMBEDDER, "num_attention_heads", 5, "not divisible by num_attention_heads 5"),
    (EMBEDDER, "num_attention_heads", "8", "num_attention_heads='8'"),
    (EMBEDDER, "hidden_size", "32", "hidden_size='32'"),
    (EMBEDDER, "hidden_size", 32.0, "hidden_size=32.0"),
    (EMBEDDER, "hidden_size", None, "hidden_size=None"),
    (EMBEDDER, "intermediate_size", -3, "intermediate_size=-3"),
    (EMBEDDER, "num_hidden_layers", 0, "num_hidden_layers=0"),
    (EMBEDDER, "num_hidden_layers", True, "num_hidden_layers=True"),
    (EMBEDDER, "vocab_size", [320], "vocab_size=[320]"),
    (EMBEDDER, "type_vocab_size", 0, "type_vocab_size=0"),
    (EMBEDDER, "max_position_embeddings", -1, "max_position_embeddings=-1"),
    (EMBEDDER, "layer_norm_eps", "1e-12", "layer_norm_eps='1e-12'"),
    (EMBEDDER, "layer_norm_eps", 0, "layer_norm_eps=0"),
    (EMBEDDER, "layer_norm_eps", -1e-12, "layer_norm_eps=-1e-12"),
    (EMBEDDER, "layer_norm_eps", float("inf"), "layer_norm_eps=inf"),
    (EMBEDDER, "pad_token_id", 10**6, "pad_token_id=1000000"),
    (EMBEDDER, "pad_token_id", 320, "pad_token_id=320"),  # vocab_size is 320
    (EMBEDDER, "pad_token_id", -1, "pad_token_id=-1"),
    (EMBEDDER, "pad_token_id", "0", "pad_token_id='0'"),
    (EMBEDDER, "position_embedding_type", "rotary", "position_embedding_type='rotary'"),
    (EMBEDDER, "feed_forward_type", "swiglu", "feed_forward_type='swiglu'"),
    (CLASSIC, "hidden_act", "swiglu", "hidden_act='swiglu'"),
    (CLASSIC, "hidden_act", ["gelu"], "hidden_act=['gelu']"),
    (RERANKER, "num_labels", 0, "num_labels=0"),
    (RERANKER, "id2label", ["LABEL_0"], "id2label=['LABEL_0']"),
]


@pytest.mark.parametrize(
    ("variant", "key", "value", "named"),
    CONFIG_ROWS,
    ids=[f"{row[1]}={row[2]!r}" for row in CONFIG_ROWS],
)
def test_a_bad_config_value_is_a_checkpoint_error_naming_the_field(
    copy_of, variant, key, value, named
):
    ckpt = copy_of(variant)
    _edit_config(ckpt, **{key: value})
    cls = jinarag.Reranker if variant == RERANKER else jinarag.Embedder
    _raises(
        lambda: cls.from_pretrained(ckpt, device="cpu"),
        CheckpointError,
        str(ckpt / "config.json"),
        named,
    )


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ("null", "holds null"),
        ("[]", "holds []"),
        ('"bert"', 'holds "bert"'),
        ("7", "holds 7"),
        ('{"vocab_size": 3', "cannot be read as JSON"),
        (b"\xff\xfe\x00garbage", "cannot be read as JSON"),
    ],
    ids=["null", "list", "string", "number", "half-written", "not-utf8"],
)
def test_a_config_file_that_is_not_an_object(copy_of, content, named):
    ckpt = copy_of(EMBEDDER)
    path = ckpt / "config.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    _raises(
        lambda: jinarag.Embedder.from_pretrained(ckpt, device="cpu"),
        CheckpointError,
        str(path),
        named,
    )


@pytest.mark.parametrize(
    ("filename", "content", "without_tokenizer_json"),
    [
        ("tokenizer_config.json", "{bad", False),  # read for model_max_length
        ("tokenizer_config.json", "{bad", True),  # read for do_lower_case (vocab.txt only)
        ("tokenizer_config.json", "[1, 2]", False),
        ("tokenizer_config.json", "null", True),
        ("sentence_bert_config.json", '{"max_seq_length": ', False),
        ("sentence_bert_config.json", "null", False),
    ],
)
def test_a_corrupt_tokenizer_or_sentence_transformers_config_is_named(
    copy_of, filename, content, without_tokenizer_json
):
    ckpt = copy_of(EMBEDDER)
    if without_tokenizer_json:
        (ckpt / "tokenizer.json").unlink()
    (ckpt / filename).write_text(content)
    _raises(
        lambda: jinarag.Embedder.from_pretrained(ckpt, device="cpu"),
        CheckpointError,
        str(ckpt / filename),
        "copy or download",
    )


def test_a_tokenizer_larger_than_the_embedding_table_is_refused_at_load(copy_of):
    # Otherwise the first text with a high token id fails inside embed with an IndexError.
    ckpt = copy_of(EMBEDDER)
    _edit_config(ckpt, vocab_size=100)
    replace_weight(ckpt, "embeddings.word_embeddings.weight", torch.zeros(100, 32))
    _raises(
        lambda: jinarag.Embedder.from_pretrained(ckpt, device="cpu"),
        CheckpointError,
        "vocab_size=100",
        "token ids up to",
    )


# --------------------------------------------------------------------------- refused pickles


class _RunsAShellCommand:
    """What a malicious checkpoint smuggles in: unpickling it would run a command."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_a_pickle_that_would_run_code_is_refused_not_called_corrupt(copy_of, tmp_path):
    ckpt = copy_of(EMBEDDER)
    marker = tmp_path / "the-payload-ran"
    state = {
        "embeddings.word_embeddings.weight": torch.zeros(3, 3),
        "payload": _RunsAShellCommand(f"touch {marker}"),
    }
    (ckpt / "model.safetensors").unlink()
    torch.save(state, ckpt / "pytorch_model.bin")  # pickling only records the call
    with pytest.raises(CheckpointError) as info:
        jinarag.Embedder.from_pretrained(ckpt, device="cpu")
    message = str(info.value)
    assert not marker.exists()
    assert str(ckpt / "pytorch_model.bin") in message
    assert "refused" in message
    assert f"{os.system.__module__}.system" in message  # what it asked to run
    assert "can carry code" in message
    assert "safetensors" in message  # the way out: convert it in a trusted environment
    assert "corrupt" not in message
    # Never the advice to lower the safety setting, here or in a chained exception.
    shown = "".join(traceback.format_exception(info.value))
    assert "weights_only" not in shown
    assert "safe_globals" not in shown


def test_a_damaged_pickle_is_corrupt_without_torchs_unsafe_hint(copy_of):
    ckpt = copy_of("v2_bin")
    (ckpt / "pytorch_model.bin").write_bytes(b"not a pickle at all" * 10)
    with pytest.raises(CheckpointError) as info:
        jinarag.Embedder.from_pretrained(ckpt, device="cpu")
    message = str(info.value)
    assert "corrupt or half-written" in message
    assert "weights_only" not in "".join(traceback.format_exception(info.value))


# --------------------------------------------------------------------------- head mismatch


def test_a_cross_encoder_loaded_as_an_embedder_warns(tiny_checkpoints):
    with pytest.warns(CheckpointWarning) as caught:
        emb = jinarag.Embedder.from_pretrained(tiny_checkpoints[RERANKER], device="cpu")
    (warning,) = [w for w in caught if issubclass(w.category, CheckpointWarning)]
    assert str(tiny_checkpoints[RERANKER]) in str(warning.message)
    assert "jinarag.Reranker" in str(warning.message)
    assert warning.filename == __file__  # points at the caller's line
    assert emb.embed(["boundary layer"]).shape == (1, 32)  # still usable on purpose
    assert jinarag.CheckpointWarning is CheckpointWarning


def test_an_embedder_checkpoint_loads_without_that_warning(tiny_checkpoints):
    with warnings.catch_warnings():
        warnings.simplefilter("error", CheckpointWarning)
        jinarag.Embedder.from_pretrained(tiny_checkpoints[EMBEDDER], device="cpu")
        jinarag.Reranker.from_pretrained(tiny_checkpoints[RERANKER], device="cpu")

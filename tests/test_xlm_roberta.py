"""The XLM-RoBERTa family (jina-embeddings-v3, jina-reranker-v2) against transformers' classes.

Tiny random checkpoints in the real layouts (tests/tiny_xlmr_checkpoints.py) are loaded by
jinarag and, with the same weights mapped to transformers' names, by
``JinaEmbeddingsV3Model`` (the task's LoRA merged into the base weights, W + s·B@A, and the
fused Wqkv split into q/k/v) and ``XLMRobertaForSequenceClassification``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from tiny_xlmr_checkpoints import V3_TASKS, build_reranker_v2, build_v3
from xlmr_reference import hf_reranker, hf_v3

from jinarag.errors import CheckpointError
from jinarag.models.checkpoint import load_encoder

TOLERANCE = 1e-5
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def v3_dir(tmp_path_factory):
    return build_v3(tmp_path_factory.mktemp("xlmr") / "v3")


@pytest.fixture(scope="module")
def reranker_dir(tmp_path_factory):
    return build_reranker_v2(tmp_path_factory.mktemp("xlmr") / "reranker-v2")


def _load(directory, kind="embedder"):
    model, config = load_encoder(directory, kind=kind, device=CPU, dtype=torch.float32)
    return model, config


# -- transformers' models with our weights -----------------------------------------------------


# -- inputs ------------------------------------------------------------------------------------


def _batch(lengths: list[int], vocab: int, pad: int, seed: int = 0):
    """Right-padded rows of random ids (<s> … </s>), several lengths in one batch."""
    gen = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.full((len(lengths), width), pad, dtype=torch.long)
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.randint(5, vocab - 1, (n,), generator=gen)
        ids[row, 0], ids[row, n - 1] = 0, 2
    mask = (torch.arange(width)[None] < torch.tensor(lengths)[:, None]).long()
    return ids, mask


def _packed(ids, mask):
    """The rows of a padded batch packed into one row: sequence ids 1, 2, …; positions
    restarting with each sequence."""
    pieces = [ids[r, : int(mask[r].sum())] for r in range(len(ids))]
    packed_ids = torch.cat(pieces)[None]
    sequence_ids = torch.cat([torch.full((len(p),), i + 1) for i, p in enumerate(pieces)])[None]
    positions = torch.cat([torch.arange(len(p)) for p in pieces])[None]
    return packed_ids, sequence_ids, positions


LENGTHS = [9, 3, 14, 6]


# -- jina-embeddings-v3 ------------------------------------------------------------------------


@pytest.mark.parametrize("task", [None, *range(len(V3_TASKS))])
def test_v3_matches_transformers_for_every_task(v3_dir, task):
    model, config = _load(v3_dir)
    reference = hf_v3(v3_dir, task)
    ids, mask = _batch(LENGTHS, config.vocab_size, config.pad_token_id)
    with torch.no_grad():
        expected = reference(input_ids=ids, attention_mask=mask).last_hidden_state
        for backend in ("sdpa", "eager", "flex"):
            model.attn_implementation = backend
            ours = model(ids, mask, task=task)
            valid = mask.bool()
            diff = (ours - expected)[valid].abs().max().item()
            assert diff < TOLERANCE, (task, backend, diff)
            pooled = (ours * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
            pooled_ref = (expected * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
            assert (pooled - pooled_ref).abs().max().item() < TOLERANCE


@pytest.mark.parametrize("backend", ["sdpa", "eager", "flex"])
def test_v3_packed_rows_equal_padded_rows(v3_dir, backend):
    model, config = _load(v3_dir)
    model.attn_implementation = backend
    ids, mask = _batch(LENGTHS, config.vocab_size, config.pad_token_id, seed=1)
    packed_ids, sequence_ids, positions = _packed(ids, mask)
    with torch.no_grad():
        padded = model(ids, mask, task=1)[mask.bool()]
        packed = model(packed_ids, sequence_ids, position_ids=positions, task=1)[0]
    assert (padded - packed).abs().max().item() < TOLERANCE


def test_v3_per_row_tasks_equal_one_task_per_batch(v3_dir):
    model, config = _load(v3_dir)
    ids, mask = _batch(LENGTHS, config.vocab_size, config.pad_token_id, seed=2)
    tasks = torch.tensor([0, 4, 2, 1])
    with torch.no_grad():
        mixed = model(ids, mask, task=tasks)
        for row, task in enumerate(tasks.tolist()):
            alone = model(ids[row : row + 1], mask[row : row + 1], task=task)[0]
            valid = mask[row].bool()
            assert (mixed[row][valid] - alone[valid]).abs().max().item() < TOLERANCE


def test_v3_tasks_differ_from_each_other(v3_dir):
    model, config = _load(v3_dir)
    ids, mask = _batch([7], config.vocab_size, config.pad_token_id)
    with torch.no_grad():
        outputs = [model(ids, mask, task=t) for t in range(len(V3_TASKS))]
    assert all((outputs[0] - other).abs().max() > 1e-3 for other in outputs[1:])


def test_v3_config_facts(v3_dir):
    _, config = _load(v3_dir)
    assert config.tasks == tuple(V3_TASKS)
    assert config.rotary and config.max_position_embeddings == 8192
    assert config.lora_scaling == 0.25
    assert config.task_instructions["retrieval.query"].startswith("Represent the query")
    assert config.matryoshka_dimensions[-1] == config.hidden_size


# -- jina-reranker-v2 --------------------------------------------------------------------------


def test_reranker_v2_matches_transformers(reranker_dir):
    model, config = _load(reranker_dir, "reranker")
    reference = hf_reranker(reranker_dir)
    ids, mask = _batch(LENGTHS, config.vocab_size, config.pad_token_id, seed=3)
    with torch.no_grad():
        expected = reference(input_ids=ids, attention_mask=mask).logits[:, 0]
        for backend in ("sdpa", "eager", "flex"):
            model.attn_implementation = backend
            ours = model.relevance(model(ids, mask)[:, 0])
            assert (ours - expected).abs().max().item() < TOLERANCE, backend
        packed_ids, sequence_ids, positions = _packed(ids, mask)
        model.attn_implementation = "sdpa"
        hidden = model(packed_ids, sequence_ids, position_ids=positions)[0]
        starts = torch.cumsum(torch.tensor([0, *mask.sum(1).tolist()[:-1]]), 0)
        packed = model.relevance(hidden[starts])
    assert (packed - expected).abs().max().item() < TOLERANCE
    assert config.max_position_embeddings == 64 and not config.rotary


# -- strict loading ----------------------------------------------------------------------------


def _rewrite(directory, change) -> None:
    path = directory / "model.safetensors"
    state = load_file(str(path))
    change(state)
    save_file(state, str(path), metadata={"format": "pt"})


def test_missing_adapter_is_a_checkpoint_error(tmp_path):
    directory = build_v3(tmp_path / "v3")
    key = "roberta.encoder.layers.1.mlp.fc2.parametrizations.weight.0.lora_B"
    _rewrite(directory, lambda state: state.pop(key))
    with pytest.raises(CheckpointError, match=r"encoder\.layers\.1\.mlp\.fc2.*lora_B"):
        _load(directory)


def test_adapters_for_fewer_tasks_are_a_checkpoint_error(tmp_path):
    directory = build_v3(tmp_path / "v3")
    key = "roberta.encoder.layers.0.mixer.Wqkv.parametrizations.weight.0.lora_A"

    def drop_task(state):
        state[key] = state[key][:4].contiguous()

    _rewrite(directory, drop_task)
    with pytest.raises(CheckpointError, match=r"Wqkv.*4 tasks.*lists 5"):
        _load(directory)


def test_unexpected_key_is_a_checkpoint_error(tmp_path):
    directory = build_reranker_v2(tmp_path / "r")
    _rewrite(directory, lambda state: state.update(extra=torch.zeros(2)))
    with pytest.raises(CheckpointError, match="unexpected weights: extra"):
        _load(directory, "reranker")


def test_v3_is_not_a_reranker(v3_dir):
    with pytest.raises(CheckpointError, match="classifier.dense"):
        _load(v3_dir, "reranker")


# -- the public API: Embedder and Reranker ----------------------------------------------------

TEXTS = [
    "the wing in a slipstream",
    "boundary layer heat transfer at high mach number and the skin friction",
    "drag",
]


@pytest.fixture(scope="module")
def v3_embedder(v3_dir):
    from jinarag import Embedder

    return Embedder.from_pretrained(str(v3_dir), device="cpu", backend="torch")


def _reference_means(directory, embedder, texts, task):
    """Mean pooling of transformers' model (the task merged in) over our tokenizer's ids of
    the task's instruction + text."""
    reference = hf_v3(directory, embedder.tasks.index(task) if task else None)
    instruction = embedder.config.task_instructions.get(task, "") if task else ""
    encoded = embedder.tokenizer.encode([instruction + t for t in texts], max_length=512)
    lengths = [len(row) for row in encoded.input_ids]
    ids = torch.full((len(lengths), max(lengths)), embedder.tokenizer.pad_token_id)
    for row, tokens in enumerate(encoded.input_ids):
        ids[row, : len(tokens)] = torch.tensor(tokens)
    mask = (torch.arange(ids.shape[1])[None] < torch.tensor(lengths)[:, None]).long()
    with torch.no_grad():
        hidden = reference(input_ids=ids, attention_mask=mask).last_hidden_state
    return ((hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)).numpy()


@pytest.mark.parametrize("task", V3_TASKS)
def test_embedder_v3_matches_transformers_for_every_task(v3_dir, v3_embedder, task):
    ours = v3_embedder.embed(TEXTS, task=task, normalize=False)
    expected = _reference_means(v3_dir, v3_embedder, TEXTS, task)
    assert abs(ours - expected).max() < TOLERANCE


def test_embedder_v3_sides_use_their_tasks_and_instructions(v3_dir, v3_embedder):
    documents = v3_embedder.embed(TEXTS, normalize=False)
    queries = v3_embedder.embed_queries(TEXTS, normalize=False)
    assert (
        abs(documents - _reference_means(v3_dir, v3_embedder, TEXTS, "retrieval.passage")).max()
        < TOLERANCE
    )
    assert (
        abs(queries - _reference_means(v3_dir, v3_embedder, TEXTS, "retrieval.query")).max()
        < TOLERANCE
    )
    single = v3_embedder.embed_query(TEXTS[0], normalize=False)
    assert abs(single - queries[0]).max() < TOLERANCE
    explicit = v3_embedder.embed_documents(TEXTS, task="retrieval.passage", normalize=False)
    assert abs(explicit - documents).max() == 0


def test_embedder_v3_packed_equals_padded(v3_dir, v3_embedder):
    from jinarag import Embedder

    packed = Embedder.from_pretrained(str(v3_dir), device="cpu", backend="torch", attention="flex")
    assert packed.packed
    for task in (None, "separation"):
        diff = abs(packed.embed(TEXTS, task=task) - v3_embedder.embed(TEXTS, task=task)).max()
        assert diff < TOLERANCE


@pytest.mark.parametrize("dimensions", [4, 8, 13, 32])
def test_matryoshka_cut_is_the_renormalised_prefix(v3_embedder, dimensions):
    full = v3_embedder.embed(TEXTS, task="text-matching")
    cut = v3_embedder.embed(TEXTS, task="text-matching", dimensions=dimensions)
    prefix = full[:, :dimensions] / np.linalg.norm(full[:, :dimensions], axis=1, keepdims=True)
    assert cut.shape == (len(TEXTS), dimensions)
    assert abs(cut - prefix).max() < TOLERANCE
    raw = v3_embedder.embed(TEXTS, task="text-matching", normalize=False)
    raw_cut = v3_embedder.embed(TEXTS, task="text-matching", dimensions=dimensions, normalize=False)
    assert abs(raw_cut - raw[:, :dimensions]).max() == 0
    query = v3_embedder.embed_query("wing flutter", dimensions=dimensions)
    assert query.shape == (dimensions,) and abs(np.linalg.norm(query) - 1) < 1e-6


def test_embedder_v3_facts(v3_embedder):
    assert v3_embedder.tasks == tuple(V3_TASKS)
    assert v3_embedder.dimensions_allowed == (4, 8, 16, 32, 40)
    assert v3_embedder.max_length == 8192
    assert v3_embedder.embed([], dimensions=8).shape == (0, 8)


def test_late_chunking_runs_on_v3(v3_embedder):
    chunks = ["the wing in a slipstream", "was made in order to", "determine the drag"]
    vectors = v3_embedder.embed_late_chunks(chunks)
    assert vectors.shape == (3, v3_embedder.dim)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-6)
    cut = v3_embedder.embed_late_chunks(chunks, task="retrieval.passage", dimensions=8)
    prefix = vectors[:, :8] / np.linalg.norm(vectors[:, :8], axis=1, keepdims=True)
    assert abs(cut - prefix).max() < TOLERANCE
    other = v3_embedder.embed_late_chunks(chunks, task="classification")
    assert abs(other - vectors).max() > 1e-3


@pytest.fixture(scope="module")
def v2_embedder(tmp_path_factory):
    from tiny_checkpoints import build_variant

    from jinarag import Embedder

    directory = build_variant("v2_geglu_8h", tmp_path_factory.mktemp("v2") / "v2")
    return Embedder.from_pretrained(str(directory), device="cpu", backend="torch")


@pytest.mark.parametrize(
    ("which", "call", "match"),
    [
        ("v3", lambda e: e.embed(TEXTS, task="retrieval"), r"not a task of .*retrieval\.query"),
        ("v3", lambda e: e.embed_query("q", task=1), "must be a task name"),
        ("v3", lambda e: e.embed(TEXTS, dimensions=3), "out of range.*from 4 to 40"),
        ("v3", lambda e: e.embed(TEXTS, dimensions=41), "out of range"),
        ("v3", lambda e: e.embed(TEXTS, dimensions=0), "dimensions"),
        ("v3", lambda e: e.embed_late_chunks(["a", "b"], task="x"), "not a task"),
        ("v2", lambda e: e.embed(TEXTS, task="retrieval.query"), "has none"),
        ("v2", lambda e: e.embed_queries(TEXTS, dimensions=8), "not trained to be cut"),
        ("v2", lambda e: e.embed_late_chunks(["a", "b"], dimensions=8), "Matryoshka"),
    ],
)
def test_bad_task_and_dimensions_are_named_input_errors(
    v3_embedder, v2_embedder, which, call, match
):
    from jinarag.errors import InputError

    embedder = v3_embedder if which == "v3" else v2_embedder
    assert embedder.tasks == (() if which == "v2" else tuple(V3_TASKS))
    with pytest.raises(InputError, match=match):
        call(embedder)


def test_xlm_roberta_refuses_int8(v3_dir):
    from jinarag import Embedder
    from jinarag.errors import InputError

    with pytest.raises(InputError, match="not available .*XLM-RoBERTa"):
        Embedder.from_pretrained(str(v3_dir), device="cpu", backend="torch", quantize="int8")


def test_v3_save_and_load_round_trip(v3_embedder, tmp_path):
    from jinarag import Embedder

    saved = v3_embedder.save_pretrained(tmp_path / "saved")
    again = Embedder.from_pretrained(str(saved), device="cpu", backend="torch")
    assert abs(again.embed(TEXTS) - v3_embedder.embed(TEXTS)).max() == 0


def test_reranker_v2_scores_match_transformers(reranker_dir):
    from jinarag import Reranker

    reranker = Reranker.from_pretrained(str(reranker_dir), device="cpu", backend="torch")
    reference = hf_reranker(reranker_dir)
    query = "wing flutter"
    encoded = reranker.tokenizer.encode_pairs(query, TEXTS, max_length=reranker.max_length)
    expected = []
    with torch.no_grad():
        for tokens in encoded.input_ids:
            ids = torch.tensor([tokens])
            expected.append(reference(input_ids=ids, attention_mask=torch.ones_like(ids)).logits)
    expected = torch.cat(expected)[:, 0].numpy()
    logits = reranker.score(query, TEXTS, activation=None)
    assert abs(logits - expected).max() < TOLERANCE
    scores = reranker.score(query, TEXTS)
    assert abs(scores - 1 / (1 + np.exp(-expected))).max() < TOLERANCE
    ranked = reranker.rank(query, TEXTS)
    assert [r.index for r in ranked] == list(np.argsort(-scores, kind="stable"))
    pairs = reranker.score_pairs([(query, TEXTS[1]), ("drag", TEXTS[0])])
    assert abs(pairs[0] - scores[1]) < TOLERANCE
    assert reranker.max_length == 64

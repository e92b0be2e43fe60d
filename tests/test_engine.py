"""The inference engine: attention backends and packed rows agree with each text alone, the
scheduler's budgets, score_pairs across queries, tokenisation windows, bf16 and int8, the
out-of-memory back-off, the thread policy, and what a quantized model refuses to do."""

from __future__ import annotations

import json
import random
import re
import warnings

import numpy as np
import pytest
import torch
from tiny_checkpoints import VARIANTS

import jinarag
import jinarag.inference.threads
from jinarag.errors import DeviceMemoryError, InputError, TruncationWarning
from jinarag.inference import pipeline
from jinarag.inference.batching import PACKED_ROW_TOKENS, ROW_MULTIPLE, schedule
from jinarag.inference.threads import ThreadChooser
from jinarag.models.encoder import SelfAttention, positions_from_sequence_ids
from jinarag.models.quantization import Int8Linear

RERANKERS = [name for name, spec in VARIANTS.items() if spec.head == "reranker"]
ATOL = 1e-5

# Words every tiny tokenizer knows (the prose its vocabulary and BPE merges come from), so
# a text's token count follows its word count.
PROSE = (
    "experimental investigation of the aerodynamics of a wing in a slipstream an study "
    "propeller was made in order to determine spanwise distribution lift increase due different "
    "angles attack and free stream velocity ratios results were intended part evaluation basis "
    "for theoretical treatments this problem comparative span loading curves together with "
    "supporting evidence showed that substantial its effect is influence simple shear flow past "
    "flat plate incompressible fluid small viscosity high speed viscous two dimensional body it "
    "usually necessary consider curved shock wave emitting from nose or leading edge "
    "consequently there arises inviscid rotational region boundary layer equations are presented"
)
WORDS = PROSE.split()
# Word counts from empty to past the classic checkpoints' 64 positions, in no order.
TEXT_WORDS = [17, 0, 95, 3, 47, 1, 70, 8, 31, 60, 12, 5]
QUERIES = ["heat transfer", "boundary layer separation at high mach number", "wing"]
DOCUMENT_WORDS = [14, 1, 60, 5, 90, 33]


def _text(words: int, shift: int = 0) -> str:
    return " ".join(WORDS[(shift + i) % len(WORDS)] for i in range(words))


TEXTS = [_text(n, shift=3 * i) for i, n in enumerate(TEXT_WORDS)]
PAIRS = [
    (query, _text(n, shift=5 * d + q))
    for q, query in enumerate(QUERIES)
    for d, n in enumerate(DOCUMENT_WORDS)
]


def _load(path, variant: str, **options):
    # These tests look inside the torch engine (its passes, threads, memory, int8 layers);
    # the OpenVINO backend, what "auto" picks on CPU when installed, has tests/test_backends.py.
    options.setdefault("backend", "torch")
    cls = jinarag.Reranker if VARIANTS[variant].head == "reranker" else jinarag.Embedder
    return cls.from_pretrained(path, device="cpu", **options)


def _compute(model, inputs) -> np.ndarray:
    """Raw outputs: unnormalised embeddings, or relevance logits."""
    if isinstance(model, jinarag.Reranker):
        return model.score_pairs(inputs, activation=None)
    return model.embed(inputs, normalize=False)


def _record_passes(model) -> list[tuple[int, int]]:
    """Record (rows, sequences) of each forward pass the pipeline makes through ``model``."""
    passes: list[tuple[int, int]] = []

    def hook(module, args):
        sequence_ids = args[1]  # 0/1 mask when padded, 1, 2, … per row when packed
        rows = sequence_ids.shape[0]
        passes.append((rows, int(sequence_ids.max(dim=1).values.sum())))

    model.model.register_forward_pre_hook(hook)
    return passes


# --------------------------------------------------------------------------- backends agree


@pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_backend_and_packing_equals_each_input_alone(tiny_checkpoints, variant):
    path = tiny_checkpoints[variant]
    inputs = PAIRS if VARIANTS[variant].head == "reranker" else TEXTS
    classic = VARIANTS[variant].arch == "classic"
    models, results, passes = {}, {}, {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TruncationWarning)
        for attention in ("sdpa", "eager", "flex"):
            model = models[attention] = _load(
                path, variant, attention=attention, max_batch_tokens=256
            )
            assert model.packed == (attention == "flex")
            passes[attention] = _record_passes(model)
            results[attention] = _compute(model, inputs)
        alone = np.concatenate([_compute(models["sdpa"], [one]) for one in inputs])
    truncations = [w for w in caught if issubclass(w.category, TruncationWarning)]
    # The classic checkpoints (64 positions) cut the longest inputs; the others cut none.
    assert bool(truncations) == classic
    # Padded backends put one sequence in each row; flex packs several into one.
    for attention in ("sdpa", "eager"):
        assert all(rows == sequences for rows, sequences in passes[attention])
    assert any(sequences > rows for rows, sequences in passes["flex"]), passes["flex"]
    assert alone.shape[0] == len(inputs)
    for attention, result in results.items():
        np.testing.assert_allclose(result, alone, rtol=0, atol=ATOL, err_msg=attention)


def test_positions_restart_in_each_packed_sequence():
    ids = torch.tensor([[1, 1, 1, 2, 2, 0]])
    assert positions_from_sequence_ids(ids).tolist() == [[0, 1, 2, 0, 1, 0]]
    ids = torch.tensor([[1, 2, 2, 3, 3, 3], [1, 1, 1, 1, 0, 0]])
    positions = positions_from_sequence_ids(ids)
    assert positions[0].tolist() == [0, 0, 1, 0, 1, 2]
    assert positions[1, :4].tolist() == [0, 1, 2, 3]


@pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_a_hand_packed_batch_equals_each_sequence_alone(tiny_checkpoints, variant):
    encoder = _load(tiny_checkpoints[variant], variant).model
    gen = torch.Generator().manual_seed(0)
    # Row 0: sequences of 7 and 5 tokens, then 4 of padding; row 1: 3, 9 and 4, no padding.
    layout = [[7, 5], [3, 9, 4]]
    width = 16
    input_ids = torch.zeros(2, width, dtype=torch.long)
    token_types = torch.zeros(2, width, dtype=torch.long)
    sequence_ids = torch.zeros(2, width, dtype=torch.long)
    pieces = []
    for row, lengths in enumerate(layout):
        offset = 0
        for number, length in enumerate(lengths, start=1):
            ids = torch.randint(5, encoder.config.vocab_size, (length,), generator=gen)
            types = (torch.arange(length) >= length // 2).long()  # a pair's two segments
            span = slice(offset, offset + length)
            input_ids[row, span], token_types[row, span] = ids, types
            sequence_ids[row, span] = number
            pieces.append((row, span, ids, types))
            offset += length
    with torch.inference_mode():
        encoder.attn_implementation = "eager"
        alone = [
            encoder(ids[None], torch.ones(1, len(ids), dtype=torch.long), types[None])[0]
            for _, _, ids, types in pieces
        ]
        for implementation in ("sdpa", "eager", "flex"):
            encoder.attn_implementation = implementation
            packed = encoder(input_ids, sequence_ids, token_types)
            for (row, span, _, _), expected in zip(pieces, alone, strict=True):
                torch.testing.assert_close(
                    packed[row, span], expected, rtol=0, atol=ATOL, msg=implementation
                )


# --------------------------------------------------------------------------- scheduling


def _schedule_cases(count: int = 300):
    """Seeded random (lengths, max_tokens, max_sequences) cases, budgets on and off 128."""
    rng = random.Random(1234)
    for _ in range(count):
        lengths = [rng.choice([rng.randint(1, 40), rng.randint(1, 600)]) for _ in range(60)]
        max_tokens = rng.choice([64, 200, 256, 300, 1000, 2048, 4096, 16384])
        yield lengths, max_tokens, rng.choice([1, 3, 8, 32, 1000])


def _covers_each_index_once(batches, lengths) -> None:
    seen = sorted(index for batch in batches for index in batch.sequences)
    assert seen == list(range(len(lengths)))


def test_padded_batches_stay_within_both_budgets():
    for lengths, max_tokens, max_sequences in _schedule_cases():
        batches = schedule(
            lengths, max_tokens=max_tokens, max_sequences=max_sequences, packed=False
        )
        _covers_each_index_once(batches, lengths)
        for batch in batches:
            assert all(len(row) == 1 for row in batch.rows)
            assert len(batch.rows) <= max_sequences
            assert batch.row_length == max(lengths[i] for i in batch.sequences)
            if len(batch.rows) > 1:
                assert batch.tokens <= max_tokens, (batch, max_tokens)


def test_a_subset_of_indices_is_scheduled_alone():
    lengths = [5, 80, 3, 40, 7, 100]
    for packed in (False, True):
        batches = schedule(lengths, max_tokens=256, max_sequences=4, packed=packed, indices=[5, 2])
        assert sorted(i for b in batches for i in b.sequences) == [2, 5]
    assert schedule([], max_tokens=256, max_sequences=4, packed=True) == []


def test_packed_rows_never_overflow_and_row_counts_are_powers_of_two():
    for lengths, max_tokens, max_sequences in _schedule_cases():
        batches = schedule(lengths, max_tokens=max_tokens, max_sequences=max_sequences, packed=True)
        _covers_each_index_once(batches, lengths)
        fitting = [n for n in lengths if n <= max_tokens]
        for batch in batches:
            assert 0 < len(batch.sequences) <= max_sequences
            for row in batch.rows:
                assert sum(lengths[i] for i in row) <= batch.row_length
            if lengths[batch.sequences[0]] > max_tokens:
                # Longer than the budget: alone, in a row of its own length.
                assert batch.sequences == [batch.sequences[0]]
                assert batch.row_length == lengths[batch.sequences[0]]
                continue
            wanted = max(max(fitting), min(max_tokens, PACKED_ROW_TOKENS))
            # Rounded up to whole 128-token blocks, unless that would pass the budget.
            assert wanted <= batch.row_length < wanted + ROW_MULTIPLE
            assert batch.row_length % ROW_MULTIPLE == 0 or batch.row_length == wanted
            assert batch.row_length <= max_tokens
            rows = len(batch.rows)
            max_rows = max_tokens // batch.row_length
            assert rows <= max_rows
            assert rows & (rows - 1) == 0 or rows == max_rows, (rows, max_rows)


def test_packed_batches_stay_within_the_token_budget_unless_one_sequence_is_alone():
    # The budget bounds memory (and the out-of-memory back-off halves it): a pass holding
    # several sequences must fit in it, whatever the budget's remainder modulo 128.
    for lengths, max_tokens, max_sequences in _schedule_cases():
        batches = schedule(lengths, max_tokens=max_tokens, max_sequences=max_sequences, packed=True)
        for batch in batches:
            if batch.tokens > max_tokens:
                assert len(batch.sequences) == 1, (batch.tokens, max_tokens, len(batch.sequences))


# --------------------------------------------------------------------------- score_pairs


@pytest.mark.parametrize("variant", RERANKERS)
def test_score_pairs_across_queries_equals_score_per_query_in_input_order(
    tiny_checkpoints, variant
):
    reranker = _load(tiny_checkpoints[variant], variant)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncationWarning)
        mixed = reranker.score_pairs(PAIRS)
        per_query = np.concatenate(
            [reranker.score(query, [d for q, d in PAIRS if q == query]) for query in QUERIES]
        )
        order = np.random.default_rng(0).permutation(len(PAIRS))
        shuffled = reranker.score_pairs([PAIRS[i] for i in order])
    assert mixed.shape == (len(PAIRS),) and mixed.dtype == np.float32
    assert np.abs(mixed - per_query).max() < 1e-6
    assert np.abs(shuffled - mixed[order]).max() < 1e-6
    assert len(set(np.round(mixed, 6))) > len(PAIRS) // 2  # the scores do tell pairs apart
    empty = reranker.score_pairs([])
    assert empty.shape == (0,) and empty.dtype == np.float32


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ("a document", "pairs[1] is str"),
        (("q", "d", "extra"), "pairs[1] is tuple"),
        (("q", 7), "pairs[1]'s document is int"),
        ((None, "d"), "pairs[1]'s query is NoneType"),
        ({"query": "q", "document": "d"}, "pairs[1] is dict"),
    ],
)
def test_a_bad_pair_is_an_input_error_naming_its_index(tiny_checkpoints, bad, named):
    reranker = _load(tiny_checkpoints["reranker_bf16"], "reranker_bf16")
    with pytest.raises(InputError, match=re.escape(named)):
        reranker.score_pairs([("q", "d"), bad, ("q", "d")])


def test_pairs_must_be_an_ordered_collection(tiny_checkpoints):
    reranker = _load(tiny_checkpoints["reranker_bf16"], "reranker_bf16")
    with pytest.raises(InputError, match="pairs must be a list"):
        reranker.score_pairs({"q": "d"})


@pytest.mark.parametrize("index", [0, 4, 11])
def test_an_over_long_document_is_named_by_its_global_index(tiny_checkpoints, monkeypatch, index):
    # Windows of 3, then 5: indices 0-2, 3-7, 8-12; 4 and 11 lie past the first window.
    monkeypatch.setattr(pipeline, "FIRST_WINDOW", 3)
    monkeypatch.setattr(pipeline, "WINDOW", 5)
    reranker = _load(tiny_checkpoints["reranker_bf16"], "reranker_bf16", max_length=24)
    pairs = [("wing", _text(4, shift=i)) for i in range(13)]
    pairs[index] = ("wing", _text(60))
    with pytest.raises(InputError, match=rf"documents\[{index}\] with the query"):
        reranker.score_pairs(pairs, truncate=False)
    with pytest.warns(TruncationWarning, match=rf"1 of 13 pairs .*\(indices {index}\)"):
        assert reranker.score_pairs(pairs).shape == (13,)


# --------------------------------------------------------------------------- windows


def test_small_windows_give_the_same_embeddings_and_global_truncation_indices(
    tiny_checkpoints, monkeypatch
):
    embedder = _load(tiny_checkpoints["v2_geglu_8h"], "v2_geglu_8h", max_length=32)
    texts = [_text(5 + (7 * i) % 23, shift=i) for i in range(20)]
    long_ones = [1, 4, 9, 17]  # one in the first window, the others beyond it
    for i in long_ones:
        texts[i] = _text(50, shift=i)
    with pytest.warns(TruncationWarning) as default_warnings:
        expected = embedder.embed(texts)
    with pytest.warns(TruncationWarning):
        one_by_one = embedder.embed(texts, batch_size=1)
    monkeypatch.setattr(pipeline, "FIRST_WINDOW", 3)
    monkeypatch.setattr(pipeline, "WINDOW", 5)
    with pytest.warns(TruncationWarning) as small_warnings:
        windowed = embedder.embed(texts)
    with pytest.warns(TruncationWarning):
        windowed_one_by_one = embedder.embed(texts, batch_size=1)
    # The same passes give the same bits; other batch mates (other padding) differ by rounding
    # at most (a row in the wrong place would differ by ~0.1).
    np.testing.assert_array_equal(windowed_one_by_one, one_by_one)
    np.testing.assert_allclose(windowed, expected, rtol=0, atol=1e-6)
    gaps = np.abs(expected[:, None] - expected[None]).max(axis=-1) + np.eye(len(texts))
    assert gaps.min() > 1e-3  # every two texts' embeddings differ: a swap would show
    for caught in (default_warnings, small_warnings):
        (warning,) = [w.message for w in caught if isinstance(w.message, TruncationWarning)]
        assert (warning.count, warning.total, warning.max_length) == (4, 20, 32)
        assert "(indices 1, 4, 9, 17)" in str(warning)
    # With more than five cut, the first five are listed, in input order.
    many = [_text(50, shift=i) if i % 3 == 2 else t for i, t in enumerate(texts)]
    with pytest.warns(TruncationWarning, match=r"\(indices 1, 2, 4, 5, 8 …\)"):
        embedder.embed(many)


# --------------------------------------------------------------------------- bf16 and int8


@pytest.fixture(scope="module")
def cranfield_texts(cranfield_dir) -> list[str]:
    with open(cranfield_dir / "corpus.jsonl", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f.read().splitlines()[:64]]
    return [row["text"][:600] for row in rows]


def test_bfloat16_and_int8_embeddings_stay_close_to_float32(
    minilm_dir, minilm_embedder, cranfield_texts
):
    reference = minilm_embedder.embed(cranfield_texts)
    bf16 = jinarag.Embedder.from_pretrained(minilm_dir, max_length=256, dtype="bfloat16")
    int8 = jinarag.Embedder.from_pretrained(minilm_dir, max_length=256, quantize="int8")
    assert bf16.dtype == torch.bfloat16
    cosines = {}
    for name, model in (("bfloat16", bf16), ("int8", int8)):
        embeddings = model.embed(cranfield_texts)
        assert embeddings.dtype == np.float32 and embeddings.shape == reference.shape
        cosines[name] = float((embeddings * reference).sum(axis=1).min())
    assert cosines["bfloat16"] >= 0.999, cosines
    assert cosines["int8"] >= 0.98, cosines
    assert cosines["int8"] < 1 - 1e-6, cosines  # the int8 path did run: it rounds


def test_int8_replaces_every_linear_of_the_layers(minilm_dir):
    model = jinarag.Embedder.from_pretrained(minilm_dir, max_length=256, quantize="int8").model
    layers = model.encoder
    assert not [name for name, m in layers.named_modules() if isinstance(m, torch.nn.Linear)]
    attentions = [m for m in layers.modules() if isinstance(m, SelfAttention)]
    assert len(attentions) == model.config.num_hidden_layers == 6
    for attention in attentions:
        assert isinstance(attention.fused_qkv, Int8Linear)
        hidden = model.config.hidden_size
        assert (attention.fused_qkv.in_features, attention.fused_qkv.out_features) == (
            hidden,
            3 * hidden,
        )
        assert not hasattr(attention, "query")
    for layer in layers.layer:
        # The classic FFN's first half is one int8 linear with MiniLM's GELU inside it.
        assert isinstance(layer.intermediate, Int8Linear)
        assert layer.intermediate.activation == "gelu"
        assert isinstance(layer.output.dense, Int8Linear)
    # Embeddings and LayerNorms stay in float32.
    assert model.embeddings.word_embeddings.weight.dtype == torch.float32


def test_an_int8_reranker_ranks_like_float32(minilm_reranker, minilm_reranker_dir, cranfield_dir):
    with open(cranfield_dir / "queries.jsonl", encoding="utf-8") as f:
        queries = [json.loads(line)["text"] for line in f.read().splitlines()[:4]]
    with open(cranfield_dir / "corpus.jsonl", encoding="utf-8") as f:
        docs = [json.loads(line)["text"][:600] for line in f.read().splitlines()[:10]]
    pairs = [(query, doc) for query in queries for doc in docs]
    int8 = jinarag.Reranker.from_pretrained(minilm_reranker_dir, max_length=256, quantize="int8")
    reference = minilm_reranker.score_pairs(pairs, activation=None)
    quantized = int8.score_pairs(pairs, activation=None)
    # The conftest cross-encoder's head is random, so its logits span only ~0.03 (std ~0.008)
    # and int8 rounding (max ~0.005) reorders close pairs; measured Spearman 0.97, max
    # difference 0.0048. Bounds: Spearman >= 0.9 and max difference within a third of the spread.
    ranks = [np.argsort(np.argsort(values)) for values in (reference, quantized)]
    spearman = float(np.corrcoef(*ranks)[0, 1])
    spread = float(reference.max() - reference.min())
    difference = float(np.abs(quantized - reference).max())
    assert spearman >= 0.9, (spearman, difference, spread)
    assert difference <= spread / 3, (spearman, difference, spread)
    assert difference > 0, "the int8 path did not run"


def _int8_linears(model) -> int:
    return sum(isinstance(m, Int8Linear) for m in model.model.modules())


def test_quantize_reaches_the_model_through_every_adapter(tiny_checkpoints):
    from haystack import Document

    from jinarag.chroma import JinaEmbeddingFunction
    from jinarag.haystack import JinaDocumentEmbedder
    from jinarag.langchain import JinaEmbeddings
    from jinarag.llama_index import JinaEmbedding

    path = tiny_checkpoints["v2_geglu_8h"]
    reference = jinarag.Embedder.from_pretrained(path, device="cpu").embed(["wing flutter"])[0]
    # backend="torch": the int8 layers counted below are torch modules.
    torch_int8 = {"device": "cpu", "quantize": "int8", "backend": "torch"}
    langchain = JinaEmbeddings(str(path), **torch_int8)
    llama_index = JinaEmbedding(str(path), **torch_int8)
    haystack = JinaDocumentEmbedder(model=path, progress_bar=False, **torch_int8)
    haystack.warm_up()
    chroma = JinaEmbeddingFunction(str(path), **torch_int8)
    vectors = {
        "langchain": (langchain.embedder, langchain.embed_query("wing flutter")),
        "llama_index": (llama_index.embedder, llama_index.get_text_embedding("wing flutter")),
        "haystack": (
            haystack.embedder,
            haystack.run([Document(content="wing flutter")])["documents"][0].embedding,
        ),
        "chroma": (chroma.embedder, chroma(["wing flutter"])[0]),
    }
    layers = VARIANTS["v2_geglu_8h"].layers
    for adapter, (model, vector) in vectors.items():
        assert model.options.quantize == "int8", adapter
        assert _int8_linears(model) == 4 * layers, adapter  # fused QKV, dense, gated, wo
        vector = np.asarray(vector, dtype=np.float32)
        assert float(vector @ reference) > 0.98, adapter
    assert chroma.get_config()["quantize"] == "int8"
    assert chroma.get_config()["backend"] == "torch"


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"quantize": "int8", "dtype": "bfloat16"}, "dtype='bfloat16'"),
        ({"quantize": "int8", "dtype": "float16"}, "dtype='float16'"),
        ({"quantize": "int4"}, "quantize='int4'"),
        ({"attention": "fast"}, "attention='fast'"),
        ({"num_threads": 0}, "num_threads"),
        ({"num_threads": 1.5}, "num_threads"),
    ],
)
def test_bad_engine_options_are_input_errors(tiny_checkpoints, options, named):
    with pytest.raises(InputError, match=named):
        jinarag.LoadOptions(**options)
    with pytest.raises(InputError, match=named):
        jinarag.Embedder.from_pretrained(tiny_checkpoints["v2_geglu_8h"], **options)


def test_a_quantized_model_refuses_to_save(tiny_checkpoints, tmp_path):
    model = _load(tiny_checkpoints["v2_geglu_8h"], "v2_geglu_8h", quantize="int8")
    out = tmp_path / "saved"
    with pytest.raises(InputError, match="without quantize"):
        model.save_pretrained(out)
    assert not out.exists()


# --------------------------------------------------------------------------- OOM back-off


def _inject_oom(model, threshold: int, limit: int = 200) -> list[tuple[int, bool]]:
    """Make each pass of more than ``threshold`` input tokens fail as a device OOM would;
    returns the (tokens, failed) of each pass. Past ``limit`` passes the test fails rather
    than run on."""
    passes: list[tuple[int, bool]] = []
    forward = model.model.forward

    def failing(input_ids, *args, **kwargs):
        failed = input_ids.numel() > threshold
        passes.append((input_ids.numel(), failed))
        if len(passes) > limit:
            rows, sequences = args[0].shape[0], int(args[0].max(dim=1).values.sum())
            pytest.fail(
                f"the back-off did not end: {limit} passes failed, the last of {sequences} "
                f"inputs in {rows} row(s) of {input_ids.shape[1]} tokens"
            )
        if failed:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return forward(input_ids, *args, **kwargs)

    model.model.forward = failing
    return passes


@pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
@pytest.mark.parametrize("attention", ["sdpa", "flex"])
@pytest.mark.parametrize("variant", ["v2_geglu_8h", "reranker_bf16"])
def test_out_of_memory_halves_the_budget_and_gives_the_same_results(
    tiny_checkpoints, variant, attention
):
    path = tiny_checkpoints[variant]
    inputs = PAIRS if VARIANTS[variant].head == "reranker" else TEXTS
    expected = _compute(_load(path, variant, attention=attention), inputs)
    model = _load(path, variant, attention=attention)
    threshold = 256
    passes = _inject_oom(model, threshold)
    with pytest.warns(RuntimeWarning, match=r"max_batch_tokens=\d+") as caught:
        result = _compute(model, inputs)
    np.testing.assert_allclose(result, expected, rtol=0, atol=ATOL)
    first, first_failed = passes[0]
    assert first_failed and first > threshold
    assert all(tokens < first for tokens, _ in passes[1:])
    assert all(tokens <= threshold for tokens, failed in passes if not failed)
    halvings = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(halvings) == sum(failed for _, failed in passes)


@pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("attention", ["sdpa", "flex"])
@pytest.mark.parametrize("variant", ["v2_geglu_8h", "reranker_bf16"])
def test_out_of_memory_on_a_single_input_names_max_length(tiny_checkpoints, variant, attention):
    model = _load(tiny_checkpoints[variant], variant, attention=attention)
    # Short inputs, several of which fit in one 128-token packed row: halving the budget has
    # to end in a pass with one input, however the rows are rounded.
    if VARIANTS[variant].head == "reranker":
        inputs = [("wing", _text(n, shift=i)) for i, n in enumerate([10, 15, 20, 8, 12])]
    else:
        inputs = [_text(n, shift=i) for i, n in enumerate([20, 25, 30, 12, 18, 22])]
    passes = _inject_oom(model, threshold=0)
    with pytest.raises(DeviceMemoryError, match=r"max_length=\d+") as info:
        _compute(model, inputs)
    assert isinstance(info.value.__cause__, torch.OutOfMemoryError)
    assert all(failed for _, failed in passes)


# --------------------------------------------------------------------------- threads


def test_the_adaptive_thread_policy_follows_the_measurements():
    chooser = ThreadChooser(explore_every=4)
    # Untried counts first: torch's own, then one thread.
    assert chooser.pick(100, 8) == 8
    chooser.record(100, 8, 0.0045)
    assert chooser.pick(100, 8) == 1
    chooser.record(100, 1, 0.004)  # one thread a little faster here

    def run(passes: int, cost: dict[int, float]) -> list[int]:
        picks = []
        for _ in range(passes):
            picks.append(chooser.pick(100, 8))
            chooser.record(100, picks[-1], cost[picks[-1]])
        return picks

    picks = run(8, {8: 0.0045, 1: 0.004})
    assert picks.count(1) == 6 and picks.count(8) == 2  # close: the other re-tried every 4th
    picks = run(32, {8: 0.010, 1: 0.004})  # the machine gets busy: 8 threads far slower
    assert picks[-16:].count(8) == 1  # clearly slower: re-tried only every 16th
    # The machine gets quiet: eight threads turn faster, and the policy follows.
    picks = run(64, {8: 0.001, 1: 0.004})
    assert picks[-8:] == [8] * 8
    # Sizes are measured apart (powers of two of tokens); one thread only when torch has one.
    assert chooser.pick(5000, 8) == 8 and ThreadChooser.bucket(100) != ThreadChooser.bucket(5000)
    assert ThreadChooser().pick(100, 1) == 1


@pytest.fixture
def three_torch_threads():
    """torch at 3 threads (a count no policy picks by itself), restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    yield 3
    torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("num_threads", "big", "expected"),
    [
        (None, False, {3}),
        (None, True, {3}),
        ("auto", False, {1, 3}),
        ("auto", True, {1, 3}),
        (1, True, {1}),
        (2, False, {2}),
        (2, True, {2}),
    ],
)
def test_a_pass_runs_on_the_policys_threads(
    tiny_checkpoints, three_torch_threads, num_threads, big, expected, monkeypatch
):
    chooser = ThreadChooser()
    monkeypatch.setattr(jinarag.inference.threads, "CHOOSER", chooser)
    embedder = _load(tiny_checkpoints["v2_geglu_8h"], "v2_geglu_8h", num_threads=num_threads)
    seen: list[tuple[int, int]] = []

    def hook(module, args):
        seen.append((args[0].numel(), torch.get_num_threads()))

    embedder.model.register_forward_pre_hook(hook)
    for _ in range(3):
        if big:
            embedder.embed([_text(40, shift=i) for i in range(40)], batch_size=64)
        else:
            embedder.embed_query("wing")
    assert seen and {threads for _, threads in seen} == expected, seen
    if num_threads == "auto":
        # Both counts were measured for this size of pass, and nothing else was recorded.
        bucket = ThreadChooser.bucket(seen[0][0])
        assert {(bucket, 1), (bucket, 3)} <= set(chooser.cost)
    else:
        assert chooser.cost == {}  # a fixed count is not measured
    # The count stays as the last pass set it (switching back on every pass costs more than a
    # small pass); a count the caller sets afterwards becomes the policy's baseline.
    assert torch.get_num_threads() == seen[-1][1]
    # None follows the caller's count: another model pinned to 1 thread does not leak into it.
    other = _load(tiny_checkpoints["v2_geglu_8h"], "v2_geglu_8h", num_threads=1)
    other.embed_query("wing")
    assert torch.get_num_threads() == 1
    embedder.embed_query("wing")
    if num_threads is None:
        assert seen[-1][1] == three_torch_threads


@pytest.mark.parametrize("variant", ["v2_geglu_8h", "code"])
def test_a_long_rows_feed_forward_in_slices_equals_it_whole(tiny_checkpoints, monkeypatch, variant):
    import jinarag.models.encoder as encoder

    model = jinarag.Embedder.from_pretrained(tiny_checkpoints[variant], device="cpu").model
    ids = torch.randint(5, 100, (1, 300), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    with torch.inference_mode():
        whole = model(ids, mask)
        monkeypatch.setattr(encoder, "FFN_CHUNK_TOKENS", 64)  # 300 tokens: five slices
        calls = []
        hook = model.encoder.layer[0].mlp.register_forward_hook(lambda *a: calls.append(1))
        sliced = model(ids, mask)
        hook.remove()
    assert len(calls) == 5  # the first layer's feed-forward ran once per slice
    torch.testing.assert_close(sliced, whole, rtol=0, atol=1e-5)

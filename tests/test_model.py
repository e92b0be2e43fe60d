"""The encoder itself: ALiBi slopes, every architecture against the naive reference, eager vs
SDPA, padding invariance, and no O(max_position²) buffers."""

from __future__ import annotations

import pytest
import torch
from reference_jinabert import ReferenceModel, reference_slopes
from tiny_checkpoints import VARIANTS

import jinarag
from jinarag.models.encoder import alibi_slopes

EMBEDDER_VARIANTS = [name for name, spec in VARIANTS.items() if spec.head == "embedder"]
RERANKER_VARIANTS = [name for name, spec in VARIANTS.items() if spec.head == "reranker"]
ATOL = 1e-5


# --------------------------------------------------------------------------- ALiBi slopes

# The closed form of DESIGN §4, written out: powers of two directly, 12 heads interleaved.
CLOSED_FORM = {
    4: [2.0**-2, 2.0**-4, 2.0**-6, 2.0**-8],
    8: [2.0**-i for i in range(1, 9)],
    12: [2.0**-i for i in range(1, 9)] + [2.0**-0.5, 2.0**-1.5, 2.0**-2.5, 2.0**-3.5],
    16: [2.0 ** -(i / 2) for i in range(1, 17)],
}


@pytest.mark.parametrize("heads", sorted(CLOSED_FORM))
def test_alibi_slopes_equal_the_closed_form(heads):
    slopes = alibi_slopes(heads)
    assert slopes.dtype == torch.float32
    assert slopes.shape == (heads,)
    torch.testing.assert_close(slopes, torch.tensor(CLOSED_FORM[heads]), rtol=0, atol=1e-7)


@pytest.mark.parametrize("heads", [1, 2, 3, 5, 6, 7, 10, 20, 24, 32])
def test_alibi_slopes_match_the_reference_for_other_head_counts(heads):
    expected = torch.tensor(reference_slopes(heads), dtype=torch.float32)
    torch.testing.assert_close(alibi_slopes(heads), expected, rtol=0, atol=1e-7)


# --------------------------------------------------------------------------- helpers


def _random_batch(vocab: int, lengths: list[int], seed: int = 0, pairs: bool = False):
    """Right-padded random ids (avoiding the special ids 0-4), mask and token types."""
    gen = torch.Generator().manual_seed(seed)
    longest = max(lengths)
    ids = torch.zeros(len(lengths), longest, dtype=torch.long)
    mask = torch.zeros(len(lengths), longest, dtype=torch.long)
    types = torch.zeros(len(lengths), longest, dtype=torch.long)
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.randint(5, vocab, (n,), generator=gen)
        mask[row, :n] = 1
        if pairs:
            types[row, n // 2 : n] = 1
    return ids, mask, types


def _set_attn(model: torch.nn.Module, implementation: str) -> None:
    for module in model.modules():
        if hasattr(module, "attn_implementation"):
            module.attn_implementation = implementation


@pytest.fixture(scope="module")
def loaded(tiny_checkpoints):
    """{variant: (our model module, reference)} for every tiny checkpoint."""
    out = {}
    for name, path in tiny_checkpoints.items():
        cls = jinarag.Reranker if VARIANTS[name].head == "reranker" else jinarag.Embedder
        out[name] = (cls.from_pretrained(path, device="cpu").model, ReferenceModel(path))
    return out


def _lengths(name: str) -> list[int]:
    # Classic BERT has 64 positions; the others see lengths on both sides of 64.
    return [7, 33, 1, 20] if VARIANTS[name].arch == "classic" else [7, 70, 1, 33]


# --------------------------------------------------------------------------- against the reference


@pytest.mark.parametrize("name", list(VARIANTS))
@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_encoder_matches_the_naive_reference(loaded, name, implementation):
    model, ref = loaded[name]
    ids, mask, types = _random_batch(ref.config["vocab_size"], _lengths(name), pairs=True)
    _set_attn(model, implementation)
    try:
        with torch.inference_mode():
            ours = model(ids, mask, types)
    finally:
        _set_attn(model, "sdpa")
    expected = ref.forward_tensors(ids, mask, types)
    real = mask.bool()
    assert ours.shape == expected.shape
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours[real].double(), expected[real], rtol=0, atol=ATOL)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_eager_equals_sdpa(loaded, name):
    model, ref = loaded[name]
    ids, mask, types = _random_batch(ref.config["vocab_size"], _lengths(name), seed=1)
    with torch.inference_mode():
        _set_attn(model, "eager")
        try:
            eager = model(ids, mask, types)
        finally:
            _set_attn(model, "sdpa")
        sdpa = model(ids, mask, types)
    real = mask.bool()
    torch.testing.assert_close(eager[real], sdpa[real], rtol=0, atol=ATOL)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_padding_does_not_change_the_real_tokens(loaded, name):
    model, ref = loaded[name]
    lengths = _lengths(name)
    ids, mask, types = _random_batch(ref.config["vocab_size"], lengths, seed=2)
    with torch.inference_mode():
        batched = model(ids, mask, types)
        for row, n in enumerate(lengths):
            alone = model(ids[row : row + 1, :n], mask[row : row + 1, :n], types[row : row + 1, :n])
            torch.testing.assert_close(batched[row, :n], alone[0], rtol=0, atol=ATOL)


def test_extra_padding_does_not_change_the_output(loaded):
    model, ref = loaded["v2_geglu_12h"]
    ids, mask, types = _random_batch(ref.config["vocab_size"], [9, 5])
    wide = torch.zeros(2, 40, dtype=torch.long)
    wide_mask = torch.zeros_like(wide)
    wide[:, :9], wide_mask[:, :9] = ids, mask
    with torch.inference_mode():
        narrow_out = model(ids, mask, types)
        wide_out = model(wide, wide_mask, torch.zeros_like(wide))
    real = mask.bool()
    torch.testing.assert_close(wide_out[:, :9][real], narrow_out[real], rtol=0, atol=ATOL)


def test_alibi_makes_the_output_depend_on_token_order(loaded):
    # With ALiBi and no position embeddings, order matters only through the bias: a model that
    # dropped the bias would give a permuted sequence the same mean.
    model, ref = loaded["v2_geglu_8h"]
    ids, mask, _ = _random_batch(ref.config["vocab_size"], [12])
    with torch.inference_mode():
        forward = model(ids, mask).mean(1)
        # Not a reversal: |i - j| is symmetric under it, so reversed inputs give the same mean.
        shuffled = model(ids[:, torch.tensor([3, 0, 7, 1, 11, 5, 2, 9, 4, 10, 6, 8])], mask)
    assert (forward - shuffled.mean(1)).abs().max() > 1e-3


@pytest.mark.parametrize("name", ["v2_geglu_8h", "v2_geglu_12h", "code"])
def test_no_buffer_grows_with_max_position_embeddings(loaded, name):
    # The reference keeps a [1, H, 8192, 8192] bias; ours is built per batch.
    model, ref = loaded[name]
    assert ref.config["max_position_embeddings"] == 8192
    ids, mask, types = _random_batch(ref.config["vocab_size"], [50, 3])
    with torch.inference_mode():
        model(ids, mask, types)
    tensors = list(model.buffers()) + list(model.parameters())
    tensors += [v for m in model.modules() for v in vars(m).values() if torch.is_tensor(v)]
    largest = max(t.numel() for t in tensors)
    assert largest < 8192 * 64, largest


@pytest.mark.parametrize("name", RERANKER_VARIANTS)
def test_stored_half_precision_computes_in_float32_on_cpu(loaded, name):
    model, _ = loaded[name]
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_the_config_accepts_exactly_the_activations_the_encoder_implements():
    from jinarag.models import encoder
    from jinarag.models.config import ACTIVATION_NAMES

    assert set(ACTIVATION_NAMES) == set(encoder._ACTIVATIONS)

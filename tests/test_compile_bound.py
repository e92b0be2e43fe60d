"""Compiled flex attention meets a bounded, known set of shapes: three models of different
head counts and head dims, four batch sizes and texts of many lengths (one past the token
budget, so it runs alone) compile no more graphs than the buckets allow, never reach torch's
recompile limit, and give SDPA's embeddings; a limit forced low is one PerformanceWarning.

torch.compile runs on CPU here through the encoder's backend setting, with dynamo's
CompileCounter as the backend: graphs are traced and counted, then run as traced (no C++
compile)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch._dynamo.testing import CompileCounter

import jinarag
from jinarag.errors import PerformanceWarning, TruncationWarning
from jinarag.inference import batching
from jinarag.models import encoder

# v2_geglu_8h: 8 heads of 4, ALiBi; v2_reglu: 4 heads of 9, ALiBi; classic: 4 heads of 8,
# absolute positions (no score_mod), 64 positions.
MODELS = ["v2_geglu_8h", "v2_reglu", "classic"]
BATCH_SIZES = [1, 2, 5, 32]
BUDGET = 256  # max_batch_tokens: rows of 128 tokens (patched below) give passes of 1-2 rows
ROW_TOKENS = 128
ATOL = 1e-5  # float32 embeddings: padded/packed/compiled vs SDPA differ by rounding only
PROSE = (
    "experimental investigation of the aerodynamics of a wing in a slipstream an study "
    "propeller was made in order to determine spanwise distribution lift increase due "
    "different angles attack and free stream velocity ratios results were intended part"
)
WORDS = PROSE.split()


def _text(words: int, shift: int) -> str:
    return " ".join(WORDS[(shift + i) % len(WORDS)] for i in range(words))


# Short texts pack several to a 128-token row; the mixed ones need 256-token rows, and 270
# words (past the 256-token budget) run alone. (Small: uncompiled-style CPU attention
# costs rows × length² per head.)
SHORT = [_text(n, i) for i, n in enumerate([0, 3, 5, 9, 14, 23, 37, 60, 2, 11])]
MIXED = [_text(n, i) for i, n in enumerate([130, 270, 40, 8, 97, 1])]


def _known_shapes(longest: int) -> set[tuple[int, int]]:
    """The (rows, length) buckets passes can meet: lengths powers of two from 128 to the
    bucket of the longest input, rows powers of two within the budget, or one row alone."""
    lengths = [128 << i for i in range(8) if i == 0 or (128 << i) // 2 < longest]
    rows = [1 << i for i in range(8)]
    return {(r, n) for n in lengths for r in rows if r * n <= BUDGET or r == 1}


@pytest.fixture
def compiled(monkeypatch):
    """Flex compiled on CPU through the encoder's backend setting, with fresh regions."""
    counter = CompileCounter()
    monkeypatch.setattr(encoder, "FLEX_COMPILE_BACKEND", counter)
    monkeypatch.setattr(encoder, "_FLEX_REGIONS", {})
    monkeypatch.setattr(encoder._LIMIT_WATCH, "hits", [])
    monkeypatch.setattr(encoder._LIMIT_WATCH, "warned", False)
    return counter


@pytest.mark.slow  # about 15 s on 2 cores: CPU flex attention costs rows × length² per head
def test_passes_compile_a_bounded_set_of_shapes_and_equal_sdpa(
    tiny_checkpoints, compiled, monkeypatch
):
    monkeypatch.setattr(batching, "PACKED_ROW_TOKENS", ROW_TOKENS)
    bound = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", TruncationWarning)  # classic cuts at 64 tokens
        for variant in MODELS:
            path = tiny_checkpoints[variant]
            load = {"device": "cpu", "max_batch_tokens": BUDGET}
            flex = jinarag.Embedder.from_pretrained(path, attention="flex", **load)
            sdpa = jinarag.Embedder.from_pretrained(path, attention="sdpa", **load)
            longest = max(len(ids) for ids in flex.tokenize(SHORT + MIXED).input_ids)
            bound += len(_known_shapes(longest))
            for texts in (SHORT, MIXED):
                expected = sdpa.embed(texts, normalize=False)
                for batch_size in BATCH_SIZES:
                    result = flex.embed(texts, normalize=False, batch_size=batch_size)
                    np.testing.assert_allclose(
                        result, expected, rtol=0, atol=ATOL, err_msg=f"{variant} {batch_size}"
                    )
    # The bound: 4 shapes for each ALiBi model ((1|2, 128), (1, 256), and (1, 512) for the
    # 270-word text alone), 2 for classic (its 64 positions fit 128-token rows).
    assert bound == 4 + 4 + 2
    assert 0 < compiled.frame_count <= bound, (compiled.frame_count, list(encoder._FLEX_REGIONS))
    lengths = {key[5] for key in encoder._FLEX_REGIONS}
    assert lengths <= {128, 256, 512}, lengths
    assert 512 in lengths  # the alone row ran compiled, in its bucket
    # One region per model and row length, so head counts and dims never share a count.
    assert len({key[2:4] for key in encoder._FLEX_REGIONS}) == len(MODELS)
    # Nothing fell back: torch never reported its limit, and nothing ran uncompiled.
    assert encoder._LIMIT_WATCH.hits == [] and not encoder._LIMIT_WATCH.warned
    assert not [w for w in caught if issubclass(w.category, PerformanceWarning)]
    assert not [w for w in caught if "without torch.compile" in str(w.message)]


def test_flex_shapes_are_powers_of_two_from_one_block():
    assert encoder.flex_shape(1, 1) == (1, 128)
    assert encoder.flex_shape(3, 128) == (4, 128)
    assert encoder.flex_shape(5, 129) == (8, 256)
    assert encoder.flex_shape(32, 2048) == (32, 2048)
    assert encoder.flex_shape(1, 8191) == (1, 8192)


@pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
def test_the_recompile_limit_is_one_named_warning(tiny_checkpoints, compiled, monkeypatch):
    monkeypatch.setattr(encoder, "FLEX_RECOMPILE_LIMIT", 1)
    # Older torch has no per-call limit: the global one is what counts there.
    monkeypatch.setattr(torch._dynamo.config, "cache_size_limit", 1)
    gen = torch.Generator().manual_seed(0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for variant in ("v2_geglu_8h", "v2_reglu"):  # two regions reach the limit
            model = jinarag.Embedder.from_pretrained(tiny_checkpoints[variant], device="cpu")
            encoder_model = model.model
            for rows in (1, 2, 4, 2):
                ids = torch.randint(5, encoder_model.config.vocab_size, (rows, 20), generator=gen)
                mask = torch.ones_like(ids)
                with torch.inference_mode():
                    encoder_model.attn_implementation = "sdpa"
                    expected = encoder_model(ids, mask)
                    encoder_model.attn_implementation = "flex"
                    result = encoder_model(ids, mask)
                # Past the limit flex runs uncompiled: slower, but the same results.
                torch.testing.assert_close(result, expected, rtol=0, atol=ATOL)
    assert compiled.frame_count == 2  # one graph per region, then the limit
    (warning,) = [w for w in caught if issubclass(w.category, PerformanceWarning)]
    message = str(warning.message)
    assert "recompile limit" in message and "jinarag_flex_" in message
    assert "attention='sdpa'" in message and "FLEX_RECOMPILE_LIMIT" in message

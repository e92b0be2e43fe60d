"""``embed(..., truncate=False, overflow="pool")``: a text over max_length read whole, in
windows of max_length tokens pooled by token count, on a JinaBERT v2 and a v3 checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_xlmr_checkpoints import build_v3

import jinarag
from jinarag.errors import InputError, TruncationWarning
from jinarag.models.tokenization import Encoded

MAX = 64
SHORT = ["lift of a wing", "drag"]
LONG = " ".join(f"the boundary layer {i} separates behind the wing" for i in range(12))


@pytest.fixture(scope="module", params=["v2", "v3"])
def embedder(request, tiny_checkpoints, tmp_path_factory) -> jinarag.Embedder:
    if request.param == "v2":
        path = tiny_checkpoints["v2_geglu_8h"]
    else:
        path = build_v3(tmp_path_factory.mktemp("overflow") / "v3")
    return jinarag.Embedder.from_pretrained(path, device="cpu", backend="torch", max_length=MAX)


def _windows(embedder: jinarag.Embedder, text: str) -> list[list[int]]:
    """The text's windows, made here from the tokenizer's own full encoding: its ids between
    the special tokens, cut every MAX - specials tokens, each wrapped in the specials."""
    full = embedder.tokenizer.tokenizer.encode(text, add_special_tokens=True)
    specials = [i for i, special in enumerate(full.special_tokens_mask) if special]
    head, body, tail = full.ids[: specials[0] + 1], full.ids[specials[0] + 1 : -1], full.ids[-1:]
    step = MAX - len(head) - len(tail)
    return [head + body[s : s + step] + tail for s in range(0, len(body), step)]


def test_texts_that_fit_get_the_ordinary_vectors(embedder):
    pooled = embedder.embed(SHORT, truncate=False, overflow="pool")
    np.testing.assert_allclose(pooled, embedder.embed(SHORT), atol=1e-6)


def test_a_long_text_is_the_token_weighted_mean_of_its_windows(embedder):
    task = "retrieval.passage" if embedder.tasks else None
    text = LONG if task is None else embedder.config.task_instructions[task] + LONG
    windows = _windows(embedder, text)
    assert len(windows) > 2
    encoded = Encoded(windows, [[0] * len(w) for w in windows], truncated=[])
    means = embedder.embed_tokens(encoded, normalize=False, task=task)
    weights = np.array([len(w) for w in windows], dtype=np.float64)[:, None]
    expected = (means * weights).sum(0) / weights.sum()
    got = embedder.embed([LONG, "drag"], truncate=False, overflow="pool", normalize=False)
    np.testing.assert_allclose(got[0], expected, atol=1e-5)
    np.testing.assert_allclose(got[1], embedder.embed(["drag"], normalize=False)[0], atol=1e-6)
    unit = embedder.embed_documents([LONG], truncate=False, overflow="pool")[0]
    np.testing.assert_allclose(unit, expected / np.linalg.norm(expected), atol=1e-5)


def test_the_query_side_pools_too(embedder):
    vector = embedder.embed_query(LONG, truncate=False, overflow="pool")
    assert vector.shape == (embedder.dim,) and abs(np.linalg.norm(vector) - 1) < 1e-5
    with pytest.warns(TruncationWarning):
        cut = embedder.embed_query(LONG)
    assert not np.allclose(vector, cut)  # the cut text differs


def test_without_pool_a_long_text_is_still_refused_or_cut(embedder):
    with pytest.raises(InputError, match=f"more than max_length={MAX}"):
        embedder.embed([LONG], truncate=False)
    with pytest.raises(InputError, match="overflow='pool' applies .* truncate=False"):
        embedder.embed([LONG], overflow="pool")
    with pytest.raises(InputError, match="unknown overflow 'average'; choose one of error, pool"):
        embedder.embed([LONG], truncate=False, overflow="average")


def test_matryoshka_cut_of_a_pooled_text(embedder):
    if not embedder.dimensions_allowed:
        with pytest.raises(InputError, match="dimensions=8 needs a Matryoshka model"):
            embedder.embed([LONG], truncate=False, overflow="pool", dimensions=8)
        return
    full = embedder.embed([LONG], truncate=False, overflow="pool", normalize=False)[0]
    cut = embedder.embed([LONG], truncate=False, overflow="pool", dimensions=8)[0]
    np.testing.assert_allclose(cut, full[:8] / np.linalg.norm(full[:8]), atol=1e-6)

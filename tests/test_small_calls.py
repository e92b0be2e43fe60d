"""Small calls take the short path: a query, or a few texts, is tokenised on the caller's thread
and run in one pass; no tokeniser thread is started for it. A call of several windows still
tokenises the next window on a thread while the model runs (that overlap pays off only there).
"""

from __future__ import annotations

import numpy as np
import pytest

import jinarag
from jinarag.inference import pipeline


@pytest.fixture
def pools(monkeypatch) -> list[str]:
    """The thread-name prefixes of the pools the pipeline starts, recorded as they start."""
    started: list[str] = []
    real = pipeline.ThreadPoolExecutor

    class Recorded(real):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs):
            started.append(kwargs.get("thread_name_prefix", ""))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(pipeline, "ThreadPoolExecutor", Recorded)
    return started


@pytest.fixture(scope="module")
def embedder(tiny_checkpoints):
    return jinarag.Embedder.from_pretrained(
        tiny_checkpoints["v2_geglu_8h"], device="cpu", backend="torch"
    )


def test_one_query_starts_no_thread_and_runs_one_pass(embedder, pools, monkeypatch):
    passes = []
    real_forward = pipeline._forward

    def counted(*args, **kwargs):
        passes.append(1)
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(pipeline, "_forward", counted)
    vector = embedder.embed_query("how does a slipstream change lift?")
    few = embedder.embed(["wing", "flutter at high speed", "boundary layer"])
    assert pools == [] and len(passes) == 2
    assert vector.shape == (embedder.dim,) and few.shape == (3, embedder.dim)


def test_a_call_of_several_windows_tokenises_ahead_with_the_same_results(
    embedder, pools, monkeypatch
):
    texts = [f"wing {i} flutter {i % 7}" for i in range(9)]
    alone = embedder.embed(texts)
    assert pools == []
    monkeypatch.setattr(pipeline, "FIRST_WINDOW", 2)
    monkeypatch.setattr(pipeline, "WINDOW", 3)
    windowed = embedder.embed(texts)  # windows of 2, 3, 3, 1: three handed to a thread
    assert pools == ["jinarag-tokenize"]
    np.testing.assert_allclose(windowed, alone, rtol=0, atol=1e-5)

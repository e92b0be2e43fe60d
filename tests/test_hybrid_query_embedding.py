"""search(query_embedding=...): a vector computed upstream (e.g. by a pipeline's text
embedder) replaces the index's own query embedding; BM25 still reads the text."""

from __future__ import annotations

import numpy as np
import pytest

from jinarag import HybridIndex, InputError

TEXTS = [
    "shock waves ahead of a blunt body in supersonic flow",
    "heat conduction through a composite slab",
    "flutter of a swept wing at transonic speed",
    "boundary layer transition on a flat plate",
    "propeller slipstream effects on wing lift",
]


@pytest.fixture(scope="module")
def index(minilm_embedder):
    index = HybridIndex(embedder=minilm_embedder)  # in memory
    index.add(TEXTS)
    return index


def test_the_same_vector_gives_the_same_hits(index, minilm_embedder):
    query = "supersonic shock waves"
    vector = minilm_embedder.embed_query(query)
    plain = index.search(query, k=5)
    given = index.search(query, k=5, query_embedding=vector.tolist())
    assert [(h.id, h.score) for h in given] == [(h.id, pytest.approx(h.score)) for h in plain]


def test_the_vector_drives_the_dense_side_and_the_text_the_bm25_side(index, minilm_embedder):
    other = "heat flow in layered slabs"
    vector = minilm_embedder.embed_query(other)
    dense = index.search("supersonic shock waves", k=3, mode="dense", query_embedding=vector)
    assert [h.id for h in dense] == [h.id for h in index.search(other, k=3, mode="dense")]
    bm25 = index.search("supersonic shock waves", k=3, mode="bm25", query_embedding=vector)
    assert [h.id for h in bm25] == [
        h.id for h in index.search("supersonic shock waves", k=3, mode="bm25")
    ]


@pytest.mark.parametrize("bad", [[0.1, 0.2], np.full(384, np.nan), np.zeros((1, 384))])
def test_a_vector_of_the_wrong_shape_is_refused_with_the_dimension(index, bad):
    with pytest.raises(InputError, match="384 finite floats"):
        index.search("anything", query_embedding=bad)

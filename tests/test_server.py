"""The HTTP server speaks Jina's API shapes and returns what the core computes."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from jinarag.serving.app import create_app


@pytest.fixture(scope="module")
def client(minilm_embedder, minilm_reranker):
    return TestClient(create_app(minilm_embedder, minilm_reranker))


def test_embeddings_match_the_embedder(client, minilm_embedder):
    texts = ["shock waves on a cone", "heat transfer in a slab"]
    response = client.post("/v1/embeddings", json={"model": "any", "input": texts})
    assert response.status_code == 200
    body = response.json()
    assert [item["index"] for item in body["data"]] == [0, 1]
    served = np.array([item["embedding"] for item in body["data"]], dtype=np.float32)
    np.testing.assert_allclose(served, minilm_embedder.embed(texts), atol=1e-6)
    assert body["usage"]["total_tokens"] == sum(
        minilm_embedder.tokenizer.count_tokens(t) for t in texts
    )


def test_a_single_string_input_is_one_embedding(client, minilm_embedder):
    body = client.post("/v1/embeddings", json={"input": "boundary layer"}).json()
    assert len(body["data"]) == 1
    np.testing.assert_allclose(
        body["data"][0]["embedding"], minilm_embedder.embed_query("boundary layer"), atol=1e-6
    )


def test_rerank_matches_rank(client, minilm_reranker):
    query = "flutter of wings"
    documents = ["heat conduction in slabs", "wing flutter at transonic speed", "cone drag"]
    response = client.post("/v1/rerank", json={"query": query, "documents": documents, "top_n": 2})
    assert response.status_code == 200
    results = response.json()["results"]
    expected = minilm_reranker.rank(query, documents, top_n=2)
    assert [r["index"] for r in results] == [e.index for e in expected]
    assert [r["relevance_score"] for r in results] == pytest.approx([e.score for e in expected])
    assert results[0]["document"]["text"] == documents[expected[0].index]


def test_bad_input_is_a_400_naming_the_problem(client):
    response = client.post("/v1/embeddings", json={"input": "x", "embedding_type": "binary"})
    assert response.status_code == 400
    assert "binary" in response.json()["detail"]


def test_a_route_without_its_model_is_a_404_that_says_how_to_load_it(minilm_embedder):
    client = TestClient(create_app(minilm_embedder, None))
    response = client.post("/v1/rerank", json={"query": "q", "documents": ["d"]})
    assert response.status_code == 404
    assert "--reranker" in response.json()["detail"]

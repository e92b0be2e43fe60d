"""jinarag.llama_index.JinaHybridRetriever over a real HybridIndex, in a RetrieverQueryEngine."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

pytest.importorskip("llama_index.core")

from llama_index.core.llms import MockLLM  # noqa: E402
from llama_index.core.query_engine import RetrieverQueryEngine  # noqa: E402
from llama_index.core.schema import MetadataMode  # noqa: E402

from jinarag.errors import InputError  # noqa: E402
from jinarag.llama_index import JinaHybridRetriever, JinaRerank  # noqa: E402

QUERY = "heat transfer in slip flow over a flat plate"


@pytest.fixture(scope="module")
def hybrid_index(cranfield_dir, minilm_embedder, tmp_path_factory):
    import jinarag

    with open(cranfield_dir / "corpus.jsonl") as f:
        rows = [json.loads(line) for line in f.read().splitlines()[:60]]
    index = jinarag.HybridIndex(
        path=tmp_path_factory.mktemp("hybrid"), collection="llama", embedder=minilm_embedder
    )
    index.add(
        [row["text"][:300] for row in rows],
        ids=[row["_id"] for row in rows],
        metadatas=[
            {"title": row["title"], "half": "first" if int(row["_id"]) <= 30 else "second"}
            for row in rows
        ],
    )
    yield index
    index.close()


def test_nodes_carry_the_hits(hybrid_index):
    retriever = JinaHybridRetriever(hybrid_index, similarity_top_k=5, fusion="relative")
    nodes = retriever.retrieve(QUERY)
    hits = hybrid_index.search(QUERY, k=5, fusion="relative")
    assert [n.node.node_id for n in nodes] == [h.id for h in hits]
    assert [n.score for n in nodes] == [h.score for h in hits]
    assert {"21", "22"} & {n.node.node_id for n in nodes}  # the two slip-flow heat papers
    for node, hit in zip(nodes, hits, strict=True):
        assert node.node.get_content() == hit.text
        assert node.node.metadata == hit.scored_metadata()
        assert node.node.metadata["score_space"] == "relative"
        # Stored metadata reaches the LLM; the scores do not.
        llm_text = node.node.get_content(metadata_mode=MetadataMode.LLM)
        assert hit.metadata["title"] in llm_text
        assert "score" not in llm_text


def test_options_reach_the_index(hybrid_index):
    bm25 = JinaHybridRetriever(hybrid_index, k=4, mode="bm25").retrieve(QUERY)
    assert len(bm25) == 4
    assert {n.node.metadata["score_space"] for n in bm25} == {"bm25"}
    assert [n.node.node_id for n in bm25] == [
        h.id for h in hybrid_index.search(QUERY, k=4, mode="bm25")
    ]

    second = JinaHybridRetriever(hybrid_index, where={"half": "second"}).retrieve(QUERY)
    assert second and {n.node.metadata["half"] for n in second} == {"second"}

    dense_heavy = JinaHybridRetriever(hybrid_index, k=6, weights=(1.0, 0.0)).retrieve(QUERY)
    by_index = hybrid_index.search(QUERY, k=6, weights=(1.0, 0.0))
    assert [n.node.node_id for n in dense_heavy] == [h.id for h in by_index]

    with pytest.raises(InputError, match="similarity_top_k=3 and k=4"):
        JinaHybridRetriever(hybrid_index, similarity_top_k=3, k=4)


def test_async_equals_sync(hybrid_index):
    retriever = JinaHybridRetriever(hybrid_index, similarity_top_k=5)
    sync = retriever.retrieve(QUERY)
    asynced = asyncio.run(retriever.aretrieve(QUERY))
    assert [(n.node.node_id, n.score) for n in asynced] == [(n.node.node_id, n.score) for n in sync]


@pytest.mark.slow
def test_query_engine_with_hybrid_retriever_and_reranker(hybrid_index, minilm_reranker):
    retriever = JinaHybridRetriever(hybrid_index, similarity_top_k=8)
    engine = RetrieverQueryEngine.from_args(
        retriever,
        llm=MockLLM(),
        node_postprocessors=[JinaRerank(reranker=minilm_reranker, top_n=3)],
    )
    response = engine.query(QUERY)

    retrieved = retriever.retrieve(QUERY)
    expected = minilm_reranker.rank(QUERY, [n.node.get_content() for n in retrieved], top_n=3)
    sources = response.source_nodes
    assert [n.node.node_id for n in sources] == [retrieved[r.index].node.node_id for r in expected]
    np.testing.assert_allclose([n.score for n in sources], [r.score for r in expected], rtol=1e-5)
    for source, r in zip(sources, expected, strict=True):
        before = retrieved[r.index]
        assert source.node.metadata["retrieval_score"] == before.score
        assert source.node.metadata["score"] == before.score  # the fused score, kept
    # MockLLM answers with its prompt: the reranked context, best first, reached the LLM.
    answer = str(response)
    positions = [answer.index(n.node.get_content().strip()) for n in sources]
    assert positions == sorted(positions)

    asynced = asyncio.run(engine.aquery(QUERY))
    assert [n.node.node_id for n in asynced.source_nodes] == [n.node.node_id for n in sources]

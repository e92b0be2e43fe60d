"""jinarag.llama_index: JinaEmbedding and JinaRerank in real LlamaIndex indexes and engines."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("llama_index.core")

import chromadb  # noqa: E402
from llama_index.core import StorageContext, VectorStoreIndex  # noqa: E402
from llama_index.core.instrumentation import get_dispatcher  # noqa: E402
from llama_index.core.instrumentation.event_handlers import BaseEventHandler  # noqa: E402
from llama_index.core.instrumentation.events.rerank import (  # noqa: E402
    ReRankEndEvent,
    ReRankStartEvent,
)
from llama_index.core.llms import MockLLM  # noqa: E402
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode  # noqa: E402

from jinarag.errors import InputError  # noqa: E402
from jinarag.llama_index import JinaEmbedding, JinaRerank  # noqa: E402

QUERY = "lift distribution of a wing in a propeller slipstream"


@pytest.fixture(scope="module")
def corpus(cranfield_dir):
    with open(cranfield_dir / "corpus.jsonl") as f:
        rows = [json.loads(line) for line in f.read().splitlines()[:30]]
    # The first 300 characters (title and opening): enough to tell them apart, quick to embed.
    return [row["_id"] for row in rows], [row["text"][:300] for row in rows]


@pytest.fixture(scope="module")
def prefixed_embedder(minilm_dir):
    """MiniLM with a query prefix, so the query and document sides give different vectors."""
    import jinarag

    return jinarag.Embedder.from_pretrained(minilm_dir, max_length=64, query_prefix="query: ")


@pytest.fixture()
def scored_nodes(corpus):
    ids, texts = corpus
    return [
        NodeWithScore(
            node=TextNode(id_=f"doc-{doc_id}", text=text, metadata={"source": "cranfield"}),
            score=1.0 - rank / 20,
        )
        for rank, (doc_id, text) in enumerate(zip(ids[:8], texts[:8], strict=True))
    ]


class _Collect(BaseEventHandler):
    events: list = []

    def handle(self, event, **kwargs):
        self.events.append(event)


@pytest.fixture()
def rerank_events():
    handler = _Collect(events=[])
    root = get_dispatcher()
    root.add_event_handler(handler)
    yield handler.events
    root.event_handlers.remove(handler)


def _dump(nodes):
    return [n.model_dump() for n in nodes]


# --- JinaEmbedding ------------------------------------------------------------------------


@pytest.mark.slow
def test_embedding_sides_match_the_embedder(prefixed_embedder):
    embed = JinaEmbedding(embedder=prefixed_embedder)
    texts = ["a wing in a slipstream", "heat transfer in a boundary layer", "shock waves"]
    assert embed.model_name == prefixed_embedder.name
    query = embed.get_query_embedding(texts[0])
    np.testing.assert_allclose(query, prefixed_embedder.embed_query(texts[0]), atol=1e-6)
    docs = embed.get_text_embedding_batch(texts)
    np.testing.assert_allclose(docs, prefixed_embedder.embed_documents(texts), atol=1e-6)
    # Query side and document side really differ here, so the checks above tell them apart.
    assert not np.allclose(query, docs[0], atol=1e-3)
    # Batched equals one at a time, and async equals sync.
    np.testing.assert_allclose(docs[1], embed.get_text_embedding(texts[1]), atol=1e-5)
    np.testing.assert_allclose(asyncio.run(embed.aget_query_embedding(texts[0])), query, atol=1e-6)
    np.testing.assert_allclose(asyncio.run(embed.aget_text_embedding_batch(texts)), docs, atol=1e-6)


def test_embedding_uses_batches(minilm_embedder):
    calls = []

    class Counting(JinaEmbedding):
        def _get_text_embeddings(self, texts):
            calls.append(len(texts))
            return super()._get_text_embeddings(texts)

    embed = Counting(embedder=minilm_embedder, embed_batch_size=4)
    vectors = embed.get_text_embedding_batch([f"text number {i}" for i in range(10)])
    assert len(vectors) == 10
    assert calls == [4, 4, 2]
    norms = np.linalg.norm(np.array(vectors), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)


def test_embedding_needs_exactly_one_model(minilm_embedder):
    with pytest.raises(InputError, match="not both"):
        JinaEmbedding("small", embedder=minilm_embedder)
    with pytest.raises(InputError, match="neither"):
        JinaEmbedding()


@pytest.mark.slow
def test_vector_store_index_over_chroma(tmp_path, corpus, minilm_embedder):
    from llama_index.vector_stores.chroma import ChromaVectorStore

    ids, texts = corpus
    embed = JinaEmbedding(embedder=minilm_embedder)
    with chromadb.PersistentClient(path=str(tmp_path)) as client:
        collection = client.create_collection(
            "llama", embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
        )
        store = ChromaVectorStore(chroma_collection=collection)
        nodes = [TextNode(id_=i, text=t) for i, t in zip(ids, texts, strict=True)]
        index = VectorStoreIndex(
            nodes,
            storage_context=StorageContext.from_defaults(vector_store=store),
            embed_model=embed,
        )
        hits = index.as_retriever(similarity_top_k=3).retrieve(QUERY)
        assert [h.node.node_id for h in hits][0] == "1"  # the slipstream paper
        # The stored vectors are our document side; the ranking is our query side against them.
        stored = collection.get(ids=["1"], include=["embeddings"])["embeddings"][0]
        np.testing.assert_allclose(
            stored, minilm_embedder.embed_documents([texts[0]])[0], atol=1e-5
        )
        scores = minilm_embedder.embed_documents(texts) @ minilm_embedder.embed_query(QUERY)
        assert [h.node.node_id for h in hits] == [ids[i] for i in np.argsort(-scores)[:3]]


# --- JinaRerank ---------------------------------------------------------------------------


def test_rerank_orders_and_scores_like_the_reranker(scored_nodes, minilm_reranker):
    before = _dump(scored_nodes)
    rerank = JinaRerank(reranker=minilm_reranker, top_n=5)
    out = rerank.postprocess_nodes(scored_nodes, query_str=QUERY)

    texts = [n.node.get_content() for n in scored_nodes]
    expected = minilm_reranker.rank(QUERY, texts, top_n=5)
    assert [n.node.node_id for n in out] == [scored_nodes[r.index].node.node_id for r in expected]
    np.testing.assert_allclose([n.score for n in out], [r.score for r in expected], rtol=1e-5)
    for new in out:
        old = next(n for n in scored_nodes if n.node.node_id == new.node.node_id)
        assert new.node.metadata == {**old.node.metadata, "retrieval_score": old.score}
        assert new is not old and new.node is not old.node
        # The score is metadata for inspection, not text for the LLM.
        assert "retrieval_score" not in new.node.get_content(metadata_mode="llm")
    assert _dump(scored_nodes) == before  # inputs untouched


def test_rerank_keeps_everything_with_top_n_none(scored_nodes, minilm_reranker):
    rerank = JinaRerank(reranker=minilm_reranker, top_n=None)
    out = rerank.postprocess_nodes(scored_nodes, query_str=QUERY)
    assert sorted(n.node.node_id for n in out) == sorted(n.node.node_id for n in scored_nodes)
    assert [n.score for n in out] == sorted((n.score for n in out), reverse=True)


def test_rerank_without_query_is_a_clear_error(scored_nodes, minilm_reranker):
    rerank = JinaRerank(reranker=minilm_reranker, top_n=2)
    with pytest.raises(InputError, match="query_str"):
        rerank.postprocess_nodes(scored_nodes)
    assert rerank.postprocess_nodes([], query_str=QUERY) == []


def test_rerank_emits_start_and_end_events(scored_nodes, minilm_reranker, rerank_events):
    rerank = JinaRerank(reranker=minilm_reranker, top_n=3)
    bundle = QueryBundle(QUERY)
    out = rerank.postprocess_nodes(scored_nodes, query_bundle=bundle)

    starts = [e for e in rerank_events if isinstance(e, ReRankStartEvent)]
    ends = [e for e in rerank_events if isinstance(e, ReRankEndEvent)]
    assert len(starts) == len(ends) == 1
    assert starts[0].query.query_str == QUERY
    assert starts[0].top_n == 3
    assert starts[0].model_name == minilm_reranker.name
    assert [n.node.node_id for n in starts[0].nodes] == [n.node.node_id for n in scored_nodes]
    assert [(n.node.node_id, n.score) for n in ends[0].nodes] == [
        (n.node.node_id, n.score) for n in out
    ]
    assert rerank_events.index(starts[0]) < rerank_events.index(ends[0])


def test_rerank_async_equals_sync(scored_nodes, minilm_reranker):
    rerank = JinaRerank(reranker=minilm_reranker, top_n=4)
    sync = rerank.postprocess_nodes(scored_nodes, query_str=QUERY)
    asynced = asyncio.run(rerank.apostprocess_nodes(scored_nodes, query_str=QUERY))
    assert [(n.node.node_id, n.score) for n in asynced] == [(n.node.node_id, n.score) for n in sync]


@pytest.mark.slow
def test_rerank_in_a_query_engine_under_mock_llm(corpus, minilm_embedder, minilm_reranker):
    ids, texts = corpus
    index = VectorStoreIndex(
        [TextNode(id_=i, text=t) for i, t in zip(ids, texts, strict=True)],
        embed_model=JinaEmbedding(embedder=minilm_embedder),
    )
    engine = index.as_query_engine(
        llm=MockLLM(),
        similarity_top_k=6,
        node_postprocessors=[JinaRerank(reranker=minilm_reranker, top_n=2)],
    )
    response = engine.query(QUERY)
    retrieved = index.as_retriever(similarity_top_k=6).retrieve(QUERY)
    expected = minilm_reranker.rank(QUERY, [n.node.get_content() for n in retrieved], top_n=2)
    assert [n.node.node_id for n in response.source_nodes] == [
        retrieved[r.index].node.node_id for r in expected
    ]
    np.testing.assert_allclose(
        [n.score for n in response.source_nodes], [r.score for r in expected], rtol=1e-5
    )
    # MockLLM echoes its prompt: the reranked context is what the LLM was given.
    assert retrieved[expected[0].index].node.get_content()[:60] in str(response)


# --- loading options ----------------------------------------------------------------------

# Every loading option away from its default (a local directory ignores the revision, but it
# is still checked and passed on).
EVERY_OPTION = {
    "device": "cpu",
    "dtype": "bfloat16",
    "max_length": 32,
    "revision": "main",
    "local_files_only": True,
    "max_batch_tokens": 256,
    "attention": "eager",
    "num_threads": 1,
}
ADAPTERS = [(JinaEmbedding, "v2_geglu_8h", "embedder"), (JinaRerank, "reranker_bf16", "reranker")]


@pytest.mark.parametrize(("cls", "variant", "attribute"), ADAPTERS)
def test_every_loading_option_reaches_the_model(tiny_checkpoints, cls, variant, attribute):
    import jinarag

    adapter = cls(str(tiny_checkpoints[variant]), **EVERY_OPTION)
    model = getattr(adapter, attribute)
    assert model.options == jinarag.LoadOptions(**EVERY_OPTION)
    assert (model.max_length, model.max_batch_tokens) == (32, 256)
    assert str(model.dtype) == "torch.bfloat16"
    # Fields named as in LoadOptions: LlamaIndex's own serialisation keeps them.
    data = adapter.to_dict()
    assert {name: data[name] for name in EVERY_OPTION} == EVERY_OPTION
    restored = cls.from_dict(data)
    assert getattr(restored, attribute).options == model.options


@pytest.mark.parametrize(("cls", "variant", "attribute"), ADAPTERS)
@pytest.mark.parametrize("unknown", ["token", "query_instruction", "cache_folder"])
def test_an_unknown_option_is_an_input_error_listing_the_accepted_ones(
    tiny_checkpoints, cls, variant, attribute, unknown
):
    with pytest.raises(InputError) as info:
        cls(str(tiny_checkpoints[variant]), **{unknown: "x"})
    message = str(info.value)
    assert cls.__name__ in message
    assert unknown in message
    for name in (*EVERY_OPTION, attribute, "callback_manager"):
        assert name in message


def test_framework_fields_still_pass_through(minilm_embedder, minilm_reranker):
    from llama_index.core.callbacks import CallbackManager

    callbacks = CallbackManager([])
    embed = JinaEmbedding(embedder=minilm_embedder, num_workers=2, callback_manager=callbacks)
    assert embed.num_workers == 2
    assert embed.callback_manager is callbacks
    rerank = JinaRerank(reranker=minilm_reranker, callback_manager=callbacks)
    assert rerank.callback_manager is callbacks


# --- packaging ----------------------------------------------------------------------------


@pytest.mark.slow
def test_import_without_llama_index_names_the_extra():
    script = textwrap.dedent(
        """
        import sys
        sys.modules["llama_index"] = None
        sys.modules["llama_index.core"] = None
        try:
            import jinarag.llama_index
        except ImportError as exc:
            print(exc)
        else:
            print("imported")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "pip install 'jinarag[llama-index]'" in proc.stdout


def test_llama_index_default_splitter_splits_long_text_in_this_environment():
    """LlamaIndex's default SentenceSplitter reads nltk's bundled stopwords, which nltk refuses
    when the file has several hard links (an environment installed with uv's default link
    mode): ./dev installs with copies, so a text longer than one chunk splits."""
    from llama_index.core.node_parser import SentenceSplitter

    text = " ".join(f"Sentence {i} is about the lift of a wing in a slip." for i in range(300))
    chunks = SentenceSplitter(chunk_size=256, chunk_overlap=20).split_text(text)
    assert len(chunks) > 5 and all(chunk.strip() for chunk in chunks)

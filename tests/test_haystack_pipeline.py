"""jinarag.haystack in real Haystack pipelines: hybrid retrieval, reranking, prompts, YAML.

Runs under haystack-ai 3.x (.venv) and 2.x (.venv-haystack2); uses only what both have.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from haystack import Pipeline
from haystack.components.builders import PromptBuilder
from haystack.core.errors import DeserializationError
from haystack.version import __version__ as haystack_version

import jinarag
from jinarag.haystack import JinaHybridRetriever, JinaRanker, JinaTextEmbedder
from jinarag.retrieval.index import DEFAULT_FUSION

HAYSTACK_3 = int(haystack_version.split(".")[0]) >= 3
COLLECTION = "cranfield-haystack"
N_DOCS = 40
QUESTION = "how does heat transfer behave in a slip flow boundary layer"
TEMPLATE = (
    "Answer from the context.\n"
    "{% for doc in documents %}[{{ doc.id }}] {{ doc.content }}\n{% endfor %}"
    "Question: {{ question }}"
)


@pytest.fixture(scope="module")
def records(cranfield_dir) -> list[dict]:
    with open(cranfield_dir / "corpus.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for _, line in zip(range(N_DOCS), f, strict=False)]


@pytest.fixture(scope="module")
def store(tmp_path_factory, minilm_embedder, records) -> Path:
    """A HybridIndex on disk over the first Cranfield abstracts, built with the core API."""
    path = tmp_path_factory.mktemp("haystack-store")
    index = jinarag.HybridIndex(path=path, collection=COLLECTION, embedder=minilm_embedder)
    index.add(
        [r["text"] for r in records],
        ids=[r["_id"] for r in records],
        metadatas=[{"title": r["title"], "n": int(r["_id"])} for r in records],
    )
    return path


@pytest.fixture(scope="module")
def index(store, minilm_embedder):
    """The same store opened again, to compute expected results without Haystack."""
    return jinarag.HybridIndex(path=store, collection=COLLECTION, embedder=minilm_embedder)


def make_retriever(store: Path, minilm_dir: Path, **kwargs) -> JinaHybridRetriever:
    return JinaHybridRetriever(
        path=store, collection=COLLECTION, model=minilm_dir, max_length=256, **kwargs
    )


def rag_pipeline(
    store: Path, minilm_dir: Path, reranker_dir: Path, cls: type = Pipeline, prefix: str = ""
):
    """JinaTextEmbedder -> JinaHybridRetriever -> JinaRanker -> PromptBuilder."""
    pipeline = cls()
    pipeline.add_component(
        "text_embedder", JinaTextEmbedder(model=minilm_dir, max_length=256, prefix=prefix)
    )
    pipeline.add_component("retriever", make_retriever(store, minilm_dir, top_k=10))
    pipeline.add_component("ranker", JinaRanker(model=reranker_dir, max_length=256, top_k=3))
    pipeline.add_component(
        "prompt_builder", PromptBuilder(template=TEMPLATE, required_variables=["question"])
    )
    # The embedder's vector drives the retriever's dense side; BM25 reads the query text.
    pipeline.connect("text_embedder.embedding", "retriever.query_embedding")
    pipeline.connect("retriever.documents", "ranker.documents")
    pipeline.connect("ranker.documents", "prompt_builder.documents")
    return pipeline


def close(meta: dict) -> dict:
    """``meta`` with its float values compared to within float32 rounding."""
    return {k: pytest.approx(v, rel=1e-6) if isinstance(v, float) else v for k, v in meta.items()}


def pipeline_inputs(question: str) -> dict:
    # Embedding, BM25 retrieval and reranking all read the query text: it goes to each.
    return {
        "text_embedder": {"text": question},
        "retriever": {"query": question},
        "ranker": {"query": question},
        "prompt_builder": {"question": question},
    }


def test_retriever_documents_are_the_index_hits(store, index, minilm_dir):
    retriever = make_retriever(store, minilm_dir, top_k=5)
    docs = retriever.run(query=QUESTION)["documents"]
    hits = index.search(QUESTION, k=5)

    assert [d.id for d in docs] == [h.id for h in hits]
    assert [d.content for d in docs] == [h.text for h in hits]
    assert [d.score for d in docs] == [h.score for h in hits]
    # Each side embedded the query itself: dense scores agree to float rounding (the engine
    # may run the two passes on different thread counts), everything else exactly.
    assert [d.meta for d in docs] == [close(h.scored_metadata()) for h in hits]
    # With no fusion given, the retriever uses the index's tuned default.
    assert docs[0].meta["score_space"] == DEFAULT_FUSION
    assert {"title", "n", "dense_rank", "bm25_rank"} <= set(docs[0].meta)


def test_retriever_options_and_filters(store, index, minilm_dir):
    retriever = make_retriever(store, minilm_dir, top_k=4, filters={"n": {"$lte": 20}})
    filtered = retriever.run(query=QUESTION)["documents"]
    assert filtered and all(d.meta["n"] <= 20 for d in filtered)
    assert [d.id for d in filtered] == [
        h.id for h in index.search(QUESTION, k=4, where={"n": {"$lte": 20}})
    ]

    # Arguments given to run replace the init values.
    replaced = retriever.run(query=QUESTION, filters={"n": {"$gt": 20}}, mode="bm25", top_k=2)
    assert len(replaced["documents"]) == 2
    assert all(d.meta["n"] > 20 and d.meta["score_space"] == "bm25" for d in replaced["documents"])
    weighted = retriever.run(query=QUESTION, weights=[1.0, 0.0], fusion="relative")["documents"]
    expected = index.search(
        QUESTION, k=4, fusion="relative", weights=(1.0, 0.0), where={"n": {"$lte": 20}}
    )
    assert [d.id for d in weighted] == [h.id for h in expected]


def test_rag_pipeline_puts_the_best_document_first_in_the_prompt(
    store, index, minilm_dir, minilm_reranker_dir, minilm_reranker, minilm_embedder
):
    pipeline = rag_pipeline(store, minilm_dir, minilm_reranker_dir)
    out = pipeline.run(
        pipeline_inputs(QUESTION), include_outputs_from={"text_embedder", "retriever", "ranker"}
    )

    # The retriever searched with the text embedder's vector (the same model as the index's,
    # on the query side) and the query text for BM25.
    embedding = out["text_embedder"]["embedding"]
    assert embedding == pytest.approx(minilm_embedder.embed_query(QUESTION).tolist(), abs=1e-5)
    retrieved = out["retriever"]["documents"]
    with_vector = index.search(QUESTION, k=10, query_embedding=embedding)
    assert [(d.id, d.score) for d in retrieved] == [(h.id, h.score) for h in with_vector]
    assert [d.meta for d in retrieved] == [h.scored_metadata() for h in with_vector]

    # Expected without Haystack: the core index's top 10, reranked by the core reranker.
    hits = index.search(QUESTION, k=10)
    ranked = minilm_reranker.rank(QUESTION, [h.text for h in hits], top_n=3)
    expected = [hits[r.index] for r in ranked]

    ranked_docs = out["ranker"]["documents"]
    assert [d.id for d in ranked_docs] == [h.id for h in expected]
    assert [round(d.score, 5) for d in ranked_docs] == [round(r.score, 5) for r in ranked]
    prompt = out["prompt_builder"]["prompt"]
    positions = [prompt.index(f"[{h.id}] {h.text}") for h in expected]
    assert positions == sorted(positions)  # best first
    assert prompt.rstrip().endswith(f"Question: {QUESTION}")
    # The ranker keeps the retriever's metadata (fused and per-source scores).
    assert ranked_docs[0].meta == close(
        next(h for h in hits if h.id == expected[0].id).scored_metadata()
    )


def test_the_text_embedder_vector_drives_the_dense_side(
    store, index, minilm_dir, minilm_reranker_dir, minilm_embedder
):
    # A prefix on the text embedder changes the vector, hence the dense side, not BM25's.
    prefix = "propeller slipstream and wing lift. "
    pipeline = rag_pipeline(store, minilm_dir, minilm_reranker_dir, prefix=prefix)
    out = pipeline.run(pipeline_inputs(QUESTION), include_outputs_from={"retriever"})
    retrieved = out["retriever"]["documents"]

    vector = minilm_embedder.embed_query(prefix + QUESTION)
    expected = index.search(QUESTION, k=10, query_embedding=vector)
    assert [d.id for d in retrieved] == [h.id for h in expected]
    assert [d.meta["dense_score"] for d in retrieved if "dense_score" in d.meta] == [
        pytest.approx(h.dense.score, abs=1e-5) for h in expected if h.dense is not None
    ]
    plain = {h.id: h for h in index.search(QUESTION, k=10)}
    # The dense side differs from the text-only search; BM25 scores are the text's.
    assert [d.id for d in retrieved] != list(plain)
    for doc in retrieved:
        if doc.id in plain and plain[doc.id].bm25 is not None:
            assert doc.meta["bm25_score"] == pytest.approx(plain[doc.id].bm25.score)


def comparable(pipeline_dict: dict) -> dict:
    """A pipeline's dict with its connections sorted (loading may list them in another order)."""
    key = lambda c: (c["sender"], c["receiver"])  # noqa: E731
    return {**pipeline_dict, "connections": sorted(pipeline_dict["connections"], key=key)}


def load_pipeline(text: str) -> Pipeline:
    """Load a saved pipeline the documented way for the installed Haystack."""
    if HAYSTACK_3:
        return Pipeline.loads(text, allowed_modules=["jinarag.haystack"])
    return Pipeline.loads(text)


def test_yaml_round_trip_gives_the_same_output(store, minilm_dir, minilm_reranker_dir):
    pipeline = rag_pipeline(store, minilm_dir, minilm_reranker_dir)
    text = pipeline.dumps()
    assert "jinarag.haystack.retriever.JinaHybridRetriever" in text
    assert "jinarag.haystack.text_embedder.JinaTextEmbedder" in text
    assert "receiver: retriever.query_embedding" in text

    if HAYSTACK_3:
        # 3.x refuses modules outside its allowlist until told to trust this one.
        with pytest.raises(DeserializationError, match="jinarag.haystack"):
            Pipeline.loads(text)
    loaded = load_pipeline(text)

    assert comparable(loaded.to_dict()) == comparable(pipeline.to_dict())
    inputs = pipeline_inputs(QUESTION)
    assert loaded.run(copy.deepcopy(inputs)) == pipeline.run(copy.deepcopy(inputs))


@pytest.mark.slow
def test_yaml_loads_in_a_fresh_process(tmp_path, store, minilm_dir, minilm_reranker_dir):
    pipeline = rag_pipeline(store, minilm_dir, minilm_reranker_dir)
    saved = tmp_path / "rag.yaml"
    saved.write_text(pipeline.dumps(), encoding="utf-8")
    code = (
        "import json, sys\n"
        "from haystack import Pipeline\n"
        "text = open(sys.argv[1], encoding='utf-8').read()\n"
        "assert 'jinarag.haystack' not in sys.modules\n"
        "print(json.dumps(Pipeline.loads(text).to_dict()))\n"
    )
    # The one line for 3.x that works in any process (2.x ignores it): the allowlist variable.
    env = {**os.environ, "HAYSTACK_DESERIALIZATION_ALLOWLIST": "jinarag.haystack"}
    result = subprocess.run(
        [sys.executable, "-c", code, str(saved)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert comparable(loaded) == comparable(pipeline.to_dict())
    assert {"sender": "text_embedder.embedding", "receiver": "retriever.query_embedding"} in (
        loaded["connections"]
    )


@pytest.mark.slow
def test_async_pipeline_gives_the_same_output(store, minilm_dir, minilm_reranker_dir):
    # 3.x runs any pipeline asynchronously; 2.x has a separate AsyncPipeline class.
    if HAYSTACK_3:
        cls = Pipeline
    else:
        from haystack import AsyncPipeline as cls
    async_pipeline = rag_pipeline(store, minilm_dir, minilm_reranker_dir, cls)
    pipeline = rag_pipeline(store, minilm_dir, minilm_reranker_dir)
    inputs = pipeline_inputs(QUESTION)

    out = asyncio.run(
        async_pipeline.run_async(copy.deepcopy(inputs), include_outputs_from={"ranker"})
    )

    assert out == pipeline.run(copy.deepcopy(inputs), include_outputs_from={"ranker"})
    assert len(out["ranker"]["documents"]) == 3
    assert set(async_pipeline.graph.nodes) == {
        "text_embedder",
        "retriever",
        "ranker",
        "prompt_builder",
    }


def test_retriever_warm_up_twice_run_async_and_close(store, minilm_dir):
    retriever = make_retriever(store, minilm_dir, top_k=3)
    assert retriever.index is None  # nothing opened in __init__
    retriever.warm_up()
    first = retriever.index
    retriever.warm_up()
    assert isinstance(first, jinarag.HybridIndex) and retriever.index is first

    async_out = asyncio.run(retriever.run_async(query=QUESTION, mode="dense"))
    assert async_out == retriever.run(query=QUESTION, mode="dense")
    assert len(async_out["documents"]) == 3
    assert retriever.index is first

    retriever.close()  # Haystack 3.x's Pipeline.close() calls it
    assert retriever.index is None
    assert retriever.run(query=QUESTION, mode="dense") == async_out  # opened again
    assert retriever.index is not None and retriever.index is not first


def test_retriever_to_dict_from_dict(tmp_path):
    retriever = JinaHybridRetriever(
        path=tmp_path,
        collection="c1",
        model="small",
        top_k=7,
        mode="dense",
        fusion="dbsf",
        weights=(0.7, 0.3),
        filters={"lang": "en"},
        device="cpu",
    )
    data = retriever.to_dict()
    assert data["type"] == "jinarag.haystack.retriever.JinaHybridRetriever"
    assert data["init_parameters"]["path"] == str(tmp_path)
    assert data["init_parameters"]["weights"] == [0.7, 0.3]
    json.dumps(data)
    restored = JinaHybridRetriever.from_dict(copy.deepcopy(data))
    assert restored.to_dict() == data
    assert restored.index is None

"""JinaHybridRetriever in LangChain: the standard suite, its options, and real chains."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.documents import Document
from langchain_helpers import build_index, cranfield_records, distinctive_sentence
from langchain_tests.integration_tests import RetrieversIntegrationTests

from jinarag.langchain import JinaHybridRetriever, JinaReranker

QUERY = "lift increase of a wing in a propeller slipstream"

# The standard suite's async tests are plain coroutines; anyio runs them (and ignores the rest).
# Every test here searches an index that takes a while to build on a small machine.
pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture(scope="module")
def records(cranfield_dir):
    return cranfield_records(cranfield_dir, 80)


@pytest.fixture(scope="module")
def index(tmp_path_factory, minilm_embedder, records):
    return build_index(tmp_path_factory.mktemp("lc-index"), minilm_embedder, records)


class TestJinaHybridRetriever(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _attach_index(self, index) -> None:
        # The suite reads its constructor params from a property; hand it the module's index.
        self._index = index

    @property
    def retriever_constructor(self) -> type[JinaHybridRetriever]:
        return JinaHybridRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"index": self._index, "k": 2}

    @property
    def retriever_query_example(self) -> str:
        return QUERY


# --- hybrid retriever ---------------------------------------------------------------------


def test_retriever_documents_carry_ids_and_scores(index):
    retriever = JinaHybridRetriever(index=index, k=5, fusion="rrf")

    docs = retriever.invoke(QUERY)

    hits = index.search(QUERY, k=5, mode="hybrid", fusion="rrf")
    assert [d.id for d in docs] == [h.id for h in hits]
    for doc, hit in zip(docs, hits, strict=True):
        assert doc.page_content == hit.text
        assert doc.metadata == hit.scored_metadata()
        assert doc.metadata["score_space"] == "rrf"
        assert doc.metadata["title"]
    assert any("dense_rank" in d.metadata and "bm25_rank" in d.metadata for d in docs)


def test_retriever_invoke_kwargs_override_fields(index, records):
    retriever = JinaHybridRetriever(index=index, k=5)

    bm25 = retriever.invoke(QUERY, k=3, mode="bm25")
    title = records[7]["title"]
    filtered = retriever.invoke(QUERY, where={"title": title})

    assert [d.id for d in bm25] == [h.id for h in index.search(QUERY, k=3, mode="bm25")]
    assert {d.metadata["score_space"] for d in bm25} == {"bm25"}
    assert filtered and all(d.metadata["title"] == title for d in filtered)
    # The per-call values did not stick.
    assert len(retriever.invoke(QUERY)) == 5


def test_retriever_weights_reach_the_index(index):
    dense_heavy = JinaHybridRetriever(index=index, k=8, fusion="rrf", weights=[1.0, 0.0])
    ids = [d.id for d in dense_heavy.invoke(QUERY)]
    assert ids == [h.id for h in index.search(QUERY, k=8, fusion="rrf", weights=[1.0, 0.0])]
    assert ids != [h.id for h in index.search(QUERY, k=8, fusion="rrf", weights=[0.0, 1.0])]


def test_retriever_ainvoke_equals_invoke(index):
    retriever = JinaHybridRetriever(index=index, k=4)
    sync = retriever.invoke(QUERY, k=3)
    asynchronous = asyncio.run(retriever.ainvoke(QUERY, k=3))
    assert [(d.id, d.metadata) for d in asynchronous] == [(d.id, d.metadata) for d in sync]


# --- real chains --------------------------------------------------------------------------


def test_lcel_rag_chain_prompt_holds_the_expected_top_document(index, records):
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnablePassthrough

    question, expected_id = distinctive_sentence(records, 53)
    expected_text = next(r["text"] for r in records if r["_id"] == expected_id)

    class PromptRecorder(BaseCallbackHandler):
        def __init__(self) -> None:
            self.prompts: list[str] = []

        def on_chat_model_start(self, serialized, messages, **kwargs) -> None:
            self.prompts.extend(m.content for batch in messages for m in batch)

    def format_docs(docs: list[Document]) -> str:
        return "\n\n".join(d.page_content for d in docs)

    prompt = ChatPromptTemplate.from_template(
        "Answer from the context.\nContext:\n{context}\n\nQuestion: {question}"
    )
    retriever = JinaHybridRetriever(index=index, k=3)
    chain = (
        {"context": retriever | format_docs, "question": RunnablePassthrough()}
        | prompt
        | FakeListChatModel(responses=["the fake answer"])
        | StrOutputParser()
    )
    recorder = PromptRecorder()

    answer = chain.invoke(question, config={"callbacks": [recorder]})

    assert answer == "the fake answer"
    assert len(recorder.prompts) == 1
    received = recorder.prompts[0]
    context = received.split("Context:\n", 1)[1].split("\n\nQuestion:", 1)[0]
    # The expected document is in the prompt, and first in the context.
    assert context.startswith(expected_text)
    assert received.endswith(f"Question: {question}")


def test_contextual_compression_with_our_reranker(index, minilm_reranker):
    from langchain_classic.retrievers import ContextualCompressionRetriever

    base = JinaHybridRetriever(index=index, k=6)
    compressed = ContextualCompressionRetriever(
        base_compressor=JinaReranker(reranker=minilm_reranker, top_n=3), base_retriever=base
    )

    out = compressed.invoke(QUERY)

    candidates = base.invoke(QUERY)
    expected = minilm_reranker.rank(QUERY, [d.page_content for d in candidates], top_n=3)
    assert [d.id for d in out] == [candidates[r.index].id for r in expected]
    assert [d.metadata["relevance_score"] for d in out] == pytest.approx(
        [r.score for r in expected], abs=1e-6
    )
    # The retriever's fused scores travel along with the reranker's.
    assert all(d.metadata["score_space"] == index.fusion for d in out)


def test_cross_encoder_reranker_uses_our_scores(index, minilm_reranker):
    from langchain_classic.retrievers import ContextualCompressionRetriever
    from langchain_classic.retrievers.document_compressors import CrossEncoderReranker

    base = JinaHybridRetriever(index=index, k=6)
    compressor = CrossEncoderReranker(model=JinaReranker(reranker=minilm_reranker), top_n=3)
    out = ContextualCompressionRetriever(base_compressor=compressor, base_retriever=base).invoke(
        QUERY
    )

    candidates = base.invoke(QUERY)
    expected = minilm_reranker.rank(QUERY, [d.page_content for d in candidates], top_n=3)
    assert [d.id for d in out] == [candidates[r.index].id for r in expected]

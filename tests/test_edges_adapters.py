"""Bad options and arguments to the framework adapters, one table per framework: each must be
refused with jinarag's InputError naming the value and the option, and a constructor refuses
when the object is made, not at its first use.

Run ``python tests/edge_probe.py test_edges_adapters`` for the counts per framework.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from edge_table import Refusal, assert_refused, probe_tables, rows_of
from haystack import Document as HSDoc
from langchain_core.documents import Document as LCDoc
from llama_index.core.schema import NodeWithScore, TextNode
from tiny_checkpoints import build_variant

import jinarag
from jinarag.chroma import JinaEmbeddingFunction
from jinarag.errors import InputError
from jinarag.haystack import JinaDocumentEmbedder, JinaRanker, JinaTextEmbedder
from jinarag.haystack import JinaHybridRetriever as HSRetriever
from jinarag.langchain import JinaEmbeddings, JinaReranker
from jinarag.langchain import JinaHybridRetriever as LCRetriever
from jinarag.llama_index import JinaEmbedding, JinaLateChunker, JinaRerank
from jinarag.llama_index import JinaHybridRetriever as LIRetriever

TEXTS = ["lift of a wing in a slipstream", "heat transfer in a boundary layer"]
TEXT_EMBEDDER = "jinarag.haystack.text_embedder.JinaTextEmbedder"


def build_env(root: Path) -> SimpleNamespace:
    """A tiny embedder and reranker on CPU, an in-memory index over two texts, and one of each
    adapter over them (the Haystack components hold the models, so nothing loads in a row)."""
    emb_path = build_variant("v2_geglu_8h", root / "embedder")
    rr_path = build_variant("reranker_bf16", root / "reranker")
    load = {"device": "cpu", "max_length": 32, "backend": "torch"}
    emb = jinarag.Embedder.from_pretrained(emb_path, **load)
    rr = jinarag.Reranker.from_pretrained(rr_path, **load)
    index = jinarag.HybridIndex(embedder=emb)
    index.add(TEXTS, ids=["a", "b"])
    text_embedder = JinaTextEmbedder(model=str(emb_path), device="cpu")
    text_embedder.embedder = emb
    doc_embedder = JinaDocumentEmbedder(model=str(emb_path), device="cpu")
    doc_embedder.embedder = emb
    ranker = JinaRanker(model=str(rr_path), device="cpu")
    ranker.reranker = rr
    hs_retriever = HSRetriever(path=str(root / "store"), model=str(emb_path), device="cpu")
    hs_retriever.index = index
    return SimpleNamespace(
        emb=emb,
        rr=rr,
        emb_path=str(emb_path),
        index=index,
        lc_emb=JinaEmbeddings(embedder=emb),
        lc_rr=JinaReranker(reranker=rr),
        lc_ret=LCRetriever(index, k=2),
        lc_docs=[LCDoc(page_content=t) for t in TEXTS],
        li_emb=JinaEmbedding(embedder=emb),
        li_rr=JinaRerank(reranker=rr),
        li_ret=LIRetriever(index, similarity_top_k=2),
        li_chunker=JinaLateChunker(embedder=emb),
        li_nodes=[NodeWithScore(node=TextNode(text=t), score=1.0) for t in TEXTS],
        hs_text=text_embedder,
        hs_docs=doc_embedder,
        hs_ranker=ranker,
        hs_ret=hs_retriever,
        hs_documents=[HSDoc(content=t) for t in TEXTS],
        ef=JinaEmbeddingFunction(embedder=emb),
    )


def _row(id: str, call, *named: str, error: type[BaseException] = InputError) -> Refusal:
    return Refusal(id, call, error, named)


LANGCHAIN = [
    _row(
        "Embeddings-batch_size-0",
        lambda e: JinaEmbeddings(embedder=e.emb, batch_size=0),
        "batch_size",
        "0",
    ),
    _row(
        "Embeddings-normalize-no",
        lambda e: JinaEmbeddings(embedder=e.emb, normalize="no"),
        "normalize",
        "'no'",
    ),
    _row(
        "Embeddings-embedder-str", lambda e: JinaEmbeddings(embedder="small"), "embedder", "'small'"
    ),
    _row("Embeddings-model-int", lambda e: JinaEmbeddings(model=5), "model", "5"),
    _row("embed_documents-None", lambda e: e.lc_emb.embed_documents(None), "texts", "None"),
    _row(
        "late_chunk_documents-str-items",
        lambda e: e.lc_emb.late_chunk_documents(TEXTS),
        "documents[0]",
        "str",
    ),
    _row("Reranker-top_n--1", lambda e: JinaReranker(reranker=e.rr, top_n=-1), "top_n", "-1"),
    _row(
        "Reranker-score_threshold-str",
        lambda e: JinaReranker(reranker=e.rr, score_threshold="x"),
        "score_threshold",
        "'x'",
    ),
    _row(
        "Reranker-reranker-embedder", lambda e: JinaReranker(reranker=e.emb), "reranker", "Embedder"
    ),
    _row(
        "compress_documents-None",
        lambda e: e.lc_rr.compress_documents(None, "q"),
        "documents",
        "None",
    ),
    _row(
        "compress_documents-str-items",
        lambda e: e.lc_rr.compress_documents(TEXTS, "q"),
        "documents[0]",
        "str",
    ),
    _row(
        "compress_documents-query-None",
        lambda e: e.lc_rr.compress_documents(e.lc_docs, None),
        "query",
        "None",
    ),
    _row("score-str-pair", lambda e: e.lc_rr.score(["q", "d"]), "text_pairs[0]", "'q'"),
    _row("Retriever-index-None", lambda e: LCRetriever(index=None), "index", "None"),
    _row("Retriever-index-path", lambda e: LCRetriever(index="./store"), "index", "'./store'"),
    _row("Retriever-k-0", lambda e: LCRetriever(e.index, k=0), "k", "0"),
    _row("Retriever-mode-x", lambda e: LCRetriever(e.index, mode="x"), "mode", "'x'"),
    _row(
        "Retriever-weights-one",
        lambda e: LCRetriever(e.index, weights=[1.0]),
        "weights",
        "1 values",
    ),
    _row(
        "Retriever-where-str",
        lambda e: LCRetriever(e.index, where="year > 1960"),
        "where",
        "'year > 1960'",
    ),
    _row("invoke-None", lambda e: e.lc_ret.invoke(None), "query", "None"),
    _row("add_documents-str-items", lambda e: e.lc_ret.add_documents(TEXTS), "documents[0]", "str"),
]

LLAMA_INDEX = [
    _row(
        "Embedding-embed_batch_size-0",
        lambda e: JinaEmbedding(embedder=e.emb, embed_batch_size=0),
        "embed_batch_size",
        "0",
    ),
    _row(
        "Embedding-normalize-no",
        lambda e: JinaEmbedding(embedder=e.emb, normalize="no"),
        "normalize",
        "'no'",
    ),
    _row(
        "Embedding-embedder-str", lambda e: JinaEmbedding(embedder="small"), "embedder", "'small'"
    ),
    _row("Embedding-model_name-int", lambda e: JinaEmbedding(model_name=5), "model_name", "5"),
    _row("get_query_embedding-None", lambda e: e.li_emb.get_query_embedding(None), "None"),
    _row(
        "LateChunker-embedder-str",
        lambda e: JinaLateChunker(embedder="small"),
        "embedder",
        "'small'",
    ),
    _row("LateChunker-call-None", lambda e: e.li_chunker(None), "nodes", "None"),
    _row("LateChunker-call-str-items", lambda e: e.li_chunker(TEXTS), "nodes[0]", "str"),
    _row("Rerank-top_n--1", lambda e: JinaRerank(reranker=e.rr, top_n=-1), "top_n", "-1"),
    _row(
        "Rerank-metadata_mode",
        lambda e: JinaRerank(reranker=e.rr, metadata_mode="every"),
        "metadata_mode",
        "'every'",
    ),
    _row("Rerank-reranker-str", lambda e: JinaRerank(reranker="turbo"), "reranker", "'turbo'"),
    _row(
        "postprocess_nodes-None",
        lambda e: e.li_rr.postprocess_nodes(None, query_str="q"),
        "nodes",
        "None",
    ),
    _row(
        "postprocess_nodes-TextNode",
        lambda e: e.li_rr.postprocess_nodes([TextNode(text="a")], query_str="q"),
        "nodes[0]",
        "TextNode",
    ),
    _row("Retriever-index-None", lambda e: LIRetriever(None), "index", "None"),
    _row(
        "Retriever-similarity_top_k-0",
        lambda e: LIRetriever(e.index, similarity_top_k=0),
        "similarity_top_k",
        "0",
    ),
    _row("Retriever-mode-x", lambda e: LIRetriever(e.index, mode="x"), "mode", "'x'"),
    _row(
        "Retriever-weights-str", lambda e: LIRetriever(e.index, weights="1,1"), "weights", "'1,1'"
    ),
    _row("Retriever-where-list", lambda e: LIRetriever(e.index, where=["a"]), "where", "['a']"),
    _row("retrieve-None", lambda e: e.li_ret.retrieve(None), "query", "None"),
]

HAYSTACK = [
    _row("TextEmbedder-batch_size-0", lambda e: JinaTextEmbedder(batch_size=0), "batch_size", "0"),
    _row(
        "TextEmbedder-normalize-no",
        lambda e: JinaTextEmbedder(normalize_embeddings="no"),
        "normalize_embeddings",
        "'no'",
    ),
    _row("TextEmbedder-prefix-None", lambda e: JinaTextEmbedder(prefix=None), "prefix", "None"),
    _row("TextEmbedder-device-gpu", lambda e: JinaTextEmbedder(device="gpu"), "device", "'gpu'"),
    _row("TextEmbedder-model-int", lambda e: JinaTextEmbedder(model=5), "model", "5"),
    _row("TextEmbedder-run-None", lambda e: e.hs_text.run(text=None), "text", "None"),
    _row(
        "TextEmbedder-from_dict-bad",
        lambda e: JinaTextEmbedder.from_dict({"bad": 1}),
        "bad",
        "type",
    ),
    _row(
        "TextEmbedder-from_dict-batch_size",
        lambda e: JinaTextEmbedder.from_dict(
            {"type": TEXT_EMBEDDER, "init_parameters": {"batch_size": 0}}
        ),
        "batch_size",
        "0",
    ),
    _row("DocumentEmbedder-run-None", lambda e: e.hs_docs.run(None), "documents", "None"),
    _row(
        "DocumentEmbedder-run-str-items",
        lambda e: e.hs_docs.run(documents=TEXTS),
        "documents[0]",
        "str",
    ),
    _row(
        "DocumentEmbedder-meta_fields-str",
        lambda e: JinaDocumentEmbedder(meta_fields_to_embed="title"),
        "meta_fields_to_embed",
        "str",
    ),
    _row(
        "DocumentEmbedder-separator-None",
        lambda e: JinaDocumentEmbedder(embedding_separator=None),
        "embedding_separator",
        "None",
    ),
    _row("Ranker-top_k--1", lambda e: JinaRanker(top_k=-1), "top_k", "-1"),
    _row(
        "Ranker-score_threshold-str",
        lambda e: JinaRanker(score_threshold="x"),
        "score_threshold",
        "'x'",
    ),
    _row("Ranker-scale_score-no", lambda e: JinaRanker(scale_score="no"), "scale_score", "'no'"),
    _row(
        "Ranker-run-top_k-0", lambda e: e.hs_ranker.run("q", e.hs_documents, top_k=0), "top_k", "0"
    ),
    _row(
        "Ranker-run-content-None",
        lambda e: e.hs_ranker.run("q", [HSDoc(content=None)]),
        "documents[0]",
        "content",
    ),
    _row("Ranker-run-documents-None", lambda e: e.hs_ranker.run("q", None), "documents", "None"),
    _row("Retriever-top_k-0", lambda e: HSRetriever(top_k=0), "top_k", "0"),
    _row("Retriever-mode-x", lambda e: HSRetriever(mode="x"), "mode", "'x'"),
    _row("Retriever-filters-str", lambda e: HSRetriever(filters="year"), "filters", "'year'"),
    _row("Retriever-path-int", lambda e: HSRetriever(path=5), "path", "5"),
    _row("Retriever-run-top_k-0", lambda e: e.hs_ret.run("wing", top_k=0), "top_k", "0"),
]

CHROMA = [
    _row("call-None", lambda e: e.ef(None), "input", "None"),
    _row("call-str", lambda e: e.ef("a wing"), "input", "str"),
    _row("embed_query-None", lambda e: e.ef.embed_query(None), "input", "None"),
    _row(
        "batch_size-0",
        lambda e: JinaEmbeddingFunction(embedder=e.emb, batch_size=0),
        "batch_size",
        "0",
    ),
    _row(
        "normalize-no",
        lambda e: JinaEmbeddingFunction(embedder=e.emb, normalize="no"),
        "normalize",
        "'no'",
    ),
    _row(
        "query_prefix-None",
        lambda e: JinaEmbeddingFunction(e.emb_path, query_prefix=None, device="cpu"),
        "query_prefix",
        "None",
    ),
    _row(
        "build_from_config-None",
        lambda e: JinaEmbeddingFunction.build_from_config(None),
        "config",
        "None",
    ),
    _row(
        "build_from_config-batch_size",
        lambda e: JinaEmbeddingFunction.build_from_config(
            {"model_name": e.emb_path, "device": "cpu", "batch_size": 0}
        ),
        "batch_size",
        "0",
    ),
]

TABLES: dict[str, list[Refusal]] = {
    "LangChain": LANGCHAIN,
    "LlamaIndex": LLAMA_INDEX,
    "Haystack": HAYSTACK,
    "Chroma": CHROMA,
}


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> SimpleNamespace:
    return build_env(tmp_path_factory.mktemp("edges-adapters"))


@pytest.mark.parametrize("row", rows_of(TABLES), ids=str)
def test_refused(row: Refusal, env: SimpleNamespace) -> None:
    assert_refused(row, env)


def probe(root: Path):
    return probe_tables(TABLES, build_env(root))

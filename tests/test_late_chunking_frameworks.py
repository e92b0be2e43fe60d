"""Late chunking through the LangChain, LlamaIndex and Haystack adapters: every path gives the
vectors the core's `Embedder.embed_late_chunks` gives for the same chunks, inside the
frameworks' own pipelines and stores, and bad input is an InputError naming it.

The Haystack tests also run under haystack-ai 2.x (.venv-haystack2, which has neither
LangChain nor LlamaIndex: their tests skip there).
"""

from __future__ import annotations

import uuid
from importlib.metadata import version

import numpy as np
import pytest

from jinarag.errors import InputError

DOC_A = (
    "The wing of the test aircraft was mounted in the slipstream of a propeller. "
    "Its lift grew with the slipstream velocity, and the stall came later than in free flow. "
    "The tests were repeated at three angles of attack, and each showed the same trend. "
    "Heat transfer was not measured in this series."
)
DOC_B = (
    "A laminar boundary layer on a flat plate was studied at Mach numbers up to five. "
    "It stayed attached until the pressure gradient turned adverse. "
    "The measured skin friction agreed with the theory within ten percent."
)
QUERY = "how does lift change in a propeller slipstream?"


def assert_late(vectors, embedder, chunks) -> None:
    """`vectors` are the core's late-chunk vectors of `chunks`, and not each chunk alone."""
    expected = embedder.embed_late_chunks(chunks)
    np.testing.assert_allclose(np.asarray(vectors), expected, atol=1e-5)
    alone = embedder.embed_documents(chunks)
    assert not np.allclose(np.asarray(vectors), alone, atol=1e-3)


# --- LangChain ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lc_embeddings(minilm_embedder):
    pytest.importorskip("langchain_core")
    from jinarag.langchain import JinaEmbeddings

    return JinaEmbeddings(embedder=minilm_embedder)


def test_langchain_embed_late_chunks_equals_core(lc_embeddings, minilm_embedder):
    chunks = ["The wing sat in a propeller slipstream.", "Its lift grew.", "It stalled later."]
    vectors = lc_embeddings.embed_late_chunks(chunks)
    assert isinstance(vectors, list) and all(isinstance(v[0], float) for v in vectors)
    assert_late(vectors, minilm_embedder, chunks)


def test_langchain_late_chunk_documents_into_a_vector_store(lc_embeddings, minilm_embedder):
    pytest.importorskip("langchain_chroma")
    import chromadb
    from langchain_chroma import Chroma
    from langchain_core.documents import Document

    sources = [
        Document(page_content=DOC_A, metadata={"topic": "lift"}, id="doc-a"),
        Document(page_content=DOC_B, metadata={"topic": "heat"}),  # no id: a content hash
    ]
    chunks, vectors = lc_embeddings.late_chunk_documents(sources, chunk_tokens=16)

    assert len(chunks) == len(vectors) > 4
    by_source: dict[str, list[int]] = {}
    for i, chunk in enumerate(chunks):
        by_source.setdefault(chunk.metadata["doc_id"], []).append(i)
    assert list(by_source)[0] == "doc-a" and len(by_source) == 2
    for source, positions in zip(sources, by_source.values(), strict=True):
        texts = [chunks[i].page_content for i in positions]
        assert [chunks[i].metadata["chunk"] for i in positions] == list(range(len(positions)))
        for i in positions:
            meta = chunks[i].metadata
            span = source.page_content[meta["span_start"] : meta["span_end"]]
            assert span == chunks[i].page_content
            assert meta["topic"] == source.metadata["topic"]
            assert chunks[i].id == f"{meta['doc_id']}#{meta['chunk']}"
        assert " ".join(texts).split() == source.page_content.split()
        assert_late([vectors[i] for i in positions], minilm_embedder, texts)

    # The chunks and their vectors go into a Chroma collection; LangChain's Chroma searches it.
    client = chromadb.EphemeralClient()
    name = f"late-{uuid.uuid4().hex[:8]}"
    collection = client.create_collection(name, metadata={"hnsw:space": "cosine"})
    collection.add(
        ids=[c.id for c in chunks],
        embeddings=vectors,
        documents=[c.page_content for c in chunks],
        metadatas=[c.metadata for c in chunks],
    )
    store = Chroma(client=client, collection_name=name, embedding_function=lc_embeddings)
    found, distance = store.similarity_search_with_score(QUERY, k=1)[0]
    assert found.metadata["doc_id"] == "doc-a"
    best = vectors[[c.id for c in chunks].index(found.id)]
    cosine = float(np.dot(minilm_embedder.embed_query(QUERY), best))
    assert distance == pytest.approx(1 - cosine, abs=1e-4)  # the stored vector is the late one


def test_langchain_retriever_add_documents_by_late_chunking(lc_embeddings, minilm_embedder):
    from langchain_core.documents import Document

    import jinarag
    from jinarag.langchain import JinaHybridRetriever

    sources = [
        Document(page_content=DOC_A, metadata={"topic": "lift"}, id="doc-a"),
        Document(page_content=DOC_B, metadata={"topic": "heat"}),
    ]
    index = jinarag.HybridIndex(embedder=minilm_embedder)
    try:
        retriever = JinaHybridRetriever(index, k=50, mode="dense")
        ids = retriever.add_documents(sources, late_chunking=True, chunk_tokens=16)
        # The same chunks, ids and metadata as late_chunk_documents, and its vectors stored.
        chunks, vectors = lc_embeddings.late_chunk_documents(sources, chunk_tokens=16)
        assert ids == [chunk.id for chunk in chunks] and ids[0] == "doc-a#0"
        found = {doc.id: doc for doc in retriever.invoke(QUERY)}
        assert set(found) == set(ids)
        query = minilm_embedder.embed_query(QUERY)
        for chunk, vector in zip(chunks, vectors, strict=True):
            doc = found[chunk.id]
            assert doc.page_content == chunk.page_content
            assert {key: doc.metadata[key] for key in chunk.metadata} == chunk.metadata
            assert doc.metadata["dense_score"] == pytest.approx(np.dot(query, vector), abs=1e-4)

        with pytest.raises(InputError, match="chunk_tokens=16 applies to late chunking only"):
            retriever.add_documents(sources, chunk_tokens=16)
        with pytest.raises(InputError, match="late_chunking must be True or False, got str"):
            retriever.add_documents(sources, late_chunking="yes")
        # Without late chunking a Document is one record, under its own id.
        assert retriever.add_documents([Document(page_content=DOC_B, id="whole")]) == ["whole"]
        assert retriever.invoke(DOC_B, k=1, mode="bm25")[0].id == "whole"
    finally:
        index.close()


def test_langchain_bad_input_is_named(lc_embeddings):
    from langchain_core.documents import Document

    with pytest.raises(InputError, match=r"chunks\[1\] is empty or blank"):
        lc_embeddings.embed_late_chunks(["a wing", "  "])
    with pytest.raises(InputError, match="chunks is empty"):
        lc_embeddings.embed_late_chunks([])
    with pytest.raises(InputError, match=r"documents\[0\]\.metadata already has 'chunk'"):
        lc_embeddings.late_chunk_documents([Document(page_content=DOC_A, metadata={"chunk": 1})])
    with pytest.raises(InputError, match=r"documents\[1\] \(id None\) has no text"):
        lc_embeddings.late_chunk_documents([Document(DOC_A), Document(" ")])
    with pytest.raises(InputError, match="unknown chunk_by 'words'"):
        lc_embeddings.late_chunk_documents([Document(DOC_A)], chunk_by="words")


# --- LlamaIndex ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chunker(minilm_embedder):
    pytest.importorskip("llama_index.core")
    from jinarag.llama_index import JinaLateChunker

    return JinaLateChunker(embedder=minilm_embedder, chunk_tokens=16)


def test_llama_index_late_chunker_in_ingestion_pipeline_and_index(chunker, minilm_embedder):
    from llama_index.core import Document, VectorStoreIndex
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.core.schema import MetadataMode, NodeRelationship

    from jinarag.llama_index import JinaEmbedding

    docs = [
        Document(text=DOC_A, id_="doc-a", metadata={"topic": "lift"}),
        Document(text=DOC_B, id_="doc-b", metadata={"topic": "heat"}),
    ]
    nodes = IngestionPipeline(transformations=[chunker]).run(documents=docs)

    for doc in docs:
        mine = [n for n in nodes if n.ref_doc_id == doc.id_]
        assert len(mine) >= 2
        texts = [n.text for n in mine]
        for number, node in enumerate(mine):
            assert doc.text[node.start_char_idx : node.end_char_idx] == node.text
            assert node.metadata == {
                "topic": doc.metadata["topic"],
                "chunk": number,
                "span_start": node.start_char_idx,
                "span_end": node.end_char_idx,
            }
            assert "span_start" not in node.get_content(metadata_mode=MetadataMode.EMBED)
            assert "topic" in node.get_content(metadata_mode=MetadataMode.LLM)
        assert mine[1].relationships[NodeRelationship.PREVIOUS].node_id == mine[0].node_id
        assert mine[0].relationships[NodeRelationship.NEXT].node_id == mine[1].node_id
        assert_late([n.embedding for n in mine], minilm_embedder, texts)

    # The index keeps the late vectors: the score is the query's cosine with them.
    index = VectorStoreIndex(nodes, embed_model=JinaEmbedding(embedder=minilm_embedder))
    best = index.as_retriever(similarity_top_k=1).retrieve(QUERY)[0]
    assert best.node.ref_doc_id == "doc-a"
    late = next(n.embedding for n in nodes if n.node_id == best.node.node_id)
    query = minilm_embedder.embed_query(QUERY)
    assert best.score == pytest.approx(float(np.dot(query, late)), abs=1e-5)


def test_llama_index_late_chunker_embeds_only_nodes_without_embedding(chunker, minilm_embedder):
    from llama_index.core import Document
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.core.node_parser import TokenTextSplitter

    docs = [Document(text=DOC_A, id_="doc-a"), Document(text=DOC_B, id_="doc-b")]
    split = TokenTextSplitter(chunk_size=24, chunk_overlap=0).get_nodes_from_documents(docs)
    assert len([n for n in split if n.ref_doc_id == "doc-a"]) >= 3
    kept = [0.5] * minilm_embedder.dim
    split[1].embedding = kept

    nodes = IngestionPipeline(transformations=[chunker]).run(nodes=split)

    assert [n.node_id for n in nodes] == [n.node_id for n in split]
    assert nodes[1].embedding == kept
    assert all(n.embedding is None for i, n in enumerate(split) if i != 1)  # inputs unchanged
    for doc in docs:
        positions = [i for i, n in enumerate(split) if n.ref_doc_id == doc.id_]
        texts = [split[i].text.strip() for i in positions]
        expected = minilm_embedder.embed_late_chunks(texts)  # the kept node is still context
        for row, i in enumerate(positions):
            if i != 1:
                np.testing.assert_allclose(nodes[i].embedding, expected[row], atol=1e-5)


def test_llama_index_bad_input_is_named(chunker, minilm_embedder):
    from llama_index.core import Document
    from llama_index.core.schema import TextNode

    from jinarag.llama_index import JinaLateChunker

    with pytest.raises(InputError, match="normalize must be True or False, got str 'yes'"):
        JinaLateChunker(embedder=minilm_embedder, normalize="yes")
    with pytest.raises(InputError, match="unknown chunk_by 'words'"):
        JinaLateChunker(embedder=minilm_embedder, chunk_by="words")
    with pytest.raises(InputError, match="chunk_tokens must be a positive integer, got 0"):
        JinaLateChunker(embedder=minilm_embedder, chunk_tokens=0)
    with pytest.raises(InputError, match=r"metadata\['span_start'\]"):
        chunker([Document(text=DOC_A, metadata={"span_start": 3})])
    with pytest.raises(InputError, match=r"nodes\[1\] \(node 'blank'\) has no text"):
        chunker([TextNode(text="A wing.", id_="full"), TextNode(text="  ", id_="blank")])


# --- Haystack (2.x and 3.x) ---------------------------------------------------------------


@pytest.fixture(scope="module")
def hs_embedder(minilm_dir, minilm_embedder):
    pytest.importorskip("haystack")
    from jinarag.haystack import JinaDocumentEmbedder

    component = JinaDocumentEmbedder(
        model=str(minilm_dir), late_chunking=True, progress_bar=False, max_length=256
    )
    component.embedder = minilm_embedder  # the session's model, kept by warm_up
    return component


def split_documents(overlap: int = 0):
    from haystack import Document
    from haystack.components.preprocessors import DocumentSplitter

    splitter = DocumentSplitter(split_by="word", split_length=12, split_overlap=overlap)
    if hasattr(splitter, "warm_up"):
        splitter.warm_up()
    docs = [Document(content=DOC_A, id="doc-a"), Document(content=DOC_B, id="doc-b")]
    return docs, splitter.run(documents=docs)["documents"]


def test_haystack_late_chunking_in_a_pipeline(hs_embedder, minilm_embedder):
    from haystack import Pipeline
    from haystack.components.preprocessors import DocumentSplitter

    pipeline = Pipeline()
    pipeline.add_component("splitter", DocumentSplitter(split_by="word", split_length=12))
    pipeline.add_component("embedder", hs_embedder)
    pipeline.connect("splitter.documents", "embedder.documents")
    docs, _ = split_documents()
    out = pipeline.run({"splitter": {"documents": docs}})["embedder"]["documents"]

    for doc in docs:
        mine = sorted(
            (d for d in out if d.meta["source_id"] == doc.id), key=lambda d: d.meta["split_id"]
        )
        assert len(mine) >= 3
        assert any(d.content != d.content.strip() for d in mine)  # the splitter keeps spaces
        stripped = [d.content.strip() for d in mine]
        assert_late([d.embedding for d in mine], minilm_embedder, stripped)
        # Whitespace around a chunk is no token of MiniLM's: the raw chunks give the same.
        np.testing.assert_allclose(
            [d.embedding for d in mine],
            minilm_embedder.embed_late_chunks([d.content for d in mine]),
            atol=1e-5,
        )


def test_haystack_late_chunking_groups_by_source_in_split_order(hs_embedder, minilm_embedder):
    from haystack import Document

    _, chunks = split_documents()
    shuffled = chunks[::-1]
    lone = Document(content="A lone note on flutter.", id="lone")
    out = hs_embedder.run(documents=[shuffled[0], lone, *shuffled[1:]])["documents"]

    assert [d.id for d in out] == [shuffled[0].id, "lone", *(d.id for d in shuffled[1:])]
    assert all(d.embedding is None for d in chunks)  # the inputs are not changed
    by_id = {d.id: d.embedding for d in out}
    for source in ("doc-a", "doc-b"):
        mine = [d for d in chunks if d.meta["source_id"] == source]  # in split order
        np.testing.assert_allclose(
            [by_id[d.id] for d in mine],
            minilm_embedder.embed_late_chunks([d.content.strip() for d in mine]),
            atol=1e-5,
        )
    np.testing.assert_allclose(
        by_id["lone"], minilm_embedder.embed_late_chunks([lone.content])[0], atol=1e-5
    )


def test_haystack_late_chunking_survives_yaml(hs_embedder, minilm_dir):
    from haystack import Pipeline

    from jinarag.haystack import JinaDocumentEmbedder

    data = hs_embedder.to_dict()
    assert data["init_parameters"]["late_chunking"] is True
    assert JinaDocumentEmbedder.from_dict(data).to_dict() == data
    assert (
        JinaDocumentEmbedder(model=str(minilm_dir)).to_dict()["init_parameters"]["late_chunking"]
        is False
    )

    pipeline = Pipeline()
    pipeline.add_component("embedder", JinaDocumentEmbedder.from_dict(data))
    text = pipeline.dumps()
    assert "late_chunking: true" in text
    if int(version("haystack-ai").split(".")[0]) >= 3:
        loaded = Pipeline.loads(text, allowed_modules=["jinarag.haystack"])
    else:
        loaded = Pipeline.loads(text)
    component = loaded.get_component("embedder")
    assert component.late_chunking is True
    assert component.to_dict() == data


def test_haystack_bad_input_is_named(hs_embedder, minilm_dir):
    from haystack import Document

    from jinarag.haystack import JinaDocumentEmbedder

    with pytest.raises(InputError, match="late_chunking must be True or False, got str 'yes'"):
        JinaDocumentEmbedder(model=str(minilm_dir), late_chunking="yes")
    with pytest.raises(InputError, match=r"late_chunking=True\) got meta_fields_to_embed="):
        JinaDocumentEmbedder(late_chunking=True, meta_fields_to_embed=["title"])
    with pytest.raises(InputError, match=r"late_chunking=True\) got prefix='passage: '"):
        JinaDocumentEmbedder(late_chunking=True, prefix="passage: ")

    _, overlapping = split_documents(overlap=3)
    with pytest.raises(InputError, match="split_overlap=0"):
        hs_embedder.run(documents=overlapping)
    _, chunks = split_documents()
    with pytest.raises(InputError, match=r"documents\[0\] and documents\[1\] are both split_id 0"):
        hs_embedder.run(documents=[chunks[0], chunks[0]])
    blank = Document(content="   ", id="blank", meta={"source_id": "doc-a", "split_id": 9})
    with pytest.raises(InputError, match=r"documents\[1\] \(id 'blank'\) has no content"):
        hs_embedder.run(documents=[chunks[0], blank])

"""A small RAG query engine in LlamaIndex over the Cranfield abstracts, with local Jina models.

    python cookbooks/llama_index_rag.py --limit 300 --question "how does a slipstream change lift?"

Steps: index the first `--limit` Cranfield documents in a jinarag HybridIndex (Chroma + BM25),
retrieve with `JinaHybridRetriever`, rerank with `JinaRerank` when a reranker is available, and
answer with a `RetrieverQueryEngine`. The LLM is LlamaIndex's `MockLLM` (it answers with the
prompt it was given, so you see exactly what a real model would read) unless a real one is
configured: with `llama-index-llms-openai` installed and `OPENAI_API_KEY` set, `OpenAI` is used
(`OPENAI_BASE_URL` points it at any OpenAI-compatible server, `JINARAG_LLM_MODEL` names the
model). Models come from `jinarag.inference.defaults`, which falls back to MiniLM when the Jina
checkpoints cannot be had offline.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from llama_index.core.llms import LLM, MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine

import jinarag
from jinarag.evaluation import load_beir
from jinarag.inference.defaults import load_embedder, load_reranker
from jinarag.llama_index import JinaHybridRetriever, JinaRerank

CRANFIELD = Path(__file__).resolve().parent.parent / "tests" / "data" / "cranfield"
QUESTION = "what problems of heat conduction in composite slabs have been solved so far ."


def make_llm() -> LLM:
    """OpenAI when a key and the package are there; MockLLM otherwise."""
    if os.environ.get("OPENAI_API_KEY"):
        try:
            from llama_index.llms.openai import OpenAI
        except ImportError:
            print("note: OPENAI_API_KEY is set but llama-index-llms-openai is not installed.")
        else:
            model = os.environ.get("JINARAG_LLM_MODEL", "gpt-4o-mini")
            return OpenAI(model=model, api_base=os.environ.get("OPENAI_BASE_URL"))
    return MockLLM()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=CRANFIELD, help="BEIR-layout folder")
    parser.add_argument("--limit", type=int, default=300, help="documents to index")
    parser.add_argument("--question", default=QUESTION)
    parser.add_argument("--k", type=int, default=4, help="nodes given to the LLM")
    parser.add_argument("--embedder", default=None, help="model name or path (default: small)")
    parser.add_argument("--reranker", default=None, help="model name or path (default: turbo)")
    parser.add_argument("--no-rerank", action="store_true", help="skip the reranker")
    parser.add_argument("--index-dir", type=Path, default=None, help="keep the index here")
    args = parser.parse_args()

    embedder, note = load_embedder(args.embedder)
    print(f"embedder: {embedder.name}" + (f"  ({note})" if note else ""))
    reranker, note = (None, "--no-rerank") if args.no_rerank else load_reranker(args.reranker)
    reranker_name = reranker.name if reranker is not None else "none"
    print(f"reranker: {reranker_name}" + (f"  ({note})" if note else ""))
    llm = make_llm()
    print(f"llm: {llm.class_name()}")

    with tempfile.TemporaryDirectory() as tmp:
        path = args.index_dir if args.index_dir is not None else Path(tmp)
        with jinarag.HybridIndex(path=path, collection="cranfield", embedder=embedder) as index:
            # The first --limit documents with text, in file order. Cranfield's text already
            # starts with its title, so the text alone is indexed and the title kept as metadata.
            ids, texts, metadatas = load_beir(args.data).records(
                limit=args.limit, title_in_text=False
            )
            started = time.perf_counter()
            index.add(texts, ids=ids, metadatas=metadatas)
            print(f"indexed {len(ids)} documents in {time.perf_counter() - started:.1f} s")

            # With a reranker, retrieve more candidates and let it keep the best k.
            if reranker is not None:
                retriever = JinaHybridRetriever(index, similarity_top_k=args.k * 3)
                postprocessors = [JinaRerank(reranker=reranker, top_n=args.k)]
            else:
                retriever = JinaHybridRetriever(index, similarity_top_k=args.k)
                postprocessors = []
            engine = RetrieverQueryEngine.from_args(
                retriever, llm=llm, node_postprocessors=postprocessors
            )
            response = engine.query(args.question)

    print(f"question: {args.question}")
    print("sources:")
    for rank, source in enumerate(response.source_nodes, start=1):
        meta = source.node.metadata
        scores = f"{meta['score_space']} {meta['score']:.4f}"
        if "retrieval_score" in meta:  # reranked: the node score is the reranker's
            scores = f"relevance {source.score:.3f} · {scores}"
        print(f"  {rank}. [{source.node.node_id}] {scores} · {meta['title'][:70]}")
    print(f"answer: {response}")


if __name__ == "__main__":
    main()

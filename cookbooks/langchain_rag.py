"""A small RAG chain in LangChain over the Cranfield abstracts, with local Jina models.

    python cookbooks/langchain_rag.py --limit 300 --question "how do wings behave in a slipstream?"

Steps: index the first `--limit` Cranfield documents in a jinarag HybridIndex (Chroma + BM25),
retrieve with `JinaHybridRetriever`, rerank with `JinaReranker` when a reranker is available,
and answer with an LCEL chain. The answer comes from a fake chat model unless a real one is
configured: with `langchain-openai` installed and `OPENAI_API_KEY` set, `ChatOpenAI` is used
(`OPENAI_BASE_URL` points it at any OpenAI-compatible server, `JINARAG_LLM_MODEL` names the
model). Models come from `jinarag.inference.defaults`, which falls back to MiniLM when the Jina
checkpoints cannot be had offline.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from operator import itemgetter
from pathlib import Path

from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough

import jinarag
from jinarag.evaluation import load_beir
from jinarag.inference.defaults import load_embedder, load_reranker
from jinarag.langchain import JinaHybridRetriever, JinaReranker

CRANFIELD = Path(__file__).resolve().parent.parent / "tests" / "data" / "cranfield"
QUESTION = "what similarity laws must be obeyed when constructing aeroelastic models of heated high speed aircraft ."  # noqa: E501

PROMPT = ChatPromptTemplate.from_template(
    "Answer the question using only the context.\n\nContext:\n{context}\n\nQuestion: {question}"
)


def chat_model():
    """ChatOpenAI when configured, otherwise a fake model that says it is one."""
    if os.environ.get("OPENAI_API_KEY"):
        try:
            from langchain_openai import ChatOpenAI
        except ImportError:
            print("note: OPENAI_API_KEY is set but langchain-openai is not installed; fake LLM.")
        else:
            return ChatOpenAI(model=os.environ.get("JINARAG_LLM_MODEL", "gpt-4o-mini"))
    return FakeListChatModel(
        responses=["(fake LLM) Set OPENAI_API_KEY and install langchain-openai for a real answer."]
    )


def format_docs(docs: list[Document]) -> str:
    return "\n\n".join(f"[{d.id}] {d.page_content}" for d in docs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=CRANFIELD, help="BEIR-layout folder")
    parser.add_argument("--limit", type=int, default=300, help="documents to index")
    parser.add_argument("--question", default=QUESTION)
    parser.add_argument("--k", type=int, default=4, help="documents given to the LLM")
    parser.add_argument("--embedder", default=None, help="model name or path (default: small)")
    parser.add_argument("--reranker", default=None, help="model name or path (default: turbo)")
    parser.add_argument("--index-dir", type=Path, default=None, help="keep the index here")
    args = parser.parse_args()

    embedder, note = load_embedder(args.embedder)
    print(f"embedder: {embedder.name}" + (f"  ({note})" if note else ""))
    reranker, note = load_reranker(args.reranker)
    print(
        f"reranker: {reranker.name if reranker is not None else 'none'}"
        + (f"  ({note})" if note else "")
    )  # noqa: E501

    with tempfile.TemporaryDirectory() as tmp:
        path = args.index_dir if args.index_dir is not None else Path(tmp)
        index = jinarag.HybridIndex(path=path, collection="cranfield", embedder=embedder)
        # The first --limit documents with text, in file order. Cranfield's text already
        # starts with its title, so the text alone is indexed and the title kept as metadata.
        ids, texts, metadatas = load_beir(args.data).records(limit=args.limit, title_in_text=False)
        started = time.perf_counter()
        index.add(texts, ids=ids, metadatas=metadatas)
        print(f"indexed {len(ids)} documents in {time.perf_counter() - started:.1f} s")

        # With a reranker, fetch more candidates and let it pick the best k.
        reranking = reranker is not None
        retriever = JinaHybridRetriever(index=index, k=args.k * 3 if reranking else args.k)
        compressor = JinaReranker(reranker=reranker, top_n=args.k) if reranking else None

        def retrieve(question: str) -> list[Document]:
            docs = retriever.invoke(question)
            if compressor is None:
                return docs
            return list(compressor.compress_documents(docs, question))

        # The chain returns its sources next to the answer, so they can be shown.
        rag = (
            RunnablePassthrough.assign(sources=itemgetter("question") | RunnableLambda(retrieve))
            .assign(context=lambda x: format_docs(x["sources"]))
            .assign(answer=PROMPT | chat_model() | StrOutputParser())
        )
        result = rag.invoke({"question": args.question})
        index.close()

    print(f"question: {args.question}")
    print("sources:")
    for rank, doc in enumerate(result["sources"], start=1):
        meta = doc.metadata
        scores = [f"{meta['score_space']} {meta['score']:.4f}"]
        if "relevance_score" in meta:
            scores.insert(0, f"relevance {meta['relevance_score']:.3f}")
        print(f"  {rank}. [{doc.id}] {' · '.join(scores)} · {meta['title'][:70]}")
    print(f"answer: {result['answer']}")


if __name__ == "__main__":
    main()

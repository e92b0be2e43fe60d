"""A small RAG pipeline in Haystack (2.x or 3.x) over the Cranfield abstracts, locally.

    python cookbooks/haystack_rag.py --limit 300 --question "how do wings behave in a slipstream?"

Steps: index the first `--limit` Cranfield documents in a jinarag HybridIndex (Chroma + BM25),
then run a Haystack pipeline: `JinaTextEmbedder` -> `JinaHybridRetriever` -> `JinaRanker` (when
a reranker is available) -> `ChatPromptBuilder` -> a generator. The text embedder's vector drives
the retriever's dense side; BM25 reads the question. The generator is a fake one unless a real
one is configured: with `OPENAI_API_KEY` set, Haystack's `OpenAIChatGenerator` is used
(`OPENAI_BASE_URL` points it at any OpenAI-compatible server, `JINARAG_LLM_MODEL` names the
model). Models come from `jinarag.inference.defaults`, which falls back to MiniLM when the Jina
checkpoints cannot be had offline. `--yaml FILE` saves the pipeline (without the generator).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from haystack import Pipeline, component
from haystack.components.builders import ChatPromptBuilder
from haystack.dataclasses import ChatMessage

import jinarag
from jinarag.evaluation import load_beir
from jinarag.haystack import JinaHybridRetriever, JinaRanker, JinaTextEmbedder
from jinarag.inference.defaults import load_embedder, load_reranker

CRANFIELD = Path(__file__).resolve().parent.parent / "tests" / "data" / "cranfield"
QUESTION = "what similarity laws must be obeyed when constructing aeroelastic models of heated high speed aircraft ."  # noqa: E501
TEMPLATE = [
    ChatMessage.from_user(
        "Answer the question using only the context.\n\nContext:\n"
        "{% for doc in documents %}[{{ doc.id }}] {{ doc.content }}\n{% endfor %}\n"
        "Question: {{ question }}"
    )
]


@component
class FakeChatGenerator:
    """Stands in for an LLM when none is configured: says what it was given."""

    @component.output_types(replies=list[ChatMessage])
    def run(self, messages: list[ChatMessage]) -> dict[str, list[ChatMessage]]:
        size = sum(len(m.text or "") for m in messages)
        return {
            "replies": [
                ChatMessage.from_assistant(
                    f"(fake LLM) got a {size}-character prompt. "
                    "Set OPENAI_API_KEY for a real answer."
                )
            ]
        }


def generator():
    """OpenAIChatGenerator when configured, otherwise the fake one."""
    if os.environ.get("OPENAI_API_KEY"):
        from haystack.components.generators.chat import OpenAIChatGenerator

        return OpenAIChatGenerator(
            model=os.environ.get("JINARAG_LLM_MODEL", "gpt-4o-mini"),
            api_base_url=os.environ.get("OPENAI_BASE_URL"),
        )
    return FakeChatGenerator()


def build_pipeline(index: jinarag.HybridIndex, reranker: jinarag.Reranker | None, k: int):
    """Text embedder -> retriever -> (ranker) -> prompt builder, from serialisable settings."""
    pipeline = Pipeline()
    # The query vector comes from the same model the index was built with.
    text_embedder = JinaTextEmbedder(model=index.embedder.name)
    text_embedder.embedder = index.embedder  # share the loaded model: warm_up keeps it
    pipeline.add_component("text_embedder", text_embedder)
    # With a reranker, fetch more candidates and let it pick the best k.
    retriever = JinaHybridRetriever(
        path=index.path,
        collection=index.collection_name,
        model=index.embedder.name,
        top_k=k * 3 if reranker is not None else k,
    )
    retriever.index = index  # reuse the open index and its model: warm_up keeps them
    pipeline.add_component("retriever", retriever)
    # The dense side uses the embedder's vector; BM25 reads the query text.
    pipeline.connect("text_embedder.embedding", "retriever.query_embedding")
    pipeline.add_component(
        "prompt_builder",
        ChatPromptBuilder(template=TEMPLATE, required_variables=["question", "documents"]),
    )
    if reranker is not None:
        ranker = JinaRanker(model=reranker.name, top_k=k)
        ranker.reranker = reranker
        pipeline.add_component("ranker", ranker)
        pipeline.connect("retriever.documents", "ranker.documents")
        pipeline.connect("ranker.documents", "prompt_builder.documents")
    else:
        pipeline.connect("retriever.documents", "prompt_builder.documents")
    return pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=CRANFIELD, help="BEIR-layout folder")
    parser.add_argument("--limit", type=int, default=300, help="documents to index")
    parser.add_argument("--question", default=QUESTION)
    parser.add_argument("--k", type=int, default=4, help="documents given to the LLM")
    parser.add_argument("--embedder", default=None, help="model name or path (default: small)")
    parser.add_argument("--reranker", default=None, help="model name or path (default: turbo)")
    parser.add_argument("--index-dir", type=Path, default=None, help="keep the index here")
    parser.add_argument("--yaml", type=Path, default=None, help="save the pipeline as YAML")
    args = parser.parse_args()

    embedder, note = load_embedder(args.embedder)
    print(f"embedder: {embedder.name}" + (f"  ({note})" if note else ""))
    reranker, note = load_reranker(args.reranker)
    name = reranker.name if reranker is not None else "none"
    print(f"reranker: {name}" + (f"  ({note})" if note else ""))

    with tempfile.TemporaryDirectory() as tmp:
        path = args.index_dir if args.index_dir is not None else Path(tmp)
        index = jinarag.HybridIndex(path=path, collection="cranfield", embedder=embedder)
        # The first --limit documents with text, in file order. Cranfield's text already
        # starts with its title, so the text alone is indexed and the title kept as metadata.
        ids, texts, metadatas = load_beir(args.data).records(limit=args.limit, title_in_text=False)
        started = time.perf_counter()
        index.add(texts, ids=ids, metadatas=metadatas)
        print(f"indexed {len(ids)} documents in {time.perf_counter() - started:.1f} s")

        rag = build_pipeline(index, reranker, args.k)
        if args.yaml is not None:
            args.yaml.write_text(rag.dumps(), encoding="utf-8")
            print(f"pipeline saved to {args.yaml}")
        rag.add_component("llm", generator())
        rag.connect("prompt_builder.prompt", "llm.messages")
        last = "ranker" if reranker is not None else "retriever"
        inputs = {
            "text_embedder": {"text": args.question},
            "retriever": {"query": args.question},
            "prompt_builder": {"question": args.question},
        }
        if reranker is not None:
            inputs["ranker"] = {"query": args.question}
        result = rag.run(inputs, include_outputs_from={last})
        index.close()

    print(f"question: {args.question}")
    print("sources:")
    for rank, doc in enumerate(result[last]["documents"], start=1):
        meta = doc.meta
        scores = [f"{meta['score_space']} {meta['score']:.4f}"]
        if reranker is not None:
            scores.insert(0, f"relevance {doc.score:.3f}")
        print(f"  {rank}. [{doc.id}] {' · '.join(scores)} · {meta['title'][:70]}")
    print(f"answer: {result['llm']['replies'][0].text}")


if __name__ == "__main__":
    main()

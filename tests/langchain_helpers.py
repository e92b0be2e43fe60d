"""Helpers for the LangChain tests: Cranfield records and a HybridIndex built over them."""

from __future__ import annotations

from pathlib import Path

from jinarag.evaluation import load_beir


def cranfield_records(cranfield_dir: Path, limit: int) -> list[dict]:
    """The first `limit` Cranfield documents with text, as dicts with _id, title and text."""
    corpus = load_beir(cranfield_dir).corpus
    records = [{"_id": i, "title": t, "text": x} for i, (t, x) in corpus.items() if x.strip()]
    return records[:limit]


def build_index(path: Path, embedder, records: list[dict]):
    """A HybridIndex at `path` holding `records` (ids = Cranfield ids, title in metadata)."""
    import jinarag

    index = jinarag.HybridIndex(path=path, collection="cranfield", embedder=embedder)
    index.add(
        [r["text"] for r in records],
        ids=[r["_id"] for r in records],
        metadatas=[{"title": r["title"]} for r in records],
    )
    return index


def distinctive_sentence(records: list[dict], position: int) -> tuple[str, str]:
    """A sentence copied from record `position` that occurs in no other record, and its id.

    The expected answer to the sentence used as a query is then known without any retrieval.
    """
    record = records[position]
    # Body sentences only (the first one repeats the title), longest first.
    body = record["text"].split(" . ")[1:]
    for sentence in sorted((s.strip() for s in body), key=len, reverse=True):
        if len(sentence.split()) >= 12 and sum(sentence in r["text"] for r in records) == 1:
            return sentence, record["_id"]
    raise AssertionError(f"record {record['_id']} has no sentence of its own")

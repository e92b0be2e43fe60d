"""The BEIR reader: a judged collection in the BEIR folder layout, read into a :class:`Dataset`.

A BEIR folder holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``,
``text``) and ``qrels/<split>.tsv`` (``query-id``, ``corpus-id``, ``score`` with a header line).
Documents are indexed with :func:`jinarag.retrieval.ingest.readers.document_text`, the one
title rule every reader shares. Only queries with at least one relevant document are scored.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinarag.errors import InputError
from jinarag.retrieval.ingest.readers import document_text
from jinarag.validation import check_bool, check_instance, check_path, positive_int

__all__ = ["Dataset", "load_beir"]


@dataclass(frozen=True)
class Dataset:
    """A judged retrieval collection: ``corpus[id] = (title, text)``,
    ``queries[id] = text``, ``qrels[query_id][doc_id] = relevance``.

    Example:
        >>> dataset = load_beir("tests/data/cranfield")
        >>> ids, texts, metadatas = dataset.records(limit=100)
    """

    name: str
    corpus: dict[str, tuple[str, str]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]

    def records(
        self, *, limit: int | None = None, title_in_text: bool = True
    ) -> tuple[list[str], list[str], list[dict[str, Any] | None]]:
        """``(ids, texts, metadatas)`` ready for :meth:`jinarag.HybridIndex.add`: the first
        ``limit`` documents that have text, in file order, the title in the metadata and, with
        ``title_in_text``, before the text too (skip that when the text already starts with it).
        """

        limit = positive_int("limit", limit, allow_none=True, allow_zero=True)
        title_in_text = check_bool("title_in_text", title_in_text)

        def text_of(doc_id: str) -> str:
            title, text = self.corpus[doc_id]
            return document_text(title, text) if title_in_text else text

        ids = [i for i in self.corpus if text_of(i).strip()][:limit]
        texts = [text_of(i) for i in ids]
        metas: list[dict[str, Any] | None] = [
            {"title": self.corpus[i][0]} if self.corpus[i][0] else None for i in ids
        ]
        return ids, texts, metas

    def judged_queries(self) -> list[str]:
        """Ids of the queries that have at least one relevant document, in file order."""
        return [q for q in self.queries if any(r > 0 for r in self.qrels.get(q, {}).values())]


def load_beir(
    path: str | os.PathLike[str], split: str = "test", *, require_qrels: bool = True
) -> Dataset:
    """Read a BEIR-layout folder. ``require_qrels=False``: a folder without
    ``qrels/<split>.tsv`` reads as a dataset with no judgements (for distillation).

    Raises:
        InputError: a file is missing or malformed (the message names it).
    """
    check_path("path", path, what="a BEIR dataset folder")
    check_instance("split", split, str, "name the qrels file, e.g. 'test' for qrels/test.tsv")
    require_qrels = check_bool("require_qrels", require_qrels)
    root = Path(path)
    files = {
        "corpus": root / "corpus.jsonl",
        "queries": root / "queries.jsonl",
        "qrels": root / "qrels" / f"{split}.tsv",
    }
    for what, file in files.items():
        if what == "qrels" and not require_qrels and not file.exists():
            continue
        if not file.is_file():
            raise InputError(
                f"{str(root)!r} is not a BEIR dataset folder: {what} file {str(file)!r} is missing "
                "(expected corpus.jsonl, queries.jsonl and qrels/<split>.tsv)"
            )

    def jsonl(file: Path) -> Iterable[dict[str, Any]]:
        with file.open(encoding="utf-8") as lines:
            for n, line in enumerate(lines, start=1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except ValueError as exc:
                        raise InputError(f"{file}:{n} is not valid JSON: {exc}") from exc

    corpus = {
        str(d["_id"]): (str(d.get("title") or ""), str(d.get("text") or ""))
        for d in jsonl(files["corpus"])
    }
    queries = {str(q["_id"]): str(q["text"]) for q in jsonl(files["queries"])}
    qrels: dict[str, dict[str, int]] = {}
    if not files["qrels"].exists():
        return Dataset(root.name, corpus, queries, qrels)
    with files["qrels"].open(encoding="utf-8", newline="") as f:
        rows = csv.reader(f, delimiter="\t")
        for n, row in enumerate(rows, start=1):
            if n == 1 and row and not row[-1].lstrip("-").isdigit():
                continue  # header
            if len(row) < 3:
                continue
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    return Dataset(root.name, corpus, queries, qrels)

"""What training reads from a BEIR dataset: checked queries, candidate lists from the project's
own retrieval, fine-tuning groups (a judged positive and mined hard negatives), title queries
(the corpus's own titles as queries, each answered by its document's text) and distillation
pairs.

Candidates come from BM25 over the dataset's corpus (the analyser :class:`HybridIndex` uses),
or from a :class:`~jinarag.HybridIndex` already built over it (``index=``: fused dense + BM25).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jinarag.errors import InputError
from jinarag.evaluation.beir import Dataset, load_beir
from jinarag.evaluation.runner import select_queries

if TYPE_CHECKING:
    from jinarag.retrieval.index import HybridIndex

__all__ = [
    "Group",
    "candidate_lists",
    "check_dataset",
    "distillation_pairs",
    "document_texts",
    "fine_tuning_groups",
    "open_dataset",
    "title_queries",
    "training_queries",
    "with_title_queries",
]

# A title shorter than this says too little to be a query; a text shorter than this (once the
# title is taken out) is too little to answer one.
TITLE_QUERY_MIN_WORDS = 3
TITLE_ANSWER_MIN_WORDS = 10


@dataclass(frozen=True)
class Group:
    """One query and the texts of its positive document and hard negatives, positive first."""

    query: str
    documents: tuple[str, ...]


def open_dataset(dataset: Dataset | str | os.PathLike[str], *, judged: bool) -> Dataset:
    """``dataset`` as a :class:`Dataset` (a BEIR folder is read), checked by
    :func:`check_dataset`. ``judged=False`` accepts a folder without qrels."""
    if not isinstance(dataset, Dataset):
        dataset = load_beir(dataset, require_qrels=judged)
    check_dataset(dataset, judged=judged)
    return dataset


def check_dataset(dataset: Dataset, *, judged: bool) -> None:
    """An empty corpus, no queries or (``judged``) no positive judgement: an InputError naming
    the dataset and the fix."""
    if not any(title.strip() or text.strip() for title, text in dataset.corpus.values()):
        raise InputError(
            f"dataset {dataset.name!r} has an empty corpus: corpus.jsonl holds no document with "
            "text. Point at a BEIR folder whose corpus.jsonl has records with a 'text' field."
        )
    if not dataset.queries:
        raise InputError(
            f"dataset {dataset.name!r} has no queries: queries.jsonl is empty. Add records "
            "with '_id' and 'text'."
        )
    if judged and not dataset.judged_queries():
        raise InputError(
            f"dataset {dataset.name!r} has no qrels: no query of queries.jsonl has a document "
            "judged relevant (score > 0) in qrels/test.tsv. Fine-tuning learns from judged "
            "pairs: add judgements, or distil a reranker you have with `jinarag distill`, "
            "which needs none."
        )


def training_queries(dataset: Dataset, which: str, *, judged: bool) -> list[str]:
    """The query ids of the ``which`` half (``"odd"``, ``"even"``, ``"all"``), as the eval
    runner splits them; judged ones only when ``judged``. None selected is an InputError."""
    ids = select_queries(dataset, which, judged=judged)
    if not ids:
        kind = "judged " if judged else ""
        raise InputError(
            f"dataset {dataset.name!r} has no {kind}queries in the {which!r} half: choose "
            "another split (queries='all' uses every one)."
        )
    return ids


def document_texts(dataset: Dataset) -> dict[str, str]:
    """``{doc id: text}`` as the index stores it (title before the text)."""
    ids, texts, _ = dataset.records()
    return dict(zip(ids, texts, strict=True))


def candidate_lists(
    dataset: Dataset,
    query_ids: list[str],
    k: int,
    *,
    index: HybridIndex | None = None,
    texts: dict[str, str] | None = None,
) -> dict[str, list[str]]:
    """Each query's ``k`` best documents (ids, best first): BM25 over the corpus, or
    ``index.search`` (hybrid, no reranker) when an index is given."""
    if index is not None:
        return {
            q: [hit.id for hit in index.search(dataset.queries[q], k=k, rerank=False)]
            for q in query_ids
        }
    from jinarag.retrieval.keyword.bm25 import BM25Index, Tokenizer
    from jinarag.retrieval.search.plan import DEFAULT_STEMMER, DEFAULT_STOPWORDS

    texts = texts if texts is not None else document_texts(dataset)
    bm25 = BM25Index(tokenizer=Tokenizer(DEFAULT_STOPWORDS, DEFAULT_STEMMER))
    bm25.upsert(list(texts), list(texts.values()))
    return {q: [doc for doc, _ in bm25.search(dataset.queries[q], k=k)] for q in query_ids}


def fine_tuning_groups(
    dataset: Dataset,
    query_ids: list[str],
    candidates: dict[str, list[str]],
    *,
    negatives: int,
    seed: int,
    texts: dict[str, str],
) -> list[Group]:
    """One group per (query, relevant document), in a seeded shuffled order: the query's text,
    the positive's, then those of ``negatives`` documents drawn from the query's candidates
    that are not judged relevant (hard negatives), topped up from the rest of the corpus when
    too few."""
    rng = random.Random(seed)
    corpus = list(texts)
    groups = []
    for q in query_ids:
        relevant = {d for d, r in dataset.qrels.get(q, {}).items() if r > 0}
        hard = [d for d in candidates.get(q, []) if d not in relevant and d in texts]
        for positive in sorted(d for d in relevant if d in texts):
            chosen = rng.sample(hard, min(negatives, len(hard)))
            if len(chosen) < negatives:
                rest = [d for d in corpus if d not in relevant and d not in chosen]
                if len(rest) < negatives - len(chosen):
                    raise InputError(
                        f"dataset {dataset.name!r}: query {q!r} has only "
                        f"{len(rest) + len(chosen)} documents not judged relevant, fewer than "
                        f"negatives={negatives}. Pass a smaller negatives count."
                    )
                chosen += rng.sample(rest, negatives - len(chosen))
            groups.append(Group(dataset.queries[q], tuple(texts[d] for d in (positive, *chosen))))
    rng.shuffle(groups)
    return groups


def title_queries(dataset: Dataset) -> Dataset:
    """The corpus's titles as judged queries: each title (of at least
    ``TITLE_QUERY_MIN_WORDS`` words) is a query whose one relevant document is its own, and
    every document is its text with the title taken out, so a title is answered by what the
    document says, not by finding itself. Query ids are ``"title:<doc id>"``; a corpus
    without such a title is an InputError.

    Titles are the queries a collection brings with it: on Cranfield a reranker fine-tuned on
    them ranks held-out judged queries far better than one fine-tuned on half of the judged
    queries alone (benchmarks/README.md): its 1,390 titles cover the collection's vocabulary,
    its 113 training queries do not.
    """
    corpus: dict[str, tuple[str, str]] = {}
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for doc_id, (title, text) in dataset.corpus.items():
        title, body = title.strip(), text.strip()
        if title and body.lower().startswith(title.lower()):
            body = body[len(title) :].strip()  # collections that repeat the title in the text
        corpus[doc_id] = ("", body)
        query = title.rstrip(" .").strip()
        if (
            len(query.split()) >= TITLE_QUERY_MIN_WORDS
            and len(body.split()) >= TITLE_ANSWER_MIN_WORDS
        ):
            queries[f"title:{doc_id}"] = query
            qrels[f"title:{doc_id}"] = {doc_id: 1}
    if not queries:
        raise InputError(
            f"dataset {dataset.name!r} has no titles to train on: no document of corpus.jsonl "
            f"has a 'title' of {TITLE_QUERY_MIN_WORDS} words or more and a text of "
            f"{TITLE_ANSWER_MIN_WORDS} words beyond it. Train without titles."
        )
    return Dataset(f"{dataset.name} (title queries)", corpus, queries, qrels)


def with_title_queries(dataset: Dataset, query_ids: list[str]) -> tuple[Dataset, list[str]]:
    """``dataset`` with its titles added to its queries, and ``query_ids`` with theirs: the
    unlabeled queries distillation can add (their candidates are whole documents, as a
    reranker sees them)."""
    titles = title_queries(dataset)
    merged = Dataset(
        dataset.name, dataset.corpus, {**dataset.queries, **titles.queries}, dataset.qrels
    )
    return merged, [*query_ids, *titles.queries]


def distillation_pairs(
    dataset: Dataset, candidates: dict[str, list[str]], texts: dict[str, str]
) -> list[tuple[str, str]]:
    """(query text, document text) for every candidate of every query, query by query."""
    return [
        (dataset.queries[q], texts[d]) for q, docs in candidates.items() for d in docs if d in texts
    ]

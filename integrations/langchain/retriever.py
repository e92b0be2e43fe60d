"""`JinaHybridRetriever`: a LangChain retriever over a `jinarag.HybridIndex`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables.config import run_in_executor
from pydantic import ConfigDict

from jinarag.langchain._loading import document_list
from jinarag.langchain.conventions import call_where, search_options
from jinarag.retrieval.search.plan import MODES, plan_search
from jinarag.retrieval.write.records import content_id
from jinarag.validation import (
    check_bool,
    check_choice,
    check_keywords,
    positive_int,
)

# The search options a retriever holds, each checked as `HybridIndex.search` checks it.
SEARCH = ("k", "mode", "fusion", "weights", "where")


class JinaHybridRetriever(BaseRetriever):
    """Dense + BM25 retrieval from a `jinarag.HybridIndex`, as a LangChain retriever.

    Each document carries the hit's id as `Document.id` and, in its metadata, the stored
    metadata plus the scores (`score`, `score_space`, `dense_rank`, `dense_score`, `bm25_rank`,
    `bm25_score`, `rerank_score` where present). `k`, `mode`, `fusion`, `weights` and `where`
    can also be given per call: `retriever.invoke(query, k=3)`. `VectorStoreRetriever`'s
    names work too: `search_kwargs={"k": 3, "filter": {...}}` when it is made (mapped onto
    the fields), and `filter` (our `where`) per call. The fields are checked when
    the retriever is made (a bad one is an `InputError`), `weights` as for `mode="hybrid"`,
    the mode they serve. `add_documents` stores LangChain Documents in the index, whole or
    split by late chunking.

    Example:
        >>> import jinarag
        >>> from jinarag.langchain import JinaHybridRetriever
        >>> embedder = jinarag.Embedder.from_pretrained("small")
        >>> index = jinarag.HybridIndex(path="./index", embedder=embedder)
        >>> retriever = JinaHybridRetriever(index, k=4, mode="hybrid", fusion="rrf")
        >>> docs = retriever.invoke("lift of a wing in a slipstream")
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    index: Any
    """The `jinarag.HybridIndex` to search (typed loosely so importing this needs no chromadb)."""
    k: int = 4
    """How many documents to return."""
    mode: str = "hybrid"
    """`"hybrid"`, `"dense"` or `"bm25"`."""
    fusion: str | None = None
    """How hybrid mode fuses the rankings: `"rrf"`, `"relative"`, `"dbsf"`; None: the index's."""
    weights: Sequence[float] | None = None
    """`(dense, bm25)` fusion weights (hybrid mode only); None: the index's."""
    where: dict[str, Any] | None = None
    """A Chroma metadata filter applied to both sides."""

    def __init__(self, index: Any, **data: Any) -> None:
        # Checked here, so a bad value is our InputError when the retriever is made (not
        # pydantic's ValidationError, nor an error at the first search).
        data = search_options("JinaHybridRetriever", data)  # VectorStoreRetriever's names
        check_keywords("JinaHybridRetriever", data, (*type(self).model_fields, "search_kwargs"))
        # Imported here: chromadb is slow to import, and an index has imported it already.
        from jinarag.retrieval.index import checked_index

        index = checked_index(index)
        if "k" in data:
            data["k"] = positive_int("k", data["k"])
        fields = type(self).model_fields
        options = {name: data.get(name, fields[name].default) for name in SEARCH}
        check_choice("mode", options.pop("mode"), MODES)
        # The rest as a hybrid search checks them: weights given with another mode are kept for
        # the calls that ask for mode="hybrid".
        plan_search(index.defaults, "", mode="hybrid", **options)
        super().__init__(index=index, **data)

    def add_documents(
        self,
        documents: Sequence[Document],
        *,
        late_chunking: bool = False,
        chunk_tokens: int | None = None,
        chunk_by: str | None = None,
        show_progress: bool = False,
    ) -> list[str]:
        """Store Documents in the index (`jinarag.HybridIndex.add`); returns the record ids.

        Each Document's `page_content` is the text, its `metadata` the metadata and its `id`
        the id (a Document without one gets the hash of its text and metadata, the id the
        index would give it). With `late_chunking=True` each Document is split into chunks
        embedded by late chunking (`add(..., chunking="late")`: the model reads the whole
        Document, and each chunk's vector is the mean of its own tokens' output states); the
        records are the chunks, with ids `"{id}#{n}"` and metadata `doc_id`, `chunk`,
        `span_start` and `span_end` added. `chunk_tokens` (default 256) and
        `chunk_by` (`"tokens"` or `"sentences"`) apply to late chunking only; with it off,
        giving either is an `InputError`. Errors name items as `texts[i]`/`metadatas[i]`,
        `i` the position in `documents`.
        """
        late_chunking = check_bool("late_chunking", late_chunking)
        items = document_list(documents)
        ids = None
        if any(doc.id is not None for doc in items):
            ids = [
                doc.id if doc.id is not None else content_id(doc.page_content, doc.metadata)
                for doc in items
            ]
        return self.index.add(
            [doc.page_content for doc in items],
            ids=ids,
            metadatas=[doc.metadata or None for doc in items],
            show_progress=show_progress,
            chunking="late" if late_chunking else None,
            chunk_tokens=chunk_tokens,
            chunk_by=chunk_by,
        )

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
        mode: str | None = None,
        fusion: str | None = None,
        weights: Sequence[float] | None = None,
        where: dict[str, Any] | None = None,
        filter: dict[str, Any] | None = None,
    ) -> list[Document]:
        where = call_where(where, filter)
        options = {
            "k": self.k,
            "mode": self.mode,
            "fusion": self.fusion,
            "weights": self.weights,
            "where": self.where,
        }
        # Values given to invoke() (`retriever.invoke(query, k=3)`) win over the fields.
        per_call = {"k": k, "mode": mode, "fusion": fusion, "weights": weights, "where": where}
        options.update({name: value for name, value in per_call.items() if value is not None})
        hits = self.index.search(query, **options)
        return [Document(page_content=h.text, metadata=h.scored_metadata(), id=h.id) for h in hits]

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        **kwargs: Any,
    ) -> list[Document]:
        # The index does blocking work (model, Chroma, BM25): run the sync path in a thread.
        return await run_in_executor(
            None, self._get_relevant_documents, query, run_manager=run_manager.get_sync(), **kwargs
        )

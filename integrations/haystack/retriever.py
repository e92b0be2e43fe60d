"""`JinaHybridRetriever`: dense + BM25 retrieval over a `jinarag.HybridIndex` in Haystack."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from haystack import Document, component, default_to_dict
from haystack.utils import ComponentDevice

from jinarag.haystack._common import (
    checked_options,
    from_dict,
    load_options,
    model_name,
    options_init_parameters,
)
from jinarag.haystack.filters import to_where
from jinarag.inference.defaults import DEFAULT_EMBEDDER
from jinarag.inference.resolve import resolve
from jinarag.retrieval.search.plan import MODES, plan_search, search_defaults
from jinarag.validation import check_choice, check_instance, check_text, positive_int

if TYPE_CHECKING:
    from jinarag.retrieval.index import HybridIndex


@component
class JinaHybridRetriever:
    """Retrieves Documents from a `jinarag.HybridIndex`: Chroma vectors and BM25, fused.

    The index is opened by `warm_up()` (or the first `run`) from serialisable settings, so the
    component round-trips through `to_dict`/YAML: `path` (an embedded Chroma store) or `url` (a
    Chroma server), `collection`, and `model`, the embedder the collection was built with. Fill
    the index with `jinarag.HybridIndex(...).add(...)`, `jinarag index`, or `retriever.index`.

    `run` takes the query text (BM25 reads it; the index embeds it) and, optionally, the
    `query_embedding` a `JinaTextEmbedder` with the same `model` computed upstream, which then
    drives the dense side instead.

    Each Document carries `id`, `content`, `score` (fused, cosine or BM25 by `mode`) and `meta`:
    the stored metadata plus `score`, `score_space` and each source's rank and score.
    `filters` is a Haystack filter (`{"field": "meta.year", "operator": ">=", "value": 1960}`,
    `{"operator": "AND", "conditions": [...]}`), translated to a Chroma `where` by
    `jinarag.haystack.filters` (a dict without Haystack's `operator` key is taken as a Chroma
    `where` already), applied to both sources; a `filters` given to `run` replaces the one
    given here.

    The embedder's loading options are keyword arguments named as in `jinarag.LoadOptions`
    (`dtype`, `max_length`, `revision`, `local_files_only`, `max_batch_tokens`, `quantize`,
    `attention`, `num_threads`; `device` is the usual Haystack parameter). They are checked
    when the component is created, kept in `load_options`, and written by `to_dict`.

    Example:
        >>> from jinarag.haystack import JinaHybridRetriever
        >>> retriever = JinaHybridRetriever(path="./store", model="small", top_k=5)
        >>> docs = retriever.run(query="what lifts a wing?")["documents"]
    """

    def __init__(
        self,
        path: str | Path | None = None,
        url: str | None = None,
        collection: str = "jinarag",
        model: str | Path = DEFAULT_EMBEDDER,
        top_k: int = 10,
        mode: str = "hybrid",
        fusion: str | None = None,
        weights: Sequence[float] | None = None,
        filters: dict[str, Any] | None = None,
        device: ComponentDevice | str | None = None,
        **load_options: Any,
    ) -> None:
        if path is not None:
            check_instance("path", path, (str, os.PathLike), "pass the store's folder")
        self.path = os.fspath(path) if path is not None else None
        if url is not None:
            check_instance("url", url, str, "pass the Chroma server's URL as a string")
        self.url = url
        self.collection = check_text(collection, "collection")
        self.model = model_name(model)
        _check_search("", top_k, mode, fusion, weights, filters, hybrid=True)
        self.top_k = int(top_k)
        self.mode = mode
        self.fusion = fusion
        # A list, not a tuple: YAML writes tuples as Python objects that safe loaders refuse.
        self.weights = list(weights) if weights is not None else None
        self.filters = filters
        self.device = device
        self.load_options = checked_options(self, load_options)
        self.index: HybridIndex | None = None

    def warm_up(self) -> None:
        """Load the embedder and open the index once; later calls keep them."""
        if self.index is None:
            # Imported here: chromadb is slow to import and only the retriever needs it.
            from jinarag.retrieval.index import HybridIndex

            embedder = resolve(
                "embedder", self.model, options=load_options(self), owner=type(self).__name__
            )
            self.index = HybridIndex(
                path=self.path, url=self.url, collection=self.collection, embedder=embedder
            )

    def close(self) -> None:
        """Let go of the index (Haystack 3.x's `Pipeline.close()` calls this); an in-memory
        index loses its records. The next `warm_up` or `run` opens the index again."""
        if self.index is not None:
            self.index.close()
            self.index = None

    @component.output_types(documents=list[Document])
    def run(
        self,
        query: str,
        top_k: int | None = None,
        mode: str | None = None,
        fusion: str | None = None,
        weights: list[float] | None = None,
        filters: dict[str, Any] | None = None,
        query_embedding: list[float] | None = None,
    ) -> dict[str, list[Document]]:
        """Search the index; the arguments override the init values.

        Args:
            query: The query text (embedded on the query side, and matched by BM25).
            top_k: How many Documents at most.
            mode: `"hybrid"`, `"dense"` or `"bm25"`.
            fusion: `"rrf"`, `"relative"` or `"dbsf"` (hybrid mode; None: the index's).
            weights: `(dense, bm25)` fusion weights (hybrid mode; None: the index's).
            filters: A Haystack filter (or a Chroma `where`).
            query_embedding: The query's vector from a text embedder with the index's model
                (e.g. `JinaTextEmbedder.embedding`); the dense side uses it instead of
                embedding `query`. BM25 still reads `query`.

        Returns:
            `{"documents": [...]}`, best first.
        """
        options = {
            "k": top_k if top_k is not None else self.top_k,
            "mode": mode if mode is not None else self.mode,
            "fusion": fusion if fusion is not None else self.fusion,
            "weights": weights if weights is not None else self.weights,
            "where": to_where(filters if filters is not None else self.filters),
        }
        _check_search(query, *options.values(), hybrid=False)  # before the model is loaded
        self.warm_up()
        hits = self.index.search(query, **options, query_embedding=query_embedding)
        return {
            "documents": [
                Document(id=hit.id, content=hit.text, meta=hit.scored_metadata(), score=hit.score)
                for hit in hits
            ]
        }

    @component.output_types(documents=list[Document])
    async def run_async(
        self,
        query: str,
        top_k: int | None = None,
        mode: str | None = None,
        fusion: str | None = None,
        weights: list[float] | None = None,
        filters: dict[str, Any] | None = None,
        query_embedding: list[float] | None = None,
    ) -> dict[str, list[Document]]:
        """`run` in a worker thread, so the event loop stays free."""
        return await asyncio.to_thread(
            self.run, query, top_k, mode, fusion, weights, filters, query_embedding
        )

    def to_dict(self) -> dict[str, Any]:
        """Serialise the settings (the index is opened again after `from_dict`)."""
        return default_to_dict(
            self,
            path=self.path,
            url=self.url,
            collection=self.collection,
            model=self.model,
            top_k=self.top_k,
            mode=self.mode,
            fusion=self.fusion,
            weights=self.weights,
            filters=self.filters,
            device=self.device,
            **options_init_parameters(self),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JinaHybridRetriever:
        """Rebuild the component from `to_dict`'s output."""
        return from_dict(cls, data, secrets=False)


def _check_search(
    query: Any, top_k: Any, mode: Any, fusion: Any, weights: Any, filters: Any, *, hybrid: bool
) -> None:
    """InputError for a bad search option, named as this component names it; the rest are
    checked as `HybridIndex.search` checks them (its defaults stand in for the index's). With
    `hybrid`, as in a hybrid search: the init's weights, given with another mode, are kept
    for the runs that ask for mode="hybrid"."""
    positive_int("top_k", top_k)
    check_choice("mode", mode, MODES)
    where = to_where(filters)  # Haystack's filter syntax, checked and translated
    mode = "hybrid" if hybrid else mode
    plan_search(search_defaults(None), query, top_k, mode, fusion, weights, where)

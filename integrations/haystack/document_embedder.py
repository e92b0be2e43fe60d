"""`JinaDocumentEmbedder`: Documents to vectors (the document side) in a Haystack pipeline."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.utils import ComponentDevice

from jinarag.haystack._common import (
    checked_options,
    document_texts,
    fresh_copy,
    load_options,
    model_name,
    options_init_parameters,
)
from jinarag.inference.defaults import DEFAULT_EMBEDDER
from jinarag.inference.embedder import Embedder


@component
class JinaDocumentEmbedder:
    """Embeds Documents with a local Jina model, on the document side of the embedder.

    Returns new Documents with `embedding` set; the input Documents are left untouched. The
    values of `meta_fields_to_embed` are joined before the content with `embedding_separator`.
    The keyword names follow Haystack's SentenceTransformers embedders. The model is loaded by
    `warm_up()` (or by the first `run`), not when the component is created.

    Loading options are keyword arguments named as in `jinarag.LoadOptions` (`dtype`,
    `max_length`, `revision`, `local_files_only`, `max_batch_tokens`; `device` is the usual
    Haystack parameter). They are checked when the component is created, kept in
    `load_options`, and written by `to_dict`.

    Example:
        >>> from haystack import Document
        >>> from jinarag.haystack import JinaDocumentEmbedder
        >>> embedder = JinaDocumentEmbedder(model="small", meta_fields_to_embed=["title"])
        >>> docs = [Document(content="Lift grows with speed.", meta={"title": "Wings"})]
        >>> embedded = embedder.run(documents=docs)["documents"]
    """

    def __init__(
        self,
        model: str | Path = DEFAULT_EMBEDDER,
        device: ComponentDevice | str | None = None,
        prefix: str = "",
        suffix: str = "",
        batch_size: int = 32,
        progress_bar: bool = True,
        normalize_embeddings: bool = True,
        meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
        **load_options: Any,
    ) -> None:
        self.model = model_name(model)
        self.device = device
        self.prefix = prefix
        self.suffix = suffix
        self.batch_size = batch_size
        self.progress_bar = progress_bar
        self.normalize_embeddings = normalize_embeddings
        self.meta_fields_to_embed = (
            list(meta_fields_to_embed) if meta_fields_to_embed is not None else []
        )
        self.embedding_separator = embedding_separator
        self.load_options = checked_options(self, load_options)
        self.embedder: Embedder | None = None

    def warm_up(self) -> None:
        """Load the model once; later calls keep the loaded one."""
        if self.embedder is None:
            self.embedder = Embedder.from_pretrained(self.model, load_options(self))

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, list[Document]]:
        """Embed `documents` on the document side.

        Args:
            documents: The Documents to embed.

        Returns:
            `{"documents": [...]}`: new Documents, in input order, with `embedding` set.
        """
        texts = document_texts(
            "JinaDocumentEmbedder", documents, self.meta_fields_to_embed, self.embedding_separator
        )
        self.warm_up()
        vectors = self.embedder.embed_documents(
            [self.prefix + text + self.suffix for text in texts],
            batch_size=self.batch_size,
            normalize=self.normalize_embeddings,
            show_progress=self.progress_bar,
        )
        return {
            "documents": [
                fresh_copy(doc, embedding=vector.tolist())
                for doc, vector in zip(documents, vectors, strict=True)
            ]
        }

    @component.output_types(documents=list[Document])
    async def run_async(self, documents: list[Document]) -> dict[str, list[Document]]:
        """`run` in a worker thread, so the event loop stays free."""
        return await asyncio.to_thread(self.run, documents)

    def to_dict(self) -> dict[str, Any]:
        """Serialise the init parameters (the model is loaded again after `from_dict`)."""
        return default_to_dict(
            self,
            model=self.model,
            device=self.device,
            prefix=self.prefix,
            suffix=self.suffix,
            batch_size=self.batch_size,
            progress_bar=self.progress_bar,
            normalize_embeddings=self.normalize_embeddings,
            meta_fields_to_embed=self.meta_fields_to_embed,
            embedding_separator=self.embedding_separator,
            **options_init_parameters(self),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JinaDocumentEmbedder:
        """Rebuild the component from `to_dict`'s output."""
        return default_from_dict(cls, data)

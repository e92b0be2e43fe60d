"""`JinaDocumentEmbedder`: Documents to vectors (the document side) in a Haystack pipeline."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from haystack import Document, component, default_to_dict
from haystack.utils import ComponentDevice, Secret

from jinarag.errors import InputError
from jinarag.haystack._common import (
    API_KEY,
    checked_options,
    document_list,
    document_texts,
    embedding_options,
    fresh_copy,
    from_dict,
    load_options,
    meta_fields,
    model_or_default,
    options_init_parameters,
    remote_model,
    server_init_parameters,
)
from jinarag.inference.defaults import DEFAULT_EMBEDDER
from jinarag.inference.embedder import Embedder
from jinarag.inference.remote import RemoteEmbedder
from jinarag.inference.resolve import resolve
from jinarag.inference.task_fields import TaskFields
from jinarag.validation import check_bool


@component
class JinaDocumentEmbedder:
    """Embeds Documents with a Jina model, local or on a server, on the embedder's document
    side.

    Returns new Documents with `embedding` set; the input Documents are left untouched. The
    values of `meta_fields_to_embed` are joined before the content with `embedding_separator`.
    The keyword names follow Haystack's SentenceTransformers embedders. The model is loaded by
    `warm_up()` (or by the first `run`), not when the component is created.

    Loading options are keyword arguments named as in `jinarag.LoadOptions` (`dtype`,
    `max_length`, `revision`, `local_files_only`, `max_batch_tokens`, `quantize`,
    `attention`, `num_threads`; `device` is the usual Haystack parameter). They are checked
    when the component is created, kept in `load_options`, and written by `to_dict`.

    With `base_url` (the root of a `jinarag serve` server) the server's model is used and
    nothing is loaded; `api_key` is a Haystack `Secret` (default: the env var
    `JINARAG_API_KEY`, optional), and `to_dict` writes `base_url` and the secret's env var
    name, never a key. A `model`, `device` or loading option given with `base_url` is an
    `InputError`.

    Late chunking (`late_chunking=True`): the Documents are chunks of larger documents, as
    Haystack's `DocumentSplitter` makes them. Those with the same `meta["source_id"]` are one
    document: read once, as their contents joined with a space (each content stripped of
    leading and trailing whitespace first, so the text between two chunks is one space), in
    order of `meta["split_id"]` (input order when a chunk has none), and each chunk's vector is
    the mean of its own tokens' output states (`jinarag.Embedder.embed_late_chunks`). A
    Document without `source_id` is a document of its own, a single chunk. Only the chunks of
    one `run` are read together, so pass all of a document's chunks in the same call. Chunks
    that overlap (a splitter with `split_overlap > 0`) would be read twice and are refused, as
    are `prefix`, `suffix` and `meta_fields_to_embed`, which have no place inside a document.
    A document longer than the model's `max_length` is read in overlapping windows.

    jina-embeddings-v3: `task`, `query_task` and `dimensions` (Matryoshka) take the same
    values on both embedders, so a pair can share them. Documents are embedded with `task`
    (None: the model's default) and `dimensions`. They are checked when the model is loaded
    (`warm_up`; over a server, at the first call) and written by `to_dict`.

    Example:
        >>> from haystack import Document
        >>> from jinarag.haystack import JinaDocumentEmbedder
        >>> embedder = JinaDocumentEmbedder(model="small", meta_fields_to_embed=["title"])
        >>> docs = [Document(content="Lift grows with speed.", meta={"title": "Wings"})]
        >>> embedded = embedder.run(documents=docs)["documents"]
        >>> served = JinaDocumentEmbedder(base_url="http://127.0.0.1:8080")
    """

    def __init__(
        self,
        model: str | Path | None = None,
        device: ComponentDevice | str | None = None,
        prefix: str = "",
        suffix: str = "",
        batch_size: int = 32,
        progress_bar: bool = True,
        normalize_embeddings: bool = True,
        meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
        late_chunking: bool = False,
        base_url: str | None = None,
        api_key: Secret = API_KEY,
        task: str | None = None,
        query_task: str | None = None,
        dimensions: int | None = None,
        **load_options: Any,
    ) -> None:
        self.model = model_or_default(model, base_url, DEFAULT_EMBEDDER)
        self.device = device
        embedding_options(self, prefix, suffix, batch_size, progress_bar, normalize_embeddings)
        self.meta_fields_to_embed, self.embedding_separator = meta_fields(
            meta_fields_to_embed, embedding_separator
        )
        self.late_chunking = check_bool("late_chunking", late_chunking)
        if self.late_chunking:
            given = {
                "prefix": prefix,
                "suffix": suffix,
                "meta_fields_to_embed": self.meta_fields_to_embed,
            }
            for name, value in given.items():
                if value:
                    raise InputError(
                        f"JinaDocumentEmbedder(late_chunking=True) got {name}={value!r}: late "
                        "chunking reads each chunk's content as a piece of its source document, "
                        f"so there is no text of its own to add it to; drop {name}, or embed "
                        "without late chunking"
                    )
        self.base_url = base_url
        self.api_key = api_key
        self.load_options = checked_options(self, load_options)
        self.task_fields = TaskFields.checked(task, query_task, dimensions)
        self.task, self.query_task, self.dimensions = task, query_task, self.task_fields.dimensions
        self.embedder: Embedder | RemoteEmbedder | None = remote_model(self, "embedder")

    def warm_up(self) -> None:
        """Load the model once; later calls keep the loaded one."""
        if self.embedder is None:
            embedder = resolve(
                "embedder", self.model, options=load_options(self), owner=type(self).__name__
            )
            self.task_fields.for_model(embedder)
            self.embedder = embedder

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, list[Document]]:
        """Embed `documents` on the document side.

        Args:
            documents: The Documents to embed.

        Returns:
            `{"documents": [...]}`: new Documents, in input order, with `embedding` set.
        """
        documents = document_list(documents)
        if self.late_chunking:
            return {"documents": self._run_late(documents)}
        texts = document_texts(documents, self.meta_fields_to_embed, self.embedding_separator)
        self.warm_up()
        vectors = self.embedder.embed_documents(
            [self.prefix + text + self.suffix for text in texts],
            batch_size=self.batch_size,
            normalize=self.normalize_embeddings,
            show_progress=self.progress_bar,
            **self.task_fields.documents(),
        )
        return {
            "documents": [
                fresh_copy(doc, embedding=vector.tolist())
                for doc, vector in zip(documents, vectors, strict=True)
            ]
        }

    def _run_late(self, documents: list[Document]) -> list[Document]:
        texts = document_texts(documents, [], "")
        for i, text in enumerate(texts):
            if not text.strip():
                raise InputError(
                    f"documents[{i}] (id {documents[i].id!r}) has no content: late chunking "
                    "needs text in every chunk; drop it before embedding (DocumentSplitter "
                    "does with skip_empty_documents=True)"
                )
        groups = _source_groups(documents)
        chunks = [[texts[i].strip() for i in group] for group in groups]
        self.warm_up()
        vectors = self.embedder.embed_late_chunks_many(
            chunks,
            normalize=self.normalize_embeddings,
            batch_size=self.batch_size,
            show_progress=self.progress_bar,
            **self.task_fields.documents(),
        )
        embeddings: list[list[float]] = [[] for _ in documents]
        for group, rows in zip(groups, vectors, strict=True):
            for i, row in zip(group, rows, strict=True):
                embeddings[i] = row.tolist()
        return [
            fresh_copy(doc, embedding=vector)
            for doc, vector in zip(documents, embeddings, strict=True)
        ]

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
            late_chunking=self.late_chunking,
            **self.task_fields.as_dict(),
            **server_init_parameters(self),
            **options_init_parameters(self),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JinaDocumentEmbedder:
        """Rebuild the component from `to_dict`'s output."""
        return from_dict(cls, data)


def _source_groups(documents: list[Document]) -> list[list[int]]:
    """The positions of each source document's chunks, in reading order: grouped by
    `meta["source_id"]` (groups in order of first appearance), each group sorted by
    `meta["split_id"]` when all of its chunks have one; a Document without `source_id` is a
    group of its own."""
    groups: dict[Any, list[int]] = {}
    for i, doc in enumerate(documents):
        source = doc.meta.get("source_id")
        groups.setdefault(("source", source) if source is not None else ("own", i), []).append(i)
    ordered = []
    for (kind, source), group in groups.items():
        for i in group:
            if documents[i].meta.get("_split_overlap"):
                raise InputError(
                    f"documents[{i}] (id {documents[i].id!r}) overlaps its neighbour "
                    "(meta['_split_overlap']): late chunking reads a document's chunks joined "
                    "as one text, so the overlap would be read twice; split with "
                    "split_overlap=0"
                )
        split_ids = [documents[i].meta.get("split_id") for i in group]
        if kind == "source" and all(
            isinstance(s, int) and not isinstance(s, bool) for s in split_ids
        ):
            seen: dict[int, int] = {}
            for i, split_id in zip(group, split_ids, strict=True):
                if split_id in seen:
                    raise InputError(
                        f"documents[{seen[split_id]}] and documents[{i}] are both split_id "
                        f"{split_id} of source_id {source!r}: a document's chunks must each "
                        "appear once; drop the repeat"
                    )
                seen[split_id] = i
            group = [i for _, i in sorted(zip(split_ids, group, strict=True))]
        ordered.append(group)
    return ordered

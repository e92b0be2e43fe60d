"""`JinaTextEmbedder`: a query string to a vector (the query side) in a Haystack pipeline."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from haystack import component, default_to_dict
from haystack.utils import ComponentDevice, Secret

from jinarag.errors import InputError
from jinarag.haystack._common import (
    API_KEY,
    checked_options,
    embedding_options,
    from_dict,
    load_options,
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


@component
class JinaTextEmbedder:
    """Embeds one query string with a Jina model, local or on a server, on the embedder's
    query side.

    Pair it with `JinaDocumentEmbedder` on the same `model` for the documents. The keyword
    names follow Haystack's SentenceTransformers embedders (`progress_bar` is off by default
    here: one query is one batch). The model is loaded by `warm_up()`
    (or by the first `run`), not when the component is created.

    Loading options are keyword arguments named as in `jinarag.LoadOptions` (`dtype`,
    `max_length`, `revision`, `local_files_only`, `max_batch_tokens`, `quantize`,
    `attention`, `num_threads`; `device` is the usual Haystack parameter). They are checked
    when the component is created, kept in `load_options`, and written by `to_dict`.

    With `base_url` (the root of a `jinarag serve` server) the server's model is used and
    nothing is loaded; `api_key` is a Haystack `Secret` (default: the env var
    `JINARAG_API_KEY`, optional), and `to_dict` writes `base_url` and the secret's env var
    name, never a key. A `model`, `device` or loading option given with `base_url` is an
    `InputError`. The server sends the query as it is (no query prefix).

    jina-embeddings-v3: `task`, `query_task` and `dimensions` (Matryoshka) take the same
    values on both embedders, so a pair can share them. The query is embedded with `query_task`
    (None: the model's default) and `dimensions`. They are checked when the model is loaded
    (`warm_up`; over a server, at the first call) and written by `to_dict`.

    Example:
        >>> from jinarag.haystack import JinaTextEmbedder
        >>> embedder = JinaTextEmbedder(model="small")
        >>> vector = embedder.run(text="what lifts a wing?")["embedding"]
        >>> served = JinaTextEmbedder(base_url="http://127.0.0.1:8080")  # `jinarag serve`
    """

    def __init__(
        self,
        model: str | Path | None = None,
        device: ComponentDevice | str | None = None,
        prefix: str = "",
        suffix: str = "",
        batch_size: int = 32,
        progress_bar: bool = False,
        normalize_embeddings: bool = True,
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

    @component.output_types(embedding=list[float])
    def run(self, text: str) -> dict[str, list[float]]:
        """Embed `prefix + text + suffix` on the query side.

        Args:
            text: The query.

        Returns:
            `{"embedding": [...]}`, a list of floats.
        """
        if not isinstance(text, str):
            raise InputError(
                f"JinaTextEmbedder's text must be a string, got {type(text).__name__} "
                f"{text!r:.60}; pass one query (JinaDocumentEmbedder embeds Documents)"
            )
        self.warm_up()
        vectors = self.embedder.embed_queries(
            [self.prefix + text + self.suffix],
            batch_size=self.batch_size,
            normalize=self.normalize_embeddings,
            show_progress=self.progress_bar,
            **self.task_fields.queries(),
        )
        return {"embedding": vectors[0].tolist()}

    @component.output_types(embedding=list[float])
    async def run_async(self, text: str) -> dict[str, list[float]]:
        """`run` in a worker thread, so the event loop stays free."""
        return await asyncio.to_thread(self.run, text)

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
            **self.task_fields.as_dict(),
            **server_init_parameters(self),
            **options_init_parameters(self),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JinaTextEmbedder:
        """Rebuild the component from `to_dict`'s output."""
        return from_dict(cls, data)

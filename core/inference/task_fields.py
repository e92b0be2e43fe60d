"""An adapter's ``task``, ``query_task`` and ``dimensions``, checked once for every framework.

The LangChain, LlamaIndex, Haystack and Chroma adapters keep these three values and pass them
to each call of their embedder: documents with ``task``, queries with ``query_task``, both
with ``dimensions`` (None: the model's defaults, ``retrieval.passage`` and
``retrieval.query`` on jina-embeddings-v3, every dimension). :meth:`TaskFields.checked`
checks their types when the adapter is made, and :meth:`TaskFields.for_model` checks them
against the loaded model with :func:`~jinarag.inference.matryoshka.task_options`, the
core's one check (an unknown task, a dimension count out of range, either on a model
without task adapters or Matryoshka dimensions: an InputError naming it). A model on a
server is checked at its first call, against what the server says its model has.

Example:
    >>> fields = TaskFields.checked("text-matching", None, 256).for_model(embedder)
    >>> embedder.embed_documents(texts, **fields.documents())
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinarag.errors import InputError
from jinarag.validation import positive_int

__all__ = ["TASK_FIELDS", "TaskFields"]

TASK_FIELDS = ("task", "query_task", "dimensions")


@dataclass(frozen=True)
class TaskFields:
    """The task of documents, the task of queries, and the dimensions kept (None: defaults)."""

    task: str | None = None
    query_task: str | None = None
    dimensions: int | None = None

    @classmethod
    def checked(cls, task: Any, query_task: Any, dimensions: Any) -> TaskFields:
        """The three values, their types checked (InputError naming a wrong one)."""
        for name, value in (("task", task), ("query_task", query_task)):
            if value is not None and not isinstance(value, str):
                raise InputError(
                    f"{name}={value!r:.60} must be a task name (a string such as "
                    "'retrieval.passage'; embedder.tasks lists the model's) or None for the "
                    "model's default"
                )
        return cls(task, query_task, positive_int("dimensions", dimensions, allow_none=True))

    def for_model(self, model: Any) -> TaskFields:
        """``self``, once both sides are checked against a local ``model`` (a remote one is
        checked by its first call)."""
        from jinarag.inference.matryoshka import task_options
        from jinarag.inference.remote import RemoteModel

        if not isinstance(model, RemoteModel):
            task_options(model, self.task, self.dimensions, "document")
            if self.query_task is not None:
                try:
                    task_options(model, self.query_task, None, "query")
                except InputError as exc:  # its message starts "task=...": say which one
                    raise InputError(f"query_{exc}") from exc
        return self

    def documents(self) -> dict[str, Any]:
        """The keywords of a document-side call (``embed_documents``, late chunks)."""
        return {"task": self.task, "dimensions": self.dimensions}

    def queries(self) -> dict[str, Any]:
        """The keywords of a query-side call (``embed_query``, ``embed_queries``)."""
        return {"task": self.query_task, "dimensions": self.dimensions}

    def as_dict(self) -> dict[str, Any]:
        """The three values by name, as a config or ``to_dict`` stores them."""
        return {"task": self.task, "query_task": self.query_task, "dimensions": self.dimensions}

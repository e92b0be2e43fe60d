"""Task adapters and Matryoshka dimensions of an embedder (jina-embeddings-v3), checked once.

A model with task adapters (``embedder.tasks``) embeds queries with ``retrieval.query`` and
documents with ``retrieval.passage`` unless a call names another task; the task's instruction
(``config.json``'s ``task_instructions``) leads each text, as the model's own ``encode`` does.
``dimensions`` keeps the first that many dimensions of each vector and renormalises them.
Models without adapters or Matryoshka training refuse both with an InputError that says why.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jinarag.errors import InputError

__all__ = ["DEFAULT_TASKS", "matryoshka", "task_index", "task_options", "with_instruction"]

# The task each side uses when a call names none (when the model has it).
DEFAULT_TASKS = {"query": "retrieval.query", "document": "retrieval.passage"}


def task_options(
    model: Any, task: str | None, dimensions: int | None, side: str = "document"
) -> tuple[str | None, int | None]:
    """The task (the side's default when None) and dimensions a call of ``model`` runs with;
    an InputError for a task or a dimension count the model does not have."""
    tasks: tuple[str, ...] = model.tasks
    name = getattr(model, "name", type(model).__name__)
    if task is not None and not tasks:
        raise InputError(
            f"task={task!r:.60} needs a model with task adapters, and {name} has none (it "
            "embeds every text one way). Pass task=None, or load jina-embeddings-v3 ('v3')."
        )
    if task is not None and task not in tasks:
        raise InputError(
            f"task={task!r:.60} is not a task of {name}; its tasks are: {', '.join(tasks)}."
        )
    if task is None and DEFAULT_TASKS.get(side) in tasks:
        task = DEFAULT_TASKS[side]
    if dimensions is not None:
        allowed: tuple[int, ...] = model.dimensions_allowed
        if not allowed:
            raise InputError(
                f"dimensions={dimensions!r} needs a Matryoshka model (jina-embeddings-v3), and "
                f"{name} was not trained to be cut: its vectors keep all {model.dim} "
                "dimensions. Pass dimensions=None."
            )
        if not allowed[0] <= dimensions <= model.dim:
            trained = ", ".join(map(str, allowed))
            raise InputError(
                f"dimensions={dimensions!r} is out of range for {name}: use an integer from "
                f"{allowed[0]} to {model.dim} (trained: {trained}), or None for all."
            )
        if dimensions == model.dim:
            dimensions = None
    return task, dimensions


def task_index(model: Any, task: str | None) -> int | None:
    """The adapter index of ``task`` (None: the base weights)."""
    return None if task is None else model.tasks.index(task)


def with_instruction(model: Any, task: str | None, texts: list[str]) -> list[str]:
    """``texts`` with ``task``'s instruction prepended (none for most tasks)."""
    instruction = model.config.task_instructions.get(task, "") if task is not None else ""
    return [instruction + text for text in texts] if instruction else texts


def matryoshka(vectors: np.ndarray, dimensions: int | None, normalize: bool) -> np.ndarray:
    """The first ``dimensions`` columns, L2-renormalised when ``normalize`` (``vectors``
    unchanged when ``dimensions`` is None: already normalised as asked)."""
    if dimensions is None:
        return vectors
    # Imported here: heads imports torch, which a remote embedder's client need not load.
    from jinarag.inference.heads import l2_normalize

    cut = np.ascontiguousarray(vectors[:, :dimensions])
    return l2_normalize(cut) if normalize else cut

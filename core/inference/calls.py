"""The checked options of one call of the public methods (:mod:`jinarag.inference.api`):
what the primitives ``_embed``, ``_late_chunks`` and ``_score_pairs`` receive as ``call``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from jinarag.errors import InputError
from jinarag.validation import check_bool, check_callable, check_choice, positive_int

__all__ = ["ACTIVATIONS", "OVERFLOWS", "EmbedCall", "LateChunkCall", "ScoreCall"]

ACTIVATIONS = ("sigmoid", None)
# What truncate=False does with a text over max_length: refuse it, or read it in windows of
# max_length tokens and pool them (the mean over every window's tokens).
OVERFLOWS = ("error", "pool")


@dataclass(frozen=True)
class EmbedCall:
    """The checked options of an embedding call (``embed``, ``embed_queries``)."""

    batch_size: int
    normalize: bool
    show_progress: bool
    truncate: bool
    stop: Callable[[], bool] | None = None
    task: str | None = None  # the task adapter; None: the side's default
    dimensions: int | None = None  # Matryoshka truncation; None: every dimension
    side: str = "document"  # "document" or "query"
    overflow: str = "error"  # with truncate=False: "error" or "pool" (OVERFLOWS)

    @classmethod
    def checked(
        cls,
        batch_size: int,
        normalize: bool,
        show_progress: bool,
        truncate: bool,
        stop: Callable[[], bool] | None = None,
        task: str | None = None,
        dimensions: int | None = None,
        side: str = "document",
        overflow: str = "error",
    ) -> EmbedCall:
        # Checked before the empty case returns, so a bad argument never passes unseen.
        truncate = check_bool("truncate", truncate)
        overflow = check_choice("overflow", overflow, OVERFLOWS)
        if truncate and overflow != "error":
            raise InputError(
                f"overflow={overflow!r} applies to texts over max_length when truncate=False; "
                "with truncate=True they are cut. Pass truncate=False as well."
            )
        return cls(
            positive_int("batch_size", batch_size),
            check_bool("normalize", normalize),
            check_bool("show_progress", show_progress),
            truncate,
            check_callable("stop", stop),
            _task_name(task),
            positive_int("dimensions", dimensions, allow_none=True),
            side,
            overflow,
        )


@dataclass(frozen=True)
class LateChunkCall:
    """The checked options of a late-chunking call."""

    batch_size: int
    normalize: bool
    long_late_chunking: bool
    overlap: int | None
    show_progress: bool
    stop: Callable[[], bool] | None = None
    task: str | None = None
    dimensions: int | None = None
    side: str = "document"  # late chunks are always documents

    @classmethod
    def checked(
        cls,
        batch_size: int,
        normalize: bool,
        long_late_chunking: bool,
        overlap: int | None,
        show_progress: bool,
        stop: Callable[[], bool] | None = None,
        task: str | None = None,
        dimensions: int | None = None,
    ) -> LateChunkCall:
        return cls(
            positive_int("batch_size", batch_size),
            check_bool("normalize", normalize),
            check_bool("long_late_chunking", long_late_chunking),
            positive_int("overlap", overlap, allow_zero=True, allow_none=True),
            check_bool("show_progress", show_progress),
            check_callable("stop", stop),
            _task_name(task),
            positive_int("dimensions", dimensions, allow_none=True),
        )


def _task_name(task: str | None) -> str | None:
    if task is not None and not isinstance(task, str):
        raise InputError(
            f"task={task!r:.60} must be a task name (a string such as 'retrieval.query'; "
            "embedder.tasks lists the model's) or None for the default."
        )
    return task


@dataclass(frozen=True)
class ScoreCall:
    """The checked options of a reranking call."""

    activation: str | None
    batch_size: int
    show_progress: bool
    truncate: bool
    stop: Callable[[], bool] | None = None

    @classmethod
    def checked(
        cls,
        activation: str | None,
        batch_size: int,
        show_progress: bool,
        truncate: bool,
        stop: Callable[[], bool] | None = None,
    ) -> ScoreCall:
        return cls(
            check_choice("activation", activation, ACTIVATIONS),
            positive_int("batch_size", batch_size),
            check_bool("show_progress", show_progress),
            check_bool("truncate", truncate),
            check_callable("stop", stop),
        )

"""jinarag: Jina AI's embedders and rerankers, running locally.

Example:
    >>> import jinarag
    >>> embedder = jinarag.Embedder.from_pretrained("small")
    >>> vectors = embedder.embed(["a wing in a slipstream"])

Every public name is imported on first use, so ``import jinarag`` (and ``jinarag --version``)
loads neither torch nor chromadb until a model or an index is asked for.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from jinarag.errors import (
    Cancelled,
    CheckpointError,
    CheckpointWarning,
    EmbedderMismatchError,
    InputError,
    JinaragError,
    ModelNotFoundError,
    PerformanceWarning,
    RemoteError,
    StoreBusyError,
    StoreCorruptError,
    StoreError,
    StoreMismatchError,
    StoreUnavailableError,
    TruncationWarning,
)
from jinarag.options import LoadOptions

# Local first: Chroma's anonymized telemetry is off in a process that uses jinarag, unless the
# user set ANONYMIZED_TELEMETRY. It is the variable, not a Settings value, so that the user's own
# Chroma clients on Chroma's defaults share one instance with the index's (docs/chroma.md).
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

if TYPE_CHECKING:
    from jinarag import evaluation
    from jinarag.inference.embedder import Embedder
    from jinarag.inference.reranker import RankedDocument, Reranker
    from jinarag.retrieval.index import HybridIndex
    from jinarag.retrieval.search import fusion
    from jinarag.retrieval.search.hits import Hit, SourceScore

__version__ = "0.1.0"

__all__ = [
    "Cancelled",
    "CheckpointError",
    "CheckpointWarning",
    "Embedder",
    "EmbedderMismatchError",
    "Hit",
    "HybridIndex",
    "InputError",
    "JinaragError",
    "LoadOptions",
    "ModelNotFoundError",
    "PerformanceWarning",
    "RankedDocument",
    "RemoteError",
    "Reranker",
    "SourceScore",
    "StoreBusyError",
    "StoreCorruptError",
    "StoreMismatchError",
    "StoreError",
    "StoreUnavailableError",
    "TruncationWarning",
    "__version__",
    "evaluation",
    "fusion",
]

# name -> (module, attribute); attribute None means the module itself.
_LAZY: dict[str, tuple[str, str | None]] = {
    "Embedder": ("jinarag.inference.embedder", "Embedder"),
    "Reranker": ("jinarag.inference.reranker", "Reranker"),
    "RankedDocument": ("jinarag.inference.reranker", "RankedDocument"),
    "HybridIndex": ("jinarag.retrieval.index", "HybridIndex"),
    "Hit": ("jinarag.retrieval.search.hits", "Hit"),
    "SourceScore": ("jinarag.retrieval.search.hits", "SourceScore"),
    "fusion": ("jinarag.retrieval.search.fusion", None),
    "evaluation": ("jinarag.evaluation", None),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module_name, attribute = _LAZY[name]
        module = importlib.import_module(module_name)
        value = module if attribute is None else getattr(module, attribute)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'jinarag' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

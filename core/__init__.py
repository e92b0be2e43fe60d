"""jinarag: Jina AI's embedders and rerankers, running locally.

Example:
    >>> import jinarag
    >>> embedder = jinarag.Embedder.from_pretrained("small")
    >>> vectors = embedder.embed(["a wing in a slipstream"])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jinarag.embedder import Embedder
from jinarag.errors import (
    CheckpointError,
    EmbedderMismatchError,
    InputError,
    JinaragError,
    ModelNotFoundError,
    StoreError,
    StoreUnavailableError,
)
from jinarag.reranker import RankedDocument, Reranker

if TYPE_CHECKING:
    from jinarag.hybrid import Hit, HybridIndex, SourceScore

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "Embedder",
    "EmbedderMismatchError",
    "Hit",
    "HybridIndex",
    "InputError",
    "JinaragError",
    "ModelNotFoundError",
    "RankedDocument",
    "Reranker",
    "SourceScore",
    "StoreError",
    "StoreUnavailableError",
    "__version__",
]

# The hybrid index needs chromadb; import it only when asked for, so `import jinarag` stays light.
_LAZY = {"HybridIndex": "jinarag.hybrid", "Hit": "jinarag.hybrid", "SourceScore": "jinarag.hybrid"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'jinarag' has no attribute {name!r}")

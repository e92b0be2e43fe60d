"""What the server asks of a model, as protocols: it talks to these, not to the model classes.

- :class:`TokenEmbedder`: embeds texts it tokenised itself, in a later call (the server
  tokenises each request once, to check its limits and count its usage, then embeds many
  requests in one engine call), and late-chunks documents. :class:`~jinarag.Embedder` is one.
- :class:`PairScorer`: the same for (query, document) pairs and their logits.
  :class:`~jinarag.Reranker` is one.

Both build on :class:`EngineModel`, what the server reports of any model (``/v1/models``,
``/info``) and how it budgets a pass. :func:`missing_members` checks a model against one of
them without running anything (no property is read), and :func:`require` turns a gap into an
:class:`~jinarag.errors.InputError` that names it.

Example:
    >>> require(jinarag.Embedder.from_pretrained("small"), TokenEmbedder, "create_app")
    Embedder(name='jinaai/jina-embeddings-v2-small-en', ...)
    >>> missing_members(jinarag.Reranker.from_pretrained("tiny"), TokenEmbedder)
    ['dim', 'embed_late_chunks_many', 'embed_tokens', 'tokenize']
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np

from jinarag.errors import InputError

if TYPE_CHECKING:
    import torch

    from jinarag.models.tokenization import Encoded, TextTokenizer

__all__ = ["EngineModel", "PairScorer", "TokenEmbedder", "missing_members", "require"]


class EngineModel(Protocol):
    """What the server reads of every model it serves."""

    name: str  # how it was loaded: a Hub id, or a local directory
    source: Path  # the checkpoint's directory
    max_length: int  # tokens per input
    max_batch_tokens: int  # tokens per engine call

    @property
    def device(self) -> torch.device: ...

    @property
    def dtype(self) -> torch.dtype: ...


class TokenEmbedder(EngineModel, Protocol):
    """An embedder the server can run: texts tokenised in one call, embedded in another."""

    tokenizer: TextTokenizer  # counts a late chunking request's tokens

    @property
    def dim(self) -> int: ...

    @property
    def tasks(self) -> tuple[str, ...]: ...  # task adapters (jina-embeddings-v3); () without

    def tokenize(
        self, texts: Iterable[str], *, truncate: bool = True, task: str | None = None
    ) -> Encoded: ...

    def embed_tokens(
        self,
        encoded: Encoded,
        *,
        normalize: bool = True,
        batch_size: int = 32,
        stop: Callable[[], bool] | None = None,
        max_tokens: int | None = None,
        task: str | None = None,
        dimensions: int | None = None,
    ) -> np.ndarray: ...

    def embed_late_chunks_many(
        self,
        documents: Iterable[Iterable[str]],
        *,
        normalize: bool = True,
        long_late_chunking: bool = True,
        overlap: int | None = None,
        batch_size: int = 32,
        show_progress: bool = False,
        stop: Callable[[], bool] | None = None,
        task: str | None = None,
        dimensions: int | None = None,
    ) -> list[np.ndarray]: ...


class PairScorer(EngineModel, Protocol):
    """A reranker the server can run: pairs tokenised in one call, scored in another."""

    def tokenize_pairs(
        self, pairs: Iterable[tuple[str, str]], *, truncate: bool = True
    ) -> Encoded: ...

    def score_tokens(
        self,
        encoded: Encoded,
        *,
        activation: str | None = "sigmoid",
        batch_size: int = 32,
        stop: Callable[[], bool] | None = None,
        max_tokens: int | None = None,
    ) -> np.ndarray: ...


# What to pass instead, named in the error.
_EXAMPLES = {TokenEmbedder: "a jinarag.Embedder", PairScorer: "a jinarag.Reranker"}

Model = TypeVar("Model")


def _members(protocol: type) -> list[str]:
    """The public names ``protocol`` and the protocols it extends declare."""
    names: set[str] = set()
    for klass in protocol.__mro__:
        if klass.__module__ == __name__:
            names.update(vars(klass))
            names.update(getattr(klass, "__annotations__", {}))
    return sorted(name for name in names if not name.startswith("_"))


def missing_members(model: Any, protocol: type) -> list[str]:
    """The members of ``protocol`` that ``model`` lacks (empty: it conforms). Looked up
    statically, so no property runs (a remote model's would call its server)."""
    missing = []
    for name in _members(protocol):
        try:
            inspect.getattr_static(model, name)
        except AttributeError:
            missing.append(name)
    return missing


def require(model: Model, protocol: type, owner: str) -> Model:
    """``model`` when it has every member of ``protocol``; else an InputError naming
    ``owner`` (who needs it), the missing members and what to pass instead."""
    missing = missing_members(model, protocol)
    if missing:
        instead = _EXAMPLES.get(protocol, "a model with those members")
        raise InputError(
            f"{owner} got {type(model).__name__}, which is not a {protocol.__name__}: it lacks "
            f"{', '.join(missing)}; pass {instead}"
        )
    return model

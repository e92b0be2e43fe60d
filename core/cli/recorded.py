"""The embedder a store records, as the commands that open a store use it.

A collection records its embedder when it is created: the name (an alias's Hub id, or the path
given), the dimension, and, once ``jinarag index`` has written to it, the SHA-256 of the
weights file (``jinarag:weights``). From that record:

- ``search`` and ``index`` without ``--model`` load the recorded embedder;
- a ``--model`` is checked against the record before any store opens: by the weights' hash
  when both are known (the same weights under another path or alias are the same embedder),
  else by name; another embedder is an :class:`~jinarag.EmbedderMismatchError` naming both;
- ``list``, ``stats`` and ``delete`` never embed, so they load no model at all:
  :class:`StoredEmbedder` carries the recorded name and dimension into the index.

Stores made before the hash was recorded keep working: they are checked by name.

Example:
    >>> recorded = read_record(args)
    >>> check_model(recorded, "small", lambda: weights_digest(directory))
"""

from __future__ import annotations

import argparse
import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinarag.errors import EmbedderMismatchError, InputError

if TYPE_CHECKING:
    from jinarag.inference.embedder import Embedder
    from jinarag.retrieval.index import HybridIndex

__all__ = [
    "Recorded",
    "StoredEmbedder",
    "check_model",
    "read_record",
    "record_weights",
    "same_embedder",
    "weights_digest",
]

_SHA256 = re.compile(r"[0-9a-f]{64}")
_DIGESTS: dict[tuple[str, int, int], str] = {}  # by (weights file, size, mtime): hashed once


@dataclass(frozen=True)
class Recorded:
    """What a collection records of its embedder (None: not recorded)."""

    name: str | None
    dim: int | None
    weights: str | None
    where: str  # the store and collection, as messages name them

    @classmethod
    def from_metadata(cls, meta: dict[str, Any], where: str) -> Recorded:
        from jinarag.retrieval.store.client import META_DIM, META_EMBEDDER, META_WEIGHTS

        name, dim, weights = meta.get(META_EMBEDDER), meta.get(META_DIM), meta.get(META_WEIGHTS)
        return cls(
            str(name) if name is not None else None,
            int(dim) if isinstance(dim, int | float) else None,
            str(weights) if weights is not None else None,
            where,
        )


def read_record(args: argparse.Namespace, store: Path) -> Recorded:
    """The record of ``args.collection`` in ``store`` (its sqlite read without opening Chroma)
    or on the ``--chroma-url`` server; empty when there is none yet."""
    if args.chroma_url is not None:
        from jinarag.retrieval.store.client import recorded_on_server
        from jinarag.retrieval.store.redaction import redact_url

        meta = recorded_on_server(args.chroma_url, args.collection)
        where = f"the Chroma server at {redact_url(args.chroma_url)}"
    else:
        from jinarag.retrieval.store.files import recorded_metadata

        meta, where = recorded_metadata(store, args.collection), str(store)
    return Recorded.from_metadata(meta, f"collection {args.collection!r} in {where}")


def weights_digest(directory: Path) -> str:
    """The SHA-256 of the weights file of the checkpoint in ``directory``. In the Hugging Face
    cache the file links to a blob named by that very hash, so nothing is read; otherwise the
    file is hashed once per process (a few tenths of a second per hundred megabytes)."""
    from jinarag.models.checkpoint import weights_path
    from jinarag.models.export_cache import file_sha256

    path = weights_path(directory)
    target = path.resolve()
    if path.is_symlink() and target.parent.name == "blobs" and _SHA256.fullmatch(target.name):
        return target.name
    stat = target.stat()
    key = (str(target), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = file_sha256(target)
    return _DIGESTS[key]


def check_model(recorded: Recorded, name: str, digest: Callable[[], str | None]) -> None:
    """Raise :class:`~jinarag.EmbedderMismatchError` when the embedder ``name`` (its weights'
    hash given by ``digest``, called only when the names differ or the store records a hash)
    is not the one ``recorded``: by hash when both are known, else by name."""
    if recorded.name is None:
        return
    if recorded.weights is None and name == recorded.name:
        return
    given = digest()
    if recorded.weights is not None and given is not None:
        if given == recorded.weights:
            return
        detail = f" (weights sha256 {recorded.weights[:12]}…, --model's {given[:12]}…)"
    elif name == recorded.name:
        return
    else:
        detail = ""
    raise EmbedderMismatchError(
        f"{recorded.where} was built with embedder {recorded.name!r} (dim {recorded.dim}), "
        f"but --model is {name!r}{detail}; vectors of different models cannot be compared. "
        f"Leave --model out (the store's own embedder is used), pass --model {recorded.name}, "
        "or use another --store or --collection for the other model."
    )


def same_embedder(recorded: Recorded, embedder: Embedder) -> Embedder:
    """``embedder`` once checked against ``recorded`` (see :func:`check_model`); when it holds
    the recorded weights under another name, a copy carrying the recorded name, which the
    collection checks at open."""
    check_model(recorded, str(embedder.name), lambda: _digest_of(embedder))
    if recorded.name is None or recorded.name == embedder.name:
        return embedder
    renamed = copy.copy(embedder)  # shares the model; the caller's object keeps its name
    renamed.name = recorded.name
    return renamed


def record_weights(index: HybridIndex, recorded: Recorded) -> None:
    """Record the hash of ``index``'s embedder weights in its collection, once (a write: under
    the store's write lock)."""
    if recorded.weights is not None:
        return
    digest = _digest_of(index.embedder)
    if digest is not None:
        with index.writing():
            index.store.record_weights(digest)


def _digest_of(embedder: Any) -> str | None:
    """The weights hash of a loaded embedder; None when it was not loaded from a checkpoint
    directory (a remote embedder, a stand-in)."""
    source = getattr(embedder, "source", None)
    return weights_digest(Path(source)) if source is not None else None


class StoredEmbedder:
    """The embedder a store records, by name and dimension only: what ``list``, ``stats`` and
    ``delete`` open the index with, since they read and delete records but never embed.

    Example:
        >>> HybridIndex(store, embedder=StoredEmbedder("jinaai/jina-embeddings-v2-small-en", 512))
    """

    def __init__(self, name: str, dim: int) -> None:
        self.name = name
        self.dim = dim

    def embed_documents(self, *args: object, **kwargs: object) -> Any:
        raise InputError(
            f"this command reads the store without its embedder {self.name!r}, so it cannot "
            "embed; use jinarag index or jinarag search for that"
        )

    embed_query = embed_documents

    def __repr__(self) -> str:
        return f"StoredEmbedder(name={self.name!r}, dim={self.dim})"

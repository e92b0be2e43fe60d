""":class:`~jinarag.HybridIndex`'s own options, checked before any store is opened: where the
records live (``path``, ``url``, ``collection``), the embedder, and BM25's numbers.

The search defaults are checked by :func:`jinarag.retrieval.search.plan.search_defaults`, the
BM25 variant, backend and analyser by :class:`~jinarag.retrieval.keyword.bm25.BM25Index`; this
module adds what those do not know (the range of ``b``, the types of the rest), so each bad
value is an InputError naming it rather than a TypeError from pathlib or Chroma.

Example:
    >>> check_index_options(None, None, "jinarag", embedder, k1=1.2, b=0.75)
    >>> check_index_options(None, None, "jinarag", embedder, b=5)
    Traceback (most recent call last):
    jinarag.errors.InputError: b must be a number between 0 and 1, got 5 ...
"""

from __future__ import annotations

import inspect
from typing import Any

from jinarag.errors import InputError
from jinarag.retrieval.keyword.bm25 import check_bm25_param
from jinarag.validation import check_instance, check_path, describe

__all__ = ["EMBEDDER_MEMBERS", "check_embedder", "check_index_options"]

# What the index reads of an embedder (a jinarag.Embedder, a RemoteEmbedder, or a stand-in).
EMBEDDER_MEMBERS = ("name", "dim", "embed_documents", "embed_query")
_LOAD_ONE = "jinarag.Embedder.from_pretrained('small')"


def check_embedder(embedder: Any, owner: str = "HybridIndex") -> Any:
    """``embedder`` when it has every member of :data:`EMBEDDER_MEMBERS` (looked up without
    running any property); else an InputError naming what it is and what to pass."""
    if embedder is None:
        raise InputError(f"{owner} needs an embedder: {owner}(path, embedder={_LOAD_ONE})")
    missing = []
    for member in EMBEDDER_MEMBERS:
        try:
            inspect.getattr_static(embedder, member)
        except AttributeError:
            missing.append(member)
    if missing:
        raise InputError(
            f"{owner}'s embedder must be an embedder, got {describe(embedder)}, which lacks "
            f"{', '.join(missing)}; pass embedder={_LOAD_ONE} (a Reranker goes to reranker=)"
        )
    return embedder


def check_index_options(
    path: Any,
    url: Any,
    collection: Any,
    embedder: Any,
    *,
    k1: Any = None,
    b: Any = None,
    epsilon: Any = None,
    delta: Any = None,
) -> None:
    """InputError for the first bad option, naming it, its value and what it should be."""
    check_embedder(embedder)
    check_path("path", path, allow_none=True, what="the store's folder")
    if url is not None:
        check_instance(
            "url", url, str, "pass the Chroma server's URL, e.g. 'http://127.0.0.1:8000'"
        )
    check_instance(
        "collection",
        collection,
        str,
        "name the Chroma collection with 3-512 characters of [a-zA-Z0-9._-], e.g. 'jinarag'",
    )
    # BM25's parameters, checked by the one owner of their meaning, before the store opens.
    for name, value in (("k1", k1), ("b", b), ("epsilon", epsilon), ("delta", delta)):
        check_bm25_param(name, value)

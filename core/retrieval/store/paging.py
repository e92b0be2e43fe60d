"""Reading a Chroma collection in batches it accepts: slices of a batch each, a listing page by
page (until a page comes back short), and records by id, a batch of ids at a time.

Each function takes the ``get`` to call (the collection's ``get``, run through the store's
error table) and the batch size, so it knows nothing else of the store.

Example:
    >>> [s for s in slices(2, 5)]
    [slice(0, 2, None), slice(2, 4, None), slice(4, 6, None)]
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

__all__ = ["by_ids", "listing", "slices"]

Get = Callable[..., dict[str, Any]]
"""Chroma's ``collection.get`` (keywords ``ids``, ``where``, ``include``, ``limit``,
``offset``), answering a dict of lists under ``"ids"``, ``"documents"``, ``"metadatas"``, ..."""


def slices(batch: int, n: int | None = None) -> Iterator[slice]:
    """Consecutive slices of at most ``batch`` covering ``range(n)``; endless when ``n`` is None
    (for paging through a listing until a page comes back short)."""
    for start in range(0, n, batch) if n is not None else itertools.count(0, batch):
        yield slice(start, start + batch)


def listing(get: Get, batch: int, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """``get(**kwargs)`` page by page (``limit=batch``, growing ``offset``), every record that
    matches once, until a page comes back short."""
    for page in slices(batch):
        got = get(limit=batch, offset=page.start, **kwargs)
        yield got
        if len(got["ids"]) < batch:
            return


def by_ids(
    get: Get, batch: int, ids: Sequence[str] | None, **kwargs: Any
) -> Iterator[dict[str, Any]]:
    """``get(ids=..., **kwargs)`` for ``ids`` a batch at a time; one call for every record
    (matching ``kwargs``' ``where``, when given) with None."""
    if ids is None:
        yield get(ids=None, **kwargs)
        return
    for rows in slices(batch, len(ids)):
        yield get(ids=ids[rows], **kwargs)

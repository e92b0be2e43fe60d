"""The records a write receives: their metadata checked, their ids checked or made.

An id left out is a hash of the text and metadata, so adding the same record twice stores it
once, and repeating an interrupted add completes it instead of storing copies.

Example:
    >>> ids, keep = assign_ids(["a", "b", "a"], [None, None, None], None)
    >>> ids[0] == ids[2], keep
    (True, [0, 1])
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from jinarag.errors import InputError
from jinarag.validation import check_texts

__all__ = ["assign_ids", "check_ids", "check_metadatas", "content_id"]


def check_ids(ids: Any, n: int | None = None, *, unique: bool = True) -> list[str]:
    """Non-empty string ids, ``n`` of them when given; duplicates refused when ``unique``,
    else dropped (the first of each kept)."""
    ids = check_texts(ids, "ids")
    if n is not None and len(ids) != n:
        raise InputError(f"got {len(ids)} ids for {n} texts; pass one id per text, or none")
    for i, doc_id in enumerate(ids):
        if not doc_id:
            raise InputError(f"ids[{i}] is empty; ids must be non-empty strings")
    if not unique:
        return list(dict.fromkeys(ids))
    seen: set[str] = set()
    dupes = sorted({i for i in ids if i in seen or seen.add(i)})  # type: ignore[func-returns-value]
    if dupes:
        raise InputError(f"duplicate ids in one call: {dupes[:5]}; each id may appear once")
    return ids


def check_metadatas(
    metadatas: Sequence[Mapping[str, Any] | None] | None, n: int
) -> list[dict[str, Any] | None]:
    """One new dict (or None, for no metadata) per text; the caller's mappings are not kept."""
    if metadatas is None:
        return [None] * n
    if isinstance(metadatas, Mapping) or not isinstance(metadatas, Sequence):
        raise InputError("metadatas must be a list with one dict (or None) per text")
    if len(metadatas) != n:
        raise InputError(f"got {len(metadatas)} metadatas for {n} texts")
    for i, meta in enumerate(metadatas):
        if meta is not None and not isinstance(meta, Mapping):
            raise InputError(f"metadatas[{i}] is {type(meta).__name__}; pass a dict or None")
    return [dict(m) if m else None for m in metadatas]


def content_id(text: str, metadata: Mapping[str, Any] | None) -> str:
    """A stable id for a record: a hash of its text and metadata."""
    blob = json.dumps([text, dict(metadata or {})], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


def assign_ids(
    texts: list[str], metas: list[dict[str, Any] | None], ids: Sequence[str] | None
) -> tuple[list[str], list[int]]:
    """``(one id per text, the positions to write)``. Given ids are checked and every record
    is written; made ids are content hashes, and identical records are written once."""
    if ids is not None:
        return check_ids(ids, len(texts)), list(range(len(texts)))
    out = [content_id(t, m) for t, m in zip(texts, metas, strict=True)]
    first: dict[str, int] = {}
    for i, doc_id in enumerate(out):
        first.setdefault(doc_id, i)
    return out, sorted(first.values())

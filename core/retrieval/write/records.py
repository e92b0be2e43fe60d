"""The records a write receives: their metadata checked, their ids checked or made, their
content hashed.

An id left out is a hash of the text and metadata, so adding the same record twice stores it
once, and repeating an interrupted add completes it instead of storing copies.

Metadata is checked against what Chroma stores faithfully, before anything is written: a key
is a non-empty string that does not start with ``#``, ``$``, ``chroma:`` or ``jinarag:``
(reserved); a value is a string, a bool, an integer that fits in 64 bits or a finite float, or a
non-empty list of one of those types. Chroma would drop NaN, infinity and None without a word,
turn an integer beyond 64 bits into a float, and a NaN inside a list makes its write log
unreadable; all of these are an :class:`InputError` naming the record and the key instead.

Example:
    >>> ids, keep = assign_ids(["a", "b", "a"], [None, None, None], None)
    >>> ids[0] == ids[2], keep
    (True, [0, 1])
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from jinarag.errors import InputError
from jinarag.validation import check_text, check_texts

__all__ = [
    "assign_ids",
    "check_ids",
    "check_metadatas",
    "check_where",
    "content_id",
    "record_hash",
]

_INT64 = (-(2**63), 2**63 - 1)
_RESERVED_KEYS = ("chroma:", "jinarag:")  # Chroma drops the first; the second is ours
_OPERATOR_KEYS = ("#", "$")  # Chroma refuses them: they name fields and operators in filters


def check_where(where: Any) -> dict[str, Any] | None:
    """A metadata filter: None, or a dict that Chroma reads (its operators checked there)."""
    if where is not None and not isinstance(where, dict):
        raise InputError(
            f"where must be a dict (a Chroma metadata filter such as {{'topic': 'aero'}} or "
            f"{{'n': {{'$gt': 2}}}}), got {type(where).__name__} {where!r:.60}"
        )
    return where


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
    metadatas: Sequence[Mapping[str, Any] | None] | None,
    n: int,
    ids: Sequence[str] | None = None,
    texts: Sequence[str] | None = None,
) -> list[dict[str, Any] | None]:
    """One new dict (or None, for no metadata) per text, each key and value checked against
    the rules in the module docstring; the caller's mappings are not kept. ``ids`` (or, for
    made ids, ``texts``) name the record in messages."""
    if metadatas is None:
        return [None] * n
    if isinstance(metadatas, Mapping) or not isinstance(metadatas, Sequence):
        raise InputError("metadatas must be a list with one dict (or None) per text")
    if len(metadatas) != n:
        raise InputError(f"got {len(metadatas)} metadatas for {n} texts")
    out: list[dict[str, Any] | None] = []
    for i, meta in enumerate(metadatas):
        if meta is not None and not isinstance(meta, Mapping):
            raise InputError(f"metadatas[{i}] is {type(meta).__name__}; pass a dict or None")
        for key, value in (meta or {}).items():
            _check_entry(_record_name(i, ids, texts), key, value)
        out.append(dict(meta) if meta else None)
    return out


def _record_name(i: int, ids: Sequence[str] | None, texts: Sequence[str] | None) -> str:
    if ids is not None:
        return f"metadatas[{i}] (id {ids[i]!r})"
    if texts is not None:
        return f"metadatas[{i}] (text {texts[i]!r:.40})"
    return f"metadatas[{i}]"


def _check_entry(record: str, key: Any, value: Any) -> None:
    if not isinstance(key, str):
        raise InputError(
            f"{record} has the key {key!r} ({type(key).__name__}); metadata keys must be "
            f"strings: use str({key!r})"
        )
    check_text(key, f"{record} key {key!r:.40}")
    if not key or key.startswith(_OPERATOR_KEYS) or key.startswith(_RESERVED_KEYS):
        raise InputError(
            f"{record} has the key {key!r}, which Chroma cannot store: keys must be non-empty "
            "and not start with '#' or '$' (filter syntax), 'chroma:' or 'jinarag:' (reserved); "
            "rename it"
        )
    where = f"{record} key {key!r}"
    if isinstance(value, list):
        if not value:
            raise InputError(f"{where} is an empty list, which Chroma refuses; leave the key out")
        kinds = {_kind(v) for v in value}
        if len(kinds) != 1 or None in kinds:
            raise InputError(
                f"{where} is the list {value!r:.80}; a list must hold strings, ints, floats or "
                "bools, all of one type (Chroma's rule); convert or split it"
            )
        for item in value:
            _check_scalar(where, item)
        return
    if _kind(value) is None:
        raise InputError(
            f"{where} is {type(value).__name__} {value!r:.60}; metadata values must be str, "
            "int, float, bool or a list of one of those (None, dicts and other objects are not "
            "stored); leave the key out, or convert the value (v.item() for a numpy number, "
            "json.dumps(v) for a dict)"
        )
    _check_scalar(where, value)


def _kind(value: Any) -> type | None:
    if isinstance(value, bool):  # before int: True is an int to Python, not to Chroma
        return bool
    return next((kind for kind in (str, int, float) if isinstance(value, kind)), None)


def _check_scalar(where: str, value: Any) -> None:
    if isinstance(value, str):
        check_text(value, where)
    elif isinstance(value, float) and not math.isfinite(value):
        raise InputError(
            f"{where} is {value!r}; Chroma stores only finite floats (it would drop the key "
            "without a word). Leave the key out, or store a string such as 'nan'"
        )
    elif _kind(value) is int and not _INT64[0] <= value <= _INT64[1]:
        raise InputError(
            f"{where} is {value}, beyond 64-bit integers (Chroma would store a rounded float); "
            "store it as a string, e.g. str(value)"
        )


def content_id(text: str, metadata: Mapping[str, Any] | None) -> str:
    """A stable id for a record: a hash of its text and metadata."""
    blob = json.dumps([text, dict(metadata or {})], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


def record_hash(text: str, metadata: Mapping[str, Any] | None) -> str:
    """The content hash stored with a record: equal exactly when the text and the metadata
    (keys, values and their types) are, so an unchanged record is never written again."""
    blob = json.dumps(
        ["jinarag-record/1", text, dict(metadata or {})],
        sort_keys=True,
        ensure_ascii=False,
        allow_nan=False,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


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

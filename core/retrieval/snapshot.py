"""The BM25 snapshot file, and the atomic write that saves it.

A snapshot stores the tokenised corpus as JSON, never pickled objects, so opening a store
cannot execute code. Next to the tokens it keeps the tokenizer's settings (tokens made with
other settings are not reused) and a ``state`` chosen by the caller (what the corpus was built
from). It is written atomically: a temporary file in the same folder, flushed and fsynced,
then renamed over the old one.

Example:
    >>> write_snapshot(Path("bm25.json"), {"stopwords": None}, {"generation": "g"},
    ...                {"a": ["wing", "stall"]})
    >>> read_snapshot(Path("bm25.json"), {"stopwords": None})
    ({'generation': 'g'}, {'a': ['wing', 'stall']})
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["SNAPSHOT_FORMAT", "atomic_write", "read_snapshot", "write_snapshot"]

SNAPSHOT_FORMAT = "jinarag-bm25/1"


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a part.

    Temporary file in the same folder → flush → fsync → rename over ``path`` → fsync the folder.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if hasattr(os, "fchmod"):  # mkstemp makes the file owner-only; a snapshot need not be
            os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if os.name == "posix":  # make the rename itself durable; Windows cannot open folders
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def write_snapshot(
    path: Path,
    tokenizer: dict[str, Any],
    state: dict[str, Any],
    docs: Mapping[str, Sequence[str]],
) -> None:
    """Save ``docs`` (``{id: terms}``) with the tokenizer's spec and ``state``, atomically."""
    payload = {
        "format": SNAPSHOT_FORMAT,
        "tokenizer": tokenizer,
        "state": state,
        "ids": list(docs),
        # Terms never contain spaces (they are runs of letters and digits): join them.
        "tokens": [" ".join(toks) for toks in docs.values()],
    }
    atomic_write(path, json.dumps(payload, separators=(",", ":")).encode("utf-8"))


def read_snapshot(
    path: Path, tokenizer: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, list[str]]] | None:
    """``(state, {id: terms})`` from a snapshot, or None when the file is missing, unreadable
    or was made with another tokenizer (the caller then rebuilds from its source of truth)."""
    try:
        payload = json.loads(path.read_bytes())
        if payload.get("format") != SNAPSHOT_FORMAT:
            return None
        if payload.get("tokenizer") != tokenizer:
            return None
        ids, tokens = payload["ids"], payload["tokens"]
        if len(ids) != len(tokens):
            return None
        state = payload["state"]
        docs = {i: (t.split(" ") if t else []) for i, t in zip(ids, tokens, strict=True)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return state, docs

"""Reading files into documents: txt, md and jsonl (a BEIR ``corpus.jsonl`` reads as is).

Supported inputs (a folder is searched recursively for them, in sorted order):

* ``.txt``, ``.md``, ``.markdown``: one document per file; its id is the path as given.
* ``.jsonl``: one JSON object per line with a ``"text"`` string; the id comes from ``"_id"`` or
  ``"id"`` (else ``path:line``); a ``"title"`` is put in front of the text
  (:func:`document_text`, the BEIR convention and the one title rule of the project). Other
  scalar fields (str, int, float, bool) become metadata; nested values are skipped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinarag.errors import InputError

__all__ = ["SUFFIXES", "Document", "document_text", "find_files", "read_documents", "read_file"]

SUFFIXES = (".txt", ".md", ".markdown", ".jsonl")


@dataclass(frozen=True)
class Document:
    """A whole document as read from a file, before chunking."""

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


def document_text(title: str | None, text: str) -> str:
    """The text to index for a titled document: ``"title text"`` (the BEIR convention)."""
    return f"{title} {text}" if title else text


def find_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Expand files and folders into the supported files, in a stable order.

    Raises:
        InputError: a path does not exist, or a file given by name has an unsupported suffix.
    """
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(
                sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
            )
        elif path.is_file():
            if path.suffix.lower() not in SUFFIXES:
                raise InputError(
                    f"cannot read {str(path)!r}: unsupported file type {path.suffix!r}; "
                    f"supported: {', '.join(SUFFIXES)}"
                )
            out.append(path)
        else:
            raise InputError(f"no such file or folder: {str(path)!r}")
    return out


def _scalar_fields(obj: dict[str, Any], skip: set[str]) -> dict[str, Any]:
    return {
        key: value
        for key, value in obj.items()
        if key not in skip and isinstance(value, str | int | float | bool)
    }


def read_file(path: str | os.PathLike[str]) -> Iterator[Document]:
    """The documents of one file (see the module docstring for the formats).

    Raises:
        InputError: a JSONL line is not an object with a ``"text"`` string.
    """
    path = Path(path)
    source = str(path)
    if path.suffix.lower() != ".jsonl":
        yield Document(source, path.read_text(encoding="utf-8"), {"source": source})
        return
    with path.open(encoding="utf-8") as lines:
        for line_no, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{source}:{line_no}"
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise InputError(f"{where} is not valid JSON ({exc}); fix or remove it") from exc
            if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                raise InputError(
                    f'{where} needs a "text" string, e.g. {{"_id": "1", "text": "..."}}; '
                    f"got {line.strip()[:80]!r}"
                )
            raw_id = obj.get("_id", obj.get("id"))
            doc_id = str(raw_id) if raw_id is not None else where
            title = obj.get("title") if isinstance(obj.get("title"), str) else None
            metadata = {"source": source, **_scalar_fields(obj, {"_id", "id", "text", "source"})}
            yield Document(doc_id, document_text(title, obj["text"]), metadata)


def read_documents(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Document]:
    """The documents of every supported file under ``paths``."""
    for path in find_files(paths):
        yield from read_file(path)

"""Sources: the files an index is built from, each named by its path relative to a root.

A source's id never depends on how its path was typed: ``tiny``, ``$(pwd)/tiny`` and
``cd tiny; jinarag index .`` name the file ``tiny/a.md`` ``a.md`` every time, relative to the
root (by default each argument itself when it is a folder, else the folder holding the file;
``root=`` names one root for all). Each source carries a hash of its bytes, so an unchanged
file is recognised without reading it into the model.

Every record made from a source carries, besides the document's own metadata and ``source``,
``doc_id`` and ``chunk``, bookkeeping under reserved keys (never shown in results):
:data:`ROOT_KEY`, :data:`SOURCE_HASH_KEY`, :data:`SOURCE_DOCS_KEY` (documents in the source),
:data:`DOC_HASH_KEY` (the document with the chunking settings), :data:`DOC_CHUNKS_KEY` (chunks
of the document) and :data:`CHUNKING_KEY`. From these alone, :func:`catalog` tells which
sources and documents a collection holds completely, so a write that was stopped halfway is
finished by running it again, and the records of a source are found to update or remove it.

Example:
    >>> found = scan(["docs/"])
    >>> [(s.id, s.hash[:8]) for s in found.sources]
    [('guide.md', '3f2a...'), ('api/index.html', '9c1e...')]
    >>> [(s.path, s.reason) for s in found.skipped]
    [('docs/logo.png', 'unsupported type .png')]
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinarag.errors import InputError
from jinarag.retrieval.ingest.chunking import Chunking, TokenOffsets, document_records
from jinarag.retrieval.ingest.readers import SUFFIXES, Document, read_file
from jinarag.retrieval.layout import (
    CHUNKING_KEY,
    DOC_CHUNKS_KEY,
    DOC_HASH_KEY,
    ROOT_KEY,
    SOURCE_DOCS_KEY,
    SOURCE_HASH_KEY,
    Record,
    document_hash,
)
from jinarag.validation import check_path, check_paths

if TYPE_CHECKING:
    from jinarag.retrieval.store.collection import ChromaStore

__all__ = [
    "CHUNKING_KEY",
    "DOC_CHUNKS_KEY",
    "DOC_HASH_KEY",
    "ROOT_KEY",
    "SOURCE_DOCS_KEY",
    "SOURCE_HASH_KEY",
    "Chunking",
    "Scan",
    "Skipped",
    "Source",
    "StoredDoc",
    "StoredSource",
    "catalog",
    "doc_hash",
    "read_source",
    "scan",
    "source_keys",
    "source_records",
]

_READ_BLOCK = 1 << 20


@dataclass(frozen=True)
class Source:
    """One file to index: ``id`` is its path relative to ``root`` (with ``/``), ``path`` where
    it is now, ``root`` the absolute root folder, ``hash`` a SHA-256 of its bytes."""

    id: str
    path: Path
    root: str
    hash: str


@dataclass(frozen=True)
class Skipped:
    """A file that was found but not indexed, and why (e.g. ``"unsupported type .pdf"``)."""

    path: str
    reason: str


@dataclass(frozen=True)
class Scan:
    """What :func:`scan` found: the sources, the files skipped, and the scopes searched:
    ``(root, prefix)`` pairs, a source being in scope when its id is ``prefix`` or starts with
    ``prefix + "/"`` (prefix ``""``: the whole root)."""

    sources: list[Source]
    skipped: list[Skipped]
    scopes: list[tuple[str, str]]

    def covers(self, root: str | None, source_id: str) -> bool:
        """Whether a stored source lies where this scan looked (so it would have been found)."""
        return any(
            root == r and (not p or source_id == p or source_id.startswith(p + "/"))
            for r, p in self.scopes
        )


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_READ_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def scan(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    root: str | os.PathLike[str] | None = None,
    exclude: Iterable[str | os.PathLike[str]] = (),
    *,
    hashing: bool = True,
) -> Scan:
    """Find the sources under ``paths`` (files, or folders searched recursively in sorted order;
    hidden files and folders, whose names start with ``.``, are passed over).

    Args:
        paths: files and folders (one path alone is one path, never its characters).
        root: the folder ids are relative to; default: each folder given, and for a file
            given, the folder holding it. Every path must lie inside it.
        exclude: folders passed over (the index's own store, when it lies in a folder given).
        hashing: hash each file (False: only check the paths, the hashes are left empty).

    Returns:
        The sources, the files skipped with the reason (an unsupported type, unreadable, the
        queries file of a BEIR dataset), and the scopes searched.

    Raises:
        InputError: a path does not exist, lies outside ``root``, is a file of an unsupported
            type named explicitly, or two files would get the same id under different roots.
    """
    paths = check_paths(paths)
    check_path("root", root, allow_none=True, what="the folder the ids are relative to")
    base = Path(root).resolve() if root is not None else None
    passed_over = [Path(folder).resolve() for folder in exclude]
    if base is not None and not base.is_dir():
        raise InputError(
            f"--root {str(root)!r} is not a folder; name the folder the ids are relative to"
        )
    sources: dict[tuple[str, str], Source] = {}
    by_id: dict[str, Source] = {}
    skipped: list[Skipped] = []
    scopes: list[tuple[str, str]] = []

    def add(file: Path, source_id: str, top: Path) -> None:
        key = (str(top), source_id)
        if key in sources:
            return  # the same file reached twice
        try:
            digest = _file_hash(file) if hashing else ""
        except OSError as exc:
            skipped.append(Skipped(str(file), f"cannot read: {exc.strerror or exc}"))
            return
        other = by_id.get(source_id)
        if other is not None and other.root != str(top):
            raise InputError(
                f"{str(other.path)!r} and {str(file)!r} would both be stored as {source_id!r} "
                f"(relative to {other.root} and {top}); index them with --root set to a folder "
                "holding both, so each keeps its folder in its id"
            )
        sources[key] = by_id[source_id] = Source(source_id, file, str(top), digest)

    for raw in paths:
        given = Path(raw)
        if not given.exists():
            raise InputError(f"no such file or folder: {str(given)!r}")
        resolved = given.resolve()
        top = base if base is not None else (resolved if resolved.is_dir() else resolved.parent)
        try:
            rel = resolved.relative_to(top)
        except ValueError:
            raise InputError(
                f"{str(given)!r} is outside --root {str(top)!r}; give a root that holds every path"
            ) from None
        prefix = "" if rel == Path(".") else rel.as_posix()
        if resolved.is_file():
            if resolved.suffix.lower() not in SUFFIXES:
                raise InputError(
                    f"cannot read {str(given)!r}: unsupported file type {resolved.suffix!r}; "
                    f"supported: {', '.join(SUFFIXES)}"
                )
            scopes.append((str(top), prefix))
            add(resolved, prefix, top)
            continue
        scopes.append((str(top), prefix))
        beir = {
            p.parent for p in given.rglob("corpus.jsonl") if (p.parent / "queries.jsonl").is_file()
        }
        for file in sorted(p for p in given.rglob("*") if p.is_file()):
            inner = file.relative_to(given)
            if _hidden(inner) or any(file.resolve().is_relative_to(f) for f in passed_over):
                continue
            source_id = (Path(prefix) / inner).as_posix() if prefix else inner.as_posix()
            suffix = file.suffix.lower()
            if suffix not in SUFFIXES:
                skipped.append(Skipped(str(file), f"unsupported type {suffix or '(none)'}"))
            elif file.name == "queries.jsonl" and file.parent in beir:
                skipped.append(Skipped(str(file), "the queries of a BEIR dataset, not documents"))
            else:
                add(file, source_id, top)
    return Scan(list(sources.values()), skipped, scopes)


def read_source(source: Source) -> list[Document]:
    """The documents of a source that have text (blank ones would make no records), each with
    ``source`` set to the source's id; ids of JSONL lines without one are ``"{id}:{line}"``.

    Raises:
        InputError: a bad JSONL line, or the file is not UTF-8 text (named with the fix).
    """
    try:
        return [doc for doc in read_file(source.path, source=source.id) if doc.text.strip()]
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{str(source.path)!r} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
            "convert it to UTF-8 or move it out of the folder"
        ) from exc


def doc_hash(doc: Document, chunking: Chunking) -> str:
    """A hash of a document as indexed (:func:`jinarag.retrieval.layout.document_hash`)."""
    return document_hash(doc.id, doc.text, doc.metadata, str(chunking))


def source_keys(source: Source, n_docs: int, chunking: Chunking) -> dict[str, Any]:
    """The reserved keys every record of ``source`` carries (without the per-document ones)."""
    return {
        ROOT_KEY: source.root,
        SOURCE_HASH_KEY: source.hash,
        SOURCE_DOCS_KEY: n_docs,
        CHUNKING_KEY: str(chunking),
    }


def source_records(
    source: Source,
    n_docs: int,
    docs: Sequence[Document],
    token_offsets: TokenOffsets,
    chunking: Chunking,
) -> tuple[list[Record], list[list[int]]]:
    """The records of ``docs`` (some or all of ``source``'s ``n_docs`` documents), source keys
    included, and per document the positions of its records among them."""
    keys = source_keys(source, n_docs, chunking)
    records: list[Record] = []
    groups: list[list[int]] = []
    for doc in docs:
        made = document_records(doc, token_offsets, chunking, extra=keys)
        groups.append(list(range(len(records), len(records) + len(made))))
        records.extend(made)
    return records, groups


# -- what a collection holds ---------------------------------------------------------------


@dataclass
class StoredDoc:
    """A document's records as stored: their ids, the document hash they carry (None when
    they disagree) and how many chunks the document has."""

    ids: list[str] = field(default_factory=list)
    hash: str | None = None
    chunks: int | None = None

    @property
    def complete(self) -> bool:
        return self.hash is not None and self.chunks == len(self.ids)


@dataclass
class StoredSource:
    """A source's records as stored, by document. ``root`` is None for records written
    without a root (by ``HybridIndex.add`` with a ``source`` key, or by an older version)."""

    root: str | None
    id: str
    hashes: set[str] = field(default_factory=set)
    chunkings: set[str] = field(default_factory=set)
    docs_expected: set[int] = field(default_factory=set)
    docs: dict[str, StoredDoc] = field(default_factory=dict)

    @property
    def ids(self) -> list[str]:
        return [i for doc in self.docs.values() for i in doc.ids]

    @property
    def hash(self) -> str | None:
        return next(iter(self.hashes)) if len(self.hashes) == 1 else None

    def complete(self, source_hash: str, chunking: Chunking) -> bool:
        """Whether every record of the source at ``source_hash`` cut by ``chunking`` is stored
        (and nothing else of it)."""
        return (
            self.hashes == {source_hash}
            and self.chunkings == {str(chunking)}
            and self.docs_expected == {len(self.docs)}
            and all(doc.complete for doc in self.docs.values())
        )


def catalog(
    store: ChromaStore, where: dict[str, Any] | None = None
) -> dict[tuple[str | None, str], StoredSource]:
    """Every source the collection holds records of (records with a ``source`` key), keyed by
    ``(root, id)``, read from the stored metadata page by page."""
    out: dict[tuple[str | None, str], StoredSource] = {}
    for record_id, meta in store.metadatas(where):
        source_id = meta.get("source")
        if not isinstance(source_id, str):
            continue
        root = meta.get(ROOT_KEY)
        root = root if isinstance(root, str) else None
        entry = out.get((root, source_id))
        if entry is None:
            entry = out[(root, source_id)] = StoredSource(root, source_id)
        if isinstance(meta.get(SOURCE_HASH_KEY), str):
            entry.hashes.add(meta[SOURCE_HASH_KEY])
        if isinstance(meta.get(CHUNKING_KEY), str):
            entry.chunkings.add(meta[CHUNKING_KEY])
        if isinstance(meta.get(SOURCE_DOCS_KEY), int):
            entry.docs_expected.add(meta[SOURCE_DOCS_KEY])
        doc_key = meta.get("doc_id")
        doc_key = str(doc_key) if doc_key is not None else record_id
        doc = entry.docs.get(doc_key)
        first = doc is None
        if doc is None:
            doc = entry.docs[doc_key] = StoredDoc()
        doc.ids.append(record_id)
        mark = meta.get(DOC_HASH_KEY)
        chunks = meta.get(DOC_CHUNKS_KEY)
        if first:
            doc.hash = mark if isinstance(mark, str) else None
            doc.chunks = chunks if isinstance(chunks, int) else None
        elif doc.hash != mark or doc.chunks != chunks:
            doc.hash = None  # records of two versions of the document: not complete
    return out

"""Indexing files and keeping an index in step with them (``jinarag index``, ``add_files``).

One run, under the store's write lock from the first read to the last write:

1. :func:`jinarag.retrieval.ingest.sources.scan` finds the sources (ids relative to a root, a
   hash of each file's bytes) and the files it skips, with the reason.
2. :func:`jinarag.retrieval.ingest.sources.catalog` reads what the collection holds of them.
3. Each source is *unchanged* (every record of this version stored, with these chunking
   settings: nothing is read or embedded), *added* or *updated*. Of an updated source only the
   documents whose hash changed are embedded (one JSONL line edited, one line embedded again),
   and records it no longer has are removed after the new ones are written.
4. Stored sources in the scanned folders that are gone from disk are reported as *missing*,
   and removed (Chroma and BM25 together) with ``sync=True``.

The chunking and embedding of step 3 is an executor's (:mod:`jinarag.retrieval.ingest.executor`:
:class:`LocalExecutor` in this process, ``ray_executor.RayExecutor`` on a Ray cluster). Either
way the records are written here, batch by batch, through the one
:class:`~jinarag.retrieval.write.writer.Writer` (content hashes, so a repeated or resumed run
writes nothing twice), and every record carries its document's hash and chunk count: a run
stopped at any point is finished by running it again.

Example:
    >>> report = index.add_files(["docs/"], sync=True)
    >>> report.summary()
    'added 3, updated 1, unchanged 40, removed 2, skipped 1 (unsupported type .pdf: 1)'
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinarag.errors import InputError
from jinarag.retrieval.ingest.chunking import Chunking
from jinarag.retrieval.ingest.executor import (
    ChunkBatch,
    Executor,
    LocalExecutor,
    SourceWork,
)
from jinarag.retrieval.ingest.sources import (
    ROOT_KEY,
    SOURCE_DOCS_KEY,
    SOURCE_HASH_KEY,
    Skipped,
    Source,
    StoredSource,
    catalog,
    scan,
)
from jinarag.retrieval.layout import HASH_KEY, Record
from jinarag.validation import check_bool

if TYPE_CHECKING:
    import os

    from jinarag.retrieval.write.writer import Writer

__all__ = ["IngestReport", "LocalExecutor", "add_files"]


@dataclass
class IngestReport:
    """What a run did, by source id (``skipped``: the files passed over, with the reason)."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    chunks_written: int = 0
    chunks_removed: int = 0
    records: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        """One line: the counts, skipped reasons grouped."""
        parts = [
            f"added {len(self.added)}",
            f"updated {len(self.updated)}",
            f"unchanged {len(self.unchanged)}",
            f"removed {len(self.removed)}",
        ]
        if self.missing:
            parts.append(f"missing {len(self.missing)} (kept; --sync removes them)")
        reasons = Counter(s.reason for s in self.skipped)
        grouped = ", ".join(f"{reason}: {n}" for reason, n in sorted(reasons.items()))
        parts.append(f"skipped {len(self.skipped)}" + (f" ({grouped})" if grouped else ""))
        return (
            ", ".join(parts)
            + f"; {self.chunks_written} chunks written, {self.chunks_removed} removed; "
            f"the index holds {self.records} records ({self.seconds:.1f} s)"
        )

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "missing": self.missing,
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "chunks_written": self.chunks_written,
            "chunks_removed": self.chunks_removed,
            "records": self.records,
            "seconds": round(self.seconds, 3),
        }


def add_files(
    writer: Writer,
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    exclude: Sequence[str | os.PathLike[str]] = (),
    root: str | os.PathLike[str] | None = None,
    sync: bool = False,
    chunking: Chunking,
    executor: Executor | None = None,
    show_progress: bool = False,
) -> IngestReport:
    """Index the files under ``paths`` through ``writer``; see the module docstring.
    ``exclude``: folders passed over (the store itself, when it lies in a folder given).

    Raises:
        InputError: a bad path or root (before anything is written), a bad file (named; the
            sources written before it stay written and a re-run goes on from there).
    """
    from tqdm.auto import tqdm

    sync = check_bool("sync", sync)
    show_progress = check_bool("show_progress", show_progress)
    if executor is not None and not callable(getattr(executor, "batches", None)):
        raise InputError(
            f"executor must be an executor, got {type(executor).__name__} {executor!r:.60}; "
            "pass None (this process), LocalExecutor() or "
            "jinarag.retrieval.ingest.ray_executor.RayExecutor(...)"
        )
    started = time.perf_counter()
    found = scan(paths, root, exclude=exclude)
    report = IngestReport(skipped=list(found.skipped))
    executor = executor if executor is not None else LocalExecutor()
    with writer.writing():
        held = _adopt_unrooted(catalog(writer.store), found.sources)
        _check_roots(found.sources, held)
        owners = {record_id: key for key, stored in held.items() for record_id in stored.ids}
        work: list[SourceWork] = []
        for source in found.sources:
            stored = held.get((source.root, source.id))
            if stored is not None and stored.complete(source.hash, chunking):
                report.unchanged.append(source.id)
                continue
            (report.updated if stored is not None else report.added).append(source.id)
            work.append(SourceWork(source, _complete_docs(stored)))
        present = {(s.root, s.id) for s in found.sources}
        gone = sorted(
            key for key in held if key not in present and key[0] is not None and found.covers(*key)
        )
        written: dict[str, set[str]] = {item.source.id: set() for item in work}
        rewritten: dict[str, set[str]] = {item.source.id: set() for item in work}  # doc ids
        seen: dict[str, dict[str, int]] = {item.source.id: {} for item in work}
        # No bar for no work: every source unchanged (or only removals) writes no chunk.
        bar = tqdm(desc="indexing", unit="chunk", disable=not show_progress or not work)
        try:
            for batch in executor.batches(writer.embedder, work, chunking):
                if batch.total is not None and bar.total != batch.total:
                    bar.total = batch.total
                    bar.refresh()
                for source_id, doc_id, n_docs in batch.seen:
                    seen[source_id][doc_id] = n_docs
                if batch.records:
                    _write(writer, batch, owners)
                    for record in batch.records:
                        written[record.metadata["source"]].add(record.id)
                        rewritten[record.metadata["source"]].add(str(record.metadata["doc_id"]))
                    report.chunks_written += len(batch.records)
                    bar.update(len(batch.records))
        finally:
            bar.close()
        for item in work:
            stored = held.get((item.source.root, item.source.id))
            if stored is not None:
                source_id = item.source.id
                kept = set(seen[source_id]) - rewritten[source_id]
                report.chunks_removed += _finish_source(
                    writer, item, stored, written[source_id], kept, len(seen[source_id])
                )
        if sync:
            for key in gone:
                ids = held[key].ids
                writer.delete(ids)
                report.removed.append(key[1])
                report.chunks_removed += len(ids)
        else:
            report.missing = [key[1] for key in gone]
    report.records = writer.store.count()
    report.seconds = time.perf_counter() - started
    return report


def _complete_docs(stored: StoredSource | None) -> dict[str, str]:
    if stored is None:
        return {}
    return {d: doc.hash for d, doc in stored.docs.items() if doc.complete and doc.hash}


def _adopt_unrooted(
    held: dict[tuple[str | None, str], StoredSource], sources: Sequence[Source]
) -> dict[tuple[str | None, str], StoredSource]:
    """Records stored without a root, whose ``source`` is the path of a file indexed now (as
    an older version wrote them: the path as typed), become that source's: they are replaced
    by its records and their leftovers removed, not kept beside them as a second copy."""
    by_path = {source.path: (source.root, source.id) for source in sources}
    for key in [key for key in held if key[0] is None]:
        try:
            path = Path(key[1]).resolve()
        except (OSError, RuntimeError, ValueError):
            continue
        new = by_path.get(path)
        if new is None:
            continue
        legacy = held.pop(key)
        entry = held.setdefault(new, StoredSource(*new))
        entry.hashes.add("")  # never complete: the source is written again
        for doc_id, doc in legacy.docs.items():
            merged = entry.docs.setdefault(doc_id, doc)
            if merged is not doc:
                merged.ids.extend(doc.ids)
            merged.hash = None  # written again under the new layout
    return held


def _check_roots(sources: Sequence[Source], held: dict[tuple[str | None, str], Any]) -> None:
    """A source id stored from another root would have its records replaced: refuse."""
    roots: dict[str, list[str]] = {}
    for root, source_id in held:
        if root is not None:
            roots.setdefault(source_id, []).append(root)
    for source in sources:
        others = [r for r in roots.get(source.id, []) if r != source.root]
        if others:
            raise InputError(
                f"{source.id!r} under {source.root} would replace the records of {source.id!r} "
                f"stored from {others[0]}: ids are paths relative to the root. Index with --root "
                "set to a folder holding both (each keeps its folder in its id), or remove the "
                f"other first (jinarag delete --source {Path(others[0]) / source.id})"
            )


def _write(writer: Writer, batch: ChunkBatch, owners: dict[str, tuple[str | None, str]]) -> None:
    """Write one batch through the one writer (planned against what is stored);
    a record id that another source's record holds is refused, never overwritten."""
    records = batch.records
    ids = [r.id for r in records]
    for record in records:
        owner = owners.get(record.id)
        mine = (record.metadata.get(ROOT_KEY), record.metadata["source"])
        if owner is not None and owner != mine:
            raise InputError(
                f"record id {record.id!r} of {mine[1]!r} is already held by a record of "
                f"{owner[1]!r} (under {owner[0]}); two sources cannot share an id: change the "
                "'_id' of one, or delete the other first (jinarag delete --source ...)"
            )
    if len(set(ids)) != len(ids):
        twice = sorted({i for i in ids if ids.count(i) > 1})
        raise InputError(
            f"two documents would be stored under the id {twice[0]!r} (check the '_id' fields "
            "of the JSONL files): ids must be unique across the files indexed together"
        )
    writer.write(records, documents=batch.documents, vectors=batch.vectors)


def _finish_source(
    writer: Writer,
    item: SourceWork,
    stored: StoredSource,
    written: set[str],
    kept: set[str],
    n_docs: int,
) -> int:
    """After an updated source's records are written: remove what it no longer has, and
    bring the ``kept`` documents' (read, not embedded again) source keys up to date. Returns
    the records removed."""
    source = item.source
    kept_ids = [i for doc_id in kept if doc_id in stored.docs for i in stored.docs[doc_id].ids]
    stale = sorted(set(stored.ids) - written - set(kept_ids))
    writer.delete(stale)
    if kept_ids and (stored.hashes != {source.hash} or stored.docs_expected != {n_docs}):
        # Kept documents carry the old file's hash: give them this one, text and vector stay.
        held = writer.store.raw_records(kept_ids)
        writer.write(
            [
                Record(
                    i,
                    held[i][0],
                    {
                        **{k: v for k, v in held[i][1].items() if k != HASH_KEY},
                        SOURCE_HASH_KEY: source.hash,
                        SOURCE_DOCS_KEY: n_docs,
                    },
                )
                for i in kept_ids
                if i in held
            ]
        )
    return len(stale)

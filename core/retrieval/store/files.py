"""Checks of an embedded Chroma store's files, made before Chroma opens them.

Chroma 1.5 keeps a store in one folder: ``chroma.sqlite3`` (texts, metadata, the write log)
and, per collection, a vector segment folder named by its uuid with the HNSW graph in five
files (``header.bin``, ``data_level0.bin``, ``length.bin``, ``link_lists.bin``,
``index_metadata.pickle``). Records written since the last flush (Chroma's
``sync_threshold``) live in the sqlite log only, so a segment without files is normal until
the first flush; after it, sqlite's ``max_seq_id`` row for the segment says so.

A damaged graph is worse than an error inside Chroma: a missing segment is silently replaced by
an empty one (the flushed records vanish from dense search), a truncated file is read past its
end (garbage vectors, or the process dies with SIGSEGV). :func:`check_store_files` finds these
cheaply (file sizes against the header, the link lists walked, the pickle's opcodes read
without running them) and raises :class:`StoreCorruptError` instead.

Not checked here: whether sqlite itself is readable (Chroma reports that, and
:data:`jinarag.retrieval.store.errors.ERRORS` names it), and whether every record is
reachable in the graph (that is :mod:`jinarag.retrieval.write.verify`'s coverage check).

Example:
    >>> check_store_files(Path("./store"), "jinarag", Path("./store/jinarag-bm25/jinarag.json"))
"""

from __future__ import annotations

import contextlib
import io
import json
import pickletools
import sqlite3
import struct
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from jinarag.errors import StoreCorruptError, StoreMismatchError

__all__ = [
    "HNSW_FILES",
    "SQLITE_FILE",
    "check_store_files",
    "collection_names",
    "rebuild_hint",
    "recorded_embedder",
    "recorded_metadata",
    "snapshot_path",
    "vector_folder",
]

SQLITE_FILE = "chroma.sqlite3"
BM25_FOLDER = "jinarag-bm25"  # the BM25 snapshots, one <collection>.json each
HNSW_FILES = (
    "header.bin",
    "data_level0.bin",
    "length.bin",
    "link_lists.bin",
    "index_metadata.pickle",
)
# hnswlib's persisted header (chroma-core/hnswlib, PERSISTENCE_VERSION 1): version, offsetLevel0,
# max_elements, cur_element_count, size_data_per_element, label_offset, offsetData, maxlevel,
# enterpoint_node, maxM, maxM0, M, mult, ef_construction.
_HEADER = struct.Struct("<iQQQQQQiIQQQdQ")


def snapshot_path(path: Path, collection: str) -> Path:
    """Where the store at ``path`` keeps the BM25 snapshot of ``collection``."""
    return path / BM25_FOLDER / f"{collection}.json"


def rebuild_hint(path: Path, collection: str) -> str:
    """The two ways back from a damaged store, for messages."""
    return (
        f"restore the folder {path} from a backup, or rebuild the vector index from the stored "
        f"texts: jinarag verify {path} --collection {collection} --repair "
        "(or delete the folder and index your files again)"
    )


def check_store_files(
    path: Path,
    collection: str,
    snapshot: Path | None,
    wait: AbstractContextManager[Any] | None = None,
) -> None:
    """Raise :class:`StoreCorruptError` when the store at ``path`` is visibly damaged: its
    database deleted while a BM25 snapshot of records remains, or the collection's vector
    segment missing or inconsistent. A store that does not exist yet, or one sqlite cannot
    read, passes (Chroma creates the first and reports the second).

    ``wait`` (the store's write lock) is taken to look a second time when the first look
    fails: a writer in the middle of saving the vector index leaves files that disagree for
    a moment, and it releases the lock once they agree again."""
    try:
        _check(path, collection, snapshot)
    except StoreCorruptError:
        if wait is None:
            raise
        with wait:
            _check(path, collection, snapshot)
    except OSError:
        return  # cannot look (no permission): Chroma says so, and its error table names it


def _check(path: Path, collection: str, snapshot: Path | None) -> None:
    if not path.is_dir():
        return
    database = path / SQLITE_FILE
    if not database.exists():
        _check_no_orphan_snapshot(path, collection, snapshot)
        return
    _check_snapshot_records_held(path, collection, snapshot)
    segment = _vector_segment(database, collection)
    if segment is None:
        return
    segment_id, flushed, dim = segment
    folder = path / segment_id
    if not folder.is_dir():
        if flushed:
            raise StoreCorruptError(
                f"the vector index of collection {collection!r} is missing: {folder} does not "
                f"exist, but Chroma's database says records were written to it. Opening the "
                f"store would silently drop those records from dense search. Fix: "
                f"{rebuild_hint(path, collection)}."
            )
        return
    problem = _hnsw_problem(folder, flushed, dim)
    if problem is not None:
        raise StoreCorruptError(
            f"the vector index of collection {collection!r} in {folder} is damaged: {problem}. "
            f"Opening it could return wrong results or crash the process. Fix: "
            f"{rebuild_hint(path, collection)}."
        )


def _check_no_orphan_snapshot(path: Path, collection: str, snapshot: Path | None) -> None:
    held = _snapshot_state(snapshot)
    if held is None or held[0] == 0:
        return
    raise _mismatch(
        path,
        collection,
        snapshot,
        held[0],
        f"Chroma's database {path / SQLITE_FILE} is missing",
    )


def _check_snapshot_records_held(path: Path, collection: str, snapshot: Path | None) -> None:
    """StoreMismatchError when the BM25 snapshot lists records that Chroma's database cannot
    hold: the database has no such collection (emptied, zero bytes, replaced by another
    store's), or the collection is at the snapshot's write generation with another count (no
    write happened since the snapshot was saved, yet records went away). A database sqlite
    cannot read passes: Chroma names that damage."""
    held = _snapshot_state(snapshot)
    if held is None or held[0] == 0:
        return
    database = path / SQLITE_FILE
    tables = _read(database, "SELECT name FROM sqlite_master WHERE type = 'table'")
    if tables is None:
        return
    names = collection_names(path) if ("collections",) in tables else set()
    if f"{collection}-rebuild" in names:
        return  # a vector index rebuild was cut short: `verify --repair` finishes it
    if collection not in names:
        size = database.stat().st_size
        empty = "an empty file (0 bytes)" if size == 0 else f"a database of {size} bytes"
        holds = f"holds no collection {collection!r}"
        if names:
            holds += f" (only {', '.join(sorted(names))})"
        raise _mismatch(path, collection, snapshot, held[0], f"{database}, {empty}, {holds}")
    stored = _read(
        database,
        "SELECT (SELECT m.str_value FROM collection_metadata m WHERE m.collection_id = c.id "
        "AND m.key = 'jinarag:generation'), (SELECT count(*) FROM embeddings e JOIN segments s "
        "ON e.segment_id = s.id WHERE s.collection = c.id AND s.scope = 'METADATA') "
        "FROM collections c WHERE c.name = ?",
        collection,
    )
    if not stored:
        return
    generation, count = stored[0]
    if generation == held[1] and count < held[0]:
        raise _mismatch(
            path,
            collection,
            snapshot,
            held[0],
            f"{database} holds {count} records of collection {collection!r} with no write "
            "since the snapshot was saved",
        )


def _snapshot_state(snapshot: Path | None) -> tuple[int, str | None] | None:
    """``(records, write generation)`` a BM25 snapshot says it was built from; None when
    there is none (records ``-1``: a file that cannot be read is still evidence of records)."""
    if snapshot is None or not snapshot.is_file():
        return None
    try:
        payload = json.loads(snapshot.read_bytes())
        state = payload.get("state") or {}
        records = int(state.get("count", len(payload.get("ids", []))))
        generation = state.get("generation")
    except (OSError, ValueError, AttributeError, TypeError):
        return -1, None
    return records, generation if isinstance(generation, str) else None


def _mismatch(
    path: Path, collection: str, snapshot: Path, records: int, found: str
) -> StoreMismatchError:
    listed = f"{records} records" if records > 0 else "records"
    return StoreMismatchError(
        f"{found}, but the BM25 snapshot {snapshot} lists {listed} of collection "
        f"{collection!r}: the store was damaged or partly replaced, and opening it would serve "
        f"an index silently missing them. Fix: restore the folder {path} from a backup; or, to "
        f"keep only what the database holds, set the snapshot aside: jinarag verify {path} "
        f"--collection {collection} --repair",
        snapshot,
    )


def _read(database: Path, sql: str, *args: str | int) -> list[tuple[Any, ...]] | None:
    """Rows of a read-only query on Chroma's sqlite, or None when it cannot be read (Chroma
    then reports it, and its error table names the damage)."""
    uri = f"{database.resolve().as_uri()}?mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=10)) as con:
            return con.execute(sql, args).fetchall()
    except sqlite3.Error:
        return None


def _vector_segment(database: Path, collection: str) -> tuple[str, int, int | None] | None:
    """``(segment id, records flushed to it, dimension)`` of the collection's vector segment,
    read from sqlite without writing; None when there is none or sqlite cannot be read.

    A record is in the vector index's files once the segment's ``max_seq_id`` reached the
    record's last write (``embeddings.seq_id`` of the collection's metadata segment)."""
    rows = _read(
        database,
        "SELECT s.id, c.dimension, m.seq_id, c.id FROM segments s JOIN collections c "
        "ON s.collection = c.id LEFT JOIN max_seq_id m ON m.segment_id = s.id "
        "WHERE c.name = ? AND s.scope = 'VECTOR'",
        collection,
    )
    if not rows:
        return None
    segment, dim, seq, collection_id = rows[0]
    flushed = 0
    if isinstance(seq, int) and seq > 0:
        counted = _read(
            database,
            "SELECT count(*) FROM embeddings e JOIN segments s ON e.segment_id = s.id "
            "WHERE s.collection = ? AND s.scope = 'METADATA' AND e.seq_id <= ?",
            str(collection_id),
            seq,
        )
        flushed = int(counted[0][0]) if counted else 0
    return str(segment), flushed, dim if isinstance(dim, int) else None


def vector_folder(path: Path, collection: str) -> Path | None:
    """The folder of the collection's vector segment in the store at ``path`` (it may not
    exist), or None when sqlite does not name one."""
    segment = _vector_segment(path / SQLITE_FILE, collection)
    return path / segment[0] if segment is not None else None


def collection_names(path: Path) -> set[str]:
    """The names of the collections in the store at ``path`` (empty when it cannot be read)."""
    rows = _read(path / SQLITE_FILE, "SELECT name FROM collections")
    return {str(row[0]) for row in rows or []}


def recorded_embedder(path: Path, collection: str) -> str | None:
    """The embedder name the collection records (``jinarag:embedder``), read without opening
    Chroma; None when there is none or it cannot be read."""
    name = recorded_metadata(path, collection).get("jinarag:embedder")
    return str(name) if name is not None else None


def recorded_metadata(path: Path, collection: str) -> dict[str, str | int | float]:
    """The collection's own metadata (the ``jinarag:*`` keys: embedder name, dimension, weights
    hash, write generation), read without opening Chroma; empty when the store, the collection
    or the keys are not there, or sqlite cannot read them."""
    rows = _read(
        path / SQLITE_FILE,
        "SELECT m.key, m.str_value, m.int_value, m.float_value FROM collection_metadata m "
        "JOIN collections c ON m.collection_id = c.id WHERE c.name = ? AND m.key LIKE 'jinarag:%'",
        collection,
    )
    out: dict[str, str | int | float] = {}
    for key, *values in rows or []:
        value = next((v for v in values if v is not None), None)
        if value is not None:
            out[str(key)] = value
    return out


def _hnsw_problem(folder: Path, flushed: int, dim: int | None) -> str | None:
    """What is wrong with the HNSW files in ``folder`` (which should hold at least
    ``flushed`` live records), or None."""
    missing = [name for name in HNSW_FILES if not (folder / name).is_file()]
    header_path = folder / "header.bin"
    if "header.bin" in missing:
        return "header.bin is missing" if flushed or len(missing) < len(HNSW_FILES) else None
    raw = header_path.read_bytes()
    if len(raw) != _HEADER.size:
        return f"header.bin has {len(raw)} bytes, not {_HEADER.size}"
    (version, _, max_elements, count, size, label_offset, offset_data, max_level, entry,
     max_m, max_m0, _, _, _) = _HEADER.unpack(raw)  # fmt: skip
    if version != 1:
        return f"header.bin has persistence version {version}, not 1"
    if count > max_elements or (count and entry >= count) or max_level < -1:
        return f"header.bin is inconsistent ({count} elements of {max_elements}, entry {entry})"
    links0 = 4 + 4 * max_m0
    if offset_data != links0 or label_offset >= size or size != label_offset + 8:
        return f"header.bin describes an impossible element layout ({size} bytes per element)"
    if dim is not None and label_offset - offset_data != 4 * dim:
        return f"header.bin is for {(label_offset - offset_data) // 4}-d vectors, not {dim}-d"
    if count < flushed:  # every flushed record is an element (deleted ones stay as elements)
        return (
            f"it holds {count} vectors, but Chroma's database lists {flushed} records written to it"
        )
    if count == 0:
        return None
    if missing:
        return f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing"
    for name, need in (("data_level0.bin", count * size), ("length.bin", count * 4)):
        have = (folder / name).stat().st_size
        if have < need:
            return f"{name} has {have} bytes; its {count} elements need {need}"
    problem = _link_lists_problem(folder / "link_lists.bin", count, 4 + 4 * max_m)
    if problem is not None:
        return problem
    return _pickle_problem(folder / "index_metadata.pickle")


def _link_lists_problem(path: Path, count: int, per_level: int) -> str | None:
    # One entry per element: a uint32 size (a multiple of one level's links), then that many bytes.
    data = path.read_bytes()
    pos = 0
    for element in range(count):
        if pos + 4 > len(data):
            return f"link_lists.bin ends after {element} of {count} elements"
        (size,) = struct.unpack_from("<I", data, pos)
        if size % per_level:
            return f"link_lists.bin has a bad entry for element {element} ({size} bytes)"
        pos += 4 + size
    if pos > len(data):
        return f"link_lists.bin ends inside the links of its last element ({len(data)} bytes)"
    return None


def _pickle_problem(path: Path) -> str | None:
    # Walk the opcodes without executing them: a cut file ends before its STOP.
    try:
        for _ in pickletools.genops(io.BytesIO(path.read_bytes())):
            pass
    except (ValueError, EOFError) as exc:
        return f"index_metadata.pickle is truncated or damaged ({exc})"
    return None

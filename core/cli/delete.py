"""`jinarag delete`: remove records, documents or whole sources from an index.

Example::

    jinarag delete a.md#0 h1 --store ./jinarag-store      # a record id, a document id
    jinarag delete --source sub/b.txt --source docs/old/ --store ./jinarag-store

An ``ID`` is a record id or a document id (``doc_id``: all of its chunks). ``--source PATH`` is a
stored source id as ``jinarag list`` shows it, or a file or folder on disk (every source stored
from it). Everything named is looked up first: one name that matches nothing stops the command
before any record is deleted. Chroma and BM25 change together, under the store's write lock.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from jinarag.cli.common import add_json_option, add_store_options, open_index, print_json
from jinarag.errors import InputError

if TYPE_CHECKING:
    from jinarag.retrieval.index import HybridIndex
    from jinarag.retrieval.ingest.sources import StoredSource

__all__ = ["add_parser", "run"]

SourceKey = tuple[str | None, str]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "delete", help="delete records, documents or sources from an index"
    )
    parser.add_argument("ids", nargs="*", metavar="ID", help="record ids or document ids")
    parser.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="PATH",
        help="delete every record of a source: its id (as jinarag list shows it), or a file or "
        "folder on disk; repeatable",
    )
    add_store_options(parser)
    add_json_option(parser)
    parser.set_defaults(handler=run)


def _by_id(index: HybridIndex, names: list[str]) -> tuple[set[str], list[str]]:
    """The records ``names`` stand for (as record ids or document ids), and the names that
    match nothing."""
    if not names:
        return set(), []
    records = {hit.id for hit in index.get(names)}
    # Document ids are metadata: one filter finds every chunk of every document named.
    by_doc = index.store.metadatas({"doc_id": {"$in": names}})
    docs: dict[str, set[str]] = {}
    for record_id, meta in by_doc:
        docs.setdefault(str(meta.get("doc_id")), set()).add(record_id)
    found = records | {i for ids in docs.values() for i in ids}
    missing = [name for name in names if name not in records and name not in docs]
    return found, missing


def _on_disk(entry: StoredSource) -> Path | None:
    return Path(entry.root) / entry.id if entry.root is not None else None


def _by_path(sources: dict[SourceKey, StoredSource], path: str) -> list[SourceKey]:
    """The stored sources ``path`` names: the file it is, or every source under the folder."""
    given = Path(path)
    if not (given.exists() or given.is_absolute()):
        return []
    resolved = given.resolve()  # a gone file, named absolutely, still names its records
    out = []
    for key, entry in sources.items():
        place = _on_disk(entry)
        if place is not None and (place == resolved or place.is_relative_to(resolved)):
            out.append(key)
    return out


def _by_source(
    sources: dict[SourceKey, StoredSource], paths: list[str]
) -> tuple[set[SourceKey], list[str]]:
    """The stored sources ``paths`` name (see the module's docs), and the paths naming none.

    Raises:
        InputError: a source id stored under several roots that the path does not single out.
    """
    chosen: set[SourceKey] = set()
    missing: list[str] = []
    for path in paths:
        exact = [key for key in sources if key[1] == path]
        if len(exact) == 1:
            chosen.update(exact)
            continue
        on_disk = _by_path(sources, path)
        if on_disk:
            chosen.update(on_disk)
        elif exact:
            roots = ", ".join(sorted(str(root) for root, _ in exact))
            raise InputError(
                f"source {path!r} is stored under {len(exact)} roots ({roots}); name the one "
                f"to delete by its path on disk, e.g. --source {Path(str(exact[0][0])) / path}"
            )
        else:
            missing.append(path)
    return chosen, missing


def run(args: argparse.Namespace) -> int:
    from jinarag.retrieval.ingest.sources import catalog

    if not args.ids and not args.source:
        raise InputError(
            "name what to delete: jinarag delete ID... (record or document ids) and/or "
            "--source PATH (a source as jinarag list shows it, or a file or folder)"
        )
    index, _ = open_index(args, must_exist=True, embeds=False)
    sources = catalog(index.store)
    ids, missing_ids = _by_id(index, list(dict.fromkeys(args.ids)))
    keys, missing_paths = _by_source(sources, list(dict.fromkeys(args.source)))
    problems = [f"no record or document with id {name!r}" for name in missing_ids] + [
        f"no stored source matches --source {path!r} (neither a source id nor a file or "
        "folder holding one)"
        for path in missing_paths
    ]
    if problems:  # checked before anything is deleted
        raise InputError(
            "; ".join(problems) + "; nothing was deleted (jinarag list shows the sources, "
            "jinarag list --records the ids)"
        )
    for key in keys:
        ids.update(sources[key].ids)
    # Which sources lose records: those of the sources named, and those of the ids named.
    owner = {i: key for key, entry in sources.items() for i in entry.ids}
    touched = sorted({owner[i] for i in ids if i in owner}, key=lambda k: (k[1], k[0] or ""))
    targets = sorted(ids)
    with index.writing():
        index.delete(targets)
    if args.json:
        print_json({"deleted": len(targets), "ids": targets, "sources": [k[1] for k in touched]})
    else:
        print(f"deleted {len(targets)} records ({len(touched)} sources)")
    return 0

"""`jinarag list`: the sources an index holds (or, with ``--records``, its records).

Example::

    jinarag list --store ./jinarag-store
    jinarag list --store ./jinarag-store --records --json

Sources come from the stored metadata alone (:func:`jinarag.retrieval.ingest.sources.catalog`), so
listing a large index reads no texts or vectors; ``--records`` reads the texts too.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from jinarag.cli.common import add_json_option, add_store_options, note, open_index, print_json

if TYPE_CHECKING:
    from jinarag.retrieval.index import HybridIndex

__all__ = ["add_parser", "record_rows", "run", "source_rows"]

SHORT_HASH = 12  # hex characters of a source's hash shown in the table
TEXT_WIDTH = 60  # characters of a record's text shown in the table


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "list", help="list the sources of an index (or its records with --records)"
    )
    add_store_options(parser)
    add_json_option(parser)
    parser.add_argument(
        "--records", action="store_true", help="one row per record instead of per source"
    )
    parser.set_defaults(handler=run)


def source_rows(index: HybridIndex) -> tuple[list[dict[str, Any]], int]:
    """One dict per stored source, sorted by source id then root, and how many records have
    no ``source`` (added through the Python API)."""
    from jinarag.retrieval.ingest.sources import catalog

    sources = catalog(index.store)
    rows = [
        {
            "source": entry.id,
            "root": entry.root,
            "documents": len(entry.docs),
            "records": len(entry.ids),
            "hash": entry.hash,
            "chunking": sorted(entry.chunkings),
        }
        for entry in sorted(sources.values(), key=lambda e: (e.id, e.root or ""))
    ]
    # The catalog skips records without a source; the difference is those.
    loose = index.count() - sum(row["records"] for row in rows)
    return rows, max(loose, 0)


def record_rows(index: HybridIndex) -> list[dict[str, Any]]:
    """One dict per record, sorted by source id then record id (records without a source
    last)."""
    rows = [
        {
            "id": hit.id,
            "source": hit.metadata.get("source"),
            "doc_id": hit.metadata.get("doc_id"),
            "chunk": hit.metadata.get("chunk"),
            "text": hit.text,
        }
        for hit in index.get()
    ]
    rows.sort(key=lambda r: (r["source"] is None, str(r["source"] or ""), r["id"]))
    return rows


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> None:
    """Print ``rows`` under ``headers`` in columns as wide as their widest cell (the last
    column unpadded); columns in ``right`` are right-aligned (numbers)."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    for row in (headers, *rows):
        cells = [
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        cells[-1] = str(row[-1])
        print("  ".join(cells).rstrip())


def _shown(value: object) -> str:
    return "-" if value is None else str(value)


def _print_sources(rows: list[dict[str, Any]], loose: int) -> None:
    if rows:
        _table(
            ("source", "docs", "records", "hash", "root"),
            [
                (
                    r["source"],
                    str(r["documents"]),
                    str(r["records"]),
                    r["hash"][:SHORT_HASH] if r["hash"] else "-",
                    _shown(r["root"]),
                )
                for r in rows
            ],
            right={1, 2},
        )
    if loose:
        print(f"{loose} records without a source (jinarag list --records shows them)")


def _print_records(rows: list[dict[str, Any]]) -> None:
    def text(value: str) -> str:
        flat = " ".join(value.split())
        return flat if len(flat) <= TEXT_WIDTH else flat[: TEXT_WIDTH - 1] + "…"

    _table(
        ("id", "source", "chunk", "text"),
        [(r["id"], _shown(r["source"]), _shown(r["chunk"]), text(r["text"])) for r in rows],
        right={2},
    )


def run(args: argparse.Namespace) -> int:
    index, _ = open_index(args, must_exist=True, embeds=False)
    if args.records:
        records = record_rows(index)
        if args.json:
            print_json(records)
        elif records:
            _print_records(records)
        else:
            print("the index is empty (jinarag index PATH adds files)")
        return 0
    rows, loose = source_rows(index)
    if args.json:
        print_json(rows)
        if loose:  # stdout stays a list of sources; say what it leaves out on stderr
            note(f"{loose} records without a source are not listed (see --records)")
    elif rows or loose:
        _print_sources(rows, loose)
    else:
        print("the index is empty (jinarag index PATH adds files)")
    return 0

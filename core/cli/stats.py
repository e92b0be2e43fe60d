"""`jinarag stats`: what an index holds and how it is built, in a few lines (or one JSON object).

Example::

    jinarag stats --store ./jinarag-store --json

Shows the records in Chroma and in BM25 side by side: they are equal in a healthy index
(``jinarag verify STORE --repair`` mends one where they are not).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinarag.cli.common import add_json_option, add_store_options, open_index, print_json

if TYPE_CHECKING:
    from jinarag.retrieval.index import HybridIndex

__all__ = ["add_parser", "folder_size", "run", "stats"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("stats", help="counts, embedder, BM25 and disk size of an index")
    add_store_options(parser)
    add_json_option(parser)
    parser.set_defaults(handler=run)


def folder_size(folder: Path) -> int:
    """Bytes of the files under ``folder`` (links not followed, unreadable entries skipped)."""
    total = 0
    for top, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(top, name)).st_size
            except OSError:
                continue  # removed meanwhile (another process writing): not ours to report
    return total


def stats(index: HybridIndex, url: str | None) -> dict[str, Any]:
    """The figures ``jinarag stats`` prints, as one dict (``url``: the Chroma server, if any)."""
    from jinarag.retrieval.ingest.sources import catalog
    from jinarag.retrieval.store.redaction import redact_url

    sources = catalog(index.store)
    records = index.count()
    in_sources = sum(len(entry.ids) for entry in sources.values())
    bm25 = index.bm25_index
    folder = index.path if index.path is not None and index.path.is_dir() else None
    return {
        "records": records,
        "sources": len(sources),
        "documents": sum(len(entry.docs) for entry in sources.values()),
        "records_without_source": max(records - in_sources, 0),
        "embedder": {"name": str(index.embedder.name), "dim": int(index.embedder.dim)},
        "collection": index.collection_name,
        "store": str(index.path) if index.path is not None else None,
        "url": redact_url(url) if url is not None else None,
        "bm25": {
            "backend": bm25.backend,
            "scorer": bm25.scorer_backend,  # the library scoring now ("auto" resolved)
            "variant": bm25.variant,
            "records": len(bm25),
        },
        "size_bytes": folder_size(folder) if folder is not None else None,
        "chunking": sorted({c for entry in sources.values() for c in entry.chunkings}),
    }


def _print(figures: dict[str, Any]) -> None:
    where = figures["url"] if figures["url"] is not None else figures["store"]
    print(f"store:       {where} (collection {figures['collection']!r})")
    if figures["url"] is not None and figures["store"] is not None:
        print(f"bm25 folder: {figures['store']}")
    embedder = figures["embedder"]
    print(f"embedder:    {embedder['name']} (dim {embedder['dim']})")
    print(
        f"records:     {figures['records']} in {figures['documents']} documents from "
        f"{figures['sources']} sources"
    )
    if figures["records_without_source"]:
        print(f"             {figures['records_without_source']} records without a source")
    bm25 = figures["bm25"]
    same = "equal" if bm25["records"] == figures["records"] else "DIFFERENT: run jinarag verify"
    backend = bm25["backend"]
    if bm25["scorer"] != backend:
        backend = f"{backend} ({bm25['scorer']})"
    print(
        f"bm25:        {backend} {bm25['variant']}, {bm25['records']} records "
        f"(Chroma: {figures['records']}; {same})"
    )
    print(f"chunking:    {', '.join(figures['chunking']) or '-'}")
    if figures["size_bytes"] is not None:
        print(f"on disk:     {_human(figures['size_bytes'])}")


def _human(total: int) -> str:
    """``total`` bytes as a short figure, with the exact count beside it."""
    size = float(total)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{total} bytes" if unit == "bytes" else f"{size:.1f} {unit} ({total} bytes)"
        size /= 1024
    raise AssertionError("unreachable")


def run(args: argparse.Namespace) -> int:
    index, _ = open_index(args, must_exist=True, embeds=False)
    figures = stats(index, args.chroma_url)
    if args.json:
        print_json(figures)
    else:
        _print(figures)
    return 0

"""`jinarag index`: chunk, embed and store files in a hybrid (Chroma + BM25) index.

Example::

    jinarag index docs/ notes.md corpus.jsonl --store ./jinarag-store

Use the same ``--model`` for ``index`` and ``search``: the collection refuses another embedder.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from jinarag.cli.common import add_store_options, count, open_index
from jinarag.errors import InputError

if TYPE_CHECKING:
    from jinarag.retrieval.chunking import Record

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "index", help="chunk, embed and store files in a hybrid (Chroma + BM25) index"
    )
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="files or folders (txt, md, jsonl)"
    )
    add_store_options(parser)
    parser.add_argument(
        "--chunk-tokens",
        type=count,
        help="tokens per chunk (default: the model's limit, at most 512)",
    )
    # 0 is a valid overlap; chunk_spans checks 0 <= overlap < chunk size.
    parser.add_argument(
        "--overlap", type=int, help="tokens shared by consecutive chunks (default: 1/8 of a chunk)"
    )
    parser.add_argument("--batch", type=count, default=1024, help="chunks written per step")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def _groups(records: Sequence[Record], size: int) -> Iterator[list[Record]]:
    """Consecutive records, ``size`` or a few more per group, never splitting a document."""
    group: list[Record] = []
    for i, record in enumerate(records):
        group.append(record)
        last_of_doc = (
            i + 1 == len(records) or records[i + 1].metadata["doc_id"] != record.metadata["doc_id"]
        )
        if len(group) >= size and last_of_doc:
            yield group
            group = []
    if group:
        yield group


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from jinarag.retrieval.chunking import chunk_documents
    from jinarag.retrieval.readers import find_files, read_documents
    from jinarag.retrieval.redaction import redact_url

    files = find_files(args.paths)  # fail on a bad path before loading any model
    if not files:
        raise InputError(f"no .txt, .md or .jsonl files under {', '.join(args.paths)}")
    started = time.perf_counter()
    index = open_index(args, must_exist=False)
    embedder = index.embedder
    specials = embedder.tokenizer.count_tokens("")
    size = (
        args.chunk_tokens
        if args.chunk_tokens is not None
        else min(512, embedder.max_length) - specials
    )
    if size + specials > embedder.max_length:
        raise InputError(
            f"--chunk-tokens {size} does not fit {embedder.name} (max {embedder.max_length} tokens "
            f"including {specials} special ones); use at most {embedder.max_length - specials}"
        )
    overlap = args.overlap if args.overlap is not None else size // 8
    docs = list(read_documents(files))
    records = list(chunk_documents(docs, embedder.tokenizer.token_offsets, size, overlap))
    bar = tqdm(total=len(records), desc="indexing", unit="chunk", disable=args.quiet)
    removed = 0
    try:
        for group in _groups(records, args.batch):
            ids = index.add(
                [r.text for r in group],
                ids=[r.id for r in group],
                metadatas=[r.metadata for r in group],
            )
            # A document re-indexed into fewer chunks leaves old chunks behind: remove them.
            doc_ids = sorted({r.metadata["doc_id"] for r in group})
            old = {h.id for h in index.get(where={"doc_id": {"$in": doc_ids}})} - set(ids)
            if old:
                index.delete(sorted(old))
                removed += len(old)
            bar.update(len(group))
    finally:
        bar.close()
    seconds = time.perf_counter() - started
    where = redact_url(args.chroma_url) if args.chroma_url is not None else str(index.path)
    print(
        f"indexed {len(records)} chunks from {len(docs)} documents in {len(files)} files "
        f"into {where} (collection {args.collection!r}) in {seconds:.1f}s"
        + (f"; removed {removed} stale chunks" if removed else "")
    )
    print(f"the index holds {index.count()} records; embedder {embedder.name}")
    return 0

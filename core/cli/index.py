"""`jinarag index`: chunk, embed and store files in a hybrid (Chroma + BM25) index.

Example::

    jinarag index docs/ notes.md corpus.jsonl --store ./jinarag-store
    jinarag index docs/ --store ./jinarag-store --late-chunking

With ``--late-chunking`` each document is read whole by the model and each chunk's vector is
the mean of its own tokens' states (:meth:`jinarag.HybridIndex.add` with ``chunking="late"``).

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
    from jinarag.retrieval.index import HybridIndex
    from jinarag.retrieval.readers import Document

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
    parser.add_argument(
        "--late-chunking",
        action="store_true",
        help="embed each chunk with its whole document as context (late chunking); chunks do "
        "not overlap",
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
    from jinarag.retrieval.readers import find_files, read_documents
    from jinarag.retrieval.redaction import redact_url

    if args.late_chunking and args.overlap is not None:
        raise InputError(
            f"--overlap {args.overlap} does not apply with --late-chunking: late chunks do not "
            "overlap (each token counts for one chunk, read with its whole document); leave "
            "--overlap out"
        )
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
    docs = list(read_documents(files))
    if args.late_chunking:
        chunks, removed = _index_late(index, docs, size, args.batch, args.quiet)
        how = " by late chunking"
    else:
        chunks, removed = _index(index, docs, size, args.overlap, args.batch, args.quiet)
        how = ""
    seconds = time.perf_counter() - started
    where = redact_url(args.chroma_url) if args.chroma_url is not None else str(index.path)
    print(
        f"indexed {chunks} chunks{how} from {len(docs)} documents in {len(files)} files "
        f"into {where} (collection {args.collection!r}) in {seconds:.1f}s"
        + (f"; removed {removed} stale chunks" if removed else "")
    )
    print(f"the index holds {index.count()} records; embedder {embedder.name}")
    return 0


def _index(
    index: HybridIndex,
    docs: Sequence[Document],
    size: int,
    overlap: int | None,
    batch: int,
    quiet: bool,
) -> tuple[int, int]:
    """Chunk (with overlap), embed and store ``docs``: ``(chunks, stale chunks removed)``."""
    from tqdm.auto import tqdm

    from jinarag.retrieval.chunking import chunk_documents

    overlap = overlap if overlap is not None else size // 8
    records = list(chunk_documents(docs, index.embedder.tokenizer.token_offsets, size, overlap))
    bar = tqdm(total=len(records), desc="indexing", unit="chunk", disable=quiet)
    removed = 0
    try:
        for group in _groups(records, batch):
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
    return len(records), removed


def _index_late(
    index: HybridIndex, docs: Sequence[Document], size: int, batch: int, quiet: bool
) -> tuple[int, int]:
    """Store ``docs`` by late chunking, about ``batch`` chunks per call of ``add``:
    ``(chunks, stale chunks removed)``. ``add`` removes a document's stale chunks itself;
    they are counted here from the ids the document had before."""
    from tqdm.auto import tqdm

    from jinarag.retrieval.index import LATE_CHUNK_KEYS
    from jinarag.retrieval.late import split_text

    for doc in docs:  # all checked before the first write
        taken = [key for key in LATE_CHUNK_KEYS if key in doc.metadata]
        if taken:
            raise InputError(
                f"document {doc.id!r} ({doc.metadata.get('source', '?')}) has the field "
                f"{taken[0]!r}, which --late-chunking sets on every chunk "
                f"({', '.join(LATE_CHUNK_KEYS)}); rename that field"
            )
    offsets = index.embedder.tokenizer.token_offsets
    # Split here too, to group documents by their chunk count and size the progress bar;
    # a document without text has no chunks and is skipped, as without --late-chunking.
    counts = [len(split_text(doc.text, offsets, chunk_tokens=size)) for doc in docs]
    todo = [(doc, n) for doc, n in zip(docs, counts, strict=True) if n]
    bar = tqdm(total=sum(counts), desc="indexing", unit="chunk", disable=quiet)
    chunks = removed = 0
    try:
        group: list[Document] = []
        held = 0
        for position, (doc, n) in enumerate(todo):
            group.append(doc)
            held += n
            if held < batch and position + 1 < len(todo):
                continue
            doc_ids = [d.id for d in group]
            before = {h.id for h in index.get(where={"doc_id": {"$in": doc_ids}})}
            ids = index.add(
                [d.text for d in group],
                ids=doc_ids,
                metadatas=[d.metadata for d in group],
                chunking="late",
                chunk_tokens=size,
            )
            chunks += len(ids)
            removed += len(before - set(ids))
            bar.update(held)
            group, held = [], 0
    finally:
        bar.close()
    return chunks, removed

"""`jinarag index`: chunk, embed and store files in a hybrid (Chroma + BM25) index, and keep
the index in step with them.

Example::

    jinarag index docs/ notes.md corpus.jsonl --store ./jinarag-store
    jinarag index docs/ --store ./jinarag-store --sync          # also remove deleted files
    jinarag index docs/ --store ./jinarag-store --late-chunking
    jinarag index corpus/ --chroma-url http://127.0.0.1:8000 --ray ray://head:10001

Record ids come from each file's path relative to ``--root`` (default: each folder given, or
a file's own folder), so a folder typed three ways is still one copy. Unchanged files are
skipped without embedding anything; changed ones are replaced; with ``--sync`` files gone from
the folders given are removed from Chroma and BM25 together. The run ends with one summary line
(``--json``: the same as JSON). See :meth:`jinarag.HybridIndex.add_files`.

The collection records its embedder (name, dimension, and the SHA-256 of its weights): later
runs, ``search``, ``list``, ``stats`` and ``delete`` use it without ``--model``, and refuse
another one (:mod:`jinarag.cli.recorded`).
"""

from __future__ import annotations

import argparse
import json

from jinarag.cli.common import add_store_options, count, open_index
from jinarag.cli.recorded import record_weights
from jinarag.errors import InputError

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "index",
        help="chunk, embed and store files in a hybrid (Chroma + BM25) index, kept in step",
    )
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="files or folders (txt, md, html, jsonl)"
    )
    add_store_options(parser)
    parser.add_argument(
        "--root",
        help="the folder record ids are relative to (default: each folder given, or a file's "
        "own folder)",
    )
    parser.add_argument(
        "--sync",
        action="store_true",
        help="also remove the records of files gone from the folders given",
    )
    parser.add_argument(
        "--chunk-tokens",
        type=count,
        help="tokens per chunk (default: the model's limit, at most 512; late chunking 256)",
    )
    # 0 is a valid overlap; the core checks 0 <= overlap < chunk size.
    parser.add_argument(
        "--overlap", type=int, help="tokens shared by consecutive chunks (default: 1/8 of a chunk)"
    )
    parser.add_argument(
        "--late-chunking",
        action="store_true",
        help="embed each chunk with its whole document as context (late chunking); chunks do "
        "not overlap",
    )
    parser.add_argument(
        "--batch",
        type=count,
        help="chunks embedded and written per step (default 64; with --ray, documents per "
        "actor call, default 256)",
    )
    parser.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="chunk and embed on Ray (pip install 'jinarag[ray]'): a local Ray without an "
        "address, else a cluster, e.g. ray://head:10001 or auto",
    )
    parser.add_argument(
        "--ray-actors", type=count, default=2, help="embedder replicas on Ray (default 2)"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from jinarag.retrieval.ingest.executor import DEFAULT_BATCH_CHUNKS, LocalExecutor
    from jinarag.retrieval.ingest.sources import scan

    # Bad options, paths or root fail before any model loads or any store is made.
    if args.ray is None and args.ray_actors != 2:
        raise InputError(
            f"--ray-actors {args.ray_actors} applies to Ray runs only; add --ray [ADDRESS] "
            "or leave --ray-actors out"
        )
    if args.late_chunking and args.overlap is not None:
        raise InputError(
            f"--overlap {args.overlap} does not apply with --late-chunking: late chunks do not "
            "overlap (each token counts for one chunk, read with its whole document); leave "
            "--overlap out"
        )
    scan(args.paths, args.root, hashing=False)
    index, recorded = open_index(args, must_exist=False)
    if args.ray is not None:
        from jinarag.retrieval.ingest.ray_executor import RayExecutor

        executor = RayExecutor(
            address=args.ray or None, actors=args.ray_actors, batch_chunks=args.batch or 256
        )
    else:
        executor = LocalExecutor(args.batch or DEFAULT_BATCH_CHUNKS)
    report = index.add_files(
        args.paths,
        root=args.root,
        sync=args.sync,
        chunk_tokens=args.chunk_tokens,
        overlap=args.overlap,
        chunking="late" if args.late_chunking else None,
        executor=executor,
        show_progress=not args.quiet,
    )
    record_weights(index, recorded)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.summary())
    return 0

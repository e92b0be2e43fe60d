"""The `jinarag` command line: demo, index, search, list, stats, delete, verify, eval, tune,
serve, train-reranker, distill.

Each subcommand lives in its own module (``add_parser`` registers it, ``run`` handles it) and
the options they share are in :mod:`jinarag.cli.common`; this file only wires argparse to them
and turns our errors into one line on stderr. The modules import torch, chromadb and fastapi
inside their handlers, so ``jinarag --version`` and ``--help`` load none of them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

Handler = Callable[[argparse.Namespace], int]

# Modules of jinarag.cli, in the order --help lists them.
COMMANDS = (
    "demo",
    "index",
    "search",
    "list",
    "stats",
    "delete",
    "verify",
    "eval",
    "tune",
    "serve",
    "train_reranker",
    "distill",
)


def build_parser() -> argparse.ArgumentParser:
    from jinarag import __version__

    parser = argparse.ArgumentParser(
        prog="jinarag", description="Jina AI embedders, rerankers and hybrid search, run locally."
    )
    parser.add_argument("--version", action="version", version=f"jinarag {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"jinarag.cli.{name}").add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from jinarag.errors import JinaragError

    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    # The command's own process: its model passes reuse freed memory (docs/performance.md).
    from jinarag.inference.allocator import keep_freed_memory

    keep_freed_memory()
    try:
        return handler(args)
    except JinaragError as exc:
        # Our errors already say what went wrong and how to fix it: no stack trace.
        print(f"jinarag: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130

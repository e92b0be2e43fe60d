"""The `jinarag` command line: demo, index, search, list, stats, delete, verify, eval, tune,
serve, train-reranker, distill.

Each subcommand lives in its own module (``add_parser`` registers it, ``run`` handles it) and
the options they share are in :mod:`jinarag.cli.common`; this file only wires argparse to them
and turns our errors into one line on stderr. Neither that line nor argparse's own errors show
the secrets of a URL given on the command line (:mod:`jinarag.redaction`). The modules import
torch, chromadb and fastapi inside their handlers, so ``jinarag --version`` and ``--help`` load
none of them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn

from jinarag.redaction import redact

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


class Parser(argparse.ArgumentParser):
    """argparse's parser (the subcommands' too), its errors scrubbed of the secrets of any URL
    among the arguments: "unrecognized arguments: --chroma-url http://***@host:8000"."""

    _argv: Sequence[str] = ()

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        # A tuple: `list` here is the `jinarag list` module once imported.
        self._argv = tuple(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        super().error(redact(message, *urls_in(self._argv)))


def urls_in(argv: Sequence[str]) -> Iterator[str]:
    """The arguments that may be URLs: ``--chroma-url``'s value (``--chroma-url=URL`` too) and
    any argument with ``://`` or ``@`` in it."""
    for before, arg in zip(["", *argv[:-1]], argv, strict=True):
        option, equals, value = arg.partition("=")
        if not (arg.startswith("--") and equals):
            option, value = before, arg
        if option == "--chroma-url" or "://" in value or "@" in value:
            yield value


def build_parser() -> argparse.ArgumentParser:
    from jinarag import __version__

    parser = Parser(
        prog="jinarag", description="Jina AI embedders, rerankers and hybrid search, run locally."
    )
    parser.add_argument("--version", action="version", version=f"jinarag {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"jinarag.cli.{name}").add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from jinarag.errors import JinaragError

    argv = tuple(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    # The command's own process: its model passes reuse freed memory (docs/performance.md).
    from jinarag.inference.allocator import keep_freed_memory

    keep_freed_memory()
    try:
        return handler(args)
    except JinaragError as exc:
        # Our errors already say what went wrong and how to fix it: no stack trace.
        print(f"jinarag: error: {redact(str(exc), *urls_in(argv))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130

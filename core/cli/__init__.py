"""The `jinarag` command line: demo, index, search, eval, serve.

Each subcommand lives in its own module and registers itself here with ``add_parser``; this
file only wires argparse to them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    from jinarag import __version__
    from jinarag.cli import demo, search_cli
    from jinarag.serving import app as server

    parser = argparse.ArgumentParser(
        prog="jinarag", description="Jina AI embedders, rerankers and hybrid search, run locally."
    )
    parser.add_argument("--version", action="version", version=f"jinarag {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo.add_parser(subparsers)
    search_cli.add_parser(subparsers)
    server.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from jinarag.errors import JinaragError

    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except JinaragError as exc:
        # Our errors already say what went wrong and how to fix it: no stack trace.
        print(f"jinarag: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

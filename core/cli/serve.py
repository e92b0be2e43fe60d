"""`jinarag serve`: serve ``/v1/embeddings`` and ``/v1/rerank`` (Jina API shapes) over HTTP.

Example::

    jinarag serve --model small --reranker turbo --port 8080

The app itself is :func:`jinarag.serving.app.create_app`; this module parses the options, loads
the models and runs uvicorn. Needs the ``server`` extra (FastAPI and uvicorn).
"""

from __future__ import annotations

import argparse

from jinarag.cli.common import add_model_option, add_reranker_option, load_embedder, load_reranker

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve", help="serve /v1/embeddings and /v1/rerank (Jina API shapes) over HTTP"
    )
    add_model_option(parser)
    add_reranker_option(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from jinarag.serving.app import create_app, require_fastapi

    require_fastapi()  # before loading models: a missing extra should fail fast
    import uvicorn

    embedder = load_embedder(args.model)
    reranker = load_reranker(args.reranker)
    uvicorn.run(create_app(embedder, reranker), host=args.host, port=args.port)
    return 0

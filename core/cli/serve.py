"""`jinarag serve`: serve ``/v1/embeddings`` and ``/v1/rerank`` (Jina API shapes) over HTTP.

Example::

    jinarag serve --model small --reranker turbo --port 8080

The app itself is :func:`jinarag.serving.app.create_app`; this module parses the options, loads
the models and runs uvicorn. Needs the ``server`` extra (FastAPI and uvicorn).
"""

from __future__ import annotations

import argparse
from typing import Any

from jinarag.cli.common import (
    add_model_option,
    add_reranker_option,
    count,
    load_embedder,
    load_reranker,
)
from jinarag.serving.limits import (
    DEFAULT_CHARS_PER_TOKEN,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_INPUTS,
    DEFAULT_MAX_REQUEST_TOKENS,
)

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve", help="serve /v1/embeddings and /v1/rerank (Jina API shapes) over HTTP"
    )
    add_model_option(parser)
    add_reranker_option(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080)
    limits = parser.add_argument_group("limits (a request over one is refused with 413)")
    limits.add_argument(
        "--max-body-bytes",
        type=count,
        default=DEFAULT_MAX_BODY_BYTES,
        help=f"bytes of a request body (default {DEFAULT_MAX_BODY_BYTES})",
    )
    limits.add_argument(
        "--max-inputs",
        type=count,
        default=DEFAULT_MAX_INPUTS,
        help=f"texts in input or documents (default {DEFAULT_MAX_INPUTS})",
    )
    limits.add_argument(
        "--max-request-tokens",
        type=count,
        default=DEFAULT_MAX_REQUEST_TOKENS,
        help="tokens the model reads for one request, each text counted up to max_length "
        f"(default {DEFAULT_MAX_REQUEST_TOKENS})",
    )
    limits.add_argument(
        "--chars-per-token",
        type=count,
        default=DEFAULT_CHARS_PER_TOKEN,
        help="a text is cut to this many characters per max_length token before it is "
        f"tokenised (default {DEFAULT_CHARS_PER_TOKEN})",
    )
    parser.add_argument(
        "--graceful-timeout",
        type=count,
        default=5,
        metavar="SECONDS",
        help="on SIGTERM or Ctrl-C, running model calls stop at their next batch; a request "
        "still running after this many seconds is cancelled (default 5)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from jinarag.serving.app import create_app, require_fastapi

    require_fastapi()  # before loading models: a missing extra should fail fast
    import uvicorn

    embedder = load_embedder(args.model)
    reranker = load_reranker(args.reranker)
    app = create_app(
        embedder,
        reranker,
        max_body_bytes=args.max_body_bytes,
        max_inputs=args.max_inputs,
        chars_per_token=args.chars_per_token,
        max_request_tokens=args.max_request_tokens,
    )

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            # uvicorn waits for running requests before it exits; make them stop at their
            # next batch instead of running to the end.
            app.state.shutting_down.set()
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        app, host=args.host, port=args.port, timeout_graceful_shutdown=args.graceful_timeout
    )
    Server(config).run()
    return 0

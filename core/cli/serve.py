"""`jinarag serve`: Jina's, OpenAI's and TEI's embedding and reranking APIs over HTTP.

Example::

    jinarag serve --model small --model base --reranker turbo --port 8080
    jinarag serve --model my-embedder=/models/finetuned --api-key "$KEY"

The app itself is :func:`jinarag.serving.app.create_app`; this module parses the options, loads
the models and runs uvicorn. Needs the ``server`` extra (FastAPI and uvicorn).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from jinarag.cli.common import (
    add_backend_option,
    count,
    load_embedder,
    load_reranker,
    loading_options,
)
from jinarag.errors import InputError, JinaragError
from jinarag.serving.limits import (
    DEFAULT_CHARS_PER_TOKEN,
    DEFAULT_CPU_PASS_TOKENS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_INPUTS,
    DEFAULT_MAX_QUEUE,
    DEFAULT_MAX_REQUEST_TOKENS,
    DEFAULT_MAX_WAIT_MS,
    DEFAULT_REQUEST_TIMEOUT,
)

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve", help="serve Jina's, OpenAI's and TEI's embedding and rerank APIs over HTTP"
    )
    parser.add_argument(
        "--model",
        action="append",
        metavar="[NAME=]MODEL",
        help="an embedder to serve: alias, Hub id or path; NAME=PATH serves PATH under NAME "
        "(repeat for several; the first answers requests that name none; default: Jina small)",
    )
    parser.add_argument(
        "--reranker",
        action="append",
        metavar="[NAME=]MODEL",
        help="a reranker to serve, as --model (default: Jina turbo when it can be had)",
    )
    parser.add_argument(
        "--no-reranker",
        action="store_true",
        help="serve no reranker (by default Jina turbo is served when it can be had)",
    )
    add_backend_option(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--api-key",
        default=os.environ.get("JINARAG_API_KEY"),
        help="require 'Authorization: Bearer KEY' on every route but /health and /ready "
        "(default: $JINARAG_API_KEY; none when unset)",
    )
    parser.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow browsers on ORIGIN to call the server (repeatable; default: none)",
    )
    batching = parser.add_argument_group("batching (requests for one model share batches)")
    batching.add_argument(
        "--max-wait-ms",
        type=float,
        default=DEFAULT_MAX_WAIT_MS,
        help="how long a request may wait for others to share its batch "
        f"(default {DEFAULT_MAX_WAIT_MS})",
    )
    batching.add_argument(
        "--max-queue",
        type=count,
        default=DEFAULT_MAX_QUEUE,
        help="requests that may wait per model; more are refused with 503 and Retry-After "
        f"(default {DEFAULT_MAX_QUEUE})",
    )
    batching.add_argument(
        "--cpu-pass-tokens",
        type=count,
        default=DEFAULT_CPU_PASS_TOKENS,
        metavar="TOKENS",
        help="tokens of one forward pass on a CPU, padding included: smaller passes keep the "
        f"cache warm and answer single requests sooner (default {DEFAULT_CPU_PASS_TOKENS})",
    )
    batching.add_argument(
        "--request-timeout",
        type=float,
        default=DEFAULT_REQUEST_TIMEOUT,
        metavar="SECONDS",
        help="a request waiting and running longer is given up with 504 "
        f"(default {DEFAULT_REQUEST_TIMEOUT:g})",
    )
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
        default=30,
        metavar="SECONDS",
        help="on SIGTERM or Ctrl-C, new requests are refused with 503 and running ones finish; "
        "one still running after this many seconds is given up (default 30)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Before loading models: a missing extra fails fast, in one line.
    try:
        import uvicorn

        from jinarag.serving.app import create_app
    except ImportError as exc:
        raise JinaragError(
            f"jinarag serve needs the server extra (FastAPI, uvicorn, prometheus-client), and "
            f"{_missing(exc)} is not installed; install it with: pip install 'jinarag[server]'"
        ) from exc

    if args.max_wait_ms < 0 or args.request_timeout <= 0:
        raise InputError(
            f"--max-wait-ms {args.max_wait_ms:g} / --request-timeout {args.request_timeout:g}: "
            "the wait must be 0 or more and the timeout more than 0 seconds"
        )
    if args.no_reranker and args.reranker:
        raise InputError(
            f"--no-reranker and --reranker {args.reranker[0]} contradict each other; pass one"
        )
    # Every name is checked before the first model loads: a mistake fails fast.
    embedder_names = _named(args.model or [None], "--model")
    reranker_names = _named([] if args.no_reranker else (args.reranker or [None]), "--reranker")
    options = loading_options(args)
    embedders = {name: load_embedder(model, **options) for name, model in embedder_names}
    rerankers = {}
    for name, model in reranker_names:
        reranker = load_reranker(model, **options)
        if reranker is not None:
            rerankers[name] = reranker
    app = create_app(
        embedders,
        rerankers,
        max_body_bytes=args.max_body_bytes,
        max_inputs=args.max_inputs,
        chars_per_token=args.chars_per_token,
        max_request_tokens=args.max_request_tokens,
        max_wait_ms=args.max_wait_ms,
        max_queue=args.max_queue,
        cpu_pass_tokens=args.cpu_pass_tokens,
        request_timeout=args.request_timeout,
        api_key=args.api_key or None,
        cors_origins=args.cors_origin,
    )

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            # uvicorn stops accepting connections and waits for running requests; refuse the
            # requests that still arrive on open connections meanwhile.
            app.state.shutting_down.set()
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        app, host=args.host, port=args.port, timeout_graceful_shutdown=args.graceful_timeout
    )
    Server(config).run()
    return 0


def _missing(exc: ImportError) -> str:
    """The module an ImportError is about: its own, or the one behind the app's ImportError."""
    while exc.name is None and isinstance(exc.__cause__, ImportError):
        exc = exc.__cause__
    return exc.name or "one of them"


def _named(values: list[str | None], option: str) -> list[tuple[str | None, str | None]]:
    """``--model`` values as (name, model): ``NAME=MODEL`` or a bare MODEL (its own names)."""
    named: list[tuple[str | None, str | None]] = []
    for value in values:
        if value is not None and "=" in value:
            name, _, model = value.partition("=")
            if not name or not model:
                raise InputError(
                    f"{option} {value!r}: write NAME=MODEL with both parts, e.g. "
                    f"{option} my-embedder=/models/finetuned"
                )
            named.append((name, model))
        else:
            named.append((value, value))
    names = [name for name, _ in named]
    for name in names:
        if names.count(name) > 1:
            raise InputError(
                f"{option} {name} is given twice; serve a second copy under another name with "
                f"{option} OTHER-NAME={name}"
            )
    return named

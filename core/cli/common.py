"""What the subcommands share: the model and store options (defined once), the argparse type of
every count option, notes on stderr, and loading models and the index with their notes.

Importing this module is light: torch, chromadb and friends are imported by the functions that
need them, so ``jinarag --version`` and ``--help`` load none of them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from jinarag.errors import InputError
from jinarag.validation import positive_int

if TYPE_CHECKING:
    from jinarag.inference.embedder import Embedder
    from jinarag.inference.reranker import Reranker
    from jinarag.retrieval.index import HybridIndex

__all__ = [
    "DEFAULT_COLLECTION",
    "DEFAULT_STORE",
    "add_backend_option",
    "add_json_option",
    "add_max_length_option",
    "add_model_option",
    "add_reranker_option",
    "add_store_options",
    "count",
    "load_embedder",
    "load_reranker",
    "loading_options",
    "note",
    "open_index",
    "print_json",
]

DEFAULT_STORE = "jinarag-store"
DEFAULT_COLLECTION = "jinarag"


def count(text: str) -> int:
    """The argparse type of count options (``--k``, ``--batch``, ``--limit`` ...): an integer of
    at least 1, checked by :func:`jinarag.validation.positive_int` before any model loads."""
    try:
        value = positive_int("the value", int(text))
    except InputError as exc:
        # argparse shows this message after the option's name: "argument --k: the value ..."
        raise argparse.ArgumentTypeError(str(exc)) from exc
    assert value is not None  # positive_int returns None only with allow_none
    return value


def add_model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="embedder name, alias or path (default: Jina small)")


def add_reranker_option(
    parser: argparse.ArgumentParser,
    help: str = "reranker name, alias or path (default: Jina turbo)",
) -> None:
    parser.add_argument("--reranker", help=help)


def add_backend_option(parser: argparse.ArgumentParser) -> None:
    """``--backend``: what runs the models (:attr:`jinarag.LoadOptions.backend`)."""
    from jinarag.options import BACKEND_NAMES

    parser.add_argument(
        "--backend",
        choices=("auto", *BACKEND_NAMES),
        help="what runs the models: torch, or openvino on the CPU (pip install "
        "'jinarag[openvino]'; exported once, then cached); default auto",
    )


def loading_options(args: argparse.Namespace) -> dict[str, object]:
    """The loading options the command line set (``--backend``), as keywords for
    ``from_pretrained``; the ones left out keep their defaults."""
    backend = getattr(args, "backend", None)
    return {"backend": backend} if backend is not None else {}


def add_max_length_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-length", type=count, help="embedder token limit")


def add_store_options(parser: argparse.ArgumentParser) -> None:
    """``--store`` and/or ``--chroma-url`` (a server's records, with ``--store`` as the folder
    of the BM25 snapshot and the write lock), ``--collection``, and ``--model`` (the embedder
    the collection was built with: the index refuses another one)."""
    parser.add_argument(
        "--store",
        type=Path,
        help=f"index folder (default: ./{DEFAULT_STORE}); with --chroma-url, the folder of the "
        "BM25 snapshot and the write lock (without it, BM25 is rebuilt from the server at "
        "every start and writers must take turns themselves)",
    )
    parser.add_argument("--chroma-url", help="a Chroma server instead, e.g. http://127.0.0.1:8000")
    parser.add_argument("--collection", default=DEFAULT_COLLECTION, help="collection name")
    add_model_option(parser)
    add_backend_option(parser)


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print JSON on stdout (notes stay on stderr)"
    )


def print_json(value: object) -> None:
    """``value`` as indented JSON on stdout: the whole of a ``--json`` command's stdout."""
    import json

    # default=str: a metadata value Chroma hands back as another type still prints.
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def note(text: str | None) -> None:
    """Print ``note: text`` on stderr (stdout stays the command's result); nothing for None."""
    if text:
        print(f"note: {text}", file=sys.stderr)


def load_embedder(name: str | None, **options: object) -> Embedder:
    """:func:`jinarag.inference.defaults.load_embedder`, its fallback note printed."""
    from jinarag.inference import defaults

    embedder, text = defaults.load_embedder(name, **options)
    note(text)
    return embedder


def load_reranker(name: str | None, **options: object) -> Reranker | None:
    """:func:`jinarag.inference.defaults.load_reranker`, its note printed (None: skipped)."""
    from jinarag.inference import defaults

    reranker, text = defaults.load_reranker(name, **options)
    note(text)
    return reranker


def open_index(args: argparse.Namespace, *, must_exist: bool) -> HybridIndex:
    """The index the store options name, with the ``--model`` embedder."""
    from jinarag.retrieval.index import HybridIndex

    store = args.store if args.store is not None else Path(DEFAULT_STORE)
    if args.chroma_url is None and must_exist and not store.is_dir():
        raise InputError(
            f"no index at {str(store)!r}; build one first: jinarag index PATH --store {store}"
        )
    embedder = load_embedder(args.model, **loading_options(args))
    if args.chroma_url is not None:
        # The BM25 snapshot still lives on this machine, in --store when given.
        return HybridIndex(
            args.store, url=args.chroma_url, collection=args.collection, embedder=embedder
        )
    return HybridIndex(store, collection=args.collection, embedder=embedder)

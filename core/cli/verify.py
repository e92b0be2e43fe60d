"""`jinarag verify`: check a stored index (every record reachable, BM25 equal to Chroma) and,
with ``--repair``, mend it.

Example::

    jinarag verify ./jinarag-store --repair

The store is opened in a child process: a vector index damaged in a way the checks at open
cannot see may crash Chroma's native code (SIGSEGV), and that must end in a named error, not a
dead terminal. With ``--repair``, a damaged vector index (files missing, cut, or crashing) is
rebuilt from the texts the store holds, unreachable records are added again, and BM25 and its
snapshot are rebuilt from Chroma. Exit status 0: healthy (or repaired); 1: not.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinarag.cli.common import DEFAULT_COLLECTION, add_model_option, note
from jinarag.errors import InputError, JinaragError, StoreCorruptError, StoreMismatchError

if TYPE_CHECKING:
    from jinarag.inference.embedder import Embedder

__all__ = ["add_parser", "child", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "verify", help="check a stored index (every record reachable) and repair it"
    )
    parser.add_argument("store", type=Path, metavar="STORE", help="the index folder")
    parser.add_argument("--collection", default=DEFAULT_COLLECTION, help="collection name")
    parser.add_argument(
        "--repair",
        action="store_true",
        help="rebuild what is damaged: the vector index from the stored texts, BM25 from Chroma",
    )
    add_model_option(parser)  # default: the embedder the collection records
    # Accepted only to say what checks a server instead (run refuses it).
    parser.add_argument("--chroma-url", help=argparse.SUPPRESS)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.chroma_url is not None:
        from jinarag.redaction import redact_url

        raise InputError(
            "jinarag verify reads the files of an index folder, so it cannot check the Chroma "
            f"server at {redact_url(args.chroma_url)}; check that one from Python: "
            "HybridIndex(STORE, url=URL, embedder=...).verify() (repair=True mends it)"
        )
    store: Path = args.store
    if not store.is_dir():
        raise InputError(f"no index at {str(store)!r}: STORE must be the folder of a stored index")
    task = {"store": str(store), "collection": args.collection, "model": args.model}
    result = _in_child({**task, "mode": "verify", "repair": args.repair})
    rebuilt = None
    if "crashed" in result and args.repair:
        note(f"reading the store {result['crashed']}; rebuilding its vector index")
        result = _in_child({**task, "mode": "rebuild"})
        if "rebuilt" in result:
            rebuilt = result["rebuilt"]
            result = _in_child({**task, "mode": "verify", "repair": True})
    if "crashed" in result:
        raise StoreCorruptError(
            f"checking {store} {result['crashed']}: its vector index is damaged beyond what the "
            f"checks at open can see. Fix: restore the folder {store} from a backup, or rebuild "
            f"the vector index from the stored texts: jinarag verify {store} --collection "
            f"{args.collection} --repair"
        )
    if "error" in result:
        raise _error(result["error"], result["message"])
    if result.get("rebuilt") is not None:
        rebuilt = result["rebuilt"]
    if rebuilt is not None:
        print(f"vector index: rebuilt from the {rebuilt} stored texts")
    if result.get("set_aside"):
        print(
            f"BM25 snapshot: it listed records the database does not hold; set aside as "
            f"{result['set_aside']} (restore the folder from a backup to get them back)"
        )
    for line in result["report"]["lines"]:
        print(line)
    return 0 if result["report"]["healthy"] else 1


def _in_child(task: dict[str, Any]) -> dict[str, Any]:
    """Run :func:`child` in a new Python process; its result, or ``{"crashed": why}``."""
    proc = subprocess.run(
        [sys.executable, "-c", "from jinarag.cli.verify import child; child()", json.dumps(task)],
        stdout=subprocess.PIPE,
        check=False,
    )
    lines = proc.stdout.decode("utf-8", "replace").strip().splitlines()
    if proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name
        return {"crashed": f"crashed the checking process with {name} inside Chroma"}
    if proc.returncode != 0 or not lines:
        return {"crashed": f"ended the checking process with exit status {proc.returncode}"}
    return json.loads(lines[-1])


def _error(kind: str, message: str) -> JinaragError:
    import jinarag.errors as errors

    cls = getattr(errors, kind, None)
    if not (isinstance(cls, type) and issubclass(cls, JinaragError)):
        cls = JinaragError
    return cls(message)


def child() -> None:
    """The child process: open the store, verify (or rebuild) it, print one JSON line."""
    logging.basicConfig(level=logging.WARNING, format="note: %(message)s", stream=sys.stderr)
    task = json.loads(sys.argv[1])
    try:
        out = _work(task)
    except JinaragError as exc:
        out = {"error": type(exc).__name__, "message": str(exc)}
    print(json.dumps(out), flush=True)


def _work(task: dict[str, Any]) -> dict[str, Any]:
    from jinarag.cli.common import load_embedder
    from jinarag.retrieval.store.files import collection_names, recorded_embedder, snapshot_path
    from jinarag.retrieval.write.rebuild import rebuild_vector_index

    store, collection = Path(task["store"]), task["collection"]
    names = collection_names(store)
    lost = snapshot_path(store, collection).is_file()  # then opening names what was lost
    if names and collection not in names and f"{collection}-rebuild" not in names and not lost:
        raise InputError(
            f"no collection {collection!r} in {store}; it holds {', '.join(sorted(names))}: "
            "pass one with --collection"
        )
    model = task["model"] if task["model"] is not None else recorded_embedder(store, collection)
    embedder = load_embedder(model)
    if task["mode"] == "rebuild":
        return {"rebuilt": rebuild_vector_index(store, collection, embedder)}
    return _verify(store, collection, embedder, task["repair"])


def _verify(store: Path, collection: str, embedder: Embedder, repair: bool) -> dict[str, Any]:
    from jinarag.retrieval.index import HybridIndex
    from jinarag.retrieval.keyword.snapshot import set_aside
    from jinarag.retrieval.write.rebuild import rebuild_vector_index

    rebuilt, aside = None, None
    try:
        report = HybridIndex(store, collection=collection, embedder=embedder).verify(
            repair=repair
        )
    except StoreMismatchError as exc:
        if not repair:
            raise
        # The records the snapshot lists are not in the database: keep what it holds, and
        # the snapshot beside it (it still names what was lost).
        note(str(exc))
        aside = str(set_aside(Path(exc.snapshot)))
        report = HybridIndex(store, collection=collection, embedder=embedder).verify(repair=True)
    except StoreCorruptError as exc:
        if not repair or "vector index" not in str(exc):
            raise
        note(f"{exc}\nrebuilding the vector index from the stored texts")
        rebuilt = rebuild_vector_index(store, collection, embedder)
        index = HybridIndex(store, collection=collection, embedder=embedder)
        report = index.verify(repair=True)
    out: dict[str, Any] = {"report": {"lines": report.lines(), "healthy": report.healthy}}
    return {**out, "rebuilt": rebuilt, "set_aside": aside}

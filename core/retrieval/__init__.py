"""The retrieval layer: :class:`~jinarag.retrieval.index.HybridIndex` (Chroma + BM25, fused)
and ingestion, as a thin facade (``index``) over packages with one job each:

- ``store/``: the Chroma collection, its clients, its files, its errors, the write lock and
  URL redaction;
- ``keyword/``: BM25 and its snapshot file;
- ``write/``: the one :class:`~jinarag.retrieval.write.writer.Writer`, the one record layout,
  ids and metadata checks, write plans, the BM25 mirror, verify and rebuild;
- ``search/``: search planning, fusion (pure functions), tuned settings and hits;
- ``ingest/``: readers, chunking, late chunking, sources, the indexing run and its executors.

Lower packages never import higher ones: store < keyword < write < search, ingest < index.
Importing this package is light; the modules that need chromadb load when asked for.
Modules of the flat layout before 0.2 (``jinarag.retrieval.fusion``, ``.late``,
``.ray_ingest``, ...) still import, as aliases of their new homes.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from types import ModuleType

# Old flat module name -> its home now. Imported on first use only, like the modules themselves.
_MOVED = {
    "chroma_store": "store.collection",
    "chroma_client": "store.client",
    "chroma_files": "store.files",
    "chroma_errors": "store.errors",
    "lock": "store.lock",
    "redaction": "store.redaction",
    "bm25": "keyword.bm25",
    "snapshot": "keyword.snapshot",
    "records": "write.records",
    "writes": "write.plan",
    "mirror": "write.mirror",
    "verify": "write.verify",
    "rebuild": "write.rebuild",
    "fusion": "search.fusion",
    "fusion_settings": "search.settings",
    "hits": "search.hits",
    "readers": "ingest.readers",
    "chunking": "ingest.chunking",
    "late": "ingest.late",
    "sources": "ingest.sources",
    "ray_ingest": "ingest.ray_executor",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``import jinarag.retrieval.late`` gives a module holding the names of
    ``jinarag.retrieval.ingest.late`` (which stays the one place they are defined)."""

    def find_spec(self, fullname: str, path: object = None, target: object = None):  # noqa: ANN201
        prefix, _, name = fullname.rpartition(".")
        if prefix != __name__ or name not in _MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None  # a plain module, filled below

    def exec_module(self, module: ModuleType) -> None:
        home = importlib.import_module(f"{__name__}.{_MOVED[module.__name__.rpartition('.')[2]]}")
        names = getattr(home, "__all__", [n for n in vars(home) if not n.startswith("__")])
        module.__dict__.update({n: getattr(home, n) for n in names if hasattr(home, n)})
        module.__all__ = list(names)
        module.__doc__ = f"Moved to :mod:`{home.__name__}`."


if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModules())

"""Indexing files on a Ray cluster: :class:`RayExecutor` reads, chunks and embeds in parallel.

The run itself stays :func:`jinarag.retrieval.ingest.run.add_files`'s: it plans which sources
and documents need work, and writes every batch this executor hands back through the one
writer (content hashes, idempotent upserts), so a Ray run stopped at any point is
finished by running it again, with Ray or without. Only the reading, chunking and embedding
move to Ray Data:

``from_items`` (one row per source) -> ``flat_map`` (read the source: one row per document,
the documents already stored completely flagged *kept*) -> ``repartition`` (blocks of about
``batch_chunks`` documents, so every actor gets work from one big JSONL file) ->
``map_batches`` on a pool of ``actors`` actors, each holding one copy of the index's embedder
(chunks and embeds; a kept document passes through as a record-less row that only reports it
as read) -> the driver's ``iter_batches`` ->
:class:`~jinarag.retrieval.ingest.executor.ChunkBatch`.

Rows cross Arrow, so records travel as JSON strings and vectors as float32 tensors.

Ray is imported here only (``import jinarag`` never loads it); install it with
``pip install 'jinarag[ray]'``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jinarag import errors
from jinarag.errors import InputError
from jinarag.redaction import redact_url
from jinarag.retrieval.ingest.chunking import Chunking
from jinarag.retrieval.ingest.executor import ChunkBatch, SourceWork, documents_to_embed
from jinarag.retrieval.ingest.readers import Document
from jinarag.retrieval.ingest.sources import Source, read_source, source_records
from jinarag.retrieval.layout import Record

if TYPE_CHECKING:
    from jinarag.inference.embedder import Embedder

__all__ = ["RayExecutor"]

INSTALL_HINT = "pip install 'jinarag[ray]'"


def _import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise ImportError(
            f"RayExecutor needs Ray Data, which is not installed ({exc}); install it with "
            f"{INSTALL_HINT}, or index with the default executor (leave executor= out)"
        ) from exc
    return ray


def _local_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class RayExecutor:
    """Chunks and embeds the sources of :meth:`jinarag.HybridIndex.add_files` with Ray Data.

    Args:
        address: None: a local Ray (started with this machine's CPUs unless Ray is already
            initialised in this process, and shut down after the run when started here);
            ``"auto"`` or ``"ray://head:10001"``: the cluster there. Every node needs jinarag
            installed and must see the embedder's checkpoint folder at the same path (a
            shared filesystem), or reach the Hub when the embedder was loaded by name.
        actors: embedding actors, each loading one copy of the index's embedder (same
            checkpoint, ``max_length``, dtype option and prefixes; the device is the actor's:
            with ``dtype="auto"`` a GPU actor computes in float16, so its vectors differ from
            CPU ones in the third decimal).
        num_gpus: GPUs per actor; None: one per actor when the cluster has GPUs, else CPU
            with the cluster's CPUs shared among the actors (``torch.set_num_threads``).
        batch_chunks: documents per actor call, and rows per batch handed to the writer.

    Example:
        >>> from jinarag.retrieval.ingest.ray_executor import RayExecutor
        >>> index = jinarag.HybridIndex(url="http://chroma:8000", embedder=emb)
        >>> report = index.add_files(
        ...     ["/shared/corpus/"], executor=RayExecutor("ray://head:10001", actors=8)
        ... )
        >>> report.summary()
        'added 1200, updated 0, unchanged 0, removed 0, skipped 0; 48211 chunks written, ...'

    Raises:
        InputError: ``actors``, ``num_gpus`` or ``batch_chunks`` out of range.
        ImportError: Ray Data is not installed (the message names the extra to install).
    """

    def __init__(
        self,
        address: str | None = None,
        actors: int = 2,
        num_gpus: float | None = None,
        batch_chunks: int = 256,
    ) -> None:
        from jinarag.validation import positive_int

        if address is not None and (not isinstance(address, str) or not address.strip()):
            raise InputError(
                f"address={address!r} must be a Ray address ('auto', 'ray://head:10001') "
                "or None for a local Ray"
            )
        self.address = address
        self.actors = positive_int("actors", actors)
        if num_gpus is not None and (
            isinstance(num_gpus, bool) or not isinstance(num_gpus, int | float) or num_gpus <= 0
        ):
            raise InputError(
                f"num_gpus={num_gpus!r} must be a positive number of GPUs per actor (0.5 "
                "shares one GPU between two actors), or None to use GPUs when the cluster has "
                "them"
            )
        self.num_gpus = num_gpus
        self.batch_chunks = positive_int("batch_chunks", batch_chunks)
        _import_ray()  # a missing Ray is said here, before add_files scans or locks anything

    def __repr__(self) -> str:
        return (
            f"RayExecutor(address={_shown(self.address)!r}, actors={self.actors}, "
            f"num_gpus={self.num_gpus!r}, batch_chunks={self.batch_chunks})"
        )

    def batches(
        self, embedder: Embedder, work: Sequence[SourceWork], chunking: Chunking
    ) -> Iterator[ChunkBatch]:
        """The records of ``work`` in batches, embedded on the Ray actors (see the module)."""
        if not work:
            return
        ray = _import_ray()
        started_here = False
        if not ray.is_initialized():
            if self.address is None:
                ray.init(num_cpus=_local_cpus(), include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=self.address, log_to_driver=False)
            started_here = True
        try:
            yield from self._run(ray, embedder, work, chunking)
        finally:
            if started_here:  # leave no workers behind; a Ray the caller started stays up
                ray.shutdown()

    def _resources(self, ray: Any) -> tuple[float, float, int]:
        """``(num_cpus, num_gpus, threads)`` per actor."""
        cluster = ray.cluster_resources()
        total = float(cluster.get("CPU", 1))
        threads = max(1, int(total) // self.actors)
        gpus = self.num_gpus
        if gpus is None:
            gpus = 1.0 if cluster.get("GPU", 0) >= self.actors else 0.0
        # The actors reserve all but one CPU: the read and repartition tasks need a slot, or
        # the pipeline waits forever behind actors that wait for their input. On a GPU one
        # CPU per actor feeds it.
        share = max(0.0, total - 1) / self.actors
        return (min(1.0, share) if gpus else share), float(gpus), threads

    def _run(
        self, ray: Any, embedder: Embedder, work: Sequence[SourceWork], chunking: Chunking
    ) -> Iterator[ChunkBatch]:
        num_cpus, num_gpus, threads = self._resources(ray)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # add_files shows its own bar
        items = [
            {
                "path": str(item.source.path),
                "id": item.source.id,
                "root": item.source.root,
                "hash": item.source.hash,
                "keep": json.dumps(item.keep),
            }
            for item in work
        ]
        dataset = (
            ray.data.from_items(items, override_num_blocks=min(len(items), 1000))
            # Reading is light: it takes no CPU slot, so it never waits behind the actors.
            .flat_map(_read_rows, fn_kwargs={"chunking": chunking}, num_cpus=0)
            .repartition(target_num_rows_per_block=self.batch_chunks)
            .map_batches(
                _EmbedChunks,
                fn_constructor_kwargs={
                    "model": _model_spec(embedder, gpu=num_gpus > 0, threads=threads),
                    "chunking": chunking,
                },
                batch_size=self.batch_chunks,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=self.actors),
                num_cpus=num_cpus,
                num_gpus=num_gpus or None,
            )
        )
        dim = int(embedder.dim)
        for batch in dataset.iter_batches(
            batch_size=self.batch_chunks, batch_format="numpy", drop_last=False
        ):
            records: list[Record] = []
            rows: list[int] = []
            seen: list[tuple[str, str, int]] = []
            for failed in batch["error"]:
                if failed:  # a bad file met on a worker: the error (file, fix) as without Ray
                    name, message = json.loads(failed)
                    kind = getattr(errors, name, InputError)
                    ok = isinstance(kind, type) and issubclass(kind, InputError)
                    raise (kind if ok else InputError)(message)
            for row, (record, mark) in enumerate(zip(batch["record"], batch["seen"], strict=True)):
                if mark:
                    source_id, doc_id, n_docs = json.loads(mark)
                    seen.append((source_id, doc_id, int(n_docs)))
                if record:
                    record_id, text, metadata = json.loads(record)
                    records.append(Record(record_id, text, metadata))
                    rows.append(row)
            vectors = np.asarray(batch["vector"], dtype=np.float32)[rows] if records else None
            if vectors is not None and vectors.shape != (len(records), dim):
                raise RuntimeError(
                    f"the Ray actors returned vectors of shape {vectors.shape} for "
                    f"{len(records)} records of {embedder.name} (dim {dim}); the actors "
                    "must load the same checkpoint as the index"
                )
            yield ChunkBatch(records, vectors, seen)


def _model_spec(embedder: Embedder, *, gpu: bool, threads: int) -> dict[str, Any]:
    """What an actor needs to load an embedder identical to ``embedder``: the checkpoint
    (folder, or the Hub name when that folder is missing on the node), its loading options
    with the limits in force, and its prefixes. Only the device follows the actor."""
    options = embedder.options.to_dict()
    same_device = (embedder.device.type == "cuda") == gpu
    options.update(
        max_length=embedder.max_length,
        # The budget in force when the device kind is the same; else the actor's own default.
        max_batch_tokens=embedder.max_batch_tokens if same_device else options["max_batch_tokens"],
        device="cuda" if gpu else "cpu",
    )
    return {
        "source": str(embedder.source),
        "name": str(embedder.name),
        "options": options,
        "init": {
            "query_prefix": getattr(embedder, "query_prefix", ""),
            "document_prefix": getattr(embedder, "document_prefix", ""),
        },
        "threads": threads,
        "gpu": gpu,
    }


def _read_rows(item: dict[str, Any], chunking: Chunking) -> list[dict[str, Any]]:
    """One row per document of a source; the documents stored completely are flagged kept
    (no text: they are only reported as read)."""
    source = Source(item["id"], Path(item["path"]), item["root"], item["hash"])
    work = SourceWork(source, json.loads(item["keep"]))
    common = {k: item[k] for k in ("path", "id", "root", "hash")}
    try:
        docs = read_source(source)
    except InputError as exc:
        # Travels as data: Ray would hand the driver its own wrapper, the message as text.
        failed = json.dumps([type(exc).__name__, str(exc)])
        return [{**common, "n_docs": 0, "kept": True, "doc": "", "doc_id": "", "error": failed}]
    todo = {id(doc) for doc in documents_to_embed(work, docs, chunking)}
    return [
        {
            **common,
            "error": "",
            "n_docs": len(docs),
            "kept": id(doc) not in todo,
            "doc": "" if id(doc) not in todo else json.dumps([doc.id, doc.text, doc.metadata]),
            "doc_id": doc.id,
        }
        for doc in docs
    ]


class _EmbedChunks:
    """A Ray Data actor: loads the embedder once, then chunks and embeds document rows."""

    def __init__(self, model: dict[str, Any], chunking: Chunking) -> None:
        import torch

        from jinarag.inference.embedder import Embedder

        if not model["gpu"]:
            torch.set_num_threads(model["threads"])
        checkpoint = model["source"] if Path(model["source"]).is_dir() else model["name"]
        self.embedder = Embedder.from_pretrained(checkpoint, **model["options"], **model["init"])
        self.chunking = chunking

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        offsets = self.embedder.tokenizer.token_offsets
        dim = int(self.embedder.dim)
        # Documents of one source stay together: chunking needs the source's keys.
        by_source: dict[tuple[str, str, str, str, int], list[int]] = {}
        out_records: list[str] = []
        out_seen: list[str] = []
        out_vectors: list[np.ndarray] = []
        out_errors: list[str] = []
        for row in range(len(batch["doc_id"])):
            if batch["error"][row]:  # passed on to the driver, which raises it
                out_records.append("")
                out_seen.append("")
                out_vectors.append(np.zeros((1, dim), dtype=np.float32))
                out_errors.append(str(batch["error"][row]))
                continue
            key = (
                str(batch["path"][row]),
                str(batch["id"][row]),
                str(batch["root"][row]),
                str(batch["hash"][row]),
                int(batch["n_docs"][row]),
            )
            by_source.setdefault(key, []).append(row)
        for (path, source_id, root, digest, n_docs), rows in by_source.items():
            source = Source(source_id, Path(path), root, digest)
            docs: list[Document] = []
            for row in rows:
                if not batch["kept"][row]:
                    doc_id, text, metadata = json.loads(str(batch["doc"][row]))
                    docs.append(Document(doc_id, text, metadata))
            per_doc, vectors = self._embed(source, n_docs, docs, offsets)
            made = iter(per_doc)  # in the order of the rows not kept
            at = 0
            for row in rows:
                doc_id = str(batch["doc_id"][row])
                mark = json.dumps([source_id, doc_id, n_docs])
                records = [] if batch["kept"][row] else next(made)
                if not records:  # kept (or no chunk at all): only reported as read
                    out_records.append("")
                    out_seen.append(mark)
                    out_vectors.append(np.zeros((1, dim), dtype=np.float32))
                    out_errors.append("")
                    continue
                for n, record in enumerate(records):
                    out_records.append(json.dumps([record.id, record.text, record.metadata]))
                    out_seen.append(mark if n == 0 else "")
                    out_errors.append("")
                out_vectors.append(vectors[at : at + len(records)])
                at += len(records)
        return {
            "record": np.array(out_records, dtype=object),
            "seen": np.array(out_seen, dtype=object),
            "vector": np.concatenate(out_vectors).astype(np.float32),
            "error": np.array(out_errors, dtype=object),
        }

    def _embed(
        self, source: Source, n_docs: int, docs: list[Document], offsets: Any
    ) -> tuple[list[list[Record]], np.ndarray]:
        """Per document, its records (in order); and all their vectors, in the same order."""
        dim = int(self.embedder.dim)
        if not docs:
            return [], np.zeros((0, dim), dtype=np.float32)
        made, rows = source_records(source, n_docs, docs, offsets, self.chunking)
        per_doc = [[made[r] for r in doc_rows] for doc_rows in rows]
        if self.chunking.late:
            embedded = self.embedder.embed_late_chunks_many(
                [[r.text for r in doc] for doc in per_doc if doc]
            )
            vectors = [np.asarray(v, dtype=np.float32) for v in embedded]
        else:
            texts = [r.text for doc in per_doc for r in doc]
            vectors = [np.asarray(self.embedder.embed_documents(texts), dtype=np.float32)]
        flat = np.concatenate(vectors) if vectors else np.zeros((0, dim), dtype=np.float32)
        return per_doc, flat.reshape(-1, dim)


def _shown(address: Any) -> Any:
    """The cluster address as shown: a URL without its secrets."""
    return redact_url(address) if isinstance(address, str) else address

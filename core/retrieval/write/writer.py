"""The one way records reach a store: :class:`Writer`.

``HybridIndex.add`` (plain or late-chunked), ``add_files`` (in this process or on Ray) and the
repairs all hand :class:`~jinarag.retrieval.layout.Record` lists to :meth:`Writer.write`, which
plans them against what Chroma holds (:func:`~jinarag.retrieval.write.plan.plan_writes`),
embeds only what the plan says needs a vector, and writes Chroma first, BM25 following each
batch Chroma acknowledged (:class:`~jinarag.retrieval.write.mirror.BM25Mirror`). A record's
vector comes from one of three places, the same for every path:

- given by the caller (``vectors=``: an executor embedded them elsewhere);
- late chunking (``documents=``: the positions of each document's chunks, in order): every
  chunk of a document that needs writing is embedded with the whole document as context;
- otherwise each record's text alone, on the embedder's document side.

Example:
    >>> writer = index.writer
    >>> with writer.writing():
    ...     writer.write([Record("a", "first text", {})])
    ...     writer.delete(["old"])
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from jinarag.errors import InputError
from jinarag.retrieval.layout import HASH_KEY, Record
from jinarag.retrieval.write.plan import Plan, plan_writes
from jinarag.retrieval.write.records import check_ids, check_where

if TYPE_CHECKING:
    from jinarag.inference.embedder import Embedder
    from jinarag.retrieval.store.collection import ChromaStore
    from jinarag.retrieval.write.mirror import BM25Mirror

__all__ = ["Writer"]

_DOC_ID_BATCH = 256  # document ids per "$in" filter when looking for stale chunks


class Writer:
    """Writes and deletes the records of one store, Chroma and BM25 together.

    Args:
        store: the Chroma collection (read through :attr:`store`).
        mirror: the BM25 index kept equal to it, with the store's write lock.
        embedder: makes the vectors of records written without them.
        batch_size: records planned, embedded and written per step.
    """

    def __init__(
        self, store: ChromaStore, mirror: BM25Mirror, embedder: Embedder, batch_size: int
    ) -> None:
        self.store = store
        self.mirror = mirror
        self.embedder = embedder
        self.batch_size = batch_size

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Several writes as one: the write lock taken once, the BM25 snapshot saved once."""
        with self.mirror.writing():
            yield

    def write(
        self,
        records: Sequence[Record],
        *,
        documents: Sequence[Sequence[int]] | None = None,
        vectors: np.ndarray | None = None,
        progress: Callable[[int], Any] | None = None,
    ) -> int:
        """Make the store hold ``records`` exactly; returns how many were embedded.

        Args:
            records: the records, in the one layout (:mod:`jinarag.retrieval.layout`).
            documents: late chunking: the positions of each document's chunks in
                ``records``, in order (every record in one document).
            vectors: one float32 row per record, computed by the caller.
            progress: called with the number of records done after each step.

        Raises:
            InputError: an embedder refusal; late chunking names the document as
                ``documents[d]`` (its place in ``documents``). Without ``documents``, records
                written in earlier steps stay written, and the message says how many.
        """
        if not records:
            return 0
        with self.writing():
            if documents is not None:
                return self._write_documents(records, documents, vectors, progress)
            done = embedded = 0
            try:
                for at in range(0, len(records), self.batch_size):
                    step = records[at : at + self.batch_size]
                    rows = vectors[at : at + len(step)] if vectors is not None else None
                    embedded += self._carry_out(
                        plan_writes(step, self.store, given_vectors=rows is not None), rows
                    )
                    done += len(step)
                    if progress is not None:
                        progress(len(step))
            except InputError as exc:
                if done == 0:
                    raise
                raise InputError(
                    f"{exc} ({done} of {len(records)} records were stored before this error; "
                    "fix the input and repeat the call: writes are upserts)"
                ) from exc
            return embedded

    def _write_documents(
        self,
        records: Sequence[Record],
        documents: Sequence[Sequence[int]],
        vectors: np.ndarray | None,
        progress: Callable[[int], Any] | None,
    ) -> int:
        """Late chunking: plan every step first, embed each document any of whose chunks needs
        writing (all before the first write, so a bad document stops nothing halfway)."""
        steps = [
            (at, plan_writes(records[at : at + self.batch_size], self.store, given_vectors=True))
            for at in range(0, len(records), self.batch_size)
        ]
        if vectors is None:
            vectors = np.zeros((len(records), int(self.embedder.dim)), dtype=np.float32)
            needed = {at + i for at, plan in steps for i in plan.embedded}
            todo = [d for d, rows in enumerate(documents) if needed.intersection(rows)]
            if todo:
                try:
                    embedded = self.embedder.embed_late_chunks_many(
                        [[records[row].text for row in documents[d]] for d in todo]
                    )
                except InputError as exc:
                    # The embedder numbers what it was given; name the caller's documents.
                    def caller(match: re.Match[str]) -> str:
                        return f"documents[{todo[int(match.group(1))]}]"

                    raise InputError(re.sub(r"documents\[(\d+)\]", caller, str(exc))) from exc
                for d, got in zip(todo, embedded, strict=True):
                    vectors[list(documents[d])] = got
        total = 0
        for at, plan in steps:
            total += self._carry_out(plan, vectors[at : at + len(plan.records)])
            if progress is not None:
                progress(len(plan.records))
        return total

    def _carry_out(self, plan: Plan, vectors: np.ndarray | None) -> int:
        """Chroma first, BM25 following each acknowledged batch (see :mod:`.plan`)."""
        records = plan.records
        if plan.relabeled:
            self.mirror.relabel(
                [records[i].id for i in plan.relabeled],
                [
                    {**records[i].metadata, **dict.fromkeys(gone), HASH_KEY: plan.hash(i)}
                    for i, gone in plan.relabeled.items()
                ],
            )
        rows = plan.embedded
        if not rows:
            return 0
        texts = [records[i].text for i in rows]
        if vectors is not None:
            new_vectors = np.asarray(vectors[rows], dtype=np.float32)
        else:  # embedded before anything is deleted
            new_vectors = np.asarray(self.embedder.embed_documents(texts), dtype=np.float32)
        self.mirror.delete([records[i].id for i in plan.moved])
        self.mirror.upsert(
            [records[i].id for i in rows],
            new_vectors,
            texts,
            [records[i].metadata for i in rows],
            [plan.hash(i) for i in rows],
        )
        return len(rows)

    def delete(self, ids: Sequence[str]) -> None:
        """Delete records by id from Chroma and BM25 (unknown ids are ignored)."""
        if not ids:
            return
        with self.writing():
            self.mirror.delete(list(ids))

    def delete_matching(
        self, ids: Sequence[str] | None = None, where: dict[str, Any] | None = None
    ) -> None:
        """Delete records by id and/or metadata filter (both: records matching both); unknown
        ids are ignored. Neither is an InputError."""
        if ids is None and where is None:
            raise InputError("delete() needs ids, a where filter, or both")
        check_where(where)
        targets = check_ids(ids, unique=False) if ids is not None else None
        if where is not None:
            matching = self.store.ids(where)
            targets = matching if targets is None else sorted(set(targets) & set(matching))
        self.delete(targets or [])

    def delete_stale_chunks(self, doc_ids: Sequence[str], keep: set[str]) -> list[str]:
        """Delete the records of these documents (by ``doc_id``) that are not in ``keep``: a
        document now cut into fewer chunks leaves its old last chunks behind. Returns them."""
        found = {
            record_id
            for at in range(0, len(doc_ids), _DOC_ID_BATCH)
            for record_id in self.store.ids(
                {"doc_id": {"$in": list(doc_ids[at : at + _DOC_ID_BATCH])}}
            )
        }
        stale = sorted(found - keep)
        self.delete(stale)
        return stale

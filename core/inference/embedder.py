"""Text embeddings: the mean of the encoder's last hidden states over each text's tokens."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import ClassVar

import numpy as np

from jinarag.inference.api import EmbedCall, EmbeddingSides, LateChunkCall
from jinarag.inference.heads import l2_normalize, mean_pool, span_sums
from jinarag.inference.late_chunking import plan_late_chunks
from jinarag.inference.matryoshka import matryoshka, task_index, task_options, with_instruction
from jinarag.inference.overflow import plan_windows
from jinarag.inference.pretrained import PretrainedModel
from jinarag.models.checkpoint import Kind
from jinarag.models.tokenization import Encoded
from jinarag.options import INIT_OPTIONS
from jinarag.validation import (
    check_bool,
    check_instance,
    check_texts,
    known_keywords,
    positive_int,
)

__all__ = ["Embedder"]


class Embedder(EmbeddingSides, PretrainedModel):
    """Embeds texts with jina-embeddings-v2 or v3 (or any BERT checkpoint), locally.

    Example:
        >>> embedder = Embedder.from_pretrained("small")  # or a local directory
        >>> embedder.embed(["a wing in a slipstream", "boundary layers"]).shape
        (2, 512)
        >>> embedder.embed_query("how do wings behave in a slipstream?").shape
        (512,)

    The query and document sides differ by the optional ``query_prefix`` and
    ``document_prefix`` (jina-embeddings-v2 uses none; other checkpoints may want some) and,
    on a model with task adapters (jina-embeddings-v3: :attr:`tasks`), by the default task:
    ``retrieval.query`` for queries, ``retrieval.passage`` for documents. ``task=`` and
    ``dimensions=`` (Matryoshka: :attr:`dimensions_allowed`) are taken by every ``embed*``
    method, e.g. ``embedder.embed(texts, task="text-matching", dimensions=256)``.
    """

    kind: ClassVar[Kind] = "embedder"
    init_options: ClassVar[tuple[str, ...]] = INIT_OPTIONS["embedder"]

    def __init__(self, *args, query_prefix: str = "", document_prefix: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for key, value in (("query_prefix", query_prefix), ("document_prefix", document_prefix)):
            check_instance(key, value, str, "pass a string, '' for none")
        self.query_prefix = query_prefix
        self.document_prefix = document_prefix

    @property
    def dim(self) -> int:
        return self.config.hidden_size

    @property
    def tasks(self) -> tuple[str, ...]:
        """The model's task adapters, in adapter order (jina-embeddings-v3: retrieval.query,
        retrieval.passage, separation, classification, text-matching); empty without."""
        return getattr(self.config, "tasks", ())

    @property
    def dimensions_allowed(self) -> tuple[int, ...]:
        """The Matryoshka dimensions the model was trained to be cut to (the values
        ``dimensions=`` takes: any from the smallest to ``dim``); empty without."""
        return getattr(self.config, "matryoshka_dimensions", ())

    def _check_task(self, call: EmbedCall | LateChunkCall) -> None:
        task_options(self, call.task, call.dimensions, call.side)

    @known_keywords
    def tokenize(
        self, texts: Iterable[str], *, truncate: bool = True, task: str | None = None
    ) -> Encoded:
        """The document side's token ids of ``texts`` (``document_prefix`` included, and the
        instruction of ``task`` on a model with task adapters), cut to ``max_length``
        (``truncate=False``: an InputError naming the first text over it), for
        :meth:`embed_tokens` (pass it the same ``task``). ``Encoded.truncated`` lists the
        texts that were cut."""
        checked = check_texts(texts)
        truncate = check_bool("truncate", truncate)
        if self.document_prefix:
            checked = [self.document_prefix + text for text in checked]
        checked = with_instruction(self, task_options(self, task, None)[0], checked)
        return self.tokenizer.encode(checked, max_length=self.max_length, truncate=truncate)

    @known_keywords
    def embed_tokens(
        self,
        encoded: Encoded,
        *,
        normalize: bool = True,
        batch_size: int = 32,
        stop: Callable[[], bool] | None = None,
        max_tokens: int | None = None,
        task: str | None = None,
        dimensions: int | None = None,
    ) -> np.ndarray:
        """:meth:`embed` of texts tokenised by :meth:`tokenize` (the server tokenises each
        request once, to check its limits, then embeds many requests in one call).
        ``max_tokens``: a pass's token budget (default ``max_batch_tokens``); ``task`` and
        ``dimensions`` as in :meth:`embed` (``task`` the one given to :meth:`tokenize`)."""
        check_instance("encoded", encoded, Encoded, "make it with embedder.tokenize(texts)")
        normalize = check_bool("normalize", normalize)
        task, dims = task_options(self, task, dimensions)
        if not len(encoded):
            return np.zeros((0, dims if dims is not None else self.dim), dtype=np.float32)
        vectors = self._run_tokens(
            encoded,
            partial(mean_pool, normalize=normalize and dims is None),
            batch_size=positive_int("batch_size", batch_size),
            what="texts",
            should_stop=stop,
            max_tokens=positive_int("max_tokens", max_tokens, allow_none=True),
            task=task_index(self, task),
        )
        return matryoshka(vectors, dims, normalize)

    def _late_chunks(
        self, documents: list[list[str]], names: list[str], call: LateChunkCall
    ) -> list[np.ndarray]:
        task, dims = task_options(self, call.task, call.dimensions, call.side)
        instruction = self.config.task_instructions.get(task, "") if task is not None else ""
        prefix = instruction + self.document_prefix
        if prefix:
            # The document side's instruction leads the text; its tokens count for chunk 0,
            # like [CLS].
            documents = [[prefix + d[0], *d[1:]] for d in documents]
        plans = [
            plan_late_chunks(
                self.tokenizer,
                chunks,
                max_length=self.max_length,
                long_late_chunking=call.long_late_chunking,
                overlap=call.overlap,
                name=name,
            )
            for chunks, name in zip(documents, names, strict=True)
        ]
        windows: list[list[int]] = []
        segments: list[list[tuple[int, int, int]]] = []
        first_row = []
        rows = 0
        for plan in plans:
            first_row.append(rows)
            windows += plan.windows
            segments += [[(a, b, rows + c) for a, b, c in runs] for runs in plan.segments]
            rows += plan.chunks
        if not windows:
            return []

        def encode(start: int, stop: int) -> Encoded:
            ids = windows[start:stop]
            return Encoded(ids, [[0] * len(w) for w in ids], truncated=[])

        sums = self._run(
            len(windows),
            encode,
            partial(span_sums, segments=segments, spare=rows),
            batch_size=call.batch_size,
            show_progress=call.show_progress,
            what="windows",
            should_stop=call.stop,
            outputs=rows,
            task=task_index(self, task),
        )
        means = matryoshka(sums[:, :-1] / sums[:, -1:], dims, normalize=False)
        if call.normalize:
            means = l2_normalize(means)
        return [
            means[first : first + plan.chunks] for first, plan in zip(first_row, plans, strict=True)
        ]

    def _embed(self, texts: list[str], call: EmbedCall) -> np.ndarray:
        task, dims = task_options(self, call.task, call.dimensions, call.side)
        if not texts:
            return np.zeros((0, dims if dims is not None else self.dim), dtype=np.float32)
        max_length = self.max_length
        texts = with_instruction(self, task, texts)
        if call.overflow == "pool":
            return self._pool_windows(texts, call, task, dims)

        def encode(start: int, stop: int) -> Encoded:
            return self.tokenizer.encode(
                texts[start:stop], max_length=max_length, truncate=call.truncate, offset=start
            )

        vectors = self._run(
            len(texts),
            encode,
            partial(mean_pool, normalize=call.normalize and dims is None),
            batch_size=call.batch_size,
            show_progress=call.show_progress,
            what="texts",
            should_stop=call.stop,
            task=task_index(self, task),
        )
        return matryoshka(vectors, dims, call.normalize)

    def _pool_windows(
        self, texts: list[str], call: EmbedCall, task: str | None, dims: int | None
    ) -> np.ndarray:
        """Each text read whole in windows of ``max_length`` tokens, pooled (``overflow``)."""
        windows, segments = plan_windows(self.tokenizer, texts, self.max_length)

        def encode(start: int, stop: int) -> Encoded:
            ids = windows[start:stop]
            return Encoded(ids, [[0] * len(w) for w in ids], truncated=[])

        sums = self._run(
            len(windows),
            encode,
            partial(span_sums, segments=segments, spare=len(texts)),
            batch_size=call.batch_size,
            show_progress=call.show_progress,
            what="windows",
            should_stop=call.stop,
            outputs=len(texts),
            task=task_index(self, task),
        )
        means = matryoshka(sums[:, :-1] / sums[:, -1:], dims, normalize=False)
        return l2_normalize(means) if call.normalize else means

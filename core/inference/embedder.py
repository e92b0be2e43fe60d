"""Text embeddings: the mean of the encoder's last hidden states over each text's tokens."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import ClassVar

import numpy as np

from jinarag.inference.heads import mean_pool, span_sums
from jinarag.inference.late_chunking import check_chunks, plan_late_chunks
from jinarag.inference.pretrained import PretrainedModel
from jinarag.models.checkpoint import Kind
from jinarag.models.tokenization import Encoded
from jinarag.validation import check_bool, check_text, check_texts, ordered_list, positive_int

__all__ = ["Embedder"]


class Embedder(PretrainedModel):
    """Embeds texts with jina-embeddings-v2 (or any BERT checkpoint), locally.

    Example:
        >>> embedder = Embedder.from_pretrained("small")  # or a local directory
        >>> embedder.embed(["a wing in a slipstream", "boundary layers"]).shape
        (2, 512)
        >>> embedder.embed_query("how do wings behave in a slipstream?").shape
        (512,)

    The query and document sides differ only by the optional ``query_prefix`` and
    ``document_prefix`` (jina-embeddings-v2 uses none; other checkpoints may want some).
    """

    kind: ClassVar[Kind] = "embedder"
    init_options: ClassVar[tuple[str, ...]] = ("query_prefix", "document_prefix")

    def __init__(self, *args, query_prefix: str = "", document_prefix: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.query_prefix = query_prefix
        self.document_prefix = document_prefix

    @property
    def dim(self) -> int:
        return self.config.hidden_size

    def embed(
        self,
        texts: Iterable[str],
        *,
        batch_size: int = 32,
        normalize: bool = True,
        show_progress: bool = False,
        truncate: bool = True,
        stop: Callable[[], bool] | None = None,
    ) -> np.ndarray:
        """Embed documents: a float32 array of shape (len(texts), dim), rows in input order.

        With ``normalize=False`` the rows are exactly the mean of the last hidden states over
        the attention mask (accumulated in float32). ``stop``, when given, is asked before each
        batch; once it returns True the call raises
        :class:`~jinarag.inference.pipeline.Cancelled`.
        """
        return self._embed(
            check_texts(texts),
            self.document_prefix,
            batch_size,
            normalize,
            show_progress,
            truncate,
            stop=stop,
        )

    def embed_documents(
        self,
        texts: Iterable[str],
        *,
        batch_size: int = 32,
        normalize: bool = True,
        show_progress: bool = False,
        truncate: bool = True,
    ) -> np.ndarray:
        """The document side; the same as :meth:`embed`."""
        return self.embed(
            texts,
            batch_size=batch_size,
            normalize=normalize,
            show_progress=show_progress,
            truncate=truncate,
        )

    def embed_queries(
        self,
        texts: Iterable[str],
        *,
        batch_size: int = 32,
        normalize: bool = True,
        show_progress: bool = False,
        truncate: bool = True,
    ) -> np.ndarray:
        """The query side, batched: ``query_prefix`` is prepended to each text."""
        return self._embed(
            check_texts(texts), self.query_prefix, batch_size, normalize, show_progress, truncate
        )

    def embed_query(
        self, text: str, *, normalize: bool = True, truncate: bool = True
    ) -> np.ndarray:
        """One query: a float32 vector of shape (dim,)."""
        text = check_text(text, "text")
        check_bool("normalize", normalize)
        check_bool("truncate", truncate)
        return self.embed_queries([text], normalize=normalize, truncate=truncate)[0]

    def tokenize(self, texts: Iterable[str], *, truncate: bool = True) -> Encoded:
        """The document side's token ids of ``texts`` (``document_prefix`` included), cut to
        ``max_length`` (``truncate=False``: an InputError naming the first text over it), for
        :meth:`embed_tokens`. ``Encoded.truncated`` lists the texts that were cut."""
        checked = check_texts(texts)
        truncate = check_bool("truncate", truncate)
        if self.document_prefix:
            checked = [self.document_prefix + text for text in checked]
        return self.tokenizer.encode(checked, max_length=self.max_length, truncate=truncate)

    def embed_tokens(
        self,
        encoded: Encoded,
        *,
        normalize: bool = True,
        batch_size: int = 32,
        stop: Callable[[], bool] | None = None,
        max_tokens: int | None = None,
    ) -> np.ndarray:
        """:meth:`embed` of texts tokenised by :meth:`tokenize` (the server tokenises each
        request once, to check its limits, then embeds many requests in one call).
        ``max_tokens``: a pass's token budget (default ``max_batch_tokens``)."""
        normalize = check_bool("normalize", normalize)
        if not len(encoded):
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._run_tokens(
            encoded,
            partial(mean_pool, normalize=normalize),
            batch_size=positive_int("batch_size", batch_size),
            what="texts",
            should_stop=stop,
            max_tokens=positive_int("max_tokens", max_tokens, allow_none=True),
        )

    def embed_late_chunks(
        self,
        chunks: Iterable[str],
        *,
        normalize: bool = True,
        long_late_chunking: bool = True,
        overlap: int | None = None,
        batch_size: int = 32,
    ) -> np.ndarray:
        """Late chunking of one document: ``chunks`` are its consecutive pieces; they are
        joined with a single space and read as one input, and each chunk's vector is the
        mean of its own tokens' output states (float32, (len(chunks), dim)).

        ``document_prefix``, when the embedder has one, leads the joined text (its tokens
        count for the first chunk). A document longer than ``max_length`` is read in macro
        windows that share
        ``overlap`` tokens (default: 256, at most a quarter of a window;
        ``long_late_chunking=False``: an InputError instead); see
        :mod:`jinarag.inference.late_chunking`.
        """
        return self._late_chunks(
            [check_chunks(chunks)],
            ["chunks"],
            normalize=normalize,
            long_late_chunking=long_late_chunking,
            overlap=overlap,
            batch_size=batch_size,
        )[0]

    def embed_late_chunks_many(
        self,
        documents: Iterable[Iterable[str]],
        *,
        normalize: bool = True,
        long_late_chunking: bool = True,
        overlap: int | None = None,
        batch_size: int = 32,
        show_progress: bool = False,
        stop: Callable[[], bool] | None = None,
    ) -> list[np.ndarray]:
        """:meth:`embed_late_chunks` for many documents (each a list of chunks) in one run:
        their windows share batches. One (chunks, dim) array per document, in order."""
        listed = ordered_list(documents, "documents", "chunk lists", "['first chunk', 'second']")
        names = [f"documents[{number}]" for number in range(len(listed))]
        checked = [check_chunks(chunks, name) for chunks, name in zip(listed, names, strict=True)]
        return self._late_chunks(
            checked,
            names,
            normalize=normalize,
            long_late_chunking=long_late_chunking,
            overlap=overlap,
            batch_size=batch_size,
            show_progress=show_progress,
            stop=stop,
        )

    def _late_chunks(
        self,
        documents: list[list[str]],
        names: list[str],
        *,
        normalize: bool,
        long_late_chunking: bool,
        overlap: int | None,
        batch_size: int,
        show_progress: bool = False,
        stop: Callable[[], bool] | None = None,
    ) -> list[np.ndarray]:
        batch_size = positive_int("batch_size", batch_size)
        normalize = check_bool("normalize", normalize)
        long_late_chunking = check_bool("long_late_chunking", long_late_chunking)
        overlap = positive_int("overlap", overlap, allow_zero=True, allow_none=True)
        if self.document_prefix:
            # The document side's instruction leads the text; its tokens count for chunk 0,
            # like [CLS].
            documents = [[self.document_prefix + d[0], *d[1:]] for d in documents]
        plans = [
            plan_late_chunks(
                self.tokenizer,
                chunks,
                max_length=self.max_length,
                long_late_chunking=long_late_chunking,
                overlap=overlap,
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
            batch_size=batch_size,
            show_progress=show_progress,
            what="windows",
            should_stop=stop,
            outputs=rows,
        )
        means = sums[:, :-1] / sums[:, -1:]
        if normalize:
            means /= np.linalg.norm(means, axis=1, keepdims=True).clip(min=1e-12)
        return [
            means[first : first + plan.chunks] for first, plan in zip(first_row, plans, strict=True)
        ]

    def _embed(
        self,
        texts: list[str],
        prefix: str,
        batch_size: int,
        normalize: bool,
        show_progress: bool,
        truncate: bool,
        stop: Callable[[], bool] | None = None,
    ) -> np.ndarray:
        # Checked before the empty case returns, so a bad argument never passes unseen.
        batch_size = positive_int("batch_size", batch_size)
        normalize = check_bool("normalize", normalize)
        show_progress = check_bool("show_progress", show_progress)
        truncate = check_bool("truncate", truncate)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if prefix:
            texts = [prefix + text for text in texts]
        max_length = self.max_length

        def encode(start: int, stop: int) -> Encoded:
            return self.tokenizer.encode(
                texts[start:stop], max_length=max_length, truncate=truncate, offset=start
            )

        return self._run(
            len(texts),
            encode,
            partial(mean_pool, normalize=normalize),
            batch_size=batch_size,
            show_progress=show_progress,
            what="texts",
            should_stop=stop,
        )

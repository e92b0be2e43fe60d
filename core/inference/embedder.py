"""Text embeddings: the mean of the encoder's last hidden states over each text's tokens."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import ClassVar

import numpy as np

from jinarag.inference.heads import mean_pool
from jinarag.inference.pretrained import PretrainedModel
from jinarag.models.checkpoint import Kind
from jinarag.models.tokenization import Encoded
from jinarag.validation import check_bool, check_text, check_texts, positive_int

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

"""Texts over ``max_length`` read whole: ``embed(..., truncate=False, overflow="pool")``.

Each text's tokens are cut into consecutive windows of at most ``max_length`` tokens, each
window given the model's own special tokens (``[CLS]`` … ``[SEP]``, ``<s>`` … ``</s>``), and
every token of every window is summed into the text's row: the row's mean is the mean of the
windows' means weighted by their token counts. A text that fits is one window, the same input
the ordinary path reads, so it gets the same vector.

Example:
    >>> windows, segments = plan_windows(tokenizer, ["a long report …"], max_length=512)
"""

from __future__ import annotations

from collections.abc import Sequence

from jinarag.models.tokenization import TextTokenizer

__all__ = ["plan_windows"]


def plan_windows(
    tokenizer: TextTokenizer, texts: Sequence[str], max_length: int
) -> tuple[list[list[int]], list[list[tuple[int, int, int]]]]:
    """``(windows, segments)``: the token ids of every window, in text order, and for each
    window the one span ``(0, len(window), text index)`` that sends all its tokens to its text's
    row (the form :func:`jinarag.inference.heads.span_sums` takes)."""
    head, tail = tokenizer.single_specials()
    budget = max_length - len(head) - len(tail)
    windows: list[list[int]] = []
    segments: list[list[tuple[int, int, int]]] = []
    for row, text in enumerate(texts):
        ids = tokenizer.ids_and_offsets(text)[0]
        for start in range(0, max(len(ids), 1), budget):
            window = [*head, *ids[start : start + budget], *tail]
            windows.append(window)
            segments.append([(0, len(window), row)])
    return windows, segments

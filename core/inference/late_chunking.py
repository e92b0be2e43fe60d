"""Late chunking: the model reads a whole document, and each chunk's vector is the mean of its
own tokens' output states, so a chunk that says "it" still knows what "it" is.

Jina's semantics: the chunks of one document are joined with a single space and read as one
input; the first token ([CLS]) belongs to the first chunk and the last ([SEP]) to the last.

Long late chunking: a document longer than ``max_length`` is read in overlapping macro
windows of ``max_length`` tokens. Consecutive windows share ``overlap`` tokens, and each
window after the first drops its first ``overlap`` outputs (those tokens were read with
context on both sides in the window before), so every token's output comes from exactly one
window. When the document fits, this is the single pass.

This module plans the windows and which tokens count for which chunk; the pipeline runs them
(windows of many documents share batches) and sums the states per chunk.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from jinarag.errors import InputError
from jinarag.models.tokenization import TextTokenizer
from jinarag.validation import check_bool, positive_int

__all__ = ["DEFAULT_OVERLAP", "LateChunkPlan", "check_chunks", "plan_late_chunks"]

# Tokens shared by consecutive macro windows (the published method's default), at most a
# quarter of a window.
DEFAULT_OVERLAP = 256


@dataclass(frozen=True)
class LateChunkPlan:
    """The macro windows of one document, ready for the model, and for each window the
    ``(first, end, chunk)`` runs of token positions whose outputs count for ``chunk``."""

    windows: list[list[int]]
    segments: list[list[tuple[int, int, int]]]
    chunks: int


def check_chunks(chunks: object, name: str = "chunks") -> list[str]:
    """A non-empty list of non-blank strings, or InputError naming the first bad one."""
    from jinarag.validation import check_texts

    items = check_texts(chunks, name)  # type: ignore[arg-type]
    if not items:
        raise InputError(f"{name} is empty; pass the consecutive pieces of one document")
    for index, chunk in enumerate(items):
        if not chunk.strip():
            raise InputError(
                f"{name}[{index}] is empty or blank: every chunk needs text of its own; drop "
                "it, or join it to its neighbour"
            )
    return items


def plan_late_chunks(
    tokenizer: TextTokenizer,
    chunks: Sequence[str],
    *,
    max_length: int,
    long_late_chunking: bool = True,
    overlap: int | None = None,
    name: str = "chunks",
) -> LateChunkPlan:
    """Tokenise ``" ".join(chunks)`` once and plan its windows (see the module docstring)."""
    max_length = positive_int("max_length", max_length)
    long_late_chunking = check_bool("long_late_chunking", long_late_chunking)
    overlap = positive_int("overlap", overlap, allow_zero=True, allow_none=True)
    text = " ".join(chunks)
    ids, offsets = tokenizer.ids_and_offsets(text)
    prefix, suffix = tokenizer.single_specials()
    # Chunk k starts at this character of the joined text; a token belongs to the chunk
    # that holds its last character (the joining space never starts a token of its own).
    starts, at = [], 0
    for chunk in chunks:
        starts.append(at)
        at += len(chunk) + 1
    owner = [bisect.bisect_right(starts, max(begin, end - 1)) - 1 for begin, end in offsets]
    missing = sorted(set(range(len(chunks))) - set(owner))
    if missing:
        index = missing[0]
        raise InputError(
            f"{name}[{index}] ({chunks[index][:40]!r}) has no token of its own: the "
            "tokenizer reads nothing there; drop it, or join it to its neighbour"
        )
    content = max_length - len(prefix) - len(suffix)  # tokens of text per window
    if len(ids) <= content:
        return _one_window(ids, owner, prefix, suffix, len(chunks))
    if not long_late_chunking:
        raise InputError(
            f"{'The chunks' if name == 'chunks' else 'The chunks of ' + name} join to "
            f"{len(ids) + len(prefix) + len(suffix)} tokens, "
            f"more than max_length={max_length}: pass long_late_chunking=True to read the "
            "document in overlapping windows, split it into several documents, or raise "
            "max_length."
        )
    if overlap is None:
        overlap = min(DEFAULT_OVERLAP, content // 4)
    if not 0 <= overlap < content:
        raise InputError(
            f"overlap={overlap!r} must be at least 0 and less than the {content} text tokens a "
            f"window of max_length={max_length} holds."
        )
    return _macro_windows(ids, owner, prefix, suffix, len(chunks), content, overlap)


def _runs(owner: Sequence[int], first_position: int) -> list[tuple[int, int, int]]:
    """``(first, end, chunk)`` runs of equal owners, positions counted from ``first_position``."""
    runs: list[tuple[int, int, int]] = []
    for offset, chunk in enumerate(owner):
        position = first_position + offset
        if runs and runs[-1][2] == chunk and runs[-1][1] == position:
            runs[-1] = (runs[-1][0], position + 1, chunk)
        else:
            runs.append((position, position + 1, chunk))
    return runs


def _one_window(
    ids: list[int], owner: list[int], prefix: list[int], suffix: list[int], chunks: int
) -> LateChunkPlan:
    window = [*prefix, *ids, *suffix]
    # [CLS] joins the first chunk, [SEP] the last.
    owners = [0] * len(prefix) + owner + [chunks - 1] * len(suffix)
    return LateChunkPlan([window], [_runs(owners, 0)], chunks)


def _macro_windows(
    ids: list[int],
    owner: list[int],
    prefix: list[int],
    suffix: list[int],
    chunks: int,
    content: int,
    overlap: int,
) -> LateChunkPlan:
    step = content - overlap
    windows, segments = [], []
    start = 0
    while True:
        end = min(start + content, len(ids))
        first = start + overlap if start > 0 else 0  # outputs taken from this window
        last = end == len(ids)
        windows.append([*prefix, *ids[start:end], *suffix])
        runs = _runs(owner[first:end], len(prefix) + first - start)
        if start == 0:
            runs = _runs([0] * len(prefix), 0) + runs
        if last:
            runs = runs + _runs([chunks - 1] * len(suffix), len(prefix) + end - start)
        segments.append(runs)
        if last:
            break
        start += step
    return LateChunkPlan(windows, segments, chunks)

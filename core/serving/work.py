"""A request's work before its model runs, shared by every route: its texts checked against
the limits and tokenised once (counting its tokens, refusing it early when over) into the
:class:`~jinarag.serving.batcher.Job` its model's batcher runs. Runs in the request's own
thread, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from types import SimpleNamespace

from jinarag.errors import Cancelled, InputError
from jinarag.inference.protocols import PairScorer, TokenEmbedder, require
from jinarag.models.tokenization import Encoded
from jinarag.serving.batcher import Job, JobKind
from jinarag.serving.limits import RequestTooLargeError, ServerLimits

__all__ = ["Work", "embedding_options", "late_job", "pairs_job", "texts_job"]

# Texts tokenised at a time while counting a request's tokens: one over the limit is refused
# after about max_request_tokens tokens of work, not after all of it.
COUNT_CHUNK = 64


@dataclass(frozen=True)
class Work:
    """What a request's thread needs: its model, the limits, and whether to stop."""

    model: TokenEmbedder | PairScorer
    limits: ServerLimits
    should_stop: Callable[[], bool]


def embedding_options(
    model: TokenEmbedder, name: str, task: str | None, dimensions: int | None
) -> tuple[str | None, int | None]:
    """The task and dimensions a request of ``model`` (served as ``name``) runs with: for a
    model with task adapters or Matryoshka dimensions (jina-embeddings-v3), the core's check
    (:func:`~jinarag.inference.matryoshka.task_options`; no task: the document side's);
    another model refuses a task, and dimensions other than its own, rather than answer with
    something else."""
    from jinarag.inference.matryoshka import task_options

    tasks = getattr(model, "tasks", ())
    allowed = getattr(model, "dimensions_allowed", ())
    if task is not None and not tasks:
        raise InputError(
            f"task={task!r:.60} is not supported: {name} has no task adapters (those are "
            "jina-embeddings-v3's); leave task out"
        )
    if dimensions is not None and not allowed and dimensions != model.dim:
        raise InputError(
            f"dimensions={dimensions!r} is not supported: {name} returns {model.dim} "
            "dimensions and cannot shorten them; leave dimensions out"
        )
    if not tasks and not allowed:
        return None, None
    # Checked under the name the request used: an answer never shows the server's paths.
    named = SimpleNamespace(name=name, tasks=tasks, dimensions_allowed=allowed, dim=model.dim)
    return task_options(named, task, dimensions if allowed else None)


def texts_job(
    work: Work, field: str, texts: list[str], *, truncate: bool, task: str | None = None
) -> Job:
    """The job embedding ``texts`` (document side; ``task``: a task adapter, its instruction
    prepended); its rows are unnormalised means."""
    model = require(work.model, TokenEmbedder, f"embedding {field}")
    cut = work.limits.cut(field, texts, model.max_length, truncate=truncate)
    tokenize = partial(model.tokenize, task=task) if task is not None else model.tokenize
    encoded = _tokenize(work, field, cut, model.max_length, truncate, tokenize)
    return Job(JobKind.EMBED, encoded, _tokens(encoded), task=task)


def pairs_job(work: Work, field: str, query: str, documents: list[str], *, truncate: bool) -> Job:
    """The job scoring (query, document) for each document; its rows are raw logits."""
    model = require(work.model, PairScorer, f"reranking {field}")
    longest = work.limits.max_chars(model.max_length)
    if len(query) > longest:
        raise InputError(
            f"query has {len(query)} characters, more than the {longest} this server "
            f"tokenises for max_length={model.max_length} tokens; a query is never cut, "
            "so shorten it"
        )
    cut = work.limits.cut(field, documents, model.max_length, truncate=truncate)

    def tokenize(chunk: list[str], truncate: bool) -> Encoded:
        return model.tokenize_pairs([(query, doc) for doc in chunk], truncate=truncate)

    encoded = _tokenize(work, field, cut, model.max_length, truncate, tokenize)
    return Job(JobKind.SCORE, encoded, _tokens(encoded))


def late_job(work: Work, chunks: list[str], *, truncate: bool, task: str | None = None) -> Job:
    """The job of late chunking one document (``truncate=True``: a document over max_length
    is read in overlapping windows); its rows are the chunks' unnormalised vectors."""
    model = require(work.model, TokenEmbedder, "late chunking input")
    tokens = _count_late_tokens(
        chunks, model, work.limits, truncate=truncate, should_stop=work.should_stop
    )
    return Job(JobKind.LATE, chunks, tokens, long=truncate, task=task)


def _tokens(encoded: Encoded) -> int:
    return sum(len(ids) for ids in encoded.input_ids)


def _tokenize(
    work: Work,
    field: str,
    texts: list[str],
    max_length: int,
    truncate: bool,
    tokenize: Callable[..., Encoded],
) -> Encoded:
    """``texts`` tokenised a chunk at a time, so that a request over the token limit is
    refused early; with ``truncate=False``, an InputError naming the first text over
    ``max_length``."""
    ids: list[list[int]] = []
    types: list[list[int]] = []
    total = 0
    for start in range(0, len(texts), COUNT_CHUNK):
        if work.should_stop():
            raise Cancelled(f"stopped while tokenising {field}")
        encoded = tokenize(texts[start : start + COUNT_CHUNK], truncate=True)
        if not truncate and encoded.truncated:
            raise InputError(
                f"{field}[{start + encoded.truncated[0]}] has more than max_length={max_length} "
                "tokens; with truncate=false it is refused: shorten or split it, or send "
                "truncate=true to have it cut"
            )
        ids += encoded.input_ids
        types += encoded.token_type_ids
        total += _tokens(encoded)
        if total > work.limits.max_request_tokens:
            complete = start + COUNT_CHUNK >= len(texts)
            raise work.limits.tokens_too_large(total, max_length, complete=complete)
    return Encoded(ids, types, truncated=[])


def _count_late_tokens(
    chunks: list[str],
    model: TokenEmbedder,
    limits: ServerLimits,
    *,
    truncate: bool,
    should_stop: Callable[[], bool],
) -> int:
    """The tokens of ``chunks`` joined and read as one input (special tokens once), the usage
    of a late chunking request. Counted a chunk group at a time first, so a request over the
    limit is refused early; with ``truncate=False``, an InputError when the joined input is
    over ``max_length`` (it would need several windows)."""
    max_length = model.max_length
    characters = sum(len(chunk) for chunk in chunks) + len(chunks) - 1
    if not truncate and characters > limits.max_chars(max_length):
        raise InputError(
            f"input joins to {characters} characters, more than the "
            f"{limits.max_chars(max_length)} this server tokenises for max_length={max_length} "
            "tokens; with truncate=false and late_chunking it is refused: send fewer or shorter "
            "chunks, or truncate=true to read the document in overlapping windows"
        )
    total = model.tokenizer.count_tokens("")
    for start in range(0, len(chunks), COUNT_CHUNK):
        if should_stop():
            raise Cancelled("stopped while counting the tokens of input")
        for index, chunk in enumerate(chunks[start : start + COUNT_CHUNK], start):
            own = len(model.tokenizer.token_offsets(chunk))
            if own == 0:
                raise InputError(
                    f"input[{index}] ({chunk[:40]!r}) has no token of its own: the tokenizer "
                    "reads nothing there; drop it, or join it to its neighbour"
                )
            total += own
        if total > limits.max_request_tokens:
            raise _late_too_large(total, limits, complete=start + COUNT_CHUNK >= len(chunks))
    # The chunks alone are counted above; the joined text, as the model reads it, decides.
    tokens = model.tokenizer.count_tokens(" ".join(chunks))
    if not truncate and tokens > max_length:
        raise InputError(
            f"input joins to {tokens} tokens, more than max_length={max_length}; with "
            "truncate=false and late_chunking it is refused: send fewer or shorter chunks, or "
            "truncate=true to read the document in overlapping windows (long late chunking)"
        )
    if tokens > limits.max_request_tokens:
        raise _late_too_large(tokens, limits, complete=True)
    return tokens


def _late_too_large(tokens: int, limits: ServerLimits, *, complete: bool) -> RequestTooLargeError:
    amount = f"{tokens} tokens" if complete else f"more than {tokens} tokens"
    return RequestTooLargeError(
        f"the request has {amount} (its chunks read as one input, late chunking), more than "
        f"this server's limit of {limits.max_request_tokens} per request; send a shorter "
        "document, or start the server with a larger --max-request-tokens"
    )

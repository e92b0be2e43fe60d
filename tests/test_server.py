"""The HTTP server speaks Jina's, OpenAI's and TEI's shapes and returns what the core computes;
requests for one model share its batches; limits, the API key, shutdown and metrics hold.

In-process app over httpx's ASGI transport; tests/test_server_hardening.py and
tests/test_server_clients.py run real servers.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest
from serving_helpers import assert_packed_signs, assert_sign_bits, sign_bits

from jinarag.serving.app import create_app

TEXTS = ["shock waves on a cone", "heat transfer in a slab"]
DOCUMENTS = ["heat conduction in slabs", "wing flutter at transonic speed", "cone drag"]


@pytest.fixture(scope="module")
def app(minilm_embedder, minilm_reranker):
    return create_app({"minilm": minilm_embedder}, {"minilm-reranker": minilm_reranker})


def call(app, method: str, path: str, payload=None, headers=None) -> httpx.Response:
    return asyncio.run(gather(app, [(method, path, payload)], headers))[0]


async def gather(app, requests, headers=None) -> list[httpx.Response]:
    """Send ``requests`` (method, path, JSON payload) to the in-process app concurrently."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://jinarag") as client:
        return await asyncio.gather(
            *(client.request(m, p, json=j, headers=headers) for m, p, j in requests)
        )


def vectors(response: httpx.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.array([item["embedding"] for item in response.json()["data"]], dtype=np.float32)


# --------------------------------------------------------------------------- Jina and OpenAI


def test_embeddings_match_the_embedder(app, minilm_embedder):
    response = call(app, "POST", "/v1/embeddings", {"model": "minilm", "input": TEXTS})
    body = response.json()
    assert [item["index"] for item in body["data"]] == [0, 1]
    np.testing.assert_allclose(vectors(response), minilm_embedder.embed(TEXTS), atol=1e-6)
    assert body["usage"]["total_tokens"] == sum(
        minilm_embedder.tokenizer.count_tokens(t) for t in TEXTS
    )
    assert body["model"] == "minilm"


def test_a_model_answers_to_each_of_its_names_and_only_those(app, minilm_embedder):
    folder = Path(minilm_embedder.name).name
    for name in ("minilm", folder, None):
        payload = {"input": "boundary layer"} | ({"model": name} if name else {})
        body = call(app, "POST", "/v1/embeddings", payload).json()
        assert body["model"] == (name or "minilm")
    unknown = call(app, "POST", "/v1/embeddings", {"input": "a", "model": "text-embedding-3"})
    assert unknown.status_code == 404
    assert "'minilm'" in unknown.json()["detail"]
    crossed = call(app, "POST", "/v1/embeddings", {"input": "a", "model": "minilm-reranker"})
    assert crossed.status_code == 404
    assert "is a reranker, not an embedder" in crossed.json()["detail"]
    for path in (minilm_embedder.name, str(minilm_embedder.source)):  # never a path
        assert call(app, "POST", "/v1/embeddings", {"input": "a", "model": path}).status_code == 404


def test_several_models_are_served_side_by_side(minilm_embedder, minilm_reranker):
    app = create_app({"first": minilm_embedder, "second": minilm_embedder}, None)
    ids = [m["id"] for m in call(app, "GET", "/v1/models").json()["data"]]
    assert ids == ["first", "second"]
    shared = Path(minilm_embedder.name).name  # both answer to their folder's name
    ambiguous = call(app, "POST", "/v1/embeddings", {"input": "a", "model": shared})
    assert ambiguous.status_code == 404
    assert "several loaded models ('first', 'second')" in ambiguous.json()["detail"]
    second = call(app, "POST", "/v1/embeddings", {"input": TEXTS, "model": "second"})
    assert second.json()["model"] == "second"
    np.testing.assert_allclose(vectors(second), minilm_embedder.embed(TEXTS), atol=1e-6)


def test_jina_text_objects_are_inputs_and_documents(app, minilm_embedder, minilm_reranker):
    objects = [{"text": text} for text in TEXTS]
    response = call(app, "POST", "/v1/embeddings", {"input": objects})
    np.testing.assert_allclose(vectors(response), minilm_embedder.embed(TEXTS), atol=1e-6)
    payload = {"query": "flutter", "documents": [{"text": d} for d in DOCUMENTS]}
    results = call(app, "POST", "/v1/rerank", payload).json()["results"]
    assert [r["index"] for r in results] == [
        r.index for r in minilm_reranker.rank("flutter", DOCUMENTS)
    ]


@pytest.mark.parametrize("field", ["embedding_type", "encoding_type"])
@pytest.mark.parametrize("precision", ["binary", "ubinary"])
def test_binary_embeddings_are_the_packed_sign_bits(app, minilm_embedder, field, precision):
    from sentence_transformers.util.quantization import quantize_embeddings

    response = call(app, "POST", "/v1/embeddings", {"input": TEXTS, field: precision})
    served = np.array([item["embedding"] for item in response.json()["data"]])
    floats = minilm_embedder.embed(TEXTS)
    assert served.shape == (2, minilm_embedder.dim // 8)
    assert_packed_signs(served, quantize_embeddings(floats, precision=precision), floats)
    offset = 128 if precision == "binary" else 0  # how LlamaIndex's JinaEmbedding unpacks them
    assert_sign_bits(sign_bits(served, offset), floats)


def test_base64_is_little_endian_float32_under_either_name(app, minilm_embedder):
    for field in ("embedding_type", "encoding_format"):
        item = call(app, "POST", "/v1/embeddings", {"input": ["a b"], field: "base64"}).json()
        vector = np.frombuffer(base64.b64decode(item["data"][0]["embedding"]), "<f4")
        np.testing.assert_allclose(vector, minilm_embedder.embed(["a b"])[0], atol=1e-6)


def test_unnormalized_embeddings_are_the_plain_means(app, minilm_embedder):
    response = call(app, "POST", "/v1/embeddings", {"input": TEXTS, "normalized": False})
    expected = minilm_embedder.embed(TEXTS, normalize=False)
    np.testing.assert_allclose(vectors(response), expected, atol=1e-5)


def test_rerank_matches_rank_with_usage_and_without_documents(app, minilm_reranker):
    payload = {"query": "flutter of wings", "documents": DOCUMENTS, "top_n": 2}
    body = call(app, "POST", "/v1/rerank", payload | {"return_documents": False}).json()
    expected = minilm_reranker.rank("flutter of wings", DOCUMENTS, top_n=2)
    assert [r["index"] for r in body["results"]] == [e.index for e in expected]
    scores = [r["relevance_score"] for r in body["results"]]
    assert scores == pytest.approx([e.score for e in expected], abs=1e-6)
    assert all("document" not in r for r in body["results"])
    pairs = minilm_reranker.tokenizer.encode_pairs("flutter of wings", DOCUMENTS, max_length=256)
    assert body["usage"]["total_tokens"] == sum(len(ids) for ids in pairs.input_ids)
    assert body["model"] == "minilm-reranker"


# --------------------------------------------------------------------------- TEI


def test_tei_embed_returns_bare_vectors(app, minilm_embedder):
    response = call(app, "POST", "/embed", {"inputs": TEXTS})
    assert response.status_code == 200
    np.testing.assert_allclose(np.array(response.json()), minilm_embedder.embed(TEXTS), atol=1e-6)
    single = call(app, "POST", "/embed", {"inputs": "a b", "normalize": False}).json()
    np.testing.assert_allclose(
        single[0], minilm_embedder.embed(["a b"], normalize=False)[0], atol=1e-5
    )


def test_tei_embed_refuses_an_overlong_input_by_default_like_tei(app):
    response = call(app, "POST", "/embed", {"inputs": ["word " * 400]})
    assert response.status_code == 400
    body = response.json()
    assert "max_length=256" in body["detail"] and body["error"] == body["detail"]
    assert body["error_type"] == "Validation"
    assert call(app, "POST", "/embed", {"inputs": ["word " * 400], "truncate": True}).is_success


def test_tei_rerank_scores_every_text_best_first(app, minilm_reranker):
    payload = {"query": "flutter", "texts": DOCUMENTS, "return_text": True}
    results = call(app, "POST", "/rerank", payload).json()
    expected = minilm_reranker.rank("flutter", DOCUMENTS)
    assert [r["index"] for r in results] == [e.index for e in expected]
    assert [r["score"] for r in results] == pytest.approx([e.score for e in expected], abs=1e-6)
    assert [r["text"] for r in results] == [e.text for e in expected]
    raw = call(app, "POST", "/rerank", payload | {"raw_scores": True}).json()
    logits = minilm_reranker.score("flutter", DOCUMENTS, activation=None)
    assert [r["score"] for r in raw] == pytest.approx(sorted(logits, reverse=True), abs=1e-5)


def test_tei_info_describes_the_embedder(app, minilm_embedder):
    info = call(app, "GET", "/info").json()
    assert info["model_id"] == "minilm"
    assert info["model_type"] == {"embedding": {"pooling": "mean"}}
    assert info["max_input_length"] == minilm_embedder.max_length


# --------------------------------------------------------------------------- batching


def test_concurrent_requests_share_engine_calls_and_get_their_own_rows(
    minilm_embedder, minilm_reranker
):
    app = create_app(minilm_embedder, minilm_reranker, max_wait_ms=300)
    texts = [[f"request {i} text {j} on shock waves" for j in range(i % 3 + 1)] for i in range(8)]
    requests = [("POST", "/v1/embeddings", {"input": t}) for t in texts]
    requests += [
        ("POST", "/v1/rerank", {"query": f"q{i}", "documents": DOCUMENTS}) for i in range(4)
    ]
    responses = asyncio.run(gather(app, requests))
    for response, sent in zip(responses[:8], texts, strict=True):
        np.testing.assert_allclose(vectors(response), minilm_embedder.embed(sent), atol=1e-5)
    for i, response in enumerate(responses[8:]):
        scores = {r["index"]: r["relevance_score"] for r in response.json()["results"]}
        expected = minilm_reranker.score(f"q{i}", DOCUMENTS)
        assert [scores[k] for k in range(3)] == pytest.approx(expected.tolist(), abs=1e-5)
    metrics = call(app, "GET", "/metrics").text
    label = f'model="{next(iter(app.state.batchers))}"'  # the embedder's
    calls = _sample(metrics, "jinarag_batch_requests_count", label)
    merged = _sample(metrics, "jinarag_batch_requests_sum", label)
    assert merged == 8 and calls < 8, (calls, merged)  # several requests per engine call


def _sample(metrics: str, name: str, model_part: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(name + "{") and model_part in line:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} for {model_part} not in /metrics:\n{metrics}")


class Blocked:
    """Holds a batcher's worker after its next engine call until released."""

    def __init__(self, batcher) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        observe = batcher.observe

        def hold(*args) -> None:
            observe(*args)
            self.entered.set()
            self.release.wait(30)

        batcher.observe = hold


def test_a_full_queue_is_a_503_with_retry_after(minilm_embedder):
    app = create_app({"minilm": minilm_embedder}, None, max_queue=1)
    blocked = Blocked(app.state.batchers["minilm"])

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://jinarag") as client:
            first = asyncio.create_task(client.post("/v1/embeddings", json={"input": "one"}))
            await asyncio.to_thread(blocked.entered.wait, 30)  # the worker holds after "one"
            queued = asyncio.create_task(client.post("/v1/embeddings", json={"input": "two"}))
            while app.state.batchers["minilm"].depth < 1:
                await asyncio.sleep(0.01)
            refused = await client.post("/v1/embeddings", json={"input": "three"})
            blocked.release.set()
            return [await first, await queued, refused]

    first, queued, refused = asyncio.run(go())
    assert first.status_code == queued.status_code == 200
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert "--max-queue" in refused.json()["detail"]


def test_a_request_past_the_timeout_is_a_504(minilm_embedder):
    app = create_app({"minilm": minilm_embedder}, None, request_timeout=0.5)
    blocked = Blocked(app.state.batchers["minilm"])

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://jinarag") as client:
            first = asyncio.create_task(client.post("/v1/embeddings", json={"input": "one"}))
            await asyncio.to_thread(blocked.entered.wait, 30)
            late = await client.post("/v1/embeddings", json={"input": "two"})
            blocked.release.set()
            await first
            return late

    late = asyncio.run(go())
    assert late.status_code == 504
    assert "--request-timeout" in late.json()["detail"]


# --------------------------------------------------------------------------- operations


def test_the_api_key_is_required_everywhere_but_the_probes(minilm_embedder):
    app = create_app({"minilm": minilm_embedder}, None, api_key="s3cret")
    payload = {"input": "a"}
    missing = call(app, "POST", "/v1/embeddings", payload)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in missing.json()["detail"]
    wrong = call(app, "POST", "/v1/embeddings", payload, {"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "wrong API key" in wrong.json()["detail"]
    right = call(app, "POST", "/v1/embeddings", payload, {"Authorization": "Bearer s3cret"})
    assert right.status_code == 200
    assert call(app, "GET", "/metrics").status_code == 401
    assert call(app, "GET", "/health").status_code == 200
    assert call(app, "GET", "/ready").status_code == 200


def test_while_shutting_down_new_requests_are_refused(minilm_embedder):
    app = create_app({"minilm": minilm_embedder}, None)
    app.state.shutting_down.set()
    refused = call(app, "POST", "/v1/embeddings", {"input": "a"})
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert "shutting down" in refused.json()["detail"]
    assert call(app, "GET", "/ready").status_code == 503
    assert call(app, "GET", "/health").status_code == 200


def test_metrics_count_requests_latency_tokens_and_queue(minilm_embedder):
    app = create_app({"minilm": minilm_embedder}, None)
    call(app, "POST", "/v1/embeddings", {"input": TEXTS})
    call(app, "POST", "/v1/embeddings", {"input": 5})
    call(app, "GET", "/no/such/path")
    text = call(app, "GET", "/metrics").text
    assert 'jinarag_requests_total{route="/v1/embeddings",status="200"} 1.0' in text
    assert 'jinarag_requests_total{route="/v1/embeddings",status="400"} 1.0' in text
    assert 'jinarag_requests_total{route="other",status="404"} 1.0' in text
    assert 'jinarag_request_duration_seconds_count{route="/v1/embeddings"} 2.0' in text
    tokens = sum(minilm_embedder.tokenizer.count_tokens(t) for t in TEXTS)
    assert f'jinarag_tokens_total{{model="minilm"}} {float(tokens)}' in text
    assert 'jinarag_queue_depth{model="minilm"} 0.0' in text


def test_cors_only_when_asked(minilm_embedder):
    origin = {"Origin": "http://app.example"}
    plain = call(create_app(minilm_embedder, None), "GET", "/v1/models", None, origin)
    assert "access-control-allow-origin" not in plain.headers
    allowed = create_app(minilm_embedder, None, cors_origins=["http://app.example"])
    answer = call(allowed, "GET", "/v1/models", None, origin)
    assert answer.headers["access-control-allow-origin"] == "http://app.example"


def test_a_route_without_its_model_is_a_404_that_says_how_to_load_it(minilm_embedder):
    app = create_app(minilm_embedder, None)
    for path, payload in (
        ("/v1/rerank", {"query": "q", "documents": ["d"]}),
        ("/rerank", {"query": "q", "texts": ["d"]}),
    ):
        response = call(app, "POST", path, payload)
        assert response.status_code == 404
        assert "--reranker" in response.json()["detail"]


def test_the_openai_client_shows_the_reason_of_a_refusal(app):
    import openai

    async def go() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://jinarag") as http:
            client = openai.AsyncOpenAI(
                api_key="unused", base_url="http://jinarag/v1", http_client=http, max_retries=0
            )
            await client.embeddings.create(model="text-embedding-3-small", input=["a"])

    with pytest.raises(openai.NotFoundError, match="is not loaded; this server's embedders"):
        asyncio.run(go())


def test_every_answer_is_json_with_a_detail(app):
    for path, payload in (("/v1/embeddings", {"input": "a", "bogus": 1}), ("/embed", {})):
        response = call(app, "POST", path, payload)
        assert response.status_code == 422
        assert isinstance(json.loads(response.text)["detail"], str)


def test_a_large_request_runs_in_slices_and_lets_small_ones_through(minilm_embedder):
    from jinarag.serving.batcher import Batcher, Job

    finished: list[str] = []
    batcher = Batcher(minilm_embedder, max_wait_ms=0, max_queue=8, budget=64)
    large = [f"text number {i} about shock waves" for i in range(40)]  # about 400 tokens
    jobs = {}
    for name, texts in (("large", large), ("small", ["one small text"])):
        encoded = minilm_embedder.tokenize(texts)
        job = Job("embed", encoded, tokens=sum(len(ids) for ids in encoded.input_ids))
        job.future.add_done_callback(lambda _, name=name: finished.append(name))
        jobs[name] = batcher.submit(job)
    rows = {name: job.future.result(timeout=60) for name, job in jobs.items()}
    assert finished == ["small", "large"]
    np.testing.assert_allclose(
        rows["large"], minilm_embedder.embed(large, normalize=False), atol=1e-5
    )
    batcher.close()
    batcher.join(5)

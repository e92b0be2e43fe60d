"""A user's first minutes with `jinarag serve`: the hosted-API clients on their default model
names, TEI's root route, the remote models riding out a busy or draining server, and a missing
`server` extra, each against a real server or a real `jinarag` process.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pytest
from serving_helpers import Server, free_port

from jinarag.serving.app import create_app

TEXTS = ["shock waves on a cone", "heat transfer in a slab", "flutter of a swept wing"]
QUERY = "wing flutter at transonic speed"
ATOL = 1e-5


def assert_close(got, expected) -> None:
    np.testing.assert_allclose(np.asarray(got, dtype=np.float32), expected, rtol=0, atol=ATOL)


def call(app, path: str, payload: dict) -> httpx.Response:
    """One POST to the in-process app."""

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://jinarag") as client:
            return await client.post(path, json=payload)

    return asyncio.run(go())


# ---------------------------------------------------------------------------------------------
# Model names: the clients' defaults


def test_a_hub_id_given_as_name_answers_with_its_last_part_too(minilm_embedder, minilm_reranker):
    app = create_app(
        {"jinaai/jina-embeddings-v3": minilm_embedder},
        {"jina-reranker-v1-base-en": minilm_reranker},
    )
    for name in ("jinaai/jina-embeddings-v3", "jina-embeddings-v3"):
        answer = call(app, "/v1/embeddings", {"model": name, "input": TEXTS})
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"] == name
    answer = call(
        app, "/v1/rerank", {"model": "jina-reranker-v1-base-en", "query": QUERY, "documents": TEXTS}
    )
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    ("path", "model", "line"),
    [
        ("/v1/embeddings", "jina-embeddings-v3", "jinarag serve --model v3"),
        ("/v1/embeddings", "jinaai/jina-embeddings-v2-base-en", "jinarag serve --model base"),
        ("/v1/embeddings", "jina-embeddings-v2-base-code", "jinarag serve --model base-code"),
        ("/v1/rerank", "jina-reranker-v1-base-en", "jinarag serve --reranker base"),
        (
            "/v1/rerank",
            "jina-reranker-v2-base-multilingual",
            "jinarag serve --reranker reranker-v2",
        ),
    ],
)
def test_a_jina_model_not_loaded_is_a_404_giving_the_serve_line(
    minilm_embedder, minilm_reranker, path, model, line
):
    app = create_app({"minilm": minilm_embedder}, {"minilm-reranker": minilm_reranker})
    payload = (
        {"model": model, "input": TEXTS}
        if path == "/v1/embeddings"
        else {"model": model, "query": QUERY, "documents": TEXTS}
    )
    answer = call(app, path, payload)
    assert answer.status_code == 404, answer.text
    detail = answer.json()["detail"]
    assert f"model {model!r} is not loaded" in detail
    assert "'minilm" in detail  # the served ones
    assert f"`{line}`" in detail


def test_any_other_unknown_model_is_a_404_naming_the_option(minilm_embedder):
    app = create_app({"minilm": minilm_embedder}, None)
    detail = call(app, "/v1/embeddings", {"model": "jina-clip-v2", "input": TEXTS}).json()
    assert "'minilm'" in detail["detail"] and "--model NAME" in detail["detail"]
    assert "jinarag serve" not in detail["detail"]


@pytest.fixture(scope="module")
def defaults_server(minilm_dir, minilm_reranker_dir, tmp_path_factory):
    """`jinarag serve` answering the hosted-API clients' default names: MiniLM under
    jina-embeddings-v3's Hub id, the MiniLM cross-encoder as jina-reranker-v1-base-en."""
    server = Server(
        [
            "--model",
            f"jinaai/jina-embeddings-v3={minilm_dir}",
            "--reranker",
            f"jina-reranker-v1-base-en={minilm_reranker_dir}",
        ],
        tmp_path_factory.mktemp("serve-defaults") / "log",
    )
    yield server
    server.stop()


@pytest.mark.slow
def test_haystack_jina_components_on_their_default_models(
    defaults_server, minilm_embedder, minilm_reranker
):
    from haystack import Document
    from haystack.utils import Secret
    from haystack_integrations.components.embedders.jina import (
        JinaDocumentEmbedder,
        JinaTextEmbedder,
    )
    from haystack_integrations.components.rankers.jina import JinaRanker

    key = Secret.from_token("unused")
    embeddings_url = f"{defaults_server.url}/v1/embeddings"
    text = JinaTextEmbedder(api_key=key, base_url=embeddings_url).run(QUERY)
    assert text["meta"]["model"] == "jina-embeddings-v3"
    assert_close([text["embedding"]], minilm_embedder.embed([QUERY]))
    documents = JinaDocumentEmbedder(api_key=key, base_url=embeddings_url, progress_bar=False)
    embedded = documents.run([Document(content=t) for t in TEXTS])["documents"]
    assert_close([doc.embedding for doc in embedded], minilm_embedder.embed(TEXTS))

    ranker = JinaRanker(api_key=key, base_url=f"{defaults_server.url}/v1/rerank")
    ranked = ranker.run(query=QUERY, documents=[Document(content=t) for t in TEXTS])
    assert ranked["meta"]["model"] == "jina-reranker-v1-base-en"
    expected = minilm_reranker.rank(QUERY, TEXTS)
    assert [doc.content for doc in ranked["documents"]] == [TEXTS[e.index] for e in expected]
    assert [doc.score for doc in ranked["documents"]] == pytest.approx(
        [e.score for e in expected], abs=ATOL
    )


@pytest.mark.slow
def test_llama_index_jina_clients_on_their_default_models(
    defaults_server, minilm_embedder, minilm_reranker
):
    from llama_index.core.schema import NodeWithScore, TextNode
    from llama_index.embeddings.jinaai import JinaEmbedding
    from llama_index.postprocessor.jinaai_rerank import JinaRerank

    rerank = JinaRerank(base_url=f"{defaults_server.url}/v1", api_key="unused", top_n=3)
    assert rerank.model == "jina-reranker-v1-base-en"
    nodes = [NodeWithScore(node=TextNode(text=t)) for t in TEXTS]
    ranked = rerank.postprocess_nodes(nodes, query_str=QUERY)
    expected = minilm_reranker.rank(QUERY, TEXTS)
    assert [n.node.get_content() for n in ranked] == [TEXTS[e.index] for e in expected]

    # JinaEmbedding's constructor takes no URL: its request helper is pointed at the server,
    # its default model name left as it is.
    embedding = JinaEmbedding(api_key="unused")
    assert embedding.model == "jina-embeddings-v3"
    embedding._api.api_url = f"{defaults_server.url}/v1/embeddings"
    assert_close(embedding.get_text_embedding_batch(TEXTS), minilm_embedder.embed(TEXTS))

    # langchain-community JinaEmbeddings' default is not served here: the client shows the line
    # that would serve it.
    embedding = JinaEmbedding(api_key="unused", model="jina-embeddings-v2-base-en")
    embedding._api.api_url = f"{defaults_server.url}/v1/embeddings"
    with pytest.raises(RuntimeError, match="`jinarag serve --model base`"):
        embedding.get_text_embedding(QUERY)


@pytest.mark.slow
def test_the_remote_models_find_a_model_by_any_of_its_names(defaults_server, minilm_embedder):
    from jinarag.inference.remote import RemoteEmbedder

    for name in ("jina-embeddings-v3", "jinaai/jina-embeddings-v3"):
        remote = RemoteEmbedder(defaults_server.url, model=name)
        assert remote.dim == 384
        assert_close(remote.embed(TEXTS), minilm_embedder.embed(TEXTS))


# ---------------------------------------------------------------------------------------------
# TEI's root route


@pytest.mark.slow
def test_huggingface_inference_client_embeds_at_the_root(
    minilm_server, minilm_embedder, monkeypatch
):
    """`InferenceClient(base_url).feature_extraction` posts to the root, as TEI answers it."""
    from huggingface_hub import InferenceClient, constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # the tests' setting; a local URL
    client = InferenceClient(base_url=minilm_server.url)
    assert_close(client.feature_extraction(QUERY), minilm_embedder.embed([QUERY]))
    raw = client.feature_extraction(TEXTS[0], normalize=False, truncate=True)
    assert_close(raw, minilm_embedder.embed(TEXTS[:1], normalize=False))


# ---------------------------------------------------------------------------------------------
# Without the server extra


@pytest.mark.slow
@pytest.mark.parametrize("module", ["fastapi", "uvicorn", "prometheus_client"])
def test_serve_without_the_server_extra_is_one_line_naming_it(module):
    # A fresh interpreter where the import fails as it does when the package is not installed.
    probe = (
        f"import sys; sys.modules[{module!r}] = None\n"
        "from jinarag.cli import main\n"
        "sys.exit(main(['serve', '--no-reranker']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("jinarag: error: jinarag serve needs the server extra")
    assert f"{module} is not installed" in lines[0]
    assert "pip install 'jinarag[server]'" in lines[0]


# ---------------------------------------------------------------------------------------------
# The remote models and a busy or draining server


@pytest.fixture
def live(minilm_embedder):
    """The app of `jinarag serve` under uvicorn on a free port of 127.0.0.1, in a thread, so a
    test can put it in the state it answers 503 and Retry-After in (shutting down) and out."""
    import uvicorn

    app = create_app({"minilm": minilm_embedder}, None)
    config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{config.port}"
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start in 60 s"
        time.sleep(0.05)
    yield app, url
    server.should_exit = True
    thread.join(timeout=30)


def requests_to(url: str, route: str) -> dict[str, float]:
    """The server's count of answers on ``route``, by status."""
    from prometheus_client.parser import text_string_to_metric_families

    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=10).text):
        for sample in family.samples:
            if sample.name == "jinarag_requests_total" and sample.labels["route"] == route:
                counts[sample.labels["status"]] = sample.value
    return counts


@pytest.mark.slow
def test_a_remote_model_waits_out_a_draining_server(live, minilm_embedder):
    from jinarag.inference.remote import RemoteEmbedder

    app, url = live
    app.state.shutting_down.set()  # every request: 503 with Retry-After: 1
    timer = threading.Timer(1.5, app.state.shutting_down.clear)
    timer.start()
    started = time.monotonic()
    try:
        vectors = RemoteEmbedder(url, model="minilm", timeout=30).embed(TEXTS)
    finally:
        timer.cancel()
    assert time.monotonic() - started >= 1.5  # the Retry-After waits were kept
    assert_close(vectors, minilm_embedder.embed(TEXTS))
    counts = requests_to(url, "/v1/embeddings")
    assert counts["503"] == 2 and counts["200"] == 1, counts  # tried at 0 s, 1 s and 2 s


@pytest.mark.slow
def test_a_remote_model_gives_up_after_its_retries_or_its_timeout(live):
    from jinarag.errors import RemoteError
    from jinarag.inference.remote import RemoteEmbedder

    app, url = live
    app.state.shutting_down.set()
    started = time.monotonic()
    with pytest.raises(RemoteError) as info:
        RemoteEmbedder(url, model="minilm", retries=2, timeout=30).embed(TEXTS)
    assert time.monotonic() - started >= 2  # Retry-After: 1, twice
    assert "answered HTTP 503" in str(info.value) and "after 3 tries" in str(info.value)
    assert "shutting down" in str(info.value) and "retries=" in str(info.value)

    # It did not wait past its timeout: the message says it gave up after the first try.
    with pytest.raises(RemoteError, match=r"after 1 try \(waiting 1 s more would pass timeout"):
        RemoteEmbedder(url, model="minilm", timeout=0.5).embed(TEXTS)
    app.state.shutting_down.clear()
    assert requests_to(url, "/v1/embeddings") == {"503": 4}


@pytest.mark.slow
def test_a_refusal_is_never_tried_again(live):
    from jinarag.errors import InputError
    from jinarag.inference.remote import RemoteEmbedder, RemoteReranker

    _, url = live
    with pytest.raises(InputError, match="answered HTTP 400"):
        RemoteEmbedder(url, model="minilm").embed(["x" * 5000], truncate=False)
    with pytest.raises(InputError, match="answered HTTP 404"):
        RemoteReranker(url)._relevance(QUERY, TEXTS, True)  # no reranker is loaded
    assert requests_to(url, "/v1/embeddings") == {"400": 1}
    assert requests_to(url, "/v1/rerank") == {"404": 1}


@pytest.mark.slow
def test_a_dropped_connection_is_tried_again_then_named(monkeypatch):
    """A listener that closes every connection without answering: as many tries as allowed,
    then a RemoteError saying so."""
    import socket

    from jinarag.errors import RemoteError
    from jinarag.inference import remote_wire
    from jinarag.inference.remote import RemoteEmbedder

    monkeypatch.setattr(remote_wire, "FIRST_BACKOFF", 0.05)
    accepted = []
    listener = socket.create_server(("127.0.0.1", 0))

    def drop() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            accepted.append(connection.recv(65536))
            connection.close()

    threading.Thread(target=drop, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        with pytest.raises(RemoteError, match="dropped the connection before answering, after 3"):
            RemoteEmbedder(url, model="m", retries=2, timeout=10).embed(TEXTS)
    finally:
        listener.close()
    assert len(accepted) == 3 and all(b"POST /v1/embeddings" in r for r in accepted)


def test_retry_after_reads_seconds_and_http_dates():
    from email.utils import formatdate

    from jinarag.inference.remote_wire import retry_after

    now = 1_700_000_000.0
    assert retry_after("1") == 1.0
    assert retry_after(" 120 ") == 120.0
    assert retry_after(formatdate(now + 30, usegmt=True), now=now) == 30.0
    assert retry_after(formatdate(now - 30, usegmt=True), now=now) == 0.0  # already past
    assert retry_after(None) is None
    assert retry_after("soon") is None
    assert retry_after("-1") is None

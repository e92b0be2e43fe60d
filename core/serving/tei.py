"""text-embeddings-inference's routes, so the clients written for TEI work unchanged:
``POST /embed`` and TEI's root ``POST /`` (``{"inputs", "normalize", "truncate"}`` → a list of
vectors), ``POST /rerank`` (``{"query", "texts", "raw_scores", "return_text", "truncate"}`` →
``[{"index", "score"}]`` best first) and ``GET /info``. TEI serves one model; these routes use
the first embedder and the first reranker. Errors carry TEI's ``error`` and ``error_type``
besides ``detail``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
from fastapi import Request

import jinarag
from jinarag.inference.api import best_first, sigmoid
from jinarag.inference.heads import l2_normalize
from jinarag.inference.matryoshka import matryoshka
from jinarag.inference.protocols import TokenEmbedder, require
from jinarag.serving.batcher import Job
from jinarag.serving.limits import ServerLimits
from jinarag.serving.registry import Registry
from jinarag.serving.requests import (
    TeiEmbedRequest,
    TeiRerankRequest,
    openapi_body,
    read_body,
    texts_of,
)
from jinarag.serving.vectors import dumps
from jinarag.serving.work import Work, embedding_options, pairs_job, texts_job
from jinarag.validation import check_text

__all__ = ["add_tei_routes"]


def add_tei_routes(app: Any, registry: Registry, limits: ServerLimits, respond: Callable) -> None:
    """Add ``/embed`` (also at ``/``), ``/rerank`` and ``/info`` to ``app`` (``respond`` is
    create_app's)."""

    # TEI answers POST / as /embed when it serves an embedding model (huggingface_hub's
    # InferenceClient(base_url).feature_extraction posts there).
    @app.post("/", openapi_extra=openapi_body(TeiEmbedRequest))
    @app.post("/embed", openapi_extra=openapi_body(TeiEmbedRequest))
    async def embed(request: Request) -> Any:
        body = await read_body(request, TeiEmbedRequest)
        entry, name = registry.find("embedder", None)
        model = require(entry.model, TokenEmbedder, "POST /embed")
        task, dimensions = embedding_options(model, name, None, body.dimensions)
        texts = texts_of("inputs", body.inputs, limits, single=True)

        def prepare(work: Work) -> Job:
            return texts_job(work, "inputs", texts, truncate=body.truncate, task=task)

        def finish(rows: np.ndarray, _tokens: int) -> bytes:
            rows = matryoshka(rows, dimensions, normalize=False)
            return dumps(l2_normalize(rows) if body.normalize else rows)

        return await respond(request, entry, prepare, finish)

    @app.post("/rerank", openapi_extra=openapi_body(TeiRerankRequest))
    async def rerank(request: Request) -> Any:
        body = await read_body(request, TeiRerankRequest)
        entry, _ = registry.find("reranker", None)
        query = check_text(body.query, "query")
        texts = texts_of("texts", body.texts, limits, single=False)

        def prepare(work: Work) -> Job:
            return pairs_job(work, "texts", query, texts, truncate=body.truncate)

        def finish(logits: np.ndarray, _tokens: int) -> bytes:
            scores = logits if body.raw_scores else sigmoid(logits)
            results = []
            for index in best_first(scores, None):
                result: dict[str, Any] = {"index": index, "score": float(scores[index])}
                if body.return_text:
                    result["text"] = texts[index]
                results.append(result)
            return json.dumps(results, ensure_ascii=False).encode("utf-8")

        return await respond(request, entry, prepare, finish)

    @app.get("/info")
    def info() -> dict[str, Any]:
        embedders = registry.of_kind("embedder")
        entry = (embedders or registry.of_kind("reranker") or [None])[0]
        if entry is None:
            return {"model_id": None, "version": jinarag.__version__}
        model = entry.model
        if entry.kind == "embedder":
            model_type: dict[str, Any] = {"embedding": {"pooling": "mean"}}
        else:
            model_type = {"reranker": {"id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0}}}
        return {
            "model_id": entry.names[0],
            "model_sha": None,
            "model_dtype": str(model.dtype).removeprefix("torch."),
            "model_type": model_type,
            "max_input_length": model.max_length,
            "max_batch_tokens": model.max_batch_tokens,
            "max_client_batch_size": limits.max_inputs,
            "max_concurrent_requests": None,
            "tokenization_workers": None,
            "version": jinarag.__version__,
            "sha": None,
            "docker_label": None,
        }

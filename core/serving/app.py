"""The HTTP app behind `jinarag serve`: the request and response shapes of Jina's API.

``POST /v1/embeddings`` and ``POST /v1/rerank`` accept the bodies Jina's hosted API accepts,
so a client written for the API can point at ``http://127.0.0.1:8080`` instead. Needs the
``server`` extra (FastAPI and uvicorn). The command's options live in :mod:`jinarag.cli.serve`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from jinarag.errors import JinaragError
from jinarag.inference.embedder import Embedder
from jinarag.inference.reranker import Reranker

__all__ = ["EmbeddingsRequest", "RerankRequest", "create_app", "require_fastapi"]


class EmbeddingsRequest(BaseModel):
    """The body of Jina's ``/v1/embeddings``."""

    input: str | list[str]
    model: str | None = None
    normalized: bool = True
    embedding_type: str = "float"


class RerankRequest(BaseModel):
    """The body of Jina's ``/v1/rerank``."""

    query: str
    documents: list[str]
    model: str | None = None
    top_n: int | None = Field(default=None, ge=0)
    return_documents: bool = True


def require_fastapi() -> Any:
    """The fastapi module, or ImportError naming the extra to install."""
    try:
        import fastapi
    except ImportError as exc:
        raise ImportError(
            "jinarag serve needs FastAPI and uvicorn: pip install 'jinarag[server]'"
        ) from exc
    return fastapi


def create_app(embedder: Embedder | None, reranker: Reranker | None) -> Any:
    """A FastAPI app serving the given models (either may be None: its route then answers 404)."""
    fastapi = require_fastapi()
    app = fastapi.FastAPI(title="jinarag", description="Jina embeddings and reranking, local.")

    def unavailable(what: str) -> Any:
        return fastapi.HTTPException(
            status_code=404, detail=f"no {what} is loaded; start the server with --{what} NAME"
        )

    @app.exception_handler(JinaragError)
    async def jinarag_error(_request: Any, exc: JinaragError) -> Any:
        from fastapi.responses import JSONResponse

        return JSONResponse(status_code=400, content={"detail": str(exc)})

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        loaded = [m for m in (embedder, reranker) if m is not None]
        return {"object": "list", "data": [{"id": m.name, "object": "model"} for m in loaded]}

    @app.post("/v1/embeddings")
    def embeddings(request: EmbeddingsRequest) -> dict[str, Any]:
        if embedder is None:
            raise unavailable("embedder")
        if request.embedding_type != "float":
            raise fastapi.HTTPException(
                status_code=400,
                detail=f"embedding_type={request.embedding_type!r} is not supported; use 'float'",
            )
        texts = [request.input] if isinstance(request.input, str) else request.input
        vectors = embedder.embed(texts, normalize=request.normalized)
        tokens = sum(embedder.tokenizer.count_tokens(text) for text in texts)
        return {
            "model": embedder.name,
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": vector.tolist()}
                for i, vector in enumerate(vectors)
            ],
            "usage": {"total_tokens": tokens, "prompt_tokens": tokens},
        }

    @app.post("/v1/rerank")
    def rerank(request: RerankRequest) -> dict[str, Any]:
        if reranker is None:
            raise unavailable("reranker")
        ranked = reranker.rank(request.query, request.documents, top_n=request.top_n)
        tokens = sum(reranker.tokenizer.count_tokens(doc) for doc in request.documents) + len(
            request.documents
        ) * reranker.tokenizer.count_tokens(request.query)
        results = []
        for item in ranked:
            result: dict[str, Any] = {"index": item.index, "relevance_score": item.score}
            if request.return_documents:
                result["document"] = {"text": item.text}
            results.append(result)
        return {
            "model": reranker.name,
            "results": results,
            "usage": {"total_tokens": tokens, "prompt_tokens": tokens},
        }

    return app

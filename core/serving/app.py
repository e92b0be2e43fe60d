"""`jinarag serve`: a local HTTP server with the request and response shapes of Jina's API.

``POST /v1/embeddings`` and ``POST /v1/rerank`` accept the bodies Jina's hosted API accepts,
so a client written for the API can point at ``http://127.0.0.1:8080`` instead. Needs the
``server`` extra (FastAPI and uvicorn).
"""

from __future__ import annotations

import argparse
from typing import Any

from jinarag.errors import JinaragError
from jinarag.inference.embedder import Embedder
from jinarag.inference.reranker import Reranker

__all__ = ["add_parser", "create_app"]

from pydantic import BaseModel, Field


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


def _require_fastapi() -> Any:
    try:
        import fastapi
    except ImportError as exc:
        raise ImportError(
            "jinarag serve needs FastAPI and uvicorn: pip install 'jinarag[server]'"
        ) from exc
    return fastapi


def create_app(embedder: Embedder | None, reranker: Reranker | None) -> Any:
    """A FastAPI app serving the given models (either may be None: its route then answers 404)."""
    fastapi = _require_fastapi()
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


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve", help="serve /v1/embeddings and /v1/rerank (Jina API shapes) over HTTP"
    )
    parser.add_argument("--model", help="embedder name, alias or path (default: Jina small)")
    parser.add_argument("--reranker", help="reranker name, alias or path (default: Jina turbo)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from jinarag.inference.defaults import load_embedder, load_reranker

    _require_fastapi()
    import uvicorn

    embedder, embedder_note = load_embedder(args.model)
    reranker, reranker_note = load_reranker(args.reranker)
    for note in (embedder_note, reranker_note):
        if note:
            print(f"note: {note}")
    uvicorn.run(create_app(embedder, reranker), host=args.host, port=args.port)
    return 0

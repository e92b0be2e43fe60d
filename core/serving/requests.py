"""The request bodies of ``/v1/embeddings`` and ``/v1/rerank``, and how a body is read.

A body is parsed here rather than by FastAPI so every mistake gets one plain sentence naming
the field and the value (FastAPI's list of pydantic errors would echo the whole input back,
and a lone surrogate in it cannot even be written as UTF-8). Unknown fields are refused with
422, naming the field and the accepted ones: a misspelt ``top_n`` should not be ignored
silently. The fields that the Jina and OpenAI clients send are all accepted.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jinarag.errors import InputError

__all__ = ["BodyError", "EmbeddingsRequest", "RerankRequest", "parse_body"]

Body = TypeVar("Body", bound=BaseModel)


class BodyError(InputError):
    """A body that is not JSON (HTTP 400) or not the shape the route takes (HTTP 422)."""

    def __init__(self, message: str, *, status_code: int = 422) -> None:
        super().__init__(message)
        self.status_code = status_code


class _Strict(BaseModel):
    # strict: JSON `true` is not a count, `"yes"` is not a bool, `1.0` is not top_n.
    model_config = ConfigDict(extra="forbid", strict=True)


class EmbeddingsRequest(_Strict):
    """The body of Jina's ``/v1/embeddings`` (OpenAI's ``encoding_format``, ``dimensions`` and
    ``user`` are accepted too, so the ``openai`` client works unchanged).

    ``late_chunking``: the ``input`` list is the consecutive chunks of one document; they are
    joined with a space and read as one input, and each chunk's embedding is the mean of its
    own tokens' states (one embedding per input item, in order)."""

    # Any: a string or a list of strings, checked by jinarag.validation for one wording.
    input: Any
    model: str | None = None
    normalized: bool = True
    embedding_type: str | None = None  # Jina's name: "float" or "base64"
    encoding_format: str | None = None  # OpenAI's name for the same choice
    truncate: bool = True
    late_chunking: bool = False
    dimensions: int | None = None
    user: str | None = None


class RerankRequest(_Strict):
    """The body of Jina's ``/v1/rerank``."""

    query: Any
    documents: Any
    model: str | None = None
    top_n: int | None = Field(default=None, ge=0)
    return_documents: bool = True
    truncate: bool = True


def parse_body(raw: bytes, shape: type[Body]) -> Body:
    """``raw`` parsed as JSON and checked against ``shape``; BodyError naming what is wrong."""
    try:
        data = json.loads(raw)  # the stdlib keeps a lone surrogate for check_texts to name
    except UnicodeDecodeError as exc:
        raise BodyError(
            f"the body is not UTF-8: byte {raw[exc.start : exc.start + 1]!r} at position "
            f"{exc.start} ({exc.reason}); send JSON encoded as UTF-8",
            status_code=400,
        ) from exc
    except json.JSONDecodeError as exc:
        near = exc.doc[max(exc.pos - 20, 0) : exc.pos + 20]
        raise BodyError(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno} "
            f"(near {near!r}); send one JSON object, e.g. {_example(shape)}",
            status_code=400,
        ) from exc
    except (ValueError, RecursionError) as exc:  # an integer of over 4300 digits; deep nesting
        raise BodyError(
            f"the body cannot be read as JSON ({str(exc)[:100]}); send one JSON object, e.g. "
            f"{_example(shape)}",
            status_code=400,
        ) from exc
    if not isinstance(data, dict):
        raise BodyError(
            f"the body must be a JSON object, got {type(data).__name__} {data!r:.60}; "
            f"send e.g. {_example(shape)}"
        )
    try:
        return shape.model_validate(data)
    except ValidationError as exc:
        raise BodyError(_describe(exc, shape)) from exc


def _example(shape: type[BaseModel]) -> str:
    if shape is RerankRequest:
        return '{"query": "a question", "documents": ["a text", "another"]}'
    return '{"input": ["a text", "another"]}'


def _describe(exc: ValidationError, shape: type[BaseModel]) -> str:
    """Pydantic's errors as one sentence each: the field, the value (repr, cut short, so a lone
    surrogate is shown escaped) and what is expected."""
    fields = ", ".join(shape.model_fields)
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "the body"
        if error["type"] == "extra_forbidden":
            parts.append(f"unknown field {where!r}; the accepted fields are: {fields}")
        elif error["type"] == "missing":
            parts.append(f"field {where!r} is required; send e.g. {_example(shape)}")
        else:
            value = error.get("input")
            parts.append(f"{where}={value!r:.60}: {error['msg']}")
    return "; ".join(parts)

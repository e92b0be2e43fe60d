"""The request bodies the server takes (Jina's and OpenAI's, TEI's), and how one is read.

A body is parsed here rather than by FastAPI so every mistake gets one plain sentence naming
the field and the value (FastAPI's list of pydantic errors would echo the whole input back,
and a lone surrogate in it cannot even be written as UTF-8). Unknown fields are refused with
422, naming the field and the accepted ones: a misspelt ``top_n`` should not be ignored
silently. The fields that the Jina and OpenAI clients send are all accepted.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jinarag.errors import InputError
from jinarag.serving.limits import ServerLimits
from jinarag.validation import check_text, check_texts

__all__ = [
    "BodyError",
    "EmbeddingsRequest",
    "RerankRequest",
    "TeiEmbedRequest",
    "TeiRerankRequest",
    "openapi_body",
    "parse_body",
    "read_body",
    "text_of",
    "texts_of",
]

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
    """The body of ``/v1/embeddings``: Jina's fields, and OpenAI's (``encoding_format``,
    ``dimensions``, ``user``), so the ``jina`` and ``openai`` clients work unchanged.

    ``input``: a string, a list of strings, or a list of ``{"text": ...}`` objects.
    ``embedding_type`` (Jina), ``encoding_type`` (its older name, which LlamaIndex sends) and
    ``encoding_format`` (OpenAI) choose how vectors are written: see
    :mod:`jinarag.serving.vectors`. ``late_chunking``: the ``input`` list is the consecutive
    chunks of one document, read as one input, one embedding per chunk. ``task`` (a task
    adapter; default ``retrieval.passage``) and ``dimensions`` (Matryoshka: the first that
    many, renormalised) are jina-embeddings-v3's; a model without them refuses a task, and
    dimensions other than its own (jina-embeddings-v2 has neither)."""

    example: ClassVar[str] = '{"input": ["a text", "another"]}'

    # Any: checked by the route, which names the item that is wrong.
    input: Any
    model: str | None = None
    normalized: bool = True
    embedding_type: str | None = None
    encoding_type: str | None = None
    encoding_format: str | None = None
    truncate: bool = True
    late_chunking: bool = False
    dimensions: int | None = None
    task: str | None = None
    user: str | None = None


class RerankRequest(_Strict):
    """The body of Jina's ``/v1/rerank``; ``documents`` are strings or ``{"text": ...}``."""

    example: ClassVar[str] = '{"query": "a question", "documents": ["a text", "another"]}'

    query: Any
    documents: Any
    model: str | None = None
    top_n: int | None = Field(default=None, ge=0)
    return_documents: bool = True
    truncate: bool = True


class TeiEmbedRequest(_Strict):
    """The body of TEI's ``/embed`` (text-embeddings-inference); TEI's defaults."""

    example: ClassVar[str] = '{"inputs": ["a text", "another"]}'

    inputs: Any
    normalize: bool = True
    truncate: bool = False
    truncation_direction: Literal["Right", "right"] = "Right"
    prompt_name: None = None
    dimensions: int | None = None


class TeiRerankRequest(_Strict):
    """The body of TEI's ``/rerank``; TEI's defaults."""

    example: ClassVar[str] = '{"query": "a question", "texts": ["a text", "another"]}'

    query: Any
    texts: Any
    raw_scores: bool = False
    return_text: bool = False
    truncate: bool = False
    truncation_direction: Literal["Right", "right"] = "Right"


# Bodies above this size are parsed in a worker thread: parsing megabytes of JSON would hold
# the event loop, and with it every other client, for a noticeable time.
PARSE_INLINE_BYTES = 64 * 1024


async def read_body(request: Any, shape: type[Body]) -> Body:
    """The request's body parsed as ``shape`` (see :func:`parse_body`), off the event loop
    when large."""
    raw = await request.body()
    if len(raw) > PARSE_INLINE_BYTES:
        return await asyncio.to_thread(parse_body, raw, shape)
    return parse_body(raw, shape)


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
    return str(getattr(shape, "example", "{}"))


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


def openapi_body(shape: Any) -> dict[str, Any]:
    """The OpenAPI request body of a route that reads its body itself (see requests.py)."""
    schema = shape.model_json_schema()
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def texts_of(field: str, value: Any, limits: ServerLimits, *, single: bool) -> list[str]:
    """``value`` as a checked list of texts: the count limit first (cheap), then each item.
    Items may be strings or Jina's ``{"text": ...}`` objects; token ids (OpenAI's other input
    form) are refused, since this server tokenises with the model's own tokenizer."""
    if single and isinstance(value, str):
        return [check_text(value, field)]
    if single and isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        kind = "a string or a list of strings" if single else "a list of strings"
        raise InputError(
            f"{field} must be {kind}, got {type(value).__name__} {value!r:.60}; "
            f'send e.g. "{field}": ["a text", "another"]'
        )
    limits.check_count(field, len(value))
    if not value:
        raise InputError(f"{field} is an empty list; send at least one text")
    if all(isinstance(item, int) and not isinstance(item, bool) for item in value) or any(
        isinstance(item, list) for item in value
    ):
        raise InputError(
            f"{field} holds token ids; this server reads text, tokenised by the model's own "
            "tokenizer (another model's ids mean nothing to it): send the texts (with "
            "LangChain's OpenAIEmbeddings, pass check_embedding_ctx_length=False)"
        )
    return check_texts([text_of(field, index, item) for index, item in enumerate(value)], field)


def text_of(field: str, index: int, item: Any) -> Any:
    """A ``{"text": ...}`` object's text; anything else as is (check_texts names it)."""
    if not isinstance(item, dict):
        return item
    if set(item) != {"text"}:
        extra = sorted(set(item) - {"text"})
        raise InputError(
            f"{field}[{index}] has the field(s) {extra} this server does not take (it embeds "
            f'text only); send {{"text": "..."}} or a plain string'
        )
    return item["text"]

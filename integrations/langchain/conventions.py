"""LangChain's own names for our options, mapped onto our fields in one place.

- `JinaEmbeddings` takes what `langchain_huggingface.HuggingFaceEmbeddings` users write:
  `model_name` (our `model`) and `encode_kwargs={"normalize_embeddings": ..., "batch_size":
  ...}` (our `normalize` and `batch_size`).
- `JinaHybridRetriever` takes `search_kwargs={"k": ..., "filter": ...}` as
  `VectorStoreRetriever` users write it (`filter` is our `where`), and `filter` per call.
- With `base_url`, an `api_key` left out is read from `$JINARAG_API_KEY` when the object is
  made, LangChain's convention for keys (langchain-tests' `init_from_env_params`).

Each name is checked here: an unknown key or a value given twice (under both names) is an
`InputError` naming it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from jinarag.errors import InputError
from jinarag.inference.remote import API_KEY_ENV
from jinarag.validation import check_instance, check_keywords

# encode_kwargs key (sentence-transformers' `encode` argument) -> our field.
ENCODE_KWARGS = {"normalize_embeddings": "normalize", "batch_size": "batch_size"}
# search_kwargs key -> our search option (`filter` is VectorStoreRetriever's name for `where`).
SEARCH_KWARGS = {
    "k": "k",
    "filter": "where",
    "where": "where",
    "mode": "mode",
    "fusion": "fusion",
    "weights": "weights",
}


def merge_alias(owner: str, data: dict[str, Any], alias: str, name: str, value: Any) -> None:
    """Put `value` (given as `alias`) in `data[name]`; InputError when `data` holds another
    value for `name` already."""
    if name in data and data[name] != value:
        raise InputError(
            f"{owner} got {alias}={value!r:.60} and {name}={data[name]!r:.60}: they are the "
            f"same setting; pass one of them"
        )
    data[name] = value


def embeddings_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """`JinaEmbeddings`' keywords with `model_name` and `encode_kwargs` mapped onto our fields
    (`model`, `normalize`, `batch_size`), and `api_key` read from the environment."""
    data = dict(data)
    if "model_name" in data:
        merge_alias("JinaEmbeddings", data, "model_name", "model", data.pop("model_name"))
    encode = data.pop("encode_kwargs", None)
    if encode is not None:
        check_instance(
            "encode_kwargs", encode, Mapping, "pass a dict such as {'normalize_embeddings': True}"
        )
        check_keywords("JinaEmbeddings encode_kwargs", encode, ENCODE_KWARGS)
        for key, value in encode.items():
            alias = f"encode_kwargs[{key!r}]"
            merge_alias("JinaEmbeddings", data, alias, ENCODE_KWARGS[key], value)
    return with_env_key(data)


def with_env_key(data: Mapping[str, Any]) -> dict[str, Any]:
    """`data` with `api_key` read from `$JINARAG_API_KEY` when a `base_url` is given without
    one (without `base_url` no key is used, so none is read)."""
    data = dict(data)
    if data.get("base_url") is not None and data.get("api_key") is None:
        key = os.environ.get(API_KEY_ENV)
        if key:
            data["api_key"] = key
    return data


def search_options(owner: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The retriever's keywords with `search_kwargs` mapped onto our fields (`k`, `where`,
    `mode`, `fusion`, `weights`); a key given both there and as a field must agree."""
    data = dict(data)
    search = data.pop("search_kwargs", None)
    if search is None:
        return data
    check_instance(
        "search_kwargs", search, Mapping, "pass a dict such as {'k': 4, 'filter': {'topic': 'x'}}"
    )
    check_keywords(f"{owner} search_kwargs", search, SEARCH_KWARGS)
    if "filter" in search and "where" in search:
        raise InputError(
            f"{owner} got search_kwargs with both 'filter' and 'where': they are the same "
            "Chroma metadata filter; pass one of them"
        )
    for key, value in search.items():
        merge_alias(owner, data, f"search_kwargs[{key!r}]", SEARCH_KWARGS[key], value)
    return data


def call_where(where: Any, filter: Any) -> Any:
    """The `where` of one `invoke` call, given as `where` or as `filter`
    (`VectorStoreRetriever`'s name); both is an InputError unless they agree."""
    if filter is None:
        return where
    if where is not None and where != filter:
        raise InputError(
            f"invoke got filter={filter!r:.60} and where={where!r:.60}: they are the same "
            "Chroma metadata filter; pass one of them"
        )
    return filter

"""The loading options as pydantic fields, shared by `JinaEmbedding` and `JinaRerank`."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from llama_index.core.bridge.pydantic import BaseModel, create_model

from jinarag.options import LoadOptions
from jinarag.redaction import UrlsRedactedInRepr
from jinarag.validation import check_instance, check_keywords

# One field per `jinarag.LoadOptions` field, with its name and default: the options are listed
# and documented once, there, and `LoadOptions` checks the values when the model is loaded.
LoadingFields: type[BaseModel] = create_model(
    "LoadingFields",
    __doc__="The fields of `jinarag.LoadOptions`, as pydantic fields (URLs redacted in repr).",
    __base__=(UrlsRedactedInRepr, BaseModel),
    **{name: (Any, default) for name, default in LoadOptions.defaults().items()},
)


def check_fields(owner: str, model: type[BaseModel], given: Iterable[str], *own: str) -> None:
    """InputError for a keyword that is neither a field of `model` nor one of `own` (the
    constructor's other parameters); pydantic would silently drop it."""
    check_keywords(owner, given, (*own, *model.model_fields))


def load_options(kwargs: Mapping[str, Any]) -> LoadOptions:
    """The `LoadOptions` among a constructor's keyword arguments (the rest are ignored)."""
    names = LoadOptions.names()
    return LoadOptions(**{name: value for name, value in kwargs.items() if name in names})


def check_source(
    kind: str,
    kinds: tuple[type, ...],
    name: Any,
    loaded: Any,
    *,
    name_arg: str = "model",
    base_url: Any = None,
    api_key: Any = None,
) -> None:
    """InputError for a model name, loaded `kind` (`embedder=`, `reranker=`), `base_url` or
    `api_key` of the wrong type, before anything is loaded or handed to pydantic."""
    if name is not None:
        check_instance(
            name_arg, name, (str, os.PathLike), "pass an alias, a Hub id or a local directory"
        )
    if loaded is not None:
        check_instance(
            kind,
            loaded,
            kinds,
            f"pass jinarag.{kinds[0].__name__}.from_pretrained(...), or load one by name "
            f"with {name_arg}=",
        )
    if base_url is not None:
        check_instance("base_url", base_url, str, "pass the server's root URL as a string")
    if api_key is not None:
        check_instance("api_key", api_key, str, "pass the key as a string")

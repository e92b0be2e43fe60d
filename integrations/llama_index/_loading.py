"""The loading options as pydantic fields, shared by `JinaEmbedding` and `JinaRerank`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from llama_index.core.bridge.pydantic import BaseModel, create_model

from jinarag.options import LoadOptions
from jinarag.validation import check_keywords

# One field per `jinarag.LoadOptions` field, with its name and default: the options are listed
# and documented once, there, and `LoadOptions` checks the values when the model is loaded.
LoadingFields: type[BaseModel] = create_model(
    "LoadingFields",
    __doc__="The fields of `jinarag.LoadOptions`, as pydantic fields.",
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

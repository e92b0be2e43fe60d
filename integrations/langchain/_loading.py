"""The loading options as pydantic fields, shared by `JinaEmbeddings` and `JinaReranker`."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import BaseModel, SecretStr, create_model

from jinarag.errors import InputError
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
    """InputError (not pydantic's ValidationError) for a keyword that is neither a field of
    `model` nor one of `own` (the constructor's other parameters)."""
    check_keywords(owner, given, (*own, *model.model_fields))


def check_source(kind: str, model: Any, data: Mapping[str, Any]) -> None:
    """InputError (not pydantic's ValidationError) for a `model`, loaded `kind`
    (`embedder=`, `reranker=`), `base_url` or `api_key` of the wrong type."""
    if model is not None:
        check_instance(
            "model", model, (str, os.PathLike), "pass an alias, a Hub id or a local directory"
        )
    if data.get(kind) is not None:
        # The classes (and torch) are imported only for a loaded model, which imported them.
        from jinarag.inference.resolve import model_classes

        kinds = model_classes(kind)
        check_instance(
            kind,
            data[kind],
            kinds,
            f"pass jinarag.{kinds[0].__name__}.from_pretrained(...), or load one by name "
            "with model=",
        )
    if data.get("base_url") is not None:
        check_instance("base_url", data["base_url"], str, "pass the server's root URL as a string")
    if data.get("api_key") is not None:
        check_instance("api_key", data["api_key"], (str, SecretStr), "pass the key as a string")


def check_values(data: Mapping[str, Any], **checks: Callable[[str, Any], Any]) -> dict[str, Any]:
    """`data` with each value that `checks` names replaced by what its check returns (e.g.
    `batch_size=positive_int`), so a bad value is our InputError before pydantic sees it,
    and pydantic never coerces one (`"no"` to False)."""
    return {
        **data,
        **{name: check(name, data[name]) for name, check in checks.items() if name in data},
    }


def load_options(model: BaseModel) -> LoadOptions:
    """The `LoadOptions` held in `model`'s loading fields."""
    return LoadOptions(**{name: getattr(model, name) for name in LoadOptions.names()})


def secret_value(secret: SecretStr | None) -> str | None:
    """The text of an API key field (None stays None: the remote model reads the env var)."""
    return secret.get_secret_value() if secret is not None else None


def document_list(documents: Any) -> list[Any]:
    """``documents`` as a list of LangChain Documents, or InputError naming the first item
    that is not one."""
    from langchain_core.documents import Document

    from jinarag.validation import ordered_list

    items = ordered_list(documents, "documents", "Documents", "Document(page_content=...)")
    for index, doc in enumerate(items):
        if not isinstance(doc, Document):
            raise InputError(
                f"documents[{index}] is {type(doc).__name__}, not a LangChain Document; "
                "wrap texts as Document(page_content=...)"
            )
    return items

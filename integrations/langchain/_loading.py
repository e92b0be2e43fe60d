"""The loading options as pydantic fields, shared by `JinaEmbeddings` and `JinaReranker`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, SecretStr, create_model

from jinarag.errors import InputError
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
    """InputError (not pydantic's ValidationError) for a keyword that is neither a field of
    `model` nor one of `own` (the constructor's other parameters)."""
    check_keywords(owner, given, (*own, *model.model_fields))


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

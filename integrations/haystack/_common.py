"""Helpers shared by the Haystack components: loading options or a server, the text of a
Document."""

from __future__ import annotations

import copy
import inspect
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from haystack import Document, default_from_dict
from haystack.utils import ComponentDevice, Secret, deserialize_secrets_inplace

from jinarag.errors import InputError
from jinarag.inference.remote import API_KEY_ENV, RemoteModel
from jinarag.inference.resolve import resolve
from jinarag.models.checkpoint import Kind
from jinarag.options import LoadOptions
from jinarag.validation import (
    check_bool,
    check_instance,
    check_keywords,
    check_text,
    check_texts,
    ordered_list,
    positive_int,
)

# The default `api_key` of every component: the env var, read when the component is created.
API_KEY = Secret.from_env_var(API_KEY_ENV, strict=False)


def model_name(model: str | Path) -> str:
    """A plain string for `model`, so it serialises to YAML (a `Path` does not)."""
    check_instance("model", model, (str, os.PathLike), "pass an alias, a Hub id or a local path")
    return os.fspath(model)


def embedding_options(
    component: Any,
    prefix: Any,
    suffix: Any,
    batch_size: Any,
    progress_bar: Any,
    normalize_embeddings: Any,
) -> None:
    """Check the options both embedders take and set them on `component`."""
    component.prefix = check_text(prefix, "prefix")
    component.suffix = check_text(suffix, "suffix")
    component.batch_size = positive_int("batch_size", batch_size)
    component.progress_bar = check_bool("progress_bar", progress_bar)
    component.normalize_embeddings = check_bool("normalize_embeddings", normalize_embeddings)


def meta_fields(meta_fields_to_embed: Any, embedding_separator: Any) -> tuple[list[str], str]:
    """`meta_fields_to_embed` as a new list of names (None: none) and `embedding_separator`,
    checked: a lone string would otherwise be read as one field per character."""
    names = (
        check_texts(meta_fields_to_embed, "meta_fields_to_embed")
        if meta_fields_to_embed is not None
        else []
    )
    return names, check_text(embedding_separator, "embedding_separator")


def fresh_copy(doc: Document, **changes: Any) -> Document:
    """A new Document with `changes` and its own copy of `meta`, so that whoever edits the
    result's metadata downstream does not edit the caller's Document as well."""
    return replace(doc, meta=copy.deepcopy(doc.meta), **changes)


def model_or_default(model: str | Path | None, base_url: str | None, default: str) -> str | None:
    """The `model` to keep: `model` as a plain string; else `default`, or None when the model
    is a server's (`base_url`)."""
    if model is not None:
        return model_name(model)
    return default if base_url is None else None


def remote_model(component: Any, kind: Kind) -> RemoteModel | None:
    """The model of the server at `component.base_url`, or None when it has none (`warm_up`
    then loads the model). Checked with the other init parameters: a `model`, `device` or
    loading option given with `base_url` is an InputError naming both."""
    if not isinstance(component.api_key, Secret):
        raise InputError(
            f"{type(component).__name__} got api_key of type {type(component.api_key).__name__}; "
            "pass a haystack Secret: Secret.from_env_var('JINARAG_API_KEY') or "
            "Secret.from_token('...')"
        )
    if component.base_url is None:
        return None
    check_instance("base_url", component.base_url, str, "pass the server's root URL as a string")
    return resolve(
        kind,
        component.model,
        base_url=component.base_url,
        api_key=component.api_key.resolve_value(),
        options=load_options(component),
        owner=type(component).__name__,
        name_arg="model",
    )


def server_init_parameters(component: Any) -> dict[str, Any]:
    """`base_url` and `api_key` for `to_dict` (an env var secret is written as its name; a
    token secret cannot be, as Haystack's own components refuse it)."""
    return {"base_url": component.base_url, "api_key": component.api_key.to_dict()}


def from_dict(cls: type, data: Any, *, secrets: bool = True) -> Any:
    """`cls` rebuilt from `data` (a `to_dict` output; `api_key` a Secret again when
    `secrets`), the shape of `data` checked first so a wrong one is an InputError."""
    check_instance("data", data, dict, f"pass the dict {cls.__name__}.to_dict() returns")
    owner = f"{cls.__name__}.from_dict"
    expected = f"{cls.__module__}.{cls.__name__}"
    if "type" not in data:
        raise InputError(
            f"{owner} got data without 'type' (its keys: {', '.join(map(repr, data))}); pass "
            f"what to_dict() returns: {{'type': {expected!r}, 'init_parameters': {{...}}}}"
        )
    if data["type"] != expected:
        raise InputError(
            f"{owner} got type={data['type']!r}; this component's data has type={expected!r} "
            "(load another component's data with its own class)"
        )
    parameters = data.get("init_parameters", {})
    check_instance("init_parameters", parameters, dict, "pass the init parameters as a dict")
    parameters = dict(parameters)
    if secrets:
        deserialize_secrets_inplace(parameters, keys=["api_key"])
    return default_from_dict(cls, {**data, "init_parameters": parameters})


def checked_options(component: Any, options: dict[str, Any]) -> LoadOptions:
    """A component's `**load_options` keywords as `LoadOptions`, checked now: an unknown or
    bad option fails when the pipeline is built, not at `warm_up`, and the error lists every
    init parameter. (`device` is Haystack's own parameter, so never among them.)"""
    owner = type(component).__name__
    parameters = inspect.signature(type(component).__init__).parameters.values()
    named = [p.name for p in parameters if p.name != "self" and p.kind is not p.VAR_KEYWORD]
    check_keywords(owner, options, (*named, *LoadOptions.names()))
    checked = LoadOptions.from_kwargs(options, owner=owner)
    _with_device(checked, component.device)  # checks `device` too, now
    return checked


def load_options(owner: Any) -> LoadOptions:
    """The options to load with, from a component's `device` and `load_options` attributes.

    Haystack users pass a `ComponentDevice`; the core takes a torch device string.
    """
    return _with_device(owner.load_options, owner.device)


def _with_device(options: LoadOptions, device: ComponentDevice | str | None) -> LoadOptions:
    if isinstance(device, ComponentDevice):
        device = device.to_torch_str()
    return replace(options, device=device if device is not None else "auto")


def options_init_parameters(owner: Any) -> dict[str, Any]:
    """The loading options as `to_dict` init parameters, all of them, so a YAML round trip
    keeps them (`device` is serialised as its own parameter)."""
    data = owner.load_options.to_dict()
    del data["device"]
    return data


def document_list(documents: Any, *, need_content: bool = False) -> list[Document]:
    """`documents` as a list of haystack Documents, or an InputError naming the first item
    that is not one (or, with `need_content`, that has no content)."""
    items = ordered_list(documents, "documents", "Documents", "Document(content=...)")
    for i, doc in enumerate(items):
        if not isinstance(doc, Document):
            raise InputError(
                f"documents[{i}] is {type(doc).__name__} {doc!r:.60}, not a haystack Document; "
                "wrap texts as Document(content=...) first"
            )
        if need_content and doc.content is None:
            raise InputError(
                f"documents[{i}] (id {doc.id!r}) has content None: there is no text to rank; "
                "drop it, or give it content"
            )
    return items


def document_texts(documents: list[Document], meta_fields: list[str], separator: str) -> list[str]:
    """The text each Document (of a checked `document_list`) stands for: the chosen meta
    values, then its content.

    Haystack's own embedders and rankers build the same text, so swapping them keeps results
    comparable.
    """
    texts = []
    for doc in documents:
        values = [str(doc.meta[k]) for k in meta_fields if doc.meta.get(k) is not None]
        texts.append(separator.join([*values, doc.content if doc.content is not None else ""]))
    return texts

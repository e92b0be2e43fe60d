"""Helpers shared by the Haystack components: loading options or a server, the text of a
Document."""

from __future__ import annotations

import copy
import inspect
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from haystack import Document
from haystack.utils import ComponentDevice, Secret, deserialize_secrets_inplace

from jinarag.errors import InputError
from jinarag.inference.remote import API_KEY_ENV, RemoteModel
from jinarag.inference.resolve import resolve
from jinarag.models.checkpoint import Kind
from jinarag.options import LoadOptions
from jinarag.validation import check_keywords

# The default `api_key` of every component: the env var, read when the component is created.
API_KEY = Secret.from_env_var(API_KEY_ENV, strict=False)


def model_name(model: str | Path) -> str:
    """A plain string for `model`, so it serialises to YAML (a `Path` does not)."""
    return os.fspath(model)


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
    if component.base_url is None:
        return None
    if not isinstance(component.api_key, Secret):
        raise InputError(
            f"{type(component).__name__} got api_key of type {type(component.api_key).__name__}; "
            "pass a haystack Secret: Secret.from_env_var('JINARAG_API_KEY') or "
            "Secret.from_token('...')"
        )
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


def server_from_dict(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of `data` (a `to_dict` output) with its `api_key` a Secret again."""
    parameters = dict(data.get("init_parameters", {}))
    deserialize_secrets_inplace(parameters, keys=["api_key"])
    return {**data, "init_parameters": parameters}


def checked_options(component: Any, options: dict[str, Any]) -> LoadOptions:
    """A component's `**load_options` keywords as `LoadOptions`, checked now: an unknown or
    bad option fails when the pipeline is built, not at `warm_up`, and the error lists every
    init parameter. (`device` is Haystack's own parameter, so never among them.)"""
    owner = type(component).__name__
    parameters = inspect.signature(type(component).__init__).parameters.values()
    named = [p.name for p in parameters if p.name != "self" and p.kind is not p.VAR_KEYWORD]
    check_keywords(owner, options, (*named, *LoadOptions.names()))
    return LoadOptions.from_kwargs(options, owner=owner)


def load_options(owner: Any) -> LoadOptions:
    """The options to load with, from a component's `device` and `load_options` attributes.

    Haystack users pass a `ComponentDevice`; the core takes a torch device string.
    """
    device = owner.device
    if isinstance(device, ComponentDevice):
        device = device.to_torch_str()
    return replace(owner.load_options, device=device if device is not None else "auto")


def options_init_parameters(owner: Any) -> dict[str, Any]:
    """The loading options as `to_dict` init parameters, all of them, so a YAML round trip
    keeps them (`device` is serialised as its own parameter)."""
    data = owner.load_options.to_dict()
    del data["device"]
    return data


def document_texts(
    owner: str, documents: list[Document], meta_fields: list[str], separator: str
) -> list[str]:
    """The text each Document stands for: the chosen meta values, then its content.

    Haystack's own embedders and rankers build the same text, so swapping them keeps results
    comparable. `owner` names the component in the error raised for a non-Document.
    """
    texts = []
    for i, doc in enumerate(documents):
        if not isinstance(doc, Document):
            raise InputError(
                f"{owner} expects a list of haystack Documents, but item {i} is "
                f"{type(doc).__name__}; wrap texts as Document(content=...) first"
            )
        values = [str(doc.meta[k]) for k in meta_fields if doc.meta.get(k) is not None]
        texts.append(separator.join([*values, doc.content if doc.content is not None else ""]))
    return texts

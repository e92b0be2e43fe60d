"""Helpers shared by the Haystack components: loading options, the text of a Document."""

from __future__ import annotations

import copy
import inspect
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from haystack import Document
from haystack.utils import ComponentDevice

from jinarag.errors import InputError
from jinarag.options import LoadOptions
from jinarag.validation import check_keywords


def model_name(model: str | Path) -> str:
    """A plain string for `model`, so it serialises to YAML (a `Path` does not)."""
    return os.fspath(model)


def fresh_copy(doc: Document, **changes: Any) -> Document:
    """A new Document with `changes` and its own copy of `meta`, so that whoever edits the
    result's metadata downstream does not edit the caller's Document as well."""
    return replace(doc, meta=copy.deepcopy(doc.meta), **changes)


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

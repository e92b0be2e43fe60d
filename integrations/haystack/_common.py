"""Helpers shared by the Haystack components: loading options, the text of a Document."""

from __future__ import annotations

import copy
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from haystack import Document
from haystack.utils import ComponentDevice

from jinarag.errors import InputError


def model_name(model: str | Path) -> str:
    """A plain string for `model`, so it serialises to YAML (a `Path` does not)."""
    return os.fspath(model)


def fresh_copy(doc: Document, **changes: Any) -> Document:
    """A new Document with `changes` and its own copy of `meta`, so that whoever edits the
    result's metadata downstream does not edit the caller's Document as well."""
    return replace(doc, meta=copy.deepcopy(doc.meta), **changes)


def load_options(owner: Any) -> dict[str, Any]:
    """The `from_pretrained` keyword arguments from a component's loading attributes.

    Haystack users pass a `ComponentDevice`; the core takes a torch device string.
    """
    device = owner.device
    if isinstance(device, ComponentDevice):
        device = device.to_torch_str()
    return {
        "device": device if device is not None else "auto",
        "max_length": owner.max_length,
        "revision": owner.revision,
        "local_files_only": owner.local_files_only,
    }


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

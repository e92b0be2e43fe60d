"""The models a server answers with, and the names a request may call them by.

A model answers to the name it was started with (an alias such as ``small``, or ``NAME`` of
``--model NAME=PATH``), its Hub id (``jinaai/jina-embeddings-v2-small-en``), the last part of
either Hub id (``jina-embeddings-v2-small-en``, the name Jina's API uses and its clients send)
and, for a local checkpoint, its folder's name. Never by a path: a response's ``model`` is the
name the request used, so no answer shows the server's disks.

A request naming a Jina model that is not loaded but that jinarag can serve (its alias, Hub id
or the id's last part: a hosted-API client's default, such as ``jina-embeddings-v3``) is
refused with the one-line ``jinarag serve`` that would serve it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from jinarag.errors import InputError
from jinarag.inference.protocols import EngineModel, PairScorer, TokenEmbedder, missing_members
from jinarag.models.checkpoint import EMBEDDER_ALIASES, RERANKER_ALIASES

__all__ = [
    "ModelNotServedError",
    "Registry",
    "ServedModel",
    "display_name",
    "kind_of",
    "serve_option",
]

Kind = Literal["embedder", "reranker"]


class ModelNotServedError(InputError):
    """A request names a model this server does not serve (HTTP 404); the message lists the
    ones it does."""


def display_name(model: EngineModel) -> str:
    """The Hub id a model was loaded by, or a local directory's final name (never its path;
    ``model.name`` itself stays the path, which the hybrid index stores)."""
    local = model.name == str(model.source) or Path(model.name).is_absolute()
    return Path(model.name).name if local else model.name


def _is_path(name: str) -> bool:
    """A local path rather than a name: absolute, relative (``.``, ``~``), with more than one
    ``/`` (or a Windows separator), or an existing file or folder. A Hub id is a name."""
    return (
        Path(name).is_absolute()
        or name.startswith((".", "~"))
        or name.count("/") > 1
        or (os.sep != "/" and os.sep in name)
        or Path(name).expanduser().exists()
    )


def _last_part(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def serve_option(kind: Kind, requested: str) -> str | None:
    """``--model v3`` when ``requested`` is a Jina model of ``kind`` that jinarag can serve (by
    its alias, Hub id or the id's last part), else None."""
    aliases = EMBEDDER_ALIASES if kind == "embedder" else RERANKER_ALIASES
    for alias, hub_id in sorted(aliases.items(), key=lambda item: len(item[0])):
        if requested in (alias, hub_id, _last_part(hub_id)):
            return f"{'--model' if kind == 'embedder' else '--reranker'} {alias}"
    return None


def kind_of(model: object) -> Kind | None:
    """``"embedder"`` for a :class:`~jinarag.inference.protocols.TokenEmbedder`,
    ``"reranker"`` for a :class:`~jinarag.inference.protocols.PairScorer`, else None."""
    if not missing_members(model, TokenEmbedder):
        return "embedder"
    if not missing_members(model, PairScorer):
        return "reranker"
    return None


@dataclass
class ServedModel:
    """A loaded model, its names and its kind; ``names[0]`` answers requests that name no
    model. A model that is neither kind is an InputError naming what it lacks."""

    model: TokenEmbedder | PairScorer
    names: tuple[str, ...] = field(default=())
    kind: Kind = field(init=False)

    def __post_init__(self) -> None:
        kind = kind_of(self.model)
        if kind is None:
            lacks = {
                protocol.__name__: ", ".join(missing_members(self.model, protocol))
                for protocol in (TokenEmbedder, PairScorer)
            }
            raise InputError(
                f"{type(self.model).__name__} cannot be served: it is neither a TokenEmbedder "
                f"(it lacks {lacks['TokenEmbedder']}) nor a PairScorer (it lacks "
                f"{lacks['PairScorer']}); serve a jinarag.Embedder or a jinarag.Reranker"
            )
        self.kind = kind

    @classmethod
    def named(cls, model: TokenEmbedder | PairScorer, given: str | None = None) -> ServedModel:
        """``model`` with its names: ``given`` (unless it is a path), the display name, and
        the last part of each that is a Hub id."""
        entry = cls(model)  # its kind first: a model that is neither fails here, by name
        shown = display_name(model)
        candidates = [given, _last_part(given)] if given is not None and not _is_path(given) else []
        candidates += [shown, _last_part(shown)]
        entry.names = tuple(dict.fromkeys(candidates))
        return entry

    def info(self) -> dict[str, Any]:
        """The model's entry of ``GET /v1/models``: its name, kind, vector length
        (``dimensions``, None for a reranker), ``max_length`` and other names; an embedder's
        task adapters (``tasks``) and Matryoshka dimensions (``dimensions_allowed``, the
        trained ones: a request may ask for any count from the smallest to ``dimensions``),
        both empty for a model without them."""
        embedder = self.kind == "embedder"
        info: dict[str, Any] = {
            "id": self.names[0],
            "object": "model",
            "owned_by": "jinarag",
            "created": 0,
            "kind": "embedding" if embedder else "rerank",
            "dimensions": self.model.dim if embedder else None,  # type: ignore[union-attr]
            "max_length": self.model.max_length,
            "aliases": list(self.names[1:]),
        }
        if embedder:
            info["tasks"] = list(getattr(self.model, "tasks", ()))
            info["dimensions_allowed"] = list(getattr(self.model, "dimensions_allowed", ()))
        return info


class Registry:
    """Finds the model a request names. Example:

    >>> registry = Registry([ServedModel.named(embedder, "small")])
    >>> registry.find("embedder", "jina-embeddings-v2-small-en")[1]
    'jina-embeddings-v2-small-en'
    """

    def __init__(self, served: list[ServedModel]) -> None:
        self.served = served
        firsts = [entry.names[0] for entry in served]
        for name in firsts:
            if firsts.count(name) > 1:
                raise InputError(
                    f"two models are served as {name!r}; serve one of them under another name "
                    "with --model NAME=PATH"
                )
        # Other names two models share (two checkpoints in folders called "model") name
        # neither: a request using one is told which names to use instead.
        owners: dict[str, list[ServedModel]] = {}
        for entry in served:
            for name in entry.names:
                owners.setdefault(name, []).append(entry)
        self._by_name = {
            name: entries[0]
            for name, entries in owners.items()
            if len(entries) == 1 or name in firsts
        }
        self._shared = {
            name: entries
            for name, entries in owners.items()
            if len(entries) > 1 and name not in firsts
        }

    def of_kind(self, kind: Kind) -> list[ServedModel]:
        return [entry for entry in self.served if entry.kind == kind]

    def find(self, kind: Kind, requested: str | None) -> tuple[ServedModel, str]:
        """The model of ``kind`` named ``requested`` (None: the first of that kind) and the
        name to answer with; ModelNotServedError naming the loaded ones otherwise."""
        candidates = self.of_kind(kind)
        option = "--model" if kind == "embedder" else "--reranker"
        if not candidates:
            raise ModelNotServedError(f"no {kind} is loaded; start the server with {option} NAME")
        if requested is None:
            return candidates[0], candidates[0].names[0]
        if requested in self._shared:
            which = ", ".join(repr(entry.names[0]) for entry in self._shared[requested])
            raise ModelNotServedError(
                f"model {requested!r} names several loaded models ({which}); send one of those"
            )
        entry = self._by_name.get(requested)
        if entry is not None and entry.kind == kind:
            return entry, requested
        loaded = ", ".join(repr(c.names[0]) for c in candidates)
        article = "an" if kind == "embedder" else "a"
        what = f"is a {entry.kind}, not {article} {kind}" if entry else "is not loaded"
        known = serve_option(kind, requested) if entry is None else None
        start = (
            f"; to serve it, start the server with `jinarag serve {known}` (beside your other "
            "--model and --reranker options)"
            if known is not None
            else f"; start the server with {option} NAME to serve another"
        )
        raise ModelNotServedError(
            f"model {requested!r} {what}; this server's {kind}s: {loaded} (send one of "
            f"these, or leave model out for {candidates[0].names[0]!r}){start}"
        )

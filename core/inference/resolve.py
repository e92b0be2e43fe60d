"""One way to a model, local or remote: :func:`resolve` and the adapters' :func:`load_or_use`.

A model is named by a local directory, a Hub id or an alias (loaded here with
``from_pretrained``), or by the ``base_url`` of a ``jinarag serve`` server (a
:mod:`jinarag.inference.remote` model that calls it). Both answer the same methods, so the
framework adapters take either without knowing which.

Example:
    >>> from jinarag.inference.resolve import resolve
    >>> resolve("embedder", "small", device="cpu")
    Embedder(name='jinaai/jina-embeddings-v2-small-en', ...)
    >>> resolve("reranker", base_url="http://127.0.0.1:8080")
    RemoteReranker(base_url='http://127.0.0.1:8080', model=None)
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from jinarag.errors import InputError
from jinarag.options import INIT_OPTIONS, LoadOptions
from jinarag.validation import check_choice

if TYPE_CHECKING:
    from jinarag.inference.pretrained import PretrainedModel
    from jinarag.inference.remote import RemoteModel
    from jinarag.models.checkpoint import Kind

__all__ = ["KINDS", "load_or_use", "model_class", "model_classes", "resolve"]

KINDS = ("embedder", "reranker")


def model_class(kind: Kind) -> type[PretrainedModel]:
    """The local class of ``kind``: :class:`~jinarag.Embedder` or :class:`~jinarag.Reranker`
    (imported when asked, so a remote model never loads torch through this module)."""
    if check_choice("kind", kind, KINDS) == "embedder":
        from jinarag.inference.embedder import Embedder

        return Embedder
    from jinarag.inference.reranker import Reranker

    return Reranker


def model_classes(kind: Kind) -> tuple[type, type]:
    """The local and the remote class of ``kind`` (what an adapter's ``embedder=`` or
    ``reranker=`` may be), imported when asked."""
    from jinarag.inference.remote import RemoteEmbedder, RemoteReranker

    remote = RemoteEmbedder if kind == "embedder" else RemoteReranker
    return model_class(kind), remote


def resolve(
    kind: Kind,
    name_or_path: str | os.PathLike[str] | None = None,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    options: LoadOptions | None = None,
    owner: str | None = None,
    name_arg: str = "name_or_path",
    **kwargs: Any,
) -> PretrainedModel | RemoteModel:
    """The model of ``kind`` (``"embedder"`` or ``"reranker"``): loaded from
    ``name_or_path`` (a local directory, a Hub id or an alias), or the one the ``jinarag
    serve`` server at ``base_url`` runs.

    Loading options come as ``options`` and/or keywords (keywords win), with the class's own
    keywords (``Embedder``: ``query_prefix``, ``document_prefix``); an unknown one is an
    InputError naming ``owner`` (who asks, default ``resolve``). With ``base_url`` the server
    loads its own model, so ``name_or_path`` (``name_arg`` in the message) or a loading option
    that differs from its default is an InputError; ``api_key`` goes with ``base_url`` only
    (None: ``$JINARAG_API_KEY``).
    """
    owner = owner if owner is not None else f"resolve({kind!r})"
    options = _loading_options(kind, owner, options, kwargs)
    if base_url is not None:
        given = {name_arg: name_or_path}
        return _remote(kind, owner, base_url, api_key, options, kwargs, given)
    _no_key(owner, api_key)
    cls = model_class(kind)
    if name_or_path is None:
        raise InputError(
            f"{owner} got neither {name_arg}= nor base_url=: pass {name_arg}= (an alias, a Hub "
            "id or a local directory), or base_url= (a jinarag server)."
        )
    init = {key: kwargs[key] for key in INIT_OPTIONS[kind] if key in kwargs}
    return cls.from_pretrained(name_or_path, options, **init)


def load_or_use(
    kind: Kind,
    owner: str,
    name: str | os.PathLike[str] | None,
    loaded: PretrainedModel | RemoteModel | None,
    *,
    name_arg: str = "model",
    options: LoadOptions | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    **kwargs: Any,
) -> PretrainedModel | RemoteModel:
    """The model a framework adapter was given: ``loaded`` as is, or :func:`resolve`'s model
    for ``name`` or ``base_url``.

    Exactly one of the three is expected; ``owner`` (the adapter) and ``name_arg`` (its
    keyword for the name) make the error say what to pass, and the keyword for ``loaded`` is
    ``kind`` itself (``embedder=``, ``reranker=``). The options are checked even when
    ``loaded`` is used, so a misspelt one is never silently ignored; with ``base_url``, a
    name, a loaded model or a loading option that differs from its default is an InputError.
    """
    options = _loading_options(kind, owner, options, kwargs)
    if base_url is not None:
        given = {name_arg: name, kind: loaded}
        return _remote(kind, owner, base_url, api_key, options, kwargs, given)
    _no_key(owner, api_key)
    if name is not None and loaded is not None:
        raise InputError(
            f"{owner} got both {name_arg}={os.fspath(name)!r} and {kind}=: pass one of them, "
            "not both."
        )
    if loaded is not None:
        return loaded
    if name is None:
        raise InputError(
            f"{owner} got neither {name_arg}= nor {kind}=: pass {name_arg}= (an alias, a Hub id "
            f"or a local directory), {kind}=jinarag.{kind.title()}.from_pretrained(...), or "
            "base_url= (a jinarag server)."
        )
    init = {key: kwargs[key] for key in INIT_OPTIONS[kind] if key in kwargs}
    return resolve(kind, name, options=options, owner=owner, name_arg=name_arg, **init)


def _no_key(owner: str, api_key: str | None) -> None:
    if api_key is not None:
        raise InputError(
            f"{owner} got api_key= but no base_url=: the key is for a jinarag server; pass "
            "its base_url too, or drop api_key to load the model here."
        )


def _loading_options(
    kind: Kind, owner: str, options: LoadOptions | None, kwargs: dict[str, Any]
) -> LoadOptions:
    """``options`` with the loading keywords of ``kwargs`` applied; an unknown keyword (not an
    option, not one of the class's :data:`INIT_OPTIONS`) is an InputError naming ``owner``."""
    also = INIT_OPTIONS[check_choice("kind", kind, KINDS)]
    return LoadOptions.from_kwargs(kwargs, owner=owner, base=options, also_accepted=also)


def _remote(
    kind: Kind,
    owner: str,
    base_url: str,
    api_key: str | None,
    options: LoadOptions,
    kwargs: dict[str, Any],
    given: dict[str, Any],
) -> RemoteModel:
    """The server's model; ``given`` (a name, a loaded model), a loading option that differs
    from its default or a non-empty keyword of the class are refused by name."""
    from jinarag.inference.remote import connect

    defaults = LoadOptions()
    local = {
        **given,
        **{key: getattr(options, key) for key in LoadOptions.names()},
        **{key: kwargs[key] for key in INIT_OPTIONS[kind] if kwargs.get(key)},
    }
    local = {
        key: value
        for key, value in local.items()
        if value is not None and value != getattr(defaults, key, None)
    }
    return connect(kind, owner, base_url, api_key=api_key, local=local)

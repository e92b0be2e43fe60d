"""A Chroma embedding function over a jinarag Embedder, local or on a `jinarag serve` server."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

from jinarag.errors import EmbedderMismatchError, InputError
from jinarag.inference.task_fields import TASK_FIELDS, TaskFields
from jinarag.options import LoadOptions
from jinarag.validation import (
    check_bool,
    check_instance,
    check_keywords,
    check_text,
    check_texts,
    positive_int,
)

if TYPE_CHECKING:
    from jinarag import Embedder
    from jinarag.inference.remote import RemoteEmbedder

# Chroma rebuilds the embedding function from the stored config on every query and add, so
# loaded models are kept here (a few at most) instead of being reloaded each time.
_CACHE_SIZE = 4
_cache: OrderedDict[tuple[Any, ...], Embedder | RemoteEmbedder] = OrderedDict()
_cache_lock = threading.Lock()

# What loads the model (and keys the cache), then how it is called. A config stored before
# an option existed lacks its key, and gets the option's default. The API key is never stored.
_LOAD_KEYS = ("model_name", *LoadOptions.names(), "query_prefix", "document_prefix", "base_url")
_CONFIG_KEYS = (*_LOAD_KEYS, "batch_size", "normalize", *TASK_FIELDS)
# What fixes the vector space: changing it on a collection would mix spaces.
_SPACE_KEYS = ("model_name", "revision", "query_prefix", "document_prefix", "task", "dimensions")
_OWNER = "JinaEmbeddingFunction"
# Chroma's own `SentenceTransformerEmbeddingFunction` calls `normalize` this; accepted as an
# alias, as an argument and in a config, and stored as `normalize`.
_ALIASES = {"normalize_embeddings": "normalize"}
# The keys of the config that are this function's own parameters (not loading options).
_OWN_KEYS = (
    "model_name",
    "query_prefix",
    "document_prefix",
    "batch_size",
    "normalize",
    "base_url",
    *TASK_FIELDS,
)


def _cache_get(key: tuple[Any, ...]) -> Embedder | RemoteEmbedder | None:
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    return None


def _cache_put(key: tuple[Any, ...], embedder: Embedder | RemoteEmbedder) -> None:
    with _cache_lock:
        _cache[key] = embedder
        _cache.move_to_end(key)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)


@register_embedding_function
class JinaEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma embedding function backed by a Jina (or any supported BERT) embedder, local or
    on a ``jinarag serve`` server (``base_url``).

    Documents are embedded on the document side, ``query_texts`` on the query side. The
    collection stores this function's config, so a collection reopened without passing it gets
    it back, provided ``jinarag.chroma`` has been imported in that process (Chroma only knows
    embedding functions that were registered by importing their module). A server's function
    stores its ``base_url`` but never its ``api_key``: a rebuilt one reads
    ``$JINARAG_API_KEY``. jina-embeddings-v3's ``task`` (documents), ``query_task`` (query
    texts) and ``dimensions`` (Matryoshka) are checked against the model and stored in the
    config; ``task`` and ``dimensions`` fix the collection's vector space. ``normalize`` is
    also accepted as ``normalize_embeddings`` (the name of Chroma's
    ``SentenceTransformerEmbeddingFunction``), as an argument and in a config.

    Example:
        >>> import chromadb
        >>> from jinarag.chroma import JinaEmbeddingFunction
        >>> client = chromadb.PersistentClient("./chroma")
        >>> docs = client.get_or_create_collection(
        ...     "docs", embedding_function=JinaEmbeddingFunction("small")
        ... )
        >>> docs.add(ids=["a"], documents=["Lift grows with the angle of attack."])
        >>> docs.query(query_texts=["what increases lift?"], n_results=1)["ids"]
        [['a']]
        >>> served = JinaEmbeddingFunction(base_url="http://127.0.0.1:8080")  # `jinarag serve`
    """

    def __init__(
        self,
        model_name: str | None = None,
        *,
        embedder: Embedder | None = None,
        query_prefix: str = "",
        document_prefix: str = "",
        batch_size: int = 32,
        normalize: bool | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        task: str | None = None,
        query_task: str | None = None,
        dimensions: int | None = None,
        **options: Any,
    ) -> None:
        """Load a model by name or path, wrap an ``embedder`` that is already loaded, or use
        the model of the server at ``base_url``.

        Args:
            model_name: Alias (``"small"``, ``"base"``), Hub id or local directory.
            embedder: A loaded ``jinarag.Embedder``, instead of ``model_name``. The config
                then records its name, revision, max_length and prefixes (what fixes its
                vector space); the other loading options are the ones given here.
            query_prefix: Text put before each query.
            document_prefix: Text put before each document.
            batch_size: Texts per forward pass.
            normalize: L2-normalise the vectors (what the cosine space expects); None: True.
                Also accepted as ``normalize_embeddings``, the name of Chroma's
                ``SentenceTransformerEmbeddingFunction``.
            base_url: The root URL of a ``jinarag serve`` server whose model to use; the
                config stores it.
            api_key: The server's API key, kept out of the config; None:
                ``$JINARAG_API_KEY`` when set.
            task: The task adapter of documents (jina-embeddings-v3); None: the model's
                default, ``retrieval.passage``.
            query_task: The task adapter of query texts; None: ``retrieval.query``.
            dimensions: Matryoshka dimensions to keep (jina-embeddings-v3); None: all.
            **options: The loading options of ``jinarag.LoadOptions`` (``device="cpu"``,
                ``max_length=256``, ...); the collection's config stores them all.
        """
        from jinarag.inference.embedder import Embedder
        from jinarag.inference.resolve import load_or_use

        check_keywords(_OWNER, options, (*_CONFIG_KEYS, *_ALIASES, "embedder"))
        normalize = _normalize(normalize, options.pop("normalize_embeddings", None))
        _check_values(
            model_name=model_name,
            query_prefix=query_prefix,
            document_prefix=document_prefix,
            batch_size=batch_size,
            normalize=normalize,
            base_url=base_url,
        )
        fields = TaskFields.checked(task, query_task, dimensions)
        if api_key is not None:
            check_instance("api_key", api_key, str, "pass the key as a string")
        load = LoadOptions.from_kwargs(options, owner=_OWNER)
        name = model_name
        if embedder is not None and not isinstance(embedder, Embedder):
            raise InputError(
                f"{_OWNER} got embedder={embedder!r:.80}, not a local jinarag.Embedder; for a "
                "server's model pass base_url= (the config stores it, so Chroma can rebuild it)"
            )
        if embedder is not None:
            name = embedder.name
            query_prefix, document_prefix = embedder.query_prefix, embedder.document_prefix
            load = replace(load, max_length=embedder.max_length, revision=embedder.options.revision)
        self._config: dict[str, Any] = {
            "model_name": name,
            **load.to_dict(),
            "query_prefix": query_prefix,
            "document_prefix": document_prefix,
            "batch_size": batch_size,
            "normalize": normalize,
            "base_url": base_url,
            **fields.as_dict(),
        }
        if name is not None or base_url is not None:  # else load_or_use says what is missing
            self.validate_config(self._config)
        key = (*(self._config[k] for k in _LOAD_KEYS), api_key)
        cached = _cache_get(key) if embedder is None else None
        if cached is None:
            cached = load_or_use(
                "embedder",
                _OWNER,
                model_name,
                embedder,
                name_arg="model_name",
                options=load,
                query_prefix=query_prefix,
                document_prefix=document_prefix,
                base_url=base_url,
                api_key=api_key,
            )
        self._fields = fields.for_model(cached)
        self._embedder = cached
        _cache_put(key, self._embedder)

    @property
    def embedder(self) -> Embedder | RemoteEmbedder:
        """The loaded ``jinarag.Embedder`` (a ``RemoteEmbedder`` with ``base_url``)."""
        return self._embedder

    def __call__(self, input: Documents) -> Embeddings:
        """Embed documents (the document side)."""
        texts = check_texts(input, "input")
        vectors = self._embedder.embed_documents(
            texts, **self._embed_options(), **self._fields.documents()
        )
        return list(vectors)

    def embed_query(self, input: Documents) -> Embeddings:
        """Embed query texts (the query side)."""
        texts = check_texts(input, "input")
        vectors = self._embedder.embed_queries(
            texts, **self._embed_options(), **self._fields.queries()
        )
        return list(vectors)

    def _embed_options(self) -> dict[str, Any]:
        return {"batch_size": self._config["batch_size"], "normalize": self._config["normalize"]}

    @staticmethod
    def name() -> str:
        return "jinarag"

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        # Unit vectors rank identically under all three; raw ones only make sense as cosine.
        return ["cosine", "ip", "l2"] if self._config["normalize"] else ["cosine"]

    def get_config(self) -> dict[str, Any]:
        return dict(self._config)

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> JinaEmbeddingFunction:
        JinaEmbeddingFunction.validate_config(config)
        options = {key: value for key, value in config.items() if key != "model_name"}
        return JinaEmbeddingFunction(config["model_name"], **options)

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        check_instance("config", config, dict, "pass the dict get_config() returns")
        served = isinstance(config.get("base_url"), str)  # the server's model: no model_name
        if not served and (
            not isinstance(config.get("model_name"), str) or not config["model_name"]
        ):
            raise InputError(
                f"jinarag embedding function config has model_name={config.get('model_name')!r}; "
                "it must be a model alias, Hub id or local path (or base_url a server's URL)."
            )
        unknown = sorted(set(config) - {*_CONFIG_KEYS, *_ALIASES})
        if unknown:
            raise InputError(
                f"jinarag embedding function config has unknown keys {unknown}; "
                f"known keys: {list(_CONFIG_KEYS)}."
            )
        # This function's own values here; the loading options are checked by LoadOptions.
        _check_values(**{key: config[key] for key in (*_OWN_KEYS, *_ALIASES) if key in config})

    def validate_config_update(
        self, old_config: dict[str, Any], new_config: dict[str, Any]
    ) -> None:
        # Another model writes vectors into another space: the stored ones would stop matching.
        changed = [
            key
            for key in _SPACE_KEYS
            if key in new_config and new_config[key] != old_config.get(key)
        ]
        if changed:
            raise EmbedderMismatchError(
                f"Changing {', '.join(changed)} of a jinarag embedding function would mix vector "
                "spaces in one collection; create a new collection and re-add the documents."
            )


def _check_values(**values: Any) -> None:
    """InputError for a bad value of one of this function's own parameters (a config's key,
    or the constructor's argument of the same name); those not given are not checked."""
    for name in ("model_name", "base_url"):
        if values.get(name) is not None:
            check_instance(name, values[name], str, "pass it as a string")
    for name in ("query_prefix", "document_prefix"):
        if name in values:
            check_text(values[name], name)
    if "batch_size" in values:
        positive_int("batch_size", values["batch_size"])
    _normalize(values.get("normalize"), values.get("normalize_embeddings"))
    TaskFields.checked(*(values.get(name) for name in TASK_FIELDS))


def _normalize(normalize: Any, normalize_embeddings: Any) -> bool:
    """``normalize``, given under our name or Chroma's (``normalize_embeddings``); True when
    neither is given, an InputError when both are and they differ."""
    if normalize_embeddings is None:
        return check_bool("normalize", normalize) if normalize is not None else True
    normalize_embeddings = check_bool("normalize_embeddings", normalize_embeddings)
    if normalize is not None and normalize != normalize_embeddings:
        raise InputError(
            f"{_OWNER} got normalize={normalize!r} and normalize_embeddings="
            f"{normalize_embeddings!r}: they are the same setting; pass one of them"
        )
    return normalize_embeddings

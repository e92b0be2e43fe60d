"""A Chroma embedding function over a local jinarag Embedder."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

from jinarag.errors import EmbedderMismatchError, InputError

if TYPE_CHECKING:
    from jinarag import Embedder

# Chroma rebuilds the embedding function from the stored config on every query and add, so
# loaded models are kept here (a few at most) instead of being reloaded each time.
_CACHE_SIZE = 4
_cache: OrderedDict[tuple[Any, ...], Embedder] = OrderedDict()
_cache_lock = threading.Lock()

_LOAD_KEYS = ("model_name", "device", "dtype", "max_length", "query_prefix", "document_prefix")
_CONFIG_KEYS = (*_LOAD_KEYS, "batch_size", "normalize")


def _cached_embedder(config: dict[str, Any], embedder: Embedder | None = None) -> Embedder:
    key = tuple(config[name] for name in _LOAD_KEYS)
    with _cache_lock:
        if embedder is None and key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    if embedder is None:
        from jinarag import Embedder

        embedder = Embedder.from_pretrained(
            config["model_name"],
            device=config["device"],
            dtype=config["dtype"],
            max_length=config["max_length"],
            query_prefix=config["query_prefix"],
            document_prefix=config["document_prefix"],
        )
    with _cache_lock:
        _cache[key] = embedder
        _cache.move_to_end(key)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return embedder


@register_embedding_function
class JinaEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma embedding function backed by a local Jina (or any supported BERT) embedder.

    Documents are embedded on the document side, ``query_texts`` on the query side. The
    collection stores this function's config, so a collection reopened without passing it gets
    it back, provided ``jinarag.chroma`` has been imported in that process (Chroma only knows
    embedding functions that were registered by importing their module).

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
    """

    def __init__(
        self,
        model_name: str | None = None,
        *,
        embedder: Embedder | None = None,
        device: str = "auto",
        dtype: str = "auto",
        max_length: int | None = None,
        query_prefix: str = "",
        document_prefix: str = "",
        batch_size: int = 32,
        normalize: bool = True,
    ) -> None:
        """Load a model by name or path, or wrap an ``embedder`` that is already loaded.

        Args:
            model_name: Alias (``"small"``, ``"base"``), Hub id or local directory.
            embedder: A loaded ``jinarag.Embedder``, instead of ``model_name``; its name and
                options are what the collection stores.
            device: Where to run the model (``"auto"``, ``"cpu"``, ``"cuda"``).
            dtype: Weight dtype (``"auto"``, ``"float32"``, ``"float16"``, ``"bfloat16"``).
            max_length: Token limit per text; ``None`` uses the model's.
            query_prefix: Text put before each query.
            document_prefix: Text put before each document.
            batch_size: Texts per forward pass.
            normalize: L2-normalise the vectors (what the cosine space expects).
        """
        if (embedder is None) == (model_name is None):
            raise InputError(
                "JinaEmbeddingFunction needs one model: pass model_name (an alias, Hub id or "
                "local directory) or embedder=jinarag.Embedder.from_pretrained(...), not both."
            )
        if embedder is not None:
            model_name = embedder.name
            max_length = embedder.max_length
            query_prefix = embedder.query_prefix
            document_prefix = embedder.document_prefix
        self._config: dict[str, Any] = {
            "model_name": model_name,
            "device": device,
            "dtype": dtype,
            "max_length": max_length,
            "query_prefix": query_prefix,
            "document_prefix": document_prefix,
            "batch_size": batch_size,
            "normalize": normalize,
        }
        self.validate_config(self._config)
        self._embedder = _cached_embedder(self._config, embedder)

    @property
    def embedder(self) -> Embedder:
        """The loaded ``jinarag.Embedder``."""
        return self._embedder

    def __call__(self, input: Documents) -> Embeddings:
        """Embed documents (the document side)."""
        vectors = self._embedder.embed_documents(list(input), **self._embed_options())
        return list(vectors)

    def embed_query(self, input: Documents) -> Embeddings:
        """Embed query texts (the query side)."""
        vectors = self._embedder.embed_queries(list(input), **self._embed_options())
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
        if not isinstance(config.get("model_name"), str) or not config["model_name"]:
            raise InputError(
                f"jinarag embedding function config has model_name={config.get('model_name')!r}; "
                "it must be a model alias, Hub id or local path."
            )
        # Values are checked where they are used (loading, embedding); unknown keys here.
        unknown = sorted(set(config) - set(_CONFIG_KEYS))
        if unknown:
            raise InputError(
                f"jinarag embedding function config has unknown keys {unknown}; "
                f"known keys: {list(_CONFIG_KEYS)}."
            )

    def validate_config_update(
        self, old_config: dict[str, Any], new_config: dict[str, Any]
    ) -> None:
        # Another model writes vectors into another space: the stored ones would stop matching.
        changed = [
            key
            for key in ("model_name", "query_prefix", "document_prefix")
            if key in new_config and new_config[key] != old_config.get(key)
        ]
        if changed:
            raise EmbedderMismatchError(
                f"Changing {', '.join(changed)} of a jinarag embedding function would mix vector "
                "spaces in one collection; create a new collection and re-add the documents."
            )

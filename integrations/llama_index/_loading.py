"""Model loading shared by the LlamaIndex adapters."""

from __future__ import annotations

from typing import Any

from jinarag.errors import InputError


def load_or_use(owner: str, kind: str, name: Any, loaded: Any, **options: Any) -> Any:
    """Return the already loaded model, or load ``jinarag.<kind>`` from ``name``.

    Args:
        owner: The adapter class, named in errors.
        kind: ``"Embedder"`` or ``"Reranker"``.
        name: An alias, Hub id or local path, or None.
        loaded: A loaded model, or None.
        **options: Loading options for ``from_pretrained``.
    """
    keyword = kind.lower()
    if (name is None) == (loaded is None):
        given = "both" if name is not None else "neither"
        raise InputError(
            f"{owner} got {given} of a model name and {keyword}=: pass a name (an alias, Hub id "
            f"or local directory) or {keyword}=jinarag.{kind}.from_pretrained(...), not both."
        )
    if loaded is not None:
        return loaded
    import jinarag

    return getattr(jinarag, kind).from_pretrained(name, **options)

"""Loading shared by the LangChain adapters: a loaded model, or one loaded from a name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinarag.errors import InputError


def resolve(
    owner: str, kind: type, model: str | Path | None, loaded: Any, options: dict[str, Any]
) -> Any:
    """Return `loaded`, or `kind.from_pretrained(model, **options)` when it is None.

    `owner` names the adapter class in errors; exactly one of `model` and `loaded` is expected.
    """
    arg = kind.__name__.lower()
    if loaded is not None and model is not None:
        raise InputError(
            f"{owner} got both model={str(model)!r} and {arg}=; pass one of them, not both"
        )
    if loaded is not None:
        return loaded
    if model is None:
        raise InputError(
            f"{owner} needs model= (an alias, a Hub id or a local path) "
            f"or {arg}= (a loaded jinarag.{kind.__name__})"
        )
    return kind.from_pretrained(model, **options)

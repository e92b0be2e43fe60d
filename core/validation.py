"""Input checks every layer may use: one wording per kind of mistake, each naming the fix.

Everything here raises :class:`jinarag.errors.InputError` (a ``ValueError``) and imports
nothing but the errors module, so the models, the index, the CLI and the server share it.
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

from jinarag.errors import InputError

__all__ = ["check_choice", "check_keywords", "check_text", "check_texts", "positive_int"]


def check_texts(texts: Iterable[str], name: str = "texts") -> list[str]:
    """A list of strings, or InputError naming the first bad item and its index."""
    if isinstance(texts, (str, bytes)):
        raise InputError(
            f"{name} must be a list of strings, got {type(texts).__name__}; "
            "wrap a single text in a list: [text]"
        )
    try:
        items = list(texts)
    except TypeError as exc:
        raise InputError(f"{name} must be a list of strings, got {type(texts).__name__}") from exc
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise InputError(
                f"{name}[{index}] is {type(item).__name__} {item!r:.60}; pass strings only "
                "(convert the value, or drop it: None is not a text)"
            )
    return items


def check_text(text: Any, name: str = "query") -> str:
    """One string, or InputError naming what was passed instead."""
    if not isinstance(text, str):
        raise InputError(
            f"{name} must be a string, got {type(text).__name__} {text!r:.60}; pass one string"
        )
    return text


def positive_int(
    name: str, value: Any, *, allow_none: bool = False, allow_zero: bool = False
) -> int | None:
    """A positive integer (numpy's too; ``bool`` is not one), or None when ``allow_none``,
    or 0 when ``allow_zero``."""
    if value is None and allow_none:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < 0
        or (value == 0 and not allow_zero)
    ):
        kind = "a non-negative" if allow_zero else "a positive"
        raise InputError(f"{name} must be {kind} integer, got {value!r}")
    return int(value)


def check_keywords(owner: str, given: Iterable[str], accepted: Iterable[str]) -> None:
    """InputError naming every keyword of ``given`` that ``owner`` does not accept, with the
    accepted ones (and the closest one, for a typo). Values are not shown: they may be secrets.
    """
    allowed = list(dict.fromkeys(accepted))
    unknown = [key for key in given if key not in allowed]
    if not unknown:
        return
    hints = [
        match[0] if len(unknown) == 1 else f"{match[0]} for {key}"
        for key in unknown
        if (match := difflib.get_close_matches(key, allowed, n=1, cutoff=0.75))
    ]
    plural = "s" if len(unknown) > 1 else ""
    raise InputError(
        f"{owner} got unknown option{plural} {', '.join(unknown)}"
        + (f" (did you mean {', '.join(hints)}?)" if hints else "")
        + f"; the accepted options are: {', '.join(allowed)}."
    )


def check_choice(what: str, value: Any, choices: Sequence[Any]) -> Any:
    """``value`` when it is one of ``choices``; else InputError listing them."""
    if value not in choices:
        listed = ", ".join(repr(c) if not isinstance(c, str) else c for c in choices)
        raise InputError(f"unknown {what} {value!r}; choose one of {listed}")
    return value

"""Input checks every layer may use: one wording per kind of mistake, each naming the fix.

Everything here raises :class:`jinarag.errors.InputError` (a ``ValueError``) and imports
nothing but the errors module, so the models, the index, the CLI and the server share it.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import numbers
import os
import re
import sys
from collections.abc import Iterable, Mapping, MappingView, Sequence, Set
from typing import Any

from jinarag.errors import InputError

__all__ = [
    "check_bool",
    "check_callable",
    "check_choice",
    "check_instance",
    "check_keywords",
    "check_number",
    "check_pairs",
    "check_path",
    "check_paths",
    "check_text",
    "check_texts",
    "describe",
    "known_keywords",
    "ordered_list",
    "positive_int",
]

# UTF-16 halves that are not part of a character: the tokenizer (and any UTF-8 writer) refuses
# them, and they mean the text was decoded wrongly upstream.
_SURROGATE = re.compile("[\ud800-\udfff]")


def ordered_list(
    values: Iterable[Any], name: str, kind: str, example: str, one: str = "one"
) -> list[Any]:
    """``values`` as a list, refusing a lone string, a mapping and a set (their order is not
    one the caller wrote down, and a dict would give its keys). ``kind`` names the items
    (plural), ``one`` a single item, ``example`` how one is written."""
    if isinstance(values, (str, bytes)):
        raise InputError(
            f"{name} must be a list of {kind}, got {type(values).__name__}; "
            f"wrap a single {one} in a list: [{example}]"
        )
    if isinstance(values, (Mapping, Set, MappingView)):
        why = (
            "a mapping would give its keys, not its values"
            if isinstance(values, Mapping)
            else "its order is not one you chose, so results could not be matched to inputs"
        )
        raise InputError(
            f"{name} must be a list of {kind}, got {type(values).__name__} {values!r:.60}: "
            f"{why}; pass a list in the order you want, e.g. list(d.values()) or sorted({name})"
        )
    try:
        return list(values)
    except TypeError as exc:
        raise InputError(f"{name} must be a list of {kind}, got {type(values).__name__}") from exc


def check_texts(texts: Iterable[str], name: str = "texts") -> list[str]:
    """A list of strings, or InputError naming the first bad item and its index.

    Any ordered iterable is taken (a list, a tuple, a generator); a mapping or a set is
    refused, because its order is not one the caller wrote down and a dict would give its keys.
    """
    items = ordered_list(texts, name, "strings", "text", one="text")
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise InputError(
                f"{name}[{index}] is {type(item).__name__} {item!r:.60}; pass strings only "
                "(convert the value, or drop it: None is not a text)"
            )
        _check_unicode(item, f"{name}[{index}]")
    return items


def check_pairs(pairs: Iterable[tuple[str, str]], name: str = "pairs") -> list[tuple[str, str]]:
    """A list of (query, document) string pairs, or InputError naming the first bad one."""
    items = ordered_list(pairs, name, "(query, document) pairs", "(query, document)", "pair")
    checked = []
    for index, item in enumerate(items):
        if isinstance(item, (str, bytes)) or not isinstance(item, Sequence) or len(item) != 2:
            raise InputError(
                f"{name}[{index}] is {type(item).__name__} {item!r:.60}; each pair must be a "
                "(query, document) tuple of two strings"
            )
        query, document = item
        for part, value in (("query", query), ("document", document)):
            if not isinstance(value, str):
                raise InputError(
                    f"{name}[{index}]'s {part} is {type(value).__name__} {value!r:.60}; pass "
                    "strings only"
                )
            _check_unicode(value, f"{name}[{index}]'s {part}")
        checked.append((query, document))
    return checked


def check_text(text: Any, name: str = "query") -> str:
    """One string, or InputError naming what was passed instead."""
    if not isinstance(text, str):
        raise InputError(
            f"{name} must be a string, got {type(text).__name__} {text!r:.60}; pass one string"
        )
    _check_unicode(text, name)
    return text


def _check_unicode(text: str, name: str) -> None:
    """InputError when ``text`` holds a lone surrogate (refused rather than replaced: the text
    embedded or stored would silently differ from the one passed)."""
    found = _SURROGATE.search(text)
    if found is None:
        return
    position = found.start()
    code = ord(found.group())
    following = text[position + 1 : position + 2]
    if 0xD800 <= code <= 0xDBFF and following and 0xDC00 <= ord(following) <= 0xDFFF:
        # A high and a low half in a row: one character left split in two by a UTF-16 decode.
        what = f"the split surrogate pair U+{code:04X} U+{ord(following):04X}"
        fix = "join the pair, e.g. text.encode('utf-16', 'surrogatepass').decode('utf-16')"
    else:
        what = f"a lone surrogate U+{code:04X}"
        fix = "fix the text's encoding, e.g. text.encode('utf-8', 'replace').decode()"
    raise InputError(
        f"{name} contains {what} at character {position} (not valid Unicode, often a file "
        f"decoded with the wrong codec or errors='surrogateescape'); {fix}"
    )


def check_bool(name: str, value: Any) -> bool:
    """``value`` when it is True or False (numpy's too); anything else is an InputError, since
    a string like ``"no"`` or a number would be read as truthy or falsy without a word."""
    if isinstance(value, bool):
        return value
    numpy = sys.modules.get("numpy")  # a numpy bool implies numpy is imported
    if numpy is not None and isinstance(value, numpy.bool_):
        return bool(value)
    raise InputError(f"{name} must be True or False, got {type(value).__name__} {value!r:.60}")


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


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    allow_none: bool = False,
) -> float | None:
    """``value`` as a float when it is a real number (numpy's too; ``bool`` and NaN are not)
    within ``[low, high]``; None when ``allow_none``; else InputError naming the range."""
    if value is None and allow_none:
        return None
    bounds = (
        f" between {low} and {high}"
        if low is not None and high is not None
        else f" of at least {low}"
        if low is not None
        else f" of at most {high}"
        if high is not None
        else ""
    )
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != value:
        raise InputError(
            f"{name} must be a number{bounds}, got {type(value).__name__} {value!r:.60}"
        )
    if (low is not None and value < low) or (high is not None and value > high):
        raise InputError(f"{name} must be a number{bounds}, got {value!r}")
    return float(value)


def check_instance(name: str, value: Any, kinds: type | tuple[type, ...], fix: str) -> Any:
    """``value`` when it is an instance of ``kinds``; else InputError naming what it is and
    ``fix`` (how to make the right one)."""
    if not isinstance(value, kinds):
        wanted = " or ".join(k.__name__ for k in (kinds if isinstance(kinds, tuple) else (kinds,)))
        raise InputError(
            f"{name} must be a {wanted}, got {type(value).__name__} {value!r:.60}; {fix}"
        )
    return value


def check_callable(name: str, value: Any, *, allow_none: bool = True) -> Any:
    """``value`` when it can be called (or is None, when ``allow_none``); else an InputError,
    since a flag like ``stop=True`` would fail only when first asked, mid-run."""
    if (value is None and allow_none) or callable(value):
        return value
    raise InputError(
        f"{name} must be a function taking no arguments (or None), got "
        f"{type(value).__name__} {value!r:.60}; e.g. {name}=lambda: False"
    )


def check_path(name: str, value: Any, *, allow_none: bool = False, what: str = "a path") -> Any:
    """``value`` when it is a non-empty ``str`` or ``os.PathLike`` (or None, when
    ``allow_none``); else an InputError naming it. ``what`` says what the string names."""
    if value is None and allow_none:
        return None
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        kind = "an empty string ''" if value == "" else f"{type(value).__name__} {value!r:.60}"
        fix = "; decode it first, e.g. value.decode()" if isinstance(value, bytes) else ""
        raise InputError(
            f"{name} must be {what} (a non-empty str or pathlib.Path), got {kind}{fix}"
        )
    return value


def check_paths(paths: Any, name: str = "paths") -> list[Any]:
    """A list of paths: one ``str`` or ``os.PathLike`` is taken as one path (never as the
    characters of a string), any other ordered collection item by item."""
    if isinstance(paths, (str, os.PathLike)):
        return [check_path(name, paths)]
    if paths is None:
        raise InputError(f"{name} must be a path or a list of paths, got None")
    items = ordered_list(paths, name, "paths", "'docs/'", one="path")
    return [check_path(f"{name}[{index}]", item) for index, item in enumerate(items)]


def known_keywords(function: Any) -> Any:
    """Decorator: a keyword ``function`` does not take is an InputError naming the accepted
    ones (with the closest, for a typo), instead of Python's bare TypeError. The signature is
    kept (``inspect.signature`` follows ``__wrapped__``). On a class, every public method
    defined in its body and ``__init__`` are decorated."""
    if isinstance(function, type):
        for key, value in list(vars(function).items()):
            if inspect.isfunction(value) and (key == "__init__" or not key.startswith("_")):
                setattr(function, key, known_keywords(value))
        return function
    parameters = inspect.signature(function).parameters
    takes = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    names = [n for n, p in parameters.items() if p.kind in takes]
    method = bool(names) and names[0] in ("self", "cls")
    accepted = names[1:] if method else names
    allowed = frozenset(accepted)

    @functools.wraps(function)
    def checked(*args: Any, **kwargs: Any) -> Any:
        if not allowed.issuperset(kwargs):
            owner = function.__name__
            if method and args:
                holder = args[0] if isinstance(args[0], type) else type(args[0])
                owner = holder.__name__ if owner == "__init__" else f"{holder.__name__}.{owner}"
            check_keywords(owner, kwargs, accepted)
        return function(*args, **kwargs)

    return checked


def describe(value: Any, limit: int = 60) -> str:
    """``value`` for an error message: its type and repr, the repr cut to ``limit``
    characters with ``...`` (a model's or an index's repr runs long)."""
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= limit else text[: limit - 3] + '...'}"

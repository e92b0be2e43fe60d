"""The BM25 tokenizer: one for documents and queries alike.

It applies Unicode NFKC normalisation, case-folds (lowercase), and splits into runs of letters
and digits (``"Mach-2.5 wings"`` → ``["mach", "2", "5", "wings"]``); with
``stopwords="english"`` (or your own word list) it drops stopwords too, and with
``stemmer="english"`` it reduces each remaining word to its Snowball stem (PyStemmer:
``"wings"`` → ``"wing"``, ``"flows"`` → ``"flow"``). :meth:`Tokenizer.spec` describes the
settings; :mod:`jinarag.retrieval.keyword.bm25` stores it with the snapshot, so a snapshot cut
another way is never read back.

Example:
    >>> Tokenizer(stopwords="english", stemmer="english")("Flows over swept wings")
    ['flow', 'swept', 'wing']
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from jinarag.errors import InputError

__all__ = ["ENGLISH_STOPWORDS", "Tokenizer", "stemmer_names", "tokenize"]

# A short list of English function words; content words (even common ones) stay searchable.
_ENGLISH = """
    a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers herself him himself his how i if in into is it its itself
    just me more most my myself no nor not now of off on once only or other our ours ourselves out
    over own same she should so some such than that the their theirs them themselves then there
    these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours yourself yourselves
"""
ENGLISH_STOPWORDS = frozenset(_ENGLISH.split())

_WORD = re.compile(r"[^\W_]+")


def stemmer_names() -> list[str]:
    """The Snowball stemmers PyStemmer offers (``"english"``, ``"porter"``, ``"german"`` ...)."""
    import Stemmer

    return sorted(Stemmer.algorithms())


def _make_stemmer(name: str) -> Any:
    try:
        import Stemmer
    except ImportError as exc:  # a core dependency; missing only in a broken install
        raise ImportError(
            "stemming needs the PyStemmer package: pip install PyStemmer (or pass stemmer=None)"
        ) from exc
    if name not in Stemmer.algorithms():
        raise InputError(
            f"stemmer must be None or a Snowball stemmer name, got {name!r}; choose one of "
            f"{stemmer_names()} (e.g. 'english'), or None for no stemming"
        )
    return Stemmer.Stemmer(name)


def tokenize(text: str, stopwords: Collection[str] | None = None) -> list[str]:
    """Split ``text`` into BM25 terms (see the module docstring for the rules).

    Example:
        >>> tokenize("Mach-2.5 wings, at the Tip")
        ['mach', '2', '5', 'wings', 'at', 'the', 'tip']
        >>> tokenize("Mach-2.5 wings, at the Tip", ENGLISH_STOPWORDS)
        ['mach', '2', '5', 'wings', 'tip']
    """
    words = _WORD.findall(unicodedata.normalize("NFKC", text).casefold())
    if stopwords:
        return [w for w in words if w not in stopwords]
    return words


@dataclass(frozen=True)
class Tokenizer:
    """The BM25 tokenizer with its settings; the same object tokenises documents and queries.

    Args:
        stopwords: None (keep every word), ``"english"`` (:data:`ENGLISH_STOPWORDS`) or your own
            words (compared after case folding, before stemming).
        stemmer: None (no stemming) or a Snowball stemmer name, e.g. ``"english"``
            (:func:`stemmer_names` lists them).

    Example:
        >>> Tokenizer(stopwords="english")("The drag of a cone")
        ['drag', 'cone']
        >>> Tokenizer(stopwords="english", stemmer="english")("Flows over swept wings")
        ['flow', 'swept', 'wing']
    """

    stopwords: str | frozenset[str] | None = None
    stemmer: str | None = None

    def __post_init__(self) -> None:
        if self.stemmer is not None and not isinstance(self.stemmer, str):
            raise InputError(
                f"stemmer must be None or a Snowball stemmer name such as 'english', "
                f"got {self.stemmer!r}"
            )
        stem = _make_stemmer(self.stemmer) if self.stemmer is not None else None
        object.__setattr__(self, "_stem", stem)
        sw = self.stopwords
        if sw is None or sw == "english":
            return
        if isinstance(sw, str) or not isinstance(sw, Iterable):
            raise InputError(
                f"stopwords must be None, 'english' or a collection of words, got {sw!r}"
            )
        words = frozenset(sw)
        if not all(isinstance(w, str) for w in words):
            raise InputError(f"stopwords must all be strings, got {sorted(map(repr, words))}")
        folded = frozenset(unicodedata.normalize("NFKC", w).casefold() for w in words)
        object.__setattr__(self, "stopwords", folded)

    @property
    def words(self) -> frozenset[str]:
        """The stopwords in effect (empty when none)."""
        if self.stopwords is None:
            return frozenset()
        if self.stopwords == "english":
            return ENGLISH_STOPWORDS
        return frozenset(self.stopwords)

    def __call__(self, text: str) -> list[str]:
        words = tokenize(text, self.words)
        stem = self._stem  # type: ignore[attr-defined]
        return stem.stemWords(words) if stem is not None and words else words

    def spec(self) -> dict[str, Any]:
        """A JSON-able description, stored in snapshots to tell whether their tokens still fit."""
        sw = self.stopwords
        words = sorted(sw) if isinstance(sw, frozenset) else sw
        return {"stopwords": words, "stemmer": self.stemmer}

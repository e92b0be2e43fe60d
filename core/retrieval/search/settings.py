"""Fusion settings fitted to a collection's own judged queries, kept in a JSON file.

``jinarag tune DATASET --store STORE`` writes ``STORE/jinarag-fusion.json``;
:class:`jinarag.HybridIndex` reads it when it is present beside the store, and uses it in place
of the shipped defaults (:mod:`jinarag.retrieval.search.plan`). Arguments given to the index or to a
search call still win. The file::

    {"format": "jinarag-fusion/1", "fusion": "rrf", "rrf_k": 100, "candidates": 100,
     "weights": {"rrf": [0.75, 1.0], "relative": [0.75, 1.0], "dbsf": [0.75, 1.0]},
     "tuned_on": {...}}

``weights`` holds (dense, bm25) for each fusion method (one missing keeps the shipped one);
``tuned_on`` says where the numbers came from and is not read back.

Example:
    >>> settings = FusionSettings("dbsf", {"dbsf": (1.0, 0.5)}, rrf_k=60, candidates=50)
    >>> write_fusion_settings(Path("store") / FUSION_FILE, settings, {"dataset": "mine"})
    >>> read_fusion_settings(Path("store") / FUSION_FILE) == settings
    True
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinarag.errors import InputError
from jinarag.retrieval.keyword.snapshot import atomic_write
from jinarag.retrieval.search import fusion as _fusion
from jinarag.validation import check_choice, positive_int

__all__ = [
    "FUSION_FILE",
    "FUSION_FORMAT",
    "FusionSettings",
    "read_fusion_settings",
    "tuned_settings",
    "write_fusion_settings",
]

FUSION_FILE = "jinarag-fusion.json"
FUSION_FORMAT = "jinarag-fusion/1"


@dataclass(frozen=True)
class FusionSettings:
    """A fusion method, (dense, bm25) weights per method, the RRF ``k`` and the candidates.

    Raises:
        InputError: an unknown method, bad weights, ``rrf_k`` or ``candidates``.
    """

    fusion: str
    weights: Mapping[str, Sequence[float]] = field(default_factory=dict)
    rrf_k: float = _fusion.RRF_K
    candidates: int = 100

    def __post_init__(self) -> None:
        check_choice("fusion", self.fusion, _fusion.FUSION_METHODS)
        if not isinstance(self.weights, Mapping):
            raise InputError(
                f"weights must map fusion methods to (dense, bm25) pairs, got {self.weights!r}"
            )
        weights = {}
        for method, pair in self.weights.items():
            check_choice("fusion", method, _fusion.FUSION_METHODS)
            weights[method] = tuple(_fusion.normalize_weights(pair, 2))
        object.__setattr__(self, "weights", weights)
        _fusion.rrf([], k=self.rrf_k)  # validates k
        positive_int("candidates", self.candidates)

    def to_json(self) -> dict[str, Any]:
        """The file's fields (without ``format`` and ``tuned_on``)."""
        return {
            "fusion": self.fusion,
            "rrf_k": self.rrf_k,
            "candidates": self.candidates,
            "weights": {m: list(w) for m, w in self.weights.items()},
        }


def read_fusion_settings(path: Path) -> FusionSettings | None:
    """The settings in ``path``, or None when there is no such file.

    Raises:
        InputError: the file is not a fusion settings file or holds bad values (the message
            names it and says how to fix it).
    """
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InputError(
            f"cannot read the fusion settings {path} ({exc.strerror or exc}); fix its "
            "permissions, or delete it to use the shipped defaults"
        ) from exc
    fix = "run `jinarag tune` again to rewrite it, or delete it to use the shipped defaults"
    try:
        payload = json.loads(raw)
        if not isinstance(payload, dict) or payload.get("format") != FUSION_FORMAT:
            raise InputError(f"its format is not {FUSION_FORMAT!r}")
        return FusionSettings(
            payload["fusion"], payload.get("weights", {}), payload["rrf_k"], payload["candidates"]
        )
    except KeyError as exc:
        raise InputError(f"{path} has no {exc} field; {fix}") from exc
    except (ValueError, TypeError) as exc:  # InputError is a ValueError
        raise InputError(f"{path} is not a usable fusion settings file ({exc}); {fix}") from exc


def write_fusion_settings(path: Path, settings: FusionSettings, tuned_on: dict[str, Any]) -> None:
    """Save ``settings`` to ``path`` atomically, with ``tuned_on`` (what they were fitted on)."""
    payload = {"format": FUSION_FORMAT, **settings.to_json(), "tuned_on": tuned_on}
    atomic_write(path, (json.dumps(payload, indent=2) + "\n").encode("utf-8"))


def tuned_settings(folder: Path) -> FusionSettings | None:
    """A store's tuned fusion settings (None when there are none). Only a folder this process
    can list holds them: a store path that is a file, or a folder without permission, is the
    store's own error, which opening Chroma names (with the fix)."""
    try:
        with os.scandir(folder):
            pass
    except OSError:
        return None
    return read_fusion_settings(folder / FUSION_FILE)

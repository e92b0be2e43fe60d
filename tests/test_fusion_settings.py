"""The tuned fusion settings file: round trip, and every bad file named with its fix."""

from __future__ import annotations

import json

import pytest

from jinarag.errors import InputError
from jinarag.retrieval.search.settings import (
    FUSION_FORMAT,
    FusionSettings,
    read_fusion_settings,
    write_fusion_settings,
)


def test_round_trip(tmp_path):
    path = tmp_path / "store" / "jinarag-fusion.json"
    settings = FusionSettings("dbsf", {"dbsf": [1, 0.5]}, rrf_k=60, candidates=50)
    assert settings.weights == {"dbsf": (1.0, 0.5)}
    write_fusion_settings(path, settings, {"dataset": "mine"})
    assert read_fusion_settings(path) == settings
    assert json.loads(path.read_text())["tuned_on"] == {"dataset": "mine"}
    assert read_fusion_settings(tmp_path / "missing.json") is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "is not a usable fusion settings file"),
        ('{"fusion": "rrf"}', f"its format is not '{FUSION_FORMAT}'"),
        (f'{{"format": "{FUSION_FORMAT}", "rrf_k": 60, "candidates": 5}}', "has no 'fusion' field"),
        (
            f'{{"format": "{FUSION_FORMAT}", "fusion": "max", "rrf_k": 60, "candidates": 5}}',
            "unknown fusion 'max'",
        ),
        (
            f'{{"format": "{FUSION_FORMAT}", "fusion": "rrf", "rrf_k": 60, "candidates": 0}}',
            "candidates must be a positive integer",
        ),
        (
            f'{{"format": "{FUSION_FORMAT}", "fusion": "rrf", "rrf_k": 60, "candidates": 5, '
            '"weights": {"rrf": [1, -1]}}',
            "each weight must be a finite number >= 0",
        ),
    ],
)
def test_a_bad_file_is_named_with_the_fix(tmp_path, content, message):
    path = tmp_path / "jinarag-fusion.json"
    path.write_text(content)
    with pytest.raises(InputError) as info:
        read_fusion_settings(path)
    assert message in str(info.value) and str(path) in str(info.value)
    assert "jinarag tune" in str(info.value)

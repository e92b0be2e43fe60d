"""jinarag.langchain without LangChain installed, and the LangChain cookbook run end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from langchain_helpers import cranfield_records, distinctive_sentence

ROOT = Path(__file__).resolve().parent.parent
COOKBOOK = ROOT / "cookbooks" / "langchain_rag.py"


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
    env.pop("OPENAI_API_KEY", None)  # the cookbook must take its fake-LLM path here
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.mark.slow
def test_cookbook_answers_from_the_expected_document(cranfield_dir):
    limit = 60
    question, expected_id = distinctive_sentence(cranfield_records(cranfield_dir, limit), 41)

    result = _run(
        [str(COOKBOOK), "--limit", str(limit), "--k", "3", "--question", question], timeout=600
    )

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"indexed {limit} documents" in out
    sources = [line for line in out.splitlines() if line.lstrip().startswith("1.")]
    assert sources and f"[{expected_id}]" in sources[0], out
    assert "answer:" in out


@pytest.mark.slow
def test_cookbook_reranks_when_a_reranker_is_given(minilm_reranker_dir):
    result = _run(
        [str(COOKBOOK), "--limit", "30", "--k", "2", "--reranker", str(minilm_reranker_dir)],
        timeout=600,
    )

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"reranker: {minilm_reranker_dir}" in out
    lines = [line.strip() for line in out.splitlines()]
    sources = [line for line in lines if line[:2] in ("1.", "2.", "3.")]
    assert [line[:2] for line in sources] == ["1.", "2."], out
    relevance = [float(line.split("relevance ", 1)[1].split()[0]) for line in sources]
    assert relevance == sorted(relevance, reverse=True)
    assert all(0.0 < r < 1.0 for r in relevance)
    assert "answer: (fake LLM)" in out

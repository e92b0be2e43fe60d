"""cookbooks/llama_index_rag.py run end to end, as a user would run it (offline, MockLLM)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("llama_index.core")

COOKBOOK = Path(__file__).resolve().parent.parent / "cookbooks" / "llama_index_rag.py"
SOURCE = re.compile(r"^  (\d+)\. \[([^\]]+)\] (.*)$", re.MULTILINE)


def _run(*args: str) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
    env.pop("OPENAI_API_KEY", None)  # the MockLLM path is the one under test
    proc = subprocess.run(
        [sys.executable, str(COOKBOOK), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _texts(cranfield_dir: Path) -> dict[str, str]:
    with open(cranfield_dir / "corpus.jsonl") as f:
        return {row["_id"]: row["text"] for row in map(json.loads, f)}


@pytest.mark.slow
def test_cookbook_retrieves_judged_documents_with_defaults(cranfield_dir):
    limit = 40
    with open(cranfield_dir / "qrels" / "test.tsv") as f:
        relevant = {
            doc
            for query, doc, _ in (line.split("\t") for line in f.read().splitlines()[1:])
            if query == "3" and int(doc) <= limit
        }
    assert relevant == {"5", "6"}  # the default question is Cranfield query 3

    out = _run("--limit", str(limit), "--k", "3", "--no-rerank")
    sources = SOURCE.findall(out)
    assert [int(rank) for rank, _, _ in sources] == [1, 2, 3]
    ids = [doc for _, doc, _ in sources]
    assert ids[0] in relevant, out  # a judged answer first, among 40 documents
    assert f"indexed {limit} documents" in out
    assert "llm: MockLLM" in out
    # MockLLM answers with its prompt: the retrieved texts are what it was given.
    answer = out[out.index("answer: ") :]
    texts = _texts(cranfield_dir)
    for doc in ids:
        assert texts[doc][:80] in answer


@pytest.mark.slow
def test_cookbook_reranks_when_given_a_reranker(cranfield_dir, minilm_dir, minilm_reranker_dir):
    out = _run(
        "--limit",
        "40",
        "--k",
        "2",
        "--embedder",
        str(minilm_dir),
        "--reranker",
        str(minilm_reranker_dir),
        "--question",
        "heat transfer in slip flow over a flat plate",
    )
    assert f"reranker: {minilm_reranker_dir}" in out
    sources = SOURCE.findall(out)
    assert len(sources) == 2
    relevance = [float(re.match(r"relevance ([0-9.]+)", rest).group(1)) for _, _, rest in sources]
    assert relevance == sorted(relevance, reverse=True)
    assert all(0.0 < r < 1.0 for r in relevance)

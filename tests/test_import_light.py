"""`import jinarag` stays light: no framework, vector store, web server or peer library."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # each test starts a fresh interpreter

HEAVY = [
    "langchain",
    "langchain_core",
    "llama_index",
    "haystack",
    "chromadb",
    "fastapi",
    "uvicorn",
    "rank_bm25",
    "bm25s",
    "sentence_transformers",
    "transformers",
    "ray",
    "openvino",  # backend="auto" imports it when a model is loaded, not before
    "nncf",
]

# One fresh interpreter: what `import jinarag` loads, then (to prove the probe can see a heavy
# import) what is loaded after importing one heavy package on purpose.
PROBE = """
import json, sys
import jinarag
jinarag.Embedder, jinarag.Reranker, jinarag.errors
after_jinarag = sorted(sys.modules)
import rank_bm25
print(json.dumps([after_jinarag, sorted(sys.modules)]))
"""


def test_import_jinarag_imports_no_heavy_package():
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    after_jinarag, after_heavy = (set(m) for m in json.loads(out.stdout.strip().splitlines()[-1]))
    assert {"jinarag", "jinarag.inference.embedder", "jinarag.inference.reranker"} <= after_jinarag
    offenders = sorted(name for name in after_jinarag if name.split(".")[0] in HEAVY)
    assert offenders == []
    assert "rank_bm25" in after_heavy  # the probe does notice a heavy import


# `jinarag --version` builds every subcommand's parser first, so this also proves that the
# subcommand modules leave torch, chromadb and fastapi to their handlers.
VERSION_PROBE = """
import json, sys
from jinarag.cli import main
try:
    main(["--version"])
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
print(json.dumps(sorted(sys.modules)))
"""


def test_cli_version_imports_no_model_store_or_server():
    out = subprocess.run(
        [sys.executable, "-c", VERSION_PROBE],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    version, modules = out.stdout.strip().splitlines()[-2:]
    assert version.startswith("jinarag ")
    loaded = {name.split(".")[0] for name in json.loads(modules)}
    assert "jinarag" in loaded
    assert sorted(loaded & {"torch", "chromadb", "fastapi", *HEAVY}) == []


# A LangChain app on a jinarag server needs no model here: neither torch nor Chroma.
REMOTE_PROBE = """
import json, sys
from jinarag.langchain import JinaEmbeddings, JinaReranker
JinaEmbeddings(base_url="http://127.0.0.1:9"), JinaReranker(base_url="http://127.0.0.1:9")
print(json.dumps(sorted(sys.modules)))
"""


def test_langchain_adapters_on_a_server_import_no_torch():
    out = subprocess.run(
        [sys.executable, "-c", REMOTE_PROBE],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    loaded = {name.split(".")[0] for name in json.loads(out.stdout.strip().splitlines()[-1])}
    assert "langchain_core" in loaded and "httpx" in loaded
    assert sorted(loaded & {"torch", "chromadb", "transformers"}) == []

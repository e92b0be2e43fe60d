"""A user's first minutes with `jinarag serve`: the hosted-API clients on their default model
names, TEI's root route, the remote models riding out a busy or draining server, and a missing
`server` extra, each against a real server or a real `jinarag` process.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

TEXTS = ["shock waves on a cone", "heat transfer in a slab", "flutter of a swept wing"]
QUERY = "wing flutter at transonic speed"
ATOL = 1e-5


def assert_close(got, expected) -> None:
    np.testing.assert_allclose(np.asarray(got, dtype=np.float32), expected, rtol=0, atol=ATOL)


# ---------------------------------------------------------------------------------------------
# TEI's root route


@pytest.mark.slow
def test_huggingface_inference_client_embeds_at_the_root(
    minilm_server, minilm_embedder, monkeypatch
):
    """`InferenceClient(base_url).feature_extraction` posts to the root, as TEI answers it."""
    from huggingface_hub import InferenceClient, constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # the tests' setting; a local URL
    client = InferenceClient(base_url=minilm_server.url)
    assert_close(client.feature_extraction(QUERY), minilm_embedder.embed([QUERY]))
    raw = client.feature_extraction(TEXTS[0], normalize=False, truncate=True)
    assert_close(raw, minilm_embedder.embed(TEXTS[:1], normalize=False))


# ---------------------------------------------------------------------------------------------
# Without the server extra


@pytest.mark.slow
@pytest.mark.parametrize("module", ["fastapi", "uvicorn", "prometheus_client"])
def test_serve_without_the_server_extra_is_one_line_naming_it(module):
    # A fresh interpreter where the import fails as it does when the package is not installed.
    probe = (
        f"import sys; sys.modules[{module!r}] = None\n"
        "from jinarag.cli import main\n"
        "sys.exit(main(['serve', '--no-reranker']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("jinarag: error: jinarag serve needs the server extra")
    assert f"{module} is not installed" in lines[0]
    assert "pip install 'jinarag[server]'" in lines[0]

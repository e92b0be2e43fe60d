"""jinarag.chroma.JinaEmbeddingFunction inside real Chroma collections (embedded, on disk)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

chromadb = pytest.importorskip("chromadb")

from chromadb.utils.embedding_functions import known_embedding_functions  # noqa: E402

from jinarag.chroma import JinaEmbeddingFunction  # noqa: E402
from jinarag.errors import EmbedderMismatchError, InputError  # noqa: E402

QUERY = "lift distribution of a wing in a propeller slipstream"


@pytest.fixture(scope="module")
def corpus(cranfield_dir):
    with open(cranfield_dir / "corpus.jsonl") as f:
        rows = [json.loads(line) for line in f.read().splitlines()[:40]]
    # The first 300 characters (title and opening): enough to tell them apart, quick to embed.
    return [row["_id"] for row in rows], [row["text"][:300] for row in rows]


@pytest.fixture(scope="module")
def expected_first(corpus, minilm_embedder):
    """The best document for QUERY by a plain dot product over our own vectors."""
    ids, texts = corpus
    scores = minilm_embedder.embed_documents(texts) @ minilm_embedder.embed_query(QUERY)
    best = ids[int(np.argmax(scores))]
    assert best == "1"  # the slipstream paper: the query paraphrases its title
    return best


def _build(path, corpus, minilm_embedder):
    """Create the collection with our function, then close the client (the last one on path)."""
    ef = JinaEmbeddingFunction(embedder=minilm_embedder)
    with chromadb.PersistentClient(path=str(path)) as client:
        collection = client.create_collection("docs", embedding_function=ef)
        ids, texts = corpus
        collection.add(ids=ids, documents=texts)
        stored = collection.configuration_json
    return ef, stored


def test_registered_under_its_name():
    assert known_embedding_functions["jinarag"] is JinaEmbeddingFunction


@pytest.mark.slow
def test_document_and_query_sides(minilm_dir, minilm_embedder):
    import jinarag

    prefixed = jinarag.Embedder.from_pretrained(minilm_dir, max_length=64, query_prefix="query: ")
    ef = JinaEmbeddingFunction(embedder=prefixed)
    texts = ["a wing in a slipstream", "heat transfer in a boundary layer"]
    np.testing.assert_allclose(np.array(ef(texts)), prefixed.embed_documents(texts), atol=1e-6)
    np.testing.assert_allclose(
        np.array(ef.embed_query(texts)), prefixed.embed_queries(texts), atol=1e-6
    )
    # The sides really differ for this embedder, so the test above can tell them apart.
    assert not np.allclose(ef(texts)[0], ef.embed_query(texts)[0], atol=1e-3)


def test_config_round_trip_reuses_the_loaded_model(minilm_embedder):
    ef = JinaEmbeddingFunction(embedder=minilm_embedder)
    config = ef.get_config()
    assert config["model_name"] == minilm_embedder.name
    assert config["max_length"] == minilm_embedder.max_length
    json.dumps(config)  # Chroma stores it as JSON
    rebuilt = JinaEmbeddingFunction.build_from_config(config)
    assert rebuilt.get_config() == config
    assert rebuilt.embedder is minilm_embedder  # no second load
    assert not ef.is_legacy()
    assert ef.default_space() == "cosine"
    assert "cosine" in ef.supported_spaces()


def test_bad_configs_are_refused(minilm_embedder):
    config = JinaEmbeddingFunction(embedder=minilm_embedder).get_config()
    with pytest.raises(InputError, match="model_name"):
        JinaEmbeddingFunction.validate_config({**config, "model_name": ""})
    with pytest.raises(InputError, match="colour"):
        JinaEmbeddingFunction.validate_config({**config, "colour": "red"})
    with pytest.raises(InputError, match="not both"):
        JinaEmbeddingFunction("small", embedder=minilm_embedder)
    with pytest.raises(InputError, match="model_name"):
        JinaEmbeddingFunction()


def test_changing_the_model_of_a_collection_is_refused(minilm_embedder):
    ef = JinaEmbeddingFunction(embedder=minilm_embedder)
    old = ef.get_config()
    ef.validate_config_update(old, {**old, "batch_size": 8})  # harmless
    with pytest.raises(EmbedderMismatchError, match="model_name"):
        ef.validate_config_update(old, {**old, "model_name": "other-model"})


# --- loading options ----------------------------------------------------------------------

# Every loading option away from its default (a local directory ignores the revision, but it
# is still checked, passed on and stored).
EVERY_OPTION = {
    "device": "cpu",
    "dtype": "bfloat16",
    "max_length": 32,
    "revision": "main",
    "local_files_only": True,
    "max_batch_tokens": 256,
    "attention": "eager",
    "num_threads": 1,
}


def test_every_loading_option_reaches_the_model_and_the_config(tiny_checkpoints):
    import jinarag

    ef = JinaEmbeddingFunction(str(tiny_checkpoints["v2_geglu_8h"]), **EVERY_OPTION)
    assert ef.embedder.options == jinarag.LoadOptions(**EVERY_OPTION)
    assert (ef.embedder.max_length, ef.embedder.max_batch_tokens) == (32, 256)
    assert str(ef.embedder.dtype) == "torch.bfloat16"
    config = ef.get_config()
    assert {name: config[name] for name in EVERY_OPTION} == EVERY_OPTION
    rebuilt = JinaEmbeddingFunction.build_from_config(json.loads(json.dumps(config)))
    assert rebuilt.get_config() == config
    assert rebuilt.embedder is ef.embedder  # the same options hit the cache


def test_a_config_stored_before_the_new_options_still_loads(minilm_embedder):
    config = JinaEmbeddingFunction(embedder=minilm_embedder).get_config()
    old = {
        key: config[key]
        for key in (
            "model_name",
            "device",
            "dtype",
            "max_length",
            "query_prefix",
            "document_prefix",
            "batch_size",
            "normalize",
        )
    }
    JinaEmbeddingFunction.validate_config(old)
    rebuilt = JinaEmbeddingFunction.build_from_config(old)
    assert rebuilt.embedder is minilm_embedder  # the missing keys take their defaults
    assert rebuilt.get_config() == config


def test_an_unknown_option_is_an_input_error_listing_the_accepted_ones(minilm_embedder):
    with pytest.raises(InputError) as info:
        JinaEmbeddingFunction(embedder=minilm_embedder, token="hf_x")
    message = str(info.value)
    assert "JinaEmbeddingFunction" in message
    assert "token" in message
    assert "hf_x" not in message
    for name in (*EVERY_OPTION, "model_name", "embedder", "query_prefix", "batch_size"):
        assert name in message
    with pytest.raises(InputError, match="float8"):
        JinaEmbeddingFunction(embedder=minilm_embedder, dtype="float8")


def test_changing_the_revision_of_a_collection_is_refused(minilm_embedder):
    ef = JinaEmbeddingFunction(embedder=minilm_embedder)
    old = ef.get_config()
    ef.validate_config_update(old, {**old, "max_batch_tokens": 1024})  # harmless
    with pytest.raises(EmbedderMismatchError, match="revision"):
        ef.validate_config_update(old, {**old, "revision": "v2"})


@pytest.mark.slow
def test_collection_stores_the_function_and_gets_it_back(
    tmp_path, corpus, minilm_embedder, expected_first
):
    ef, stored = _build(tmp_path, corpus, minilm_embedder)
    assert stored["embedding_function"] == {
        "name": "jinarag",
        "type": "known",
        "config": ef.get_config(),
    }
    assert stored["hnsw"]["space"] == "cosine"

    client = chromadb.PersistentClient(path=str(tmp_path))
    reopened = client.get_collection("docs")
    found = reopened.query(query_texts=[QUERY], n_results=3, include=["distances"])
    assert found["ids"][0][0] == expected_first
    # The query went through the query side of the same model: same distances as by hand.
    by_vector = reopened.query(
        query_embeddings=[minilm_embedder.embed_query(QUERY)], n_results=3, include=["distances"]
    )
    assert found["ids"] == by_vector["ids"]
    np.testing.assert_allclose(found["distances"], by_vector["distances"], atol=1e-5)
    # Adding through the reopened collection embeds with the rebuilt function too.
    reopened.add(ids=["new"], documents=[QUERY])
    assert reopened.query(query_texts=[QUERY], n_results=1)["ids"] == [["new"]]
    client.close()


@pytest.mark.slow
def test_collection_reopens_in_a_new_process(tmp_path, corpus, minilm_embedder, expected_first):
    _build(tmp_path, corpus, minilm_embedder)
    script = textwrap.dedent(
        """
        import json, sys
        import chromadb

        client = chromadb.PersistentClient(path=sys.argv[1])
        out = {}
        try:  # Chroma cannot rebuild a function whose module was never imported.
            client.get_collection("docs").query(query_texts=[sys.argv[2]], n_results=1)
        except Exception as exc:
            out["before_import"] = str(exc)
        import jinarag.chroma  # registers the function

        found = client.get_collection("docs").query(query_texts=[sys.argv[2]], n_results=3)
        out["ids"] = found["ids"][0]
        print(json.dumps(out))
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path), QUERY],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["ids"][0] == expected_first
    assert "jinarag" in out["before_import"]

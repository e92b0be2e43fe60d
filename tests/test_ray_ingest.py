"""RayExecutor: the same records and vectors as the local executor, into a real `chroma run`
server, and a Ray ingest killed with SIGKILL finished by running it again."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from chroma_helpers import ChromaServer
from serving_helpers import free_port

# Ray is optional. Looked up, not imported: importing Ray Data takes seconds of every collection.
if not all(importlib.util.find_spec(name) for name in ("ray", "pyarrow")):
    pytest.skip("Ray Data is not installed (the ray extra)", allow_module_level=True)

from jinarag.cli import main  # noqa: E402 - after the skip: Ray is optional
from jinarag.errors import InputError  # noqa: E402
from jinarag.retrieval.index import HybridIndex  # noqa: E402
from jinarag.retrieval.ingest.ray_executor import RayExecutor  # noqa: E402

pytestmark = [pytest.mark.slow]

QUIET = {
    "ANONYMIZED_TELEMETRY": "False",
    "HAYSTACK_TELEMETRY_ENABLED": "False",
    "RAY_USAGE_STATS_ENABLED": "0",
}
for _key, _value in QUIET.items():
    os.environ.setdefault(_key, _value)


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for this module's in-process runs, started as RayExecutor starts one. A
    RayExecutor leaves a Ray it did not start running, so the runs share it instead of each
    starting and stopping their own (seconds apiece); the runs in a fresh process below still
    start theirs."""
    import ray

    from jinarag.retrieval.ingest.ray_executor import _local_cpus

    ray.init(num_cpus=_local_cpus(), include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def chroma_url(tmp_path, request):
    """A `chroma run` server on 127.0.0.1 for the test, stopped by its PID."""
    server = ChromaServer(tmp_path / "chroma-data", free_port(), tmp_path / "chroma.log")
    request.addfinalizer(server.stop)
    server.start()
    return server.url


def _corpus(folder: Path) -> Path:
    folder.mkdir()
    (folder / "wings.md").write_text(
        "# Wings\n\n" + "The lift of a wing in a slipstream grows with the angle. " * 60
    )
    (folder / "heat.txt").write_text("Heat flux at Mach 5 on a blunt body.")
    (folder / "notes").mkdir()
    (folder / "notes" / "shells.md").write_text("Buckling of thin cylindrical shells.\n")
    with (folder / "papers.jsonl").open("w") as f:
        for i in range(30):
            row = {"_id": f"p{i}", "title": f"Paper {i}", "text": f"flutter of panel {i % 7}"}
            f.write(json.dumps({**row, "year": 1950 + i, "refereed": i % 2 == 0}) + "\n")
    return folder


def _stored(index: HybridIndex) -> tuple[list[str], np.ndarray, dict[str, dict]]:
    ids = sorted(index.store.ids())
    got, vectors = index.store.embeddings(ids)
    order = [got.index(i) for i in ids]
    metas = dict(index.store.metadatas())
    return ids, np.asarray(vectors, dtype=np.float32)[order], metas


@pytest.mark.usefixtures("local_ray")
def test_ray_ingest_matches_the_local_executor_on_a_chroma_server(
    chroma_url, minilm_embedder, minilm_dir, tmp_path, capsys
):
    corpus = _corpus(tmp_path / "corpus")
    local = HybridIndex(tmp_path / "local", embedder=minilm_embedder)
    local.add_files([corpus])

    index = HybridIndex(tmp_path / "snap", url=chroma_url, embedder=minilm_embedder)
    report = index.add_files([corpus], executor=RayExecutor(actors=2, batch_chunks=8))
    assert sorted(report.added) == ["heat.txt", "notes/shells.md", "papers.jsonl", "wings.md"]
    assert report.chunks_written == local.count() == index.count()

    ids, vectors, metas = _stored(index)
    want_ids, want_vectors, want_metas = _stored(local)
    assert ids == want_ids and len(ids) > 30 + 3  # wings.md is cut into several chunks
    np.testing.assert_allclose(vectors, want_vectors, atol=1e-4)
    assert metas == want_metas  # JSON through Arrow kept every type (ints, bools, strings)
    assert metas["p3"]["year"] == 1953 and metas["p3"]["refereed"] is False
    assert sorted(index.bm25_index.ids) == ids

    again = index.add_files([corpus], executor=RayExecutor(actors=2))
    assert sorted(again.unchanged) == sorted(report.added)
    assert again.added == again.updated == [] and again.chunks_written == 0

    # One edited JSONL line, indexed by the command line's --ray: only that document goes
    # through Ray again; the others are reported as read (kept), so nothing is removed. The
    # chunk settings are the fixture's (its 256-token embedder cuts chunks of 254 tokens).
    lines = (corpus / "papers.jsonl").read_text().splitlines()
    lines[5] = json.dumps({"_id": "p5", "title": "Paper 5", "text": "divergence of a wing"})
    (corpus / "papers.jsonl").write_text("\n".join(lines) + "\n")
    argv = ["index", str(corpus), "--chroma-url", chroma_url, "--store", str(tmp_path / "snap")]
    argv += ["--model", str(minilm_dir), "--chunk-tokens", "254", "--ray", "--ray-actors", "2"]
    assert main([*argv, "--batch", "4", "--json", "--quiet"]) == 0
    edited = json.loads(capsys.readouterr().out)
    assert edited["updated"] == ["papers.jsonl"] and edited["chunks_written"] == 1
    assert edited["chunks_removed"] == 0 and sorted(index.store.ids()) == ids
    assert index.get(["p5"])[0].text.endswith("divergence of a wing")
    assert sorted(index.bm25_index.ids) == ids


def test_ray_executor_refuses_bad_settings():
    with pytest.raises(InputError, match="actors"):
        RayExecutor(actors=0)
    with pytest.raises(InputError, match="num_gpus=-1"):
        RayExecutor(num_gpus=-1)
    with pytest.raises(InputError, match="batch_chunks"):
        RayExecutor(batch_chunks=0)
    with pytest.raises(InputError, match="address=''"):
        RayExecutor(address="")


def test_a_missing_ray_names_the_extra_to_install():
    # A fresh interpreter where `import ray` fails as it does when Ray is not installed.
    probe = (
        "import sys; sys.modules['ray'] = None\n"
        "import jinarag.retrieval.ingest.ray_executor as m\n"
        "try:\n    m.RayExecutor()\nexcept ImportError as exc:\n    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert "pip install 'jinarag[ray]'" in out.stdout, out.stdout + out.stderr


N_DOCS = 3000

INGEST = textwrap.dedent(
    """
    import json, sys
    import jinarag
    from jinarag.retrieval.index import HybridIndex
    from jinarag.retrieval.ingest.ray_executor import RayExecutor

    model, store, corpus = sys.argv[1:4]
    embedder = jinarag.Embedder.from_pretrained(model, max_length=128)
    index = HybridIndex(store, embedder=embedder)
    report = index.add_files([corpus], executor=RayExecutor(actors=2, batch_chunks=64))
    print("REPORT " + json.dumps(report.to_dict()), flush=True)
    """
)


def _group_gone(pgid: int, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def test_sigkill_in_the_middle_of_a_ray_ingest_is_finished_by_a_rerun(minilm_dir, tmp_path):
    import jinarag

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    with (corpus / "lines.jsonl").open("w") as f:
        for i in range(N_DOCS):
            f.write(json.dumps({"_id": f"l{i}", "text": f"line {i} on the flutter of panel"}))
            f.write("\n")
    store = tmp_path / "store"
    args = [sys.executable, "-c", INGEST, str(minilm_dir), str(store), str(corpus)]
    env = {**os.environ, **QUIET}
    log = tmp_path / "first.log"
    with log.open("wb") as out:
        # Its own session: the Ray processes it starts share its group and die with it.
        proc = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    embedder = jinarag.Embedder.from_pretrained(minilm_dir, max_length=128)
    stored = 0
    try:
        deadline = time.monotonic() + 600
        while proc.poll() is None and time.monotonic() < deadline:
            if (store / "chroma.sqlite3").exists():
                probe = HybridIndex(store, embedder=embedder)
                stored = probe.count()
                probe.close()
                if stored > 0:
                    break
            time.sleep(0.5)
    finally:
        finished = proc.poll() is not None
        if not finished:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not finished, (
        f"the first Ray run ended (exit {proc.returncode}) before it could be killed with "
        f"{stored} of {N_DOCS} records stored; raise N_DOCS so the kill lands mid-ingest. "
        f"Its output: {log.read_text()[-2000:]}"
    )
    assert 0 < stored < N_DOCS, f"no partial store to resume from ({stored} records)"
    assert _group_gone(proc.pid), "processes of the killed Ray run are still alive"

    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    report = json.loads(done.stdout.split("REPORT ", 1)[1].splitlines()[0])
    print(f"killed at {stored}/{N_DOCS} records; the rerun wrote {report['chunks_written']}")
    assert report["updated"] == ["lines.jsonl"]
    # It resumed: the documents stored completely before the kill were not embedded again.
    assert 0 < report["chunks_written"] <= N_DOCS - stored
    assert report["records"] == N_DOCS

    index = HybridIndex(store, embedder=embedder)
    expected = {f"l{i}" for i in range(N_DOCS)}
    assert set(index.store.ids()) == set(index.bm25_index.ids) == expected
    index.close()


@pytest.mark.usefixtures("local_ray")
def test_ray_late_chunking_matches_the_local_executor(minilm_embedder, tmp_path):
    corpus = _corpus(tmp_path / "corpus")
    local = HybridIndex(tmp_path / "local", embedder=minilm_embedder)
    local.add_files([corpus], chunking="late", chunk_tokens=32)
    index = HybridIndex(tmp_path / "ray", embedder=minilm_embedder)
    report = index.add_files(
        [corpus], chunking="late", chunk_tokens=32, executor=RayExecutor(batch_chunks=16)
    )
    ids, vectors, metas = _stored(index)
    want_ids, want_vectors, want_metas = _stored(local)
    assert report.chunks_written == len(ids) and ids == want_ids
    assert sum(i.startswith("wings.md#") for i in ids) > 1  # a document late-chunked in parts
    np.testing.assert_allclose(vectors, want_vectors, atol=1e-4)
    assert metas == want_metas and sorted(index.bm25_index.ids) == ids


@pytest.mark.usefixtures("local_ray")
def test_a_bad_file_read_on_ray_is_the_same_input_error(minilm_embedder, tmp_path):
    corpus = _corpus(tmp_path / "corpus")
    (corpus / "broken.jsonl").write_text('{"_id": "x", "text": "fine"}\n{"_id": "y", "text": \n')
    index = HybridIndex(tmp_path / "store", embedder=minilm_embedder)
    with pytest.raises(InputError, match="broken.jsonl"):
        index.add_files([corpus], executor=RayExecutor())

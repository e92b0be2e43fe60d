"""`jinarag distill`: a small, fast student learns a teacher reranker's scores.

Examples::

    jinarag distill --teacher my-reranker --student-layers 2 --dataset tests/data/cranfield \\
        --out my-turbo
    jinarag distill --teacher my-reranker --student-config student.json --dataset DIR --out DIR

The dataset gives queries and a corpus (qrels are not read); each query's top candidates
from BM25 (or ``--mine hybrid``) are the pairs distilled.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from jinarag.cli.common import count, note
from jinarag.cli.train_reranker import add_training_options, mining_index, summary
from jinarag.evaluation import QUERY_SETS

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "distill", help="distil a reranker into a smaller, faster student (no judgements needed)"
    )
    parser.add_argument("--teacher", required=True, help="the reranker to learn from")
    student = parser.add_mutually_exclusive_group(required=True)
    student.add_argument(
        "--student-layers", type=int, help="keep this many of the teacher's layers"
    )
    student.add_argument(
        "--student-config", type=Path, metavar="FILE", help="a config.json for the student"
    )
    student.add_argument("--student", help="a checkpoint to start the student from")
    parser.add_argument(
        "--layer-choice",
        choices=("first", "spread"),
        default="first",
        help="with --student-layers: the lowest layers (default) or evenly spaced ones",
    )
    parser.add_argument("--dataset", type=Path, required=True, metavar="DATASET_DIR")
    parser.add_argument(
        "--queries", choices=QUERY_SETS, default="all", help="whose candidates (default all)"
    )
    add_training_options(parser, epochs=2, lr=1e-4)
    parser.add_argument("--batch-size", type=count, default=32, help="pairs per step (32)")
    parser.add_argument("--candidates", type=count, default=50, help="pairs per query (50)")
    parser.add_argument("--loss", choices=("mse", "listwise"), default="mse")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from jinarag.training import distill

    result = distill(
        args.teacher,
        args.out,
        dataset=args.dataset,
        student_layers=args.student_layers,
        student_config=args.student_config,
        student=args.student,
        layer_choice=args.layer_choice,
        queries=args.queries,
        titles=args.titles,
        candidates=args.candidates,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        loss=args.loss,
        max_length=args.max_length,
        index=mining_index(args, args.dataset),
        seed=args.seed,
        device=args.device,
        bf16=args.bf16,
        overwrite=args.overwrite,
        show_progress=True,
        note=note,
    )
    print(summary(result, "student"))
    return 0

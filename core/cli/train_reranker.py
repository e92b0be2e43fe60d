"""`jinarag train-reranker`: fine-tune a cross-encoder on a BEIR dataset's judged pairs.

Examples::

    jinarag train-reranker tests/data/cranfield --base minilm --out my-reranker
    jinarag train-reranker tests/data/cranfield --base small --out my-reranker --queries odd \\
        --epochs 2 --negatives 3 --mine hybrid
    jinarag eval tests/data/cranfield --queries even --reranker my-reranker

Progress (a bar with the running loss) goes to stderr; a summary line to stdout. Interrupted
(Ctrl-C), the same command resumes from the last saved step.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from jinarag.cli.common import add_model_option, count, note
from jinarag.evaluation import QUERY_SETS  # light: torch loads in run()

__all__ = ["MINING", "add_parser", "add_training_options", "run", "summary"]

MINING = ("bm25", "hybrid")


def add_training_options(parser: argparse.ArgumentParser, *, epochs: int, lr: float) -> None:
    """What both training commands take: the output, the schedule, the device."""
    parser.add_argument("--out", type=Path, required=True, help="directory to write the model to")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace --out when it exists and is not empty"
    )
    parser.add_argument("--epochs", type=count, default=epochs, help=f"default {epochs}")
    parser.add_argument("--lr", type=float, default=lr, help=f"peak learning rate (default {lr})")
    parser.add_argument("--max-length", type=count, default=256, help="pair token limit (256)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda")
    parser.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="bf16 autocast (default: on a GPU with bf16, off on CPU, where it is slower)",
    )
    parser.add_argument(
        "--titles",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="also learn from the corpus's titles as queries (train-reranker: each answered "
        "by its own document's text; distill: scored by the teacher; off by default)",
    )
    parser.add_argument(
        "--mine",
        choices=MINING,
        default="bm25",
        help="candidates from BM25 over the corpus (default) or a hybrid index (embeds the "
        "corpus with --model first)",
    )
    add_model_option(parser)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train-reranker",
        help="fine-tune a cross-encoder on a BEIR dataset's judged pairs, hard negatives mined",
    )
    parser.add_argument("dataset", type=Path, metavar="DATASET_DIR")
    parser.add_argument(
        "--base",
        required=True,
        help="checkpoint to start from: a directory, Hub id or alias ('small', 'base': Jina "
        "embedders; 'minilm': the all-MiniLM-L6-v2 weights shipped with the tests' extra, no "
        "download); a classifier head is added when it has none",
    )
    parser.add_argument(
        "--queries", choices=QUERY_SETS, default="odd", help="judged queries trained on (odd)"
    )
    add_training_options(parser, epochs=1, lr=1e-4)
    parser.add_argument(
        "--head-lr", type=float, default=1e-3, help="peak rate of a created head (1e-3)"
    )
    parser.add_argument("--batch-size", type=count, default=8, help="groups per step (8)")
    parser.add_argument("--negatives", type=count, default=3, help="hard negatives per positive")
    parser.add_argument("--candidates", type=count, default=30, help="mined from the top N (30)")
    parser.add_argument("--loss", choices=("listwise", "bce"), default="listwise")
    parser.set_defaults(handler=run)


def mining_index(args: argparse.Namespace, dataset_dir: Path):
    """The in-memory hybrid index ``--mine hybrid`` asks for, else None (BM25)."""
    if args.mine != "hybrid":
        return None
    from jinarag.cli.common import load_embedder
    from jinarag.evaluation import build_index, load_beir

    return build_index(load_beir(dataset_dir, require_qrels=False), load_embedder(args.model))


def summary(run, what: str) -> str:
    losses = run.losses
    head = losses[: max(1, len(losses) // 10)]
    tail = losses[-max(1, len(losses) // 10) :]
    resumed = f", resumed at step {run.resumed_from}" if run.resumed_from else ""
    return (
        f"{what} written to {run.out}: {len(losses)} steps{resumed}, loss "
        f"{sum(head) / len(head):.4f} -> {sum(tail) / len(tail):.4f}"
    )


def run(args: argparse.Namespace) -> int:
    from jinarag.training import train_reranker

    result = train_reranker(
        args.dataset,
        args.base,
        args.out,
        queries=args.queries,
        titles=args.titles,
        epochs=args.epochs,
        batch_size=args.batch_size,
        negatives=args.negatives,
        lr=args.lr,
        head_lr=args.head_lr,
        loss=args.loss,
        candidates=args.candidates,
        max_length=args.max_length,
        index=mining_index(args, args.dataset),
        seed=args.seed,
        device=args.device,
        bf16=args.bf16,
        overwrite=args.overwrite,
        show_progress=True,
        note=note,
    )
    print(summary(result, "reranker"))
    return 0

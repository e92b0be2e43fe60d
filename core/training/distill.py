"""Distillation: a small, fast student learns a teacher reranker's logits.

The pairs are each query's top candidates from the project's retrieval (BM25 over the corpus,
or a given :class:`~jinarag.HybridIndex`): what the student will rerank. No judgement is
read. The teacher scores them once with :meth:`Reranker.score_pairs` (raw logits); the
student, by default a copy of the teacher's embeddings, lowest ``student_layers`` layers,
pooler and classifier, is trained to reproduce them with a mean squared error on logits
(the pointwise form of Hofstätter et al.'s Margin-MSE: matching every logit matches every
margin). ``loss="listwise"`` matches each query's softmax over its candidates instead (KL).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from jinarag.errors import InputError
from jinarag.evaluation.beir import Dataset
from jinarag.inference.reranker import Reranker
from jinarag.training.data import (
    candidate_lists,
    distillation_pairs,
    document_texts,
    open_dataset,
    training_queries,
    with_title_queries,
)
from jinarag.training.finetune import TrainingRun, _positive_float
from jinarag.training.loop import LoopSettings, run_loop, use_autocast
from jinarag.training.models import (
    LAYER_CHOICES,
    check_layers_arguments,
    load_cross_encoder,
    pair_logits,
    prepare_out,
    publish,
    state_path,
    student_from_config,
    student_from_teacher,
)
from jinarag.validation import check_bool, check_choice, positive_int

if TYPE_CHECKING:
    from jinarag.retrieval.index import HybridIndex

__all__ = ["DISTILLATION_LOSSES", "distill"]

DISTILLATION_LOSSES = ("mse", "listwise")
NEW_HEAD_LR = 1e-3  # a student checkpoint without a head gets one, trained at this rate


def distill(
    teacher: str | os.PathLike[str] | Reranker,
    out: str | os.PathLike[str],
    *,
    dataset: Dataset | str | os.PathLike[str],
    student_layers: int | None = None,
    student_config: str | os.PathLike[str] | None = None,
    student: str | os.PathLike[str] | None = None,
    layer_choice: str = "first",
    queries: str = "all",
    titles: bool = False,
    candidates: int = 50,
    epochs: int = 2,
    batch_size: int = 32,
    lr: float = 1e-4,
    loss: str = "mse",
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
    """Distil ``teacher`` into a student saved to ``out`` in Hugging Face layout.

    Args:
        teacher: a reranker checkpoint (directory, Hub id, alias) or a loaded Reranker.
        out: the directory to write; an existing non-empty one needs ``overwrite=True``.
        dataset: a BEIR folder (qrels not needed) or Dataset: its queries and corpus.
        student_layers: keep this many of the teacher's layers (``layer_choice``:
            ``"first"``, the lowest ones, or ``"spread"``, evenly spaced up to the top).
        student_config: or a config.json of any size (the teacher's tokenizer; tensors of
            matching name and shape copied from the teacher, the rest BERT-initialised).
        student: or a checkpoint to start from (its own tokenizer; a head created if absent).
        queries: ``"all"``, ``"odd"`` or ``"even"``: whose candidates are distilled.
        titles: also distil on the corpus's titles as queries (their candidates are whole
            documents; see :func:`~jinarag.training.data.title_queries`).
        candidates: pairs per query (the query's best hits).
        epochs, batch_size, lr: the schedule (``batch_size`` pairs a step with ``"mse"``,
            queries a step with ``"listwise"``; AdamW, 10% warmup, linear decay).
        loss: ``"mse"`` on logits (default) or ``"listwise"`` (KL of the per-query softmax).
        max_length, index, seed, device, bf16, overwrite, save_every, show_progress, stop,
            note: as for :func:`~jinarag.training.train_reranker`.

    Raises:
        InputError: a bad dataset, split, student size, argument, or an existing ``out``.

    Example:
        >>> run = distill("my-reranker", "my-turbo", dataset="tests/data/cranfield",
        ...               student_layers=2)
    """
    check_layers_arguments(student_layers, student_config, student)
    check_choice("loss", loss, DISTILLATION_LOSSES)
    titles = check_bool("titles", titles)
    check_choice("layer_choice", layer_choice, LAYER_CHOICES)
    epochs = positive_int("epochs", epochs)
    batch_size = positive_int("batch_size", batch_size)
    candidates = positive_int("candidates", candidates)
    save_every = positive_int("save_every", save_every, allow_zero=True)
    lr = _positive_float("lr", lr)
    out_path = prepare_out(out, overwrite=overwrite)
    data = open_dataset(dataset, judged=False)
    query_ids = training_queries(data, queries, judged=False)
    if titles:
        data, query_ids = with_title_queries(data, query_ids)

    if isinstance(teacher, Reranker):
        teacher_model = teacher
    else:
        options: dict[str, Any] = {"device": device, "dtype": "float32"}
        if max_length is not None:
            options["max_length"] = max_length
        teacher_model = Reranker.from_pretrained(teacher, **options)
    created = False
    if student_layers is not None:
        made = student_from_teacher(teacher_model, student_layers, choice=layer_choice)
    elif student_config is not None:
        made = student_from_config(teacher_model, student_config, seed=seed)
    else:
        assert student is not None
        made, created = load_cross_encoder(student, device=device, max_length=max_length, seed=seed)
    if made.device != teacher_model.device:
        raise InputError(
            f"the teacher is on {teacher_model.device} and the student on {made.device}: "
            "load both on one device."
        )

    texts = document_texts(data)
    lists = candidate_lists(data, query_ids, candidates, index=index, texts=texts)
    pairs = distillation_pairs(data, lists, texts)
    if not pairs:
        raise InputError(
            f"dataset {data.name!r}: retrieval found no candidate for any of its "
            f"{len(query_ids)} {queries!r} queries; check that queries and corpus share words."
        )
    targets = torch.from_numpy(
        teacher_model.score_pairs(
            pairs, activation=None, batch_size=64, show_progress=show_progress
        )
    ).to(made.device)
    encoded = made.tokenize_pairs(pairs)
    # Per query: the index range of its pairs (pairs are laid out query by query).
    spans, start = [], 0
    for docs in lists.values():
        count = sum(1 for d in docs if d in texts)
        if count:
            spans.append((start, start + count))
        start += count

    def subset(indices: list[int]):
        from jinarag.models.tokenization import Encoded

        return Encoded(
            [encoded.input_ids[i] for i in indices],
            [encoded.token_type_ids[i] for i in indices],
            truncated=[],
        )

    if loss == "mse":
        units = [[i] for i in range(len(pairs))]
    else:
        units = [list(range(a, b)) for a, b in spans]
    steps_per_epoch = -(-len(units) // batch_size)

    def epoch_batches(epoch: int) -> list[list[list[int]]]:
        order = list(units)
        random.Random(seed * 1000 + epoch).shuffle(order)
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]

    def loss_of(batch: list[list[int]]) -> torch.Tensor:
        indices = [i for unit in batch for i in unit]
        logits = pair_logits(made, subset(indices))
        wanted = targets[torch.tensor(indices, device=made.device)]
        if loss == "mse":
            return F.mse_loss(logits, wanted)
        total, offset = logits.new_zeros(()), 0
        for unit in batch:
            mine, theirs = logits[offset : offset + len(unit)], wanted[offset : offset + len(unit)]
            total = total + F.kl_div(
                F.log_softmax(mine, dim=0),
                F.log_softmax(theirs, dim=0),
                log_target=True,
                reduction="sum",
            )
            offset += len(unit)
        return total / len(batch)

    settings = LoopSettings(
        epochs=epochs,
        lr=lr,
        head_lr=NEW_HEAD_LR if created else None,
        seed=seed,
        bf16=use_autocast(bf16, made.device),
        save_every=save_every,
        extra={
            "kind": "distill",
            "teacher": str(teacher_model.source),
            "student_layers": student_layers,
            "student_config": os.fspath(student_config) if student_config is not None else None,
            "student": os.fspath(student) if student is not None else None,
            "layer_choice": layer_choice,
            "dataset": data.name,
            "queries": queries,
            "titles": titles,
            "candidates": candidates,
            "batch_size": batch_size,
            "loss": loss,
            "max_length": made.max_length,
            "mined_with": "bm25" if index is None else "hybrid",
            "pairs": len(pairs),
        },
    )
    losses, resumed = run_loop(
        made,
        steps_per_epoch,
        epoch_batches,
        loss_of,
        settings,
        state_file=state_path(out_path),
        show_progress=show_progress,
        description="distill",
        stop=stop,
        note=note,
        new_head=created,
    )
    record = {
        **settings.fingerprint(steps_per_epoch),
        "steps": len(losses),
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
    }
    publish(made, out_path, record)
    return TrainingRun(out_path, made, losses, resumed)

"""Training your own reranker: fine-tune a cross-encoder on judged pairs, then distil it into a
small, fast student. Both write checkpoints that :meth:`jinarag.Reranker.from_pretrained` and
every adapter load as they are.

Not imported by ``import jinarag``; it needs torch only (``pip install '.[train]'`` pins
nothing more).

Example:
    >>> from jinarag.training import distill, train_reranker
    >>> train_reranker("tests/data/cranfield", "small", "my-reranker", queries="odd")
    >>> distill("my-reranker", "my-turbo", dataset="tests/data/cranfield", student_layers=2)
"""

from __future__ import annotations

from jinarag.errors import Cancelled
from jinarag.training.distill import DISTILLATION_LOSSES, distill
from jinarag.training.finetune import FINE_TUNING_LOSSES, TrainingRun, train_reranker
from jinarag.training.models import LAYER_CHOICES, pair_logits

__all__ = [
    "DISTILLATION_LOSSES",
    "FINE_TUNING_LOSSES",
    "LAYER_CHOICES",
    "Cancelled",
    "TrainingRun",
    "distill",
    "pair_logits",
    "train_reranker",
]

"""The training loop fine-tuning and distillation share: torch's AdamW with a linear warmup
and decay, gradient clipping, a tqdm bar on stderr with the running loss, bf16 autocast where
it helps, and a resumable state saved atomically.

Resume, not restart: every ``save_every`` steps (and when ``stop()`` says so) the model,
optimiser, schedule, step and losses are written to ``OUT.partial/state.pt`` (a temporary
file renamed over the old one, so a kill mid-write leaves the previous state). A re-run with
the same settings continues from that step and ends with the same weights as an
uninterrupted run: a step's batch depends only on the seed, the epoch and the step, and the
encoder has no dropout. A state saved with other settings is discarded and the run restarts.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from jinarag.errors import Cancelled
from jinarag.inference.reranker import Reranker
from jinarag.training.models import TRAINING_ATTENTION

__all__ = ["LoopSettings", "run_loop", "use_autocast"]


@dataclass(frozen=True)
class LoopSettings:
    """The optimiser and schedule of one run (all part of the resume fingerprint)."""

    epochs: int
    lr: float
    head_lr: float | None = None  # for a newly created head (None: lr)
    warmup: float = 0.1  # share of the steps spent warming up
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    seed: int = 0
    bf16: bool = False
    save_every: int = 50
    extra: dict[str, Any] = field(default_factory=dict)  # the caller's data settings

    def fingerprint(self, steps_per_epoch: int) -> dict[str, Any]:
        fields = {k: v for k, v in vars(self).items() if k not in ("save_every", "extra")}
        return {**fields, **self.extra, "steps_per_epoch": steps_per_epoch}


def use_autocast(bf16: bool | None, device: torch.device) -> bool:
    """bf16 autocast: on by default on a GPU that has bf16; off on CPU, where a CPU without
    AMX runs bf16 matmuls slower than fp32 (docs/performance.md)."""
    if bf16 is not None:
        return bool(bf16)
    return device.type == "cuda" and torch.cuda.is_bf16_supported()


def _parameter_groups(
    model: torch.nn.Module, settings: LoopSettings, new_head: bool
) -> list[dict[str, Any]]:
    """No weight decay on biases and LayerNorm weights (as BERT was trained); a new head
    (pooler and classifier) at ``head_lr``: Adam moves a weight about lr a step, so a head
    starting from random at the body's small rate would take thousands of steps to give the
    logits any spread, and the body no gradient meanwhile."""
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        head = new_head and name.startswith(("pooler.", "classifier."))
        plain = parameter.ndim < 2 or "LayerNorm" in name
        groups.setdefault((head, plain), []).append(parameter)
    head_lr = settings.head_lr if settings.head_lr is not None else settings.lr
    return [
        {
            "params": params,
            "weight_decay": 0.0 if plain else settings.weight_decay,
            "lr": head_lr if head else settings.lr,
        }
        for (head, plain), params in sorted(groups.items())
    ]


def _save(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    torch.save(state, temporary)
    os.replace(temporary, path)


def _load(path: Path, fingerprint: dict[str, Any], note: Callable[[str], None]) -> dict | None:
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged file: start over rather than fail
        note(f"the saved state {path} is unreadable ({type(exc).__name__}); starting over")
        return None
    if state.get("fingerprint") != fingerprint:
        note(f"the saved state {path} was made with other settings; starting over")
        return None
    return state


def run_loop(
    reranker: Reranker,
    steps_per_epoch: int,
    epoch_batches: Callable[[int], Sequence[Any]],
    loss_of: Callable[[Any], torch.Tensor],
    settings: LoopSettings,
    *,
    state_file: Path,
    show_progress: bool,
    description: str,
    stop: Callable[[], bool] | None = None,
    note: Callable[[str], None] | None = None,
    new_head: bool = False,
) -> tuple[list[float], int]:
    """Train ``reranker.model`` for ``settings.epochs`` epochs of ``steps_per_epoch`` steps;
    ``epoch_batches(epoch)`` gives an epoch's batches, ``loss_of(batch)`` a batch's loss.

    ``new_head``: the pooler and classifier were created for this run (``settings.head_lr``).
    Returns the loss of every step and the step the run resumed from (0: a fresh start).
    ``stop()``, asked after each step, saves the state and raises
    :class:`~jinarag.errors.Cancelled` when it returns True.
    """
    from tqdm.auto import tqdm

    say = note if note is not None else (lambda text: print(f"note: {text}", file=sys.stderr))
    model = reranker.model
    device = reranker.device
    total = settings.epochs * steps_per_epoch
    fingerprint = settings.fingerprint(steps_per_epoch)
    warmup = math.ceil(settings.warmup * total)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    for parameter in model.parameters():
        parameter.requires_grad_(True)
    optimizer = torch.optim.AdamW(_parameter_groups(model, settings, new_head), lr=settings.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    losses: list[float] = []
    start = 0
    saved = _load(state_file, fingerprint, say)
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        start, losses = int(saved["step"]), list(saved["losses"])
        say(f"resuming from step {start} of {total} ({state_file})")

    def save(step: int) -> None:
        _save(
            state_file,
            {
                "fingerprint": fingerprint,
                "step": step,
                "losses": losses,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
            },
        )

    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16)
        if settings.bf16
        else contextlib.nullcontext()
    )
    implementation, model.attn_implementation = model.attn_implementation, TRAINING_ATTENTION
    model.train()
    cached_epoch, batches = -1, []
    try:
        with tqdm(
            total=total,
            initial=start,
            desc=description,
            unit="step",
            disable=not show_progress,
            file=sys.stderr,
        ) as bar:
            for step in range(start, total):
                epoch, within = divmod(step, steps_per_epoch)
                if epoch != cached_epoch:
                    cached_epoch, batches = epoch, epoch_batches(epoch)
                with autocast:
                    loss = loss_of(batches[within])
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(float(loss.detach()))
                recent = losses[-20:]
                bar.set_postfix(loss=f"{sum(recent) / len(recent):.4f}", refresh=False)
                bar.update(1)
                done = step + 1
                if stop is not None and done < total and stop():
                    save(done)
                    raise Cancelled(
                        f"stopped after step {done} of {total}; the state is saved in "
                        f"{state_file}: run again with the same settings to resume"
                    )
                if settings.save_every and done % settings.save_every == 0 and done < total:
                    save(done)
    finally:
        model.eval()
        model.attn_implementation = implementation
        for parameter in model.parameters():
            parameter.requires_grad_(False)
    return losses, start

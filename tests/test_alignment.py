"""Loaded weights sit at 64-byte aligned addresses, and results do not depend on it.

safetensors hands out tensors at the file's own offsets (8 + header + data offset), which land
16-60 bytes off a cache line; MKL's kernels take another path for such weights. The loader
copies those into aligned storage.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_checkpoints import VARIANTS

import jinarag

ALIGNMENT = 64
TEXTS = ["a wing in a slipstream", "heat transfer at hypersonic speed", "flutter"]


def _load(tiny_checkpoints, name):
    cls = jinarag.Reranker if VARIANTS[name].head == "reranker" else jinarag.Embedder
    return cls.from_pretrained(tiny_checkpoints[name], device="cpu")


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_loaded_weight_is_64_byte_aligned(tiny_checkpoints, name):
    model = _load(tiny_checkpoints, name).model
    misaligned = {
        key: tensor.data_ptr() % ALIGNMENT
        for key, tensor in model.state_dict().items()
        if tensor.data_ptr() % ALIGNMENT
    }
    assert misaligned == {}


def _misaligned_copy(tensor: torch.Tensor, offset: int) -> torch.Tensor:
    """``tensor``'s values in storage that starts ``offset`` bytes past a 64-byte boundary."""
    raw = torch.empty(tensor.numel() * tensor.element_size() + 2 * ALIGNMENT, dtype=torch.uint8)
    start = (-raw.data_ptr()) % ALIGNMENT + offset
    view = raw[start : start + tensor.numel() * tensor.element_size()].view(tensor.dtype)
    return view.view(tensor.shape).copy_(tensor)


def test_results_do_not_depend_on_the_alignment_of_the_weights(tiny_checkpoints):
    embedder = _load(tiny_checkpoints, "v2_geglu_8h")
    aligned = embedder.embed(TEXTS)
    state = {key: _misaligned_copy(t, 20) for key, t in embedder.model.state_dict().items()}
    assert all(t.data_ptr() % ALIGNMENT == 20 for t in state.values())
    embedder.model.load_state_dict(state, assign=True)
    np.testing.assert_allclose(embedder.embed(TEXTS), aligned, rtol=0, atol=1e-6)

"""Late chunking in the core: chunk vectors are means of one full pass's token states, long
documents are read in macro windows, and many documents batch like one."""

from __future__ import annotations

import bisect
import warnings

import numpy as np
import pytest
import torch

import jinarag
from jinarag.inference.late_chunking import plan_late_chunks
from jinarag.retrieval.ingest.late import late_chunk, late_chunk_many, split_text

CHUNKS = [
    "The wing stalls at high angles of attack.",
    "It then loses lift quickly, and the nose drops.",
    "Slotted flaps delay this by re-energising the boundary layer.",
]
LONG_TEXT = " ".join(
    f"Sentence {i} says the {word} flow over the wing changes the lift."
    for i, word in enumerate(
        ["laminar", "turbulent", "separated", "attached", "swirling", "steady"] * 5
    )
)


def _owners(embedder: jinarag.Embedder, chunks: list[str]) -> tuple[list[int], list[int]]:
    """An independent reading of the rule: the joined text's tokens with [CLS]/[SEP], and the
    chunk each belongs to (by its last character; [CLS] first, [SEP] last)."""
    encoding = embedder.tokenizer.tokenizer.encode(" ".join(chunks))
    starts = np.cumsum([0] + [len(c) + 1 for c in chunks[:-1]]).tolist()
    special = encoding.special_tokens_mask
    owners = []
    for position, (begin, end) in enumerate(encoding.offsets):
        if special[position]:
            owners.append(0 if position == 0 else len(chunks) - 1)
        else:
            owners.append(bisect.bisect_right(starts, max(begin, end - 1)) - 1)
    return encoding.ids, owners


def _full_pass_means(embedder: jinarag.Embedder, chunks: list[str]) -> np.ndarray:
    ids, owners = _owners(embedder, chunks)
    with torch.inference_mode():
        hidden = embedder.model(torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.long))[0]
    owners_array = np.array(owners)
    return np.stack(
        [hidden[torch.from_numpy(owners_array == k)].mean(0).numpy() for k in range(len(chunks))]
    )


@pytest.fixture(params=["minilm", "v2_geglu_8h", "v2_geglu_12h", "code"])
def embedder(request, minilm_embedder, tiny_checkpoints):
    if request.param == "minilm":
        return minilm_embedder
    return jinarag.Embedder.from_pretrained(tiny_checkpoints[request.param], device="cpu")


def test_a_late_chunk_is_the_mean_of_its_tokens_in_one_full_pass(embedder):
    ours = embedder.embed_late_chunks(CHUNKS, normalize=False)
    expected = _full_pass_means(embedder, CHUNKS)
    assert ours.shape == (3, embedder.dim)
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    # Not the chunks embedded alone: the context changes the vectors.
    alone = embedder.embed(CHUNKS, normalize=False)
    assert np.abs(alone - ours).max() > 1e-3
    normalized = embedder.embed_late_chunks(CHUNKS)
    np.testing.assert_allclose(np.linalg.norm(normalized, axis=1), 1.0, atol=1e-5)


def test_many_documents_batch_like_one_at_a_time(minilm_embedder):
    documents = [CHUNKS, CHUNKS[1:], ["A single chunk about heat transfer."], CHUNKS[::-1]]
    together = minilm_embedder.embed_late_chunks_many(documents, batch_size=3)
    for chunks, rows in zip(documents, together, strict=True):
        alone = minilm_embedder.embed_late_chunks(chunks)
        assert rows.shape == alone.shape
        np.testing.assert_allclose(rows, alone, atol=1e-5)


def test_macro_windows_take_each_token_from_exactly_one_window(minilm_embedder):
    chunks = [s + "." for s in LONG_TEXT.split(". ") if s]
    plan = plan_late_chunks(minilm_embedder.tokenizer, chunks, max_length=64, overlap=16)
    assert len(plan.windows) > 2
    assert all(len(window) <= 64 for window in plan.windows)
    ids, owners = _owners(minilm_embedder, chunks)
    # The taken outputs, window by window, are the document's tokens once each, in order,
    # with the chunk each belongs to.
    taken = []
    for window, runs in zip(plan.windows, plan.segments, strict=True):
        for first, end, chunk in runs:
            taken += [(window[p], chunk) for p in range(first, end)]
    assert taken == list(zip(ids, owners, strict=True))


def test_macro_windows_equal_the_windows_run_by_hand(tiny_checkpoints):
    # An ALiBi model, so windows of any length are valid inputs.
    embedder = jinarag.Embedder.from_pretrained(
        tiny_checkpoints["v2_geglu_8h"], device="cpu", max_length=48
    )
    chunks = [s + "." for s in LONG_TEXT.split(". ") if s][:12]
    ours = embedder.embed_late_chunks(chunks, normalize=False, overlap=8)
    plan = plan_late_chunks(embedder.tokenizer, chunks, max_length=48, overlap=8)
    sums = np.zeros((len(chunks), embedder.dim))
    counts = np.zeros(len(chunks))
    for window, runs in zip(plan.windows, plan.segments, strict=True):
        with torch.inference_mode():
            hidden = embedder.model(
                torch.tensor([window]), torch.ones(1, len(window), dtype=torch.long)
            )[0].numpy()
        for first, end, chunk in runs:
            sums[chunk] += hidden[first:end].sum(0)
            counts[chunk] += end - first
    np.testing.assert_allclose(ours, sums / counts[:, None], atol=1e-5)
    # When the document fits, long late chunking is the single pass.
    roomy = jinarag.Embedder.from_pretrained(tiny_checkpoints["v2_geglu_8h"], device="cpu")
    np.testing.assert_allclose(
        roomy.embed_late_chunks(chunks, normalize=False),
        _full_pass_means(roomy, chunks),
        atol=1e-5,
    )


def test_bad_chunks_are_named_errors(minilm_embedder):
    with pytest.raises(jinarag.InputError, match="chunks is empty"):
        minilm_embedder.embed_late_chunks([])
    with pytest.raises(jinarag.InputError, match=r"chunks\[1\] is empty or blank"):
        minilm_embedder.embed_late_chunks(["wing", "  "])
    with pytest.raises(jinarag.InputError, match=r"chunks\[0\]"):
        minilm_embedder.embed_late_chunks([3, "wing"])
    with pytest.raises(jinarag.InputError, match="list of strings"):
        minilm_embedder.embed_late_chunks("one text")
    with pytest.raises(jinarag.InputError, match=r"documents\[1\]\[0\]"):
        minilm_embedder.embed_late_chunks_many([["fine"], [""]])
    with pytest.raises(jinarag.InputError, match="long_late_chunking=True"):
        minilm_embedder.embed_late_chunks([LONG_TEXT, LONG_TEXT], long_late_chunking=False)
    with pytest.raises(jinarag.InputError, match="overlap"):
        minilm_embedder.embed_late_chunks([LONG_TEXT, LONG_TEXT], overlap=10_000)


def test_split_text_covers_the_text_with_stripped_consecutive_chunks(minilm_embedder):
    text = "  Wings lift.  They also stall!\n\nFlaps help? Yes.  "
    for by, size in (("sentences", 256), ("tokens", 3)):
        spans = split_text(text, minilm_embedder.tokenizer.token_offsets, by=by, chunk_tokens=size)
        assert len(spans) >= 3
        covered = 0
        for start, end in spans:
            assert text[covered:start].strip() == ""  # only whitespace between chunks
            assert text[start:end] == text[start:end].strip() != ""
            covered = end
        assert text[covered:].strip() == ""
    with pytest.raises(jinarag.InputError, match="by"):
        split_text(text, minilm_embedder.tokenizer.token_offsets, by="paragraphs")


def test_late_chunk_gives_text_span_and_the_core_vector(minilm_embedder):
    text = "Wings lift. They also stall. Flaps help."
    chunks = late_chunk(minilm_embedder, text, by="sentences")
    assert [c.text for c in chunks] == ["Wings lift.", "They also stall.", "Flaps help."]
    assert all(text[c.span[0] : c.span[1]] == c.text for c in chunks)
    expected = minilm_embedder.embed_late_chunks([c.text for c in chunks])
    np.testing.assert_allclose(np.stack([c.vector for c in chunks]), expected, atol=1e-6)
    many = late_chunk_many(minilm_embedder, [text, LONG_TEXT], chunk_tokens=32)
    assert len(many) == 2 and len(many[1]) > 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # late chunking never truncates silently
        late_chunk_many(minilm_embedder, [LONG_TEXT * 3], chunk_tokens=64)
    with pytest.raises(jinarag.InputError, match=r"texts\[1\] is empty"):
        late_chunk_many(minilm_embedder, ["fine", "   "])


def test_the_document_prefix_leads_the_text_and_counts_for_the_first_chunk(minilm_dir):
    prefixed = jinarag.Embedder.from_pretrained(
        minilm_dir, max_length=256, document_prefix="passage: "
    )
    ours = prefixed.embed_late_chunks(CHUNKS, normalize=False)
    expected = _full_pass_means(prefixed, ["passage: " + CHUNKS[0], *CHUNKS[1:]])
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    plain = jinarag.Embedder.from_pretrained(minilm_dir, max_length=256)
    assert np.abs(plain.embed_late_chunks(CHUNKS, normalize=False) - ours).max() > 1e-4

"""Fine-tuning and distillation (jinarag.training) on tiny checkpoints and a small Cranfield cut:
the loss falls, saved models reload with the scores they were trained to, the training forward
equals Reranker.score_pairs, students keep N layers and load in an adapter, bad datasets and
outputs are named errors, and an interrupted run resumes to the same weights."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import jinarag
from jinarag.cli import main
from jinarag.errors import InputError
from jinarag.training import Cancelled, distill, pair_logits, train_reranker
from jinarag.training.models import load_cross_encoder, state_path

pytestmark = pytest.mark.slow  # training runs

PAIRS = [
    ("heat transfer in hypersonic flow", "heat transfer at high mach number in a boundary layer"),
    ("heat transfer in hypersonic flow", "panel flutter of a thin shell structure"),
    ("wing lift in a propeller slipstream", "the lift of a wing in a slipstream increases"),
]
FAST = {"max_length": 192, "device": "cpu", "show_progress": False}
# The same weights in two models (one reloaded from disk) give the same logits up to float32
# rounding: the CPU kernels may sum in another order for weights at another memory alignment.
# Other weights (one more training step, another seed) move the logits by far more than this.
SAME_WEIGHTS_ATOL = 1e-6


def small_beir(source: Path, target: Path, n_docs: int = 30) -> Path:
    """The first ``n_docs`` documents of a BEIR folder, its queries judged on them, their qrels."""
    (target / "qrels").mkdir(parents=True)
    corpus = [line for line in (source / "corpus.jsonl").read_text().splitlines() if line][:n_docs]
    ids = {json.loads(line)["_id"] for line in corpus}
    header, *rows = (source / "qrels" / "test.tsv").read_text().splitlines()
    rows = [row for row in rows if row.split("\t")[1] in ids]
    judged = {row.split("\t")[0] for row in rows}
    queries = [
        line
        for line in (source / "queries.jsonl").read_text().splitlines()
        if line and json.loads(line)["_id"] in judged
    ]
    (target / "corpus.jsonl").write_text("\n".join(corpus) + "\n")
    (target / "queries.jsonl").write_text("\n".join(queries) + "\n")
    (target / "qrels" / "test.tsv").write_text("\n".join([header, *rows]) + "\n")
    return target


@pytest.fixture(scope="module")
def small_cranfield(cranfield_dir, tmp_path_factory) -> Path:
    return small_beir(cranfield_dir, tmp_path_factory.mktemp("data") / "cranfield")


@pytest.fixture(scope="module")
def tiny_teacher(tiny_checkpoints, small_cranfield, tmp_path_factory):
    """A reranker fine-tuned from the tiny JinaBERT embedder (no head: one is created)."""
    out = tmp_path_factory.mktemp("teacher") / "model"
    run = train_reranker(
        small_cranfield,
        tiny_checkpoints["v2_geglu_8h"],
        out,
        queries="all",
        epochs=4,
        batch_size=4,
        lr=2e-3,
        **FAST,
    )
    return run


def test_loss_decreases_on_a_tiny_checkpoint(tiny_teacher):
    losses = tiny_teacher.losses
    assert len(losses) >= 8
    quarter = len(losses) // 4
    assert np.mean(losses[-quarter:]) < np.mean(losses[:quarter]) - 0.1, losses


def test_trained_model_reloads_with_the_same_scores(tiny_teacher):
    out = tiny_teacher.out
    assert {"config.json", "model.safetensors", "tokenizer.json", "training.json"} <= {
        p.name for p in out.iterdir()
    }
    assert not state_path(out).parent.exists()  # the resumable state is gone once published
    record = json.loads((out / "training.json").read_text())
    assert record["created_head"] is True and record["kind"] == "fine-tune"
    reloaded = jinarag.Reranker.from_pretrained(out, max_length=192, backend="torch")
    np.testing.assert_allclose(
        reloaded.score_pairs(PAIRS, activation=None),
        tiny_teacher.reranker.score_pairs(PAIRS, activation=None),
        rtol=0,
        atol=SAME_WEIGHTS_ATOL,
    )


@pytest.mark.parametrize("variant", ["reranker_fp16", "classic_reranker", "v2_geglu_12h"])
def test_training_forward_equals_score_pairs(tiny_checkpoints, variant):
    """The pass training differentiates scores like Reranker.score_pairs (ALiBi and BPE,
    absolute positions and WordPiece token types, a created head)."""
    max_length = 64 if variant == "classic_reranker" else 192  # its position limit is 64
    reranker, created = load_cross_encoder(
        tiny_checkpoints[variant], device="cpu", max_length=max_length, seed=0
    )
    assert created == (variant == "v2_geglu_12h")
    with torch.no_grad():
        logits = pair_logits(reranker, reranker.tokenize_pairs(PAIRS), max_tokens=256)
    np.testing.assert_allclose(
        logits.numpy(), reranker.score_pairs(PAIRS, activation=None), rtol=1e-5, atol=1e-5
    )


@pytest.fixture(scope="module")
def tiny_student(tiny_teacher, small_cranfield, tmp_path_factory):
    out = tmp_path_factory.mktemp("student") / "model"
    return distill(
        tiny_teacher.out,
        out,
        dataset=small_cranfield,
        student_layers=1,
        candidates=8,
        epochs=2,
        lr=1e-3,
        **FAST,
    )


def test_student_has_n_layers_and_reloads_with_the_same_scores(tiny_teacher, tiny_student):
    reloaded = jinarag.Reranker.from_pretrained(tiny_student.out, max_length=192, backend="torch")
    assert reloaded.config.num_hidden_layers == 1
    assert tiny_teacher.reranker.config.num_hidden_layers == 2
    np.testing.assert_allclose(
        reloaded.score_pairs(PAIRS, activation=None),
        tiny_student.reranker.score_pairs(PAIRS, activation=None),
        rtol=0,
        atol=SAME_WEIGHTS_ATOL,
    )


def test_the_student_moves_towards_the_teacher(tiny_teacher, tiny_student, small_cranfield):
    """On the distilled pairs, the trained student's logits are nearer the teacher's than
    those of the student it started as (the teacher's first layer, untrained)."""
    from jinarag.evaluation import load_beir
    from jinarag.training.data import candidate_lists, distillation_pairs, document_texts
    from jinarag.training.models import student_from_teacher

    dataset = load_beir(small_cranfield)
    texts = document_texts(dataset)
    pairs = distillation_pairs(dataset, candidate_lists(dataset, list(dataset.queries), 8), texts)
    teacher = tiny_teacher.reranker.score_pairs(pairs, activation=None)
    start = student_from_teacher(tiny_teacher.reranker, 1).score_pairs(pairs, activation=None)
    trained = tiny_student.reranker.score_pairs(pairs, activation=None)
    assert np.mean((trained - teacher) ** 2) < 0.9 * np.mean((start - teacher) ** 2)


def test_student_loads_in_an_adapter(tiny_student):
    pytest.importorskip("langchain_core")
    from langchain_core.documents import Document

    from jinarag.langchain import JinaReranker

    reranker = JinaReranker(model=str(tiny_student.out), max_length=192, top_n=2)
    docs = [Document(page_content=text) for _, text in PAIRS]
    ranked = reranker.compress_documents(docs, PAIRS[0][0])
    assert len(ranked) == 2
    expected = tiny_student.reranker.score(PAIRS[0][0], [t for _, t in PAIRS])
    assert ranked[0].metadata["relevance_score"] == pytest.approx(float(expected.max()), abs=1e-6)


def test_student_layer_choice_copies_the_teacher_layers(tiny_teacher):
    from jinarag.training.models import student_from_teacher

    teacher = tiny_teacher.reranker
    key = "encoder.layer.{}.attention.self.query.weight"
    for choice, picked in (("first", 0), ("spread", 1)):
        student = student_from_teacher(teacher, 1, choice=choice)
        torch.testing.assert_close(
            student.model.state_dict()[key.format(0)],
            teacher.model.state_dict()[key.format(picked)],
        )
    for bad in (0, 3, True):
        with pytest.raises(InputError, match="student_layers"):
            student_from_teacher(teacher, bad)


def test_bad_datasets_are_named_errors(small_cranfield, tiny_checkpoints, tmp_path):
    base = tiny_checkpoints["v2_geglu_8h"]
    no_qrels = tmp_path / "no-qrels"
    shutil.copytree(small_cranfield, no_qrels)
    (no_qrels / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n")
    with pytest.raises(InputError, match="has no qrels"):
        train_reranker(no_qrels, base, tmp_path / "a", **FAST)
    missing = tmp_path / "missing-qrels"
    shutil.copytree(small_cranfield, missing)
    shutil.rmtree(missing / "qrels")
    with pytest.raises(InputError, match="qrels"):
        train_reranker(missing, base, tmp_path / "a", **FAST)
    empty = tmp_path / "empty-corpus"
    shutil.copytree(small_cranfield, empty)
    (empty / "corpus.jsonl").write_text("")
    with pytest.raises(InputError, match="empty corpus"):
        train_reranker(empty, base, tmp_path / "a", **FAST)
    with pytest.raises(InputError, match="empty corpus"):
        distill(base, tmp_path / "a", dataset=empty, student_layers=1, **FAST)
    with pytest.raises(InputError, match="queries must be"):
        train_reranker(small_cranfield, base, tmp_path / "a", queries="first", **FAST)
    with pytest.raises(InputError, match="exactly one of"):
        distill(base, tmp_path / "a", dataset=small_cranfield, **FAST)
    assert not (tmp_path / "a").exists()


def test_a_taken_output_needs_overwrite(tiny_teacher, small_cranfield, tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="overwrite"):
        distill(tiny_teacher.out, taken, dataset=small_cranfield, student_layers=1, **FAST)
    assert (taken / "notes.txt").read_text() == "mine"


def test_an_interrupted_run_resumes_to_the_same_weights(
    small_cranfield, tiny_checkpoints, tmp_path
):
    settings = dict(queries="all", epochs=2, batch_size=4, lr=2e-3, save_every=3, **FAST)
    base = tiny_checkpoints["reranker_bf16"]
    whole = train_reranker(small_cranfield, base, tmp_path / "whole", **settings)
    calls = []
    out = tmp_path / "resumed"
    with pytest.raises(Cancelled, match="resume"):
        train_reranker(
            small_cranfield, base, out, stop=lambda: calls.append(1) or len(calls) >= 4, **settings
        )
    assert state_path(out).is_file() and not out.exists()
    notes: list[str] = []
    resumed = train_reranker(small_cranfield, base, out, note=notes.append, **settings)
    assert resumed.resumed_from == 4 and any("resuming from step 4" in n for n in notes)
    assert resumed.losses == pytest.approx(whole.losses, abs=1e-6)
    np.testing.assert_allclose(  # on torch, as the trained model in memory runs
        jinarag.Reranker.from_pretrained(out, backend="torch").score_pairs(PAIRS, activation=None),
        whole.reranker.score_pairs(PAIRS, activation=None),
        atol=1e-6,
    )
    assert not state_path(out).parent.exists()


def test_a_state_from_other_settings_restarts(small_cranfield, tiny_checkpoints, tmp_path):
    base = tiny_checkpoints["reranker_bf16"]
    out = tmp_path / "model"
    settings = dict(queries="all", epochs=1, batch_size=4, **FAST)
    with pytest.raises(Cancelled):
        train_reranker(small_cranfield, base, out, lr=1e-3, stop=lambda: True, **settings)
    notes: list[str] = []
    run = train_reranker(small_cranfield, base, out, lr=2e-3, note=notes.append, **settings)
    assert run.resumed_from == 0 and any("other settings" in n for n in notes)


def test_cli_train_then_distill(small_cranfield, tiny_checkpoints, tmp_path, capsys):
    teacher, student = tmp_path / "teacher", tmp_path / "student"
    common = ["--max-length", "192", "--device", "cpu", "--candidates", "5", "--batch-size", "16"]
    base = str(tiny_checkpoints["v2_geglu_8h"])
    argv = ["train-reranker", str(small_cranfield), "--base", base, "--out", str(teacher)]
    assert main([*argv, "--queries", "all", "--titles", *common]) == 0
    assert "reranker written to" in capsys.readouterr().out
    assert json.loads((teacher / "training.json").read_text())["titles"] is True
    assert main([*argv, *common]) == 1  # --out is taken now
    assert "--overwrite" in capsys.readouterr().err
    distil = ["distill", "--teacher", str(teacher), "--dataset", str(small_cranfield)]
    assert main([*distil, "--student-layers", "1", "--out", str(student), *common]) == 0
    assert "student written to" in capsys.readouterr().out
    assert jinarag.Reranker.from_pretrained(student).config.num_hidden_layers == 1
    assert main([*distil, "--student-layers", "5", "--out", str(tmp_path / "x"), *common]) == 1
    assert "student_layers=5 is out of range" in capsys.readouterr().err
    assert (
        main(["train-reranker", str(tmp_path), "--base", base, "--out", str(tmp_path / "y")]) == 1
    )
    assert "not a BEIR dataset folder" in capsys.readouterr().err


def test_an_embedder_checkpoint_gets_a_new_head(minilm_dir):
    reranker, created = load_cross_encoder(minilm_dir, device="cpu", max_length=192, seed=0)
    assert created and reranker.config.num_labels == 1
    again, _ = load_cross_encoder(minilm_dir, device="cpu", max_length=192, seed=0)
    np.testing.assert_allclose(
        reranker.score_pairs(PAIRS[:1], activation=None),
        again.score_pairs(PAIRS[:1], activation=None),
        rtol=0,
        atol=SAME_WEIGHTS_ATOL,
    )


def test_title_queries_are_answered_by_their_documents_text():
    from jinarag.evaluation.beir import Dataset
    from jinarag.training.data import title_queries

    corpus = {
        "1": ("Flutter of thin panels.", "Flutter of thin panels. " + "panels flutter " * 6),
        "2": ("Boundary layers", "heat transfer in a laminar boundary layer " * 2),
        "3": ("", "a document without a title " * 3),
        "4": ("Too short title", "short text"),
    }
    titles = title_queries(Dataset("toy", corpus, {"q": "x"}, {"q": {"1": 1}}))
    assert titles.queries == {"title:1": "Flutter of thin panels"}
    assert titles.qrels == {"title:1": {"1": 1}}
    assert titles.corpus["1"] == ("", ("panels flutter " * 6).strip())  # the title taken out
    assert titles.corpus["2"] == ("", corpus["2"][1].strip())  # kept as a negative
    assert set(titles.corpus) == set(corpus)  # untitled and short ones stay as negatives


def test_training_on_titles_adds_their_groups(small_cranfield, tiny_checkpoints, tmp_path):
    base = tiny_checkpoints["v2_geglu_8h"]
    settings = dict(queries="all", epochs=1, batch_size=8, negatives=2, candidates=5, **FAST)
    judged = train_reranker(small_cranfield, base, tmp_path / "judged", **settings)
    both = train_reranker(small_cranfield, base, tmp_path / "both", titles=True, **settings)
    record = json.loads((both.out / "training.json").read_text())
    before = json.loads((judged.out / "training.json").read_text())
    assert record["titles"] is True and before["titles"] is False
    from jinarag.evaluation import load_beir
    from jinarag.training.data import title_queries

    titled = len(title_queries(load_beir(small_cranfield)).queries)
    assert titled >= 25  # of the 30 documents, all but the ones with a too short title or text
    assert record["groups"] == before["groups"] + titled
    no_titles = tmp_path / "no-titles"
    shutil.copytree(small_cranfield, no_titles)
    rows = [json.loads(line) for line in (no_titles / "corpus.jsonl").read_text().splitlines()]
    (no_titles / "corpus.jsonl").write_text(
        "".join(json.dumps({**row, "title": ""}) + "\n" for row in rows)
    )
    with pytest.raises(InputError, match="no titles"):
        train_reranker(no_titles, base, tmp_path / "c", titles=True, **settings)
    with pytest.raises(InputError, match="titles"):
        train_reranker(small_cranfield, base, tmp_path / "c", titles="yes", **settings)
    assert not (tmp_path / "c").exists()


def test_distilling_on_titles_adds_their_pairs(tiny_teacher, small_cranfield, tmp_path):
    from jinarag.evaluation import load_beir
    from jinarag.training.data import title_queries

    settings = dict(dataset=small_cranfield, student_layers=1, candidates=3, epochs=1, **FAST)
    plain = distill(tiny_teacher.out, tmp_path / "plain", **settings)
    titled = distill(tiny_teacher.out, tmp_path / "titled", titles=True, **settings)
    before = json.loads((plain.out / "training.json").read_text())
    after = json.loads((titled.out / "training.json").read_text())
    titles = len(title_queries(load_beir(small_cranfield)).queries)
    assert after["titles"] is True and before["titles"] is False
    # each title finds its own document at least, and at most `candidates` documents
    assert before["pairs"] + titles <= after["pairs"] <= before["pairs"] + 3 * titles

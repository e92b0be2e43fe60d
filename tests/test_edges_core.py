"""Bad calls to the core's public entry points, one table row each: the models
(``Embedder``, ``Reranker``, ``LoadOptions``, late chunking), the checkpoint files they read,
``HybridIndex`` (constructor, writes, search, verify), fusion and the evaluation functions.

Every row must end in jinarag's own error naming the bad value and the option: never a plain
``TypeError`` or ``AttributeError``, never a value silently read as something else (``"no"``
as True, a string as a list of characters, a ``gpt2`` config as BERT).

    python tests/edge_probe.py test_edges_core     # what each call does now, counted
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from edge_table import Refusal, assert_refused, probe_tables, rows_of
from tiny_checkpoints import build_variant

import jinarag
from jinarag.errors import CheckpointError, InputError

EMBEDDER = "v2_geglu_8h"  # ALiBi, WordPiece, hidden 32
CLASSIC = "classic"  # absolute positions: max_position_embeddings is a hard limit
RERANKER = "reranker_bf16"
CPU = {"device": "cpu", "backend": "torch"}
TEXTS = [
    "The wing stalls at a high angle of attack.",
    "Supersonic flow over a swept wing.",
    "Boundary layer transition on a flat plate.",
    "Heat transfer to a blunt body in hypersonic flow.",
]


# --------------------------------------------------------------------------- the environment


def _broken(root: Path, source: Path, name: str, filename: str, **changes: Any) -> Path:
    """A copy of checkpoint ``source`` whose JSON file ``filename`` has ``changes`` applied
    (a value of None removes the key; ``filename`` absent: it is created)."""
    out = Path(shutil.copytree(source, root / "broken" / name))
    path = out / filename
    data = json.loads(path.read_text()) if path.is_file() else {}
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path.write_text(json.dumps(data))
    return out


def _beir(folder: Path) -> Path:
    """A judged collection of four documents and two queries, in BEIR layout."""
    (folder / "qrels").mkdir(parents=True)
    corpus = [{"_id": f"d{i}", "title": "", "text": t} for i, t in enumerate(TEXTS)]
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in corpus) + "\n")
    queries = [{"_id": "1", "text": "wing stall"}, {"_id": "2", "text": "hypersonic heat"}]
    (folder / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries) + "\n")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\td0\t1\n2\td3\t1\n")
    return folder


def build_env(root: Path) -> SimpleNamespace:
    """What the rows need: tiny checkpoints (and broken copies), two indexes (one read, one
    that the write rows may change), folders ``a/`` and ``b/``, a BEIR dataset."""
    from jinarag.evaluation import Config, load_beir
    from jinarag.evaluation.runner import Row

    root = Path(root)
    names = (EMBEDDER, CLASSIC, RERANKER)
    ckpt = {name: build_variant(name, root / "ckpt" / name) for name in names}
    emb = jinarag.Embedder.from_pretrained(ckpt[EMBEDDER], **CPU)
    rr = jinarag.Reranker.from_pretrained(ckpt[RERANKER], **CPU)
    index = jinarag.HybridIndex(root / "store", embedder=emb)
    index.add(TEXTS, ids=[f"d{i}" for i in range(len(TEXTS))])
    scratch = jinarag.HybridIndex(root / "scratch", embedder=emb)
    files = root / "files"
    for name in ("a", "b"):
        (files / name).mkdir(parents=True)
        (files / name / f"{name}.txt").write_text(f"Notes on folder {name}: flutter of panels.")
    sbert = "sentence_bert_config.json"
    broken = {
        "gpt2": _broken(root, ckpt[EMBEDDER], "gpt2", "config.json", model_type="gpt2"),
        "gpt2-reranker": _broken(
            root, ckpt[RERANKER], "gpt2-reranker", "config.json", model_type="gpt2"
        ),
        "roberta": _broken(root, ckpt[CLASSIC], "roberta", "config.json", model_type="roberta"),
        "type-int": _broken(root, ckpt[EMBEDDER], "type-int", "config.json", model_type=7),
        "seq-neg": _broken(root, ckpt[EMBEDDER], "seq-neg", sbert, max_seq_length=-5),
        "seq-zero": _broken(root, ckpt[EMBEDDER], "seq-zero", sbert, max_seq_length=0),
        "seq-str": _broken(root, ckpt[EMBEDDER], "seq-str", sbert, max_seq_length="512"),
        "seq-float": _broken(root, ckpt[EMBEDDER], "seq-float", sbert, max_seq_length=128.5),
        "seq-bool": _broken(root, ckpt[EMBEDDER], "seq-bool", sbert, max_seq_length=True),
        "seq-long": _broken(root, ckpt[CLASSIC], "seq-long", sbert, max_seq_length=100_000),
        "lower-str": _broken(root, ckpt[EMBEDDER], "lower-str", "tokenizer_config.json",
                             do_lower_case="false"),  # fmt: skip
    }
    (broken["lower-str"] / "tokenizer.json").unlink()  # vocab.txt only: do_lower_case is read
    dataset = load_beir(_beir(root / "beir"))
    return SimpleNamespace(
        root=root,
        ckpt=ckpt,
        broken=broken,
        emb=emb,
        rr=rr,
        index=index,
        scratch=scratch,
        files=files,
        dataset=dataset,
        Config=Config,
        row=Row("bm25", 0.5, 0.5, 1.0, 2),
    )


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> SimpleNamespace:
    return build_env(tmp_path_factory.mktemp("edges-core"))


def _in(folder: Path, call):
    """``call()`` run with ``folder`` as the working directory (relative paths read there)."""
    with contextlib.chdir(folder):
        return call()


def _load(cls_name: str, path_key: str, **options: Any):
    """``from_pretrained`` of a broken checkpoint copy, on the CPU."""
    cls = getattr(jinarag, cls_name)
    return lambda e: cls.from_pretrained(e.broken[path_key], **CPU, **options)


def _opts(**options: Any):
    return lambda e: jinarag.LoadOptions(**options)


# --------------------------------------------------------------------------- Embedder/Reranker

MODELS: list[Refusal] = [
    Refusal("Embedder.from_pretrained(None)", lambda e: jinarag.Embedder.from_pretrained(None),
            InputError, ("name_or_path", "None")),
    Refusal("Embedder.from_pretrained(123)", lambda e: jinarag.Embedder.from_pretrained(123),
            InputError, ("name_or_path", "123")),
    Refusal("Embedder.from_pretrained(['a'])", lambda e: jinarag.Embedder.from_pretrained(["a"]),
            InputError, ("name_or_path", "['a']")),
    Refusal("Embedder.from_pretrained('')", lambda e: jinarag.Embedder.from_pretrained(""),
            InputError, ("name_or_path", "''")),
    Refusal("Reranker.from_pretrained(None)", lambda e: jinarag.Reranker.from_pretrained(None),
            InputError, ("name_or_path", "None")),
    Refusal("Reranker.from_pretrained(123)", lambda e: jinarag.Reranker.from_pretrained(123),
            InputError, ("name_or_path", "123")),
    Refusal("Reranker.from_pretrained(b'turbo')",
            lambda e: jinarag.Reranker.from_pretrained(b"turbo"),
            InputError, ("name_or_path", "b'turbo'")),
    Refusal("from_pretrained(devcie=)",
            lambda e: jinarag.Embedder.from_pretrained(e.ckpt[EMBEDDER], devcie="cpu"),
            InputError, ("devcie", "device")),
    Refusal("from_pretrained(options='cpu')",
            lambda e: jinarag.Embedder.from_pretrained(e.ckpt[EMBEDDER], "cpu"),
            InputError, ("options='cpu'", "LoadOptions")),
    Refusal("from_pretrained(query_prefix=5)",
            lambda e: jinarag.Embedder.from_pretrained(e.ckpt[EMBEDDER], **CPU, query_prefix=5),
            InputError, ("query_prefix", "5")),
    Refusal("from_pretrained(document_prefix=None)",
            lambda e: jinarag.Embedder.from_pretrained(e.ckpt[EMBEDDER], **CPU,
                                                       document_prefix=None),
            InputError, ("document_prefix", "None")),
    Refusal("Reranker.from_pretrained(query_prefix=)",
            lambda e: jinarag.Reranker.from_pretrained(e.ckpt[RERANKER], query_prefix="q: "),
            InputError, ("query_prefix", "device")),
    Refusal("LoadOptions(max_length=-1)", _opts(max_length=-1), InputError, ("max_length", "-1")),
    Refusal("LoadOptions(max_length='128')", _opts(max_length="128"), InputError,
            ("max_length", "'128'")),
    Refusal("LoadOptions(max_batch_tokens=0)", _opts(max_batch_tokens=0), InputError,
            ("max_batch_tokens", "0")),
    Refusal("LoadOptions(num_threads=0)", _opts(num_threads=0), InputError, ("num_threads", "0")),
    Refusal("LoadOptions(quantize='int4')", _opts(quantize="int4"), InputError,
            ("quantize", "'int4'", "'int8'")),
    Refusal("LoadOptions(attention='flash')", _opts(attention="flash"), InputError,
            ("attention", "'flash'", "'sdpa'")),
    Refusal("LoadOptions(backend='onnx')", _opts(backend="onnx"), InputError,
            ("backend", "'onnx'", "'openvino'")),
    Refusal("LoadOptions(revision='')", _opts(revision=""), InputError, ("revision", "''")),
    Refusal("LoadOptions(local_files_only='yes')", _opts(local_files_only="yes"), InputError,
            ("local_files_only", "'yes'")),
    Refusal("LoadOptions(device=0)", _opts(device=0), InputError, ("device", "0")),
    Refusal("LoadOptions.from_dict([])", lambda e: jinarag.LoadOptions.from_dict([]),
            InputError, ("from_dict", "list")),
    Refusal("embed(batch_sise=)", lambda e: e.emb.embed(["a"], batch_sise=4),
            InputError, ("batch_sise", "batch_size")),
    Refusal("embed(stop=5)", lambda e: e.emb.embed(["a"], stop=5), InputError, ("stop", "5")),
    Refusal("embed_query(normalise=)", lambda e: e.emb.embed_query("a", normalise=False),
            InputError, ("normalise", "normalize")),
    Refusal("embed_queries(batch_size=0)", lambda e: e.emb.embed_queries(["a"], batch_size=0),
            InputError, ("batch_size", "0")),
    Refusal("embed_late_chunks(overlap='8')",
            lambda e: e.emb.embed_late_chunks(["a b", "c d"], overlap="8"),
            InputError, ("overlap", "'8'")),
    Refusal("embed_late_chunks_many(show_progress='no')",
            lambda e: e.emb.embed_late_chunks_many([["a", "b"]], show_progress="no"),
            InputError, ("show_progress", "'no'")),
    Refusal("embed_late_chunks_many(stop=True)",
            lambda e: e.emb.embed_late_chunks_many([["a", "b"]], stop=True),
            InputError, ("stop", "True")),
    Refusal("embed_tokens(list)", lambda e: e.emb.embed_tokens([[1, 2, 3]]),
            InputError, ("encoded", "list", "tokenize")),
    Refusal("tokenize(truncate='no')", lambda e: e.emb.tokenize(["a"], truncate="no"),
            InputError, ("truncate", "'no'")),
    Refusal("score(activaton=)", lambda e: e.rr.score("q", ["d"], activaton="sigmoid"),
            InputError, ("activaton", "activation")),
    Refusal("score(activation='softmax')", lambda e: e.rr.score("q", ["d"], activation="softmax"),
            InputError, ("activation", "'softmax'")),
    Refusal("score(stop='never')", lambda e: e.rr.score("q", ["d"], stop="never"),
            InputError, ("stop", "'never'")),
    Refusal("rank(top_n=-1)", lambda e: e.rr.rank("q", ["d"], top_n=-1), InputError,
            ("top_n", "-1")),
    Refusal("rank(top_k=)", lambda e: e.rr.rank("q", ["d"], top_k=1), InputError,
            ("top_k", "top_n")),
    Refusal("score_tokens(dict)", lambda e: e.rr.score_tokens({"input_ids": [[1]]}),
            InputError, ("encoded", "dict", "tokenize_pairs")),
    Refusal("save_pretrained(None)", lambda e: e.emb.save_pretrained(None), InputError,
            ("path", "None")),
    Refusal("save_pretrained(123)", lambda e: e.rr.save_pretrained(123), InputError,
            ("path", "123")),
    Refusal("plan_late_chunks(max_length=0)",
            lambda e: _plan(e, max_length=0), InputError, ("max_length", "0")),
    Refusal("plan_late_chunks(long_late_chunking='no')",
            lambda e: _plan(e, max_length=16, long_late_chunking="no"),
            InputError, ("long_late_chunking", "'no'")),
    Refusal("plan_late_chunks(overlap=2.5)",
            lambda e: _plan(e, max_length=16, overlap=2.5), InputError, ("overlap", "2.5")),
    Refusal("check_chunks(5)", lambda e: _check_chunks(5), InputError, ("chunks", "int")),
]


def _plan(env: SimpleNamespace, **options: Any):
    from jinarag.inference.late_chunking import plan_late_chunks

    return plan_late_chunks(env.emb.tokenizer, ["a wing", "in a slipstream"], **options)


def _check_chunks(value: Any):
    from jinarag.inference.late_chunking import check_chunks

    return check_chunks(value)


# --------------------------------------------------------------------------- checkpoint files

CHECKPOINTS: list[Refusal] = [
    Refusal("model_type gpt2 (Embedder)", _load("Embedder", "gpt2"), CheckpointError,
            ("config.json", "model_type='gpt2'", "'bert'")),
    Refusal("model_type gpt2 (Reranker)", _load("Reranker", "gpt2-reranker"), CheckpointError,
            ("config.json", "model_type='gpt2'", "'bert'")),
    Refusal("model_type roberta", _load("Embedder", "roberta"), CheckpointError,
            ("config.json", "model_type='roberta'", "'bert'")),
    Refusal("model_type 7", _load("Embedder", "type-int"), CheckpointError,
            ("config.json", "model_type=7")),
    Refusal("max_seq_length -5", _load("Embedder", "seq-neg"), CheckpointError,
            ("sentence_bert_config.json", "max_seq_length=-5")),
    Refusal("max_seq_length 0", _load("Embedder", "seq-zero"), CheckpointError,
            ("sentence_bert_config.json", "max_seq_length=0")),
    Refusal("max_seq_length '512'", _load("Embedder", "seq-str"), CheckpointError,
            ("sentence_bert_config.json", "max_seq_length='512'")),
    Refusal("max_seq_length 128.5", _load("Embedder", "seq-float"), CheckpointError,
            ("sentence_bert_config.json", "max_seq_length=128.5")),
    Refusal("max_seq_length true", _load("Embedder", "seq-bool"), CheckpointError,
            ("sentence_bert_config.json", "max_seq_length=True")),
    Refusal("max_seq_length past the position table", _load("Embedder", "seq-long"),
            CheckpointError,
            ("sentence_bert_config.json", "max_seq_length=100000", "max_position_embeddings")),
    Refusal("do_lower_case 'false'", _load("Embedder", "lower-str"), CheckpointError,
            ("tokenizer_config.json", "do_lower_case='false'")),
]


# --------------------------------------------------------------------------- HybridIndex


def _index(env: SimpleNamespace, **options: Any):
    """A HybridIndex over a folder of its own (never created: each call is refused first)."""
    options.setdefault("embedder", env.emb)
    return jinarag.HybridIndex(env.root / "never", **options)


INDEX: list[Refusal] = [
    Refusal("HybridIndex(path=123)", lambda e: jinarag.HybridIndex(123, embedder=e.emb),
            InputError, ("path", "123")),
    Refusal("HybridIndex(path=['store'])",
            lambda e: jinarag.HybridIndex(["store"], embedder=e.emb),
            InputError, ("path", "['store']")),
    Refusal("HybridIndex(url=8000)", lambda e: jinarag.HybridIndex(url=8000, embedder=e.emb),
            InputError, ("url", "8000")),
    Refusal("HybridIndex(collection=None)", lambda e: _index(e, collection=None), InputError,
            ("collection", "None")),
    Refusal("HybridIndex(collection=5)", lambda e: _index(e, collection=5), InputError,
            ("collection", "5")),
    Refusal("HybridIndex(embedder=<Reranker>)", lambda e: _index(e, embedder=e.rr), InputError,
            ("embedder", "Reranker")),
    Refusal("HybridIndex(embedder='small')", lambda e: _index(e, embedder="small"), InputError,
            ("embedder", "'small'", "from_pretrained")),
    Refusal("HybridIndex(reranker=<Embedder>)", lambda e: _index(e, reranker=e.emb), InputError,
            ("reranker", "Embedder")),
    Refusal("HybridIndex(reranker='turbo')", lambda e: _index(e, reranker="turbo"), InputError,
            ("reranker", "'turbo'", "from_pretrained")),
    Refusal("HybridIndex(bm25='bm26')", lambda e: _index(e, bm25="bm26"), InputError,
            ("bm26", "okapi")),
    Refusal("HybridIndex(b=5)", lambda e: _index(e, b=5), InputError, ("b", "5", "0", "1")),
    Refusal("HybridIndex(b=-0.1)", lambda e: _index(e, b=-0.1), InputError, ("b", "-0.1")),
    Refusal("HybridIndex(k1=-1)", lambda e: _index(e, k1=-1), InputError, ("k1", "-1")),
    Refusal("HybridIndex(k1='1.2')", lambda e: _index(e, k1="1.2"), InputError, ("k1", "'1.2'")),
    Refusal("HybridIndex(epsilon=-1)", lambda e: _index(e, epsilon=-1), InputError,
            ("epsilon", "-1")),
    Refusal("HybridIndex(delta=nan)", lambda e: _index(e, bm25="bm25plus", delta=float("nan")),
            InputError, ("delta", "nan")),
    Refusal("HybridIndex(stopwords=5)", lambda e: _index(e, stopwords=5), InputError,
            ("stopwords", "5")),
    Refusal("HybridIndex(stemmer='klingon')", lambda e: _index(e, stemmer="klingon"), InputError,
            ("stemmer", "'klingon'")),
    Refusal("HybridIndex(bm25_backend='fast')", lambda e: _index(e, bm25_backend="fast"),
            InputError, ("backend", "'fast'", "rank_bm25")),
    Refusal("HybridIndex(fusion='sum')", lambda e: _index(e, fusion="sum"), InputError,
            ("fusion", "'sum'", "rrf")),
    Refusal("HybridIndex(weights=(1,))", lambda e: _index(e, weights=(1,)), InputError,
            ("weights", "2")),
    Refusal("HybridIndex(rrf_k=-1)", lambda e: _index(e, rrf_k=-1), InputError,
            ("rrf_k", "-1")),
    Refusal("HybridIndex(candidates=0)", lambda e: _index(e, candidates=0), InputError,
            ("candidates", "0")),
    Refusal("HybridIndex(rerank_top=0)", lambda e: _index(e, rerank_top=0), InputError,
            ("rerank_top", "0")),
    Refusal("HybridIndex(batch_size=2.5)", lambda e: _index(e, batch_size=2.5), InputError,
            ("batch_size", "2.5")),
    Refusal("HybridIndex(lock_timeout='10')", lambda e: _index(e, lock_timeout="10"),
            InputError, ("lock_timeout", "'10'")),
    Refusal("HybridIndex(reranker_top=)", lambda e: _index(e, reranker_top=5), InputError,
            ("reranker_top", "rerank_top")),
    Refusal("add(idss=)", lambda e: e.scratch.add(["a"], idss=["x"]), InputError,
            ("idss", "ids")),
    Refusal("add(show_progress='no')", lambda e: e.scratch.add(["a"], show_progress="no"),
            InputError, ("show_progress", "'no'")),
    Refusal("add(chunking='early')", lambda e: e.scratch.add(["a"], chunking="early"),
            InputError, ("chunking", "'early'", "late")),
    Refusal("add(chunk_tokens=0)", lambda e: e.scratch.add(["a"], chunking="late", chunk_tokens=0),
            InputError, ("chunk_tokens", "0")),
    Refusal("add(chunk_by='words')",
            lambda e: e.scratch.add(["a"], chunking="late", chunk_by="words"),
            InputError, ("chunk_by", "'words'", "sentences")),
    Refusal("add_files('ab') is one path",
            lambda e: _in(e.files, lambda: e.scratch.add_files("ab")),
            InputError, ("'ab'",)),
    Refusal("add_files(sync='no')", lambda e: e.scratch.add_files([e.files / "a"], sync="no"),
            InputError, ("sync", "'no'")),
    Refusal("add_files(show_progress=1)",
            lambda e: e.scratch.add_files([e.files / "a"], show_progress=1),
            InputError, ("show_progress", "1")),
    Refusal("add_files([5])", lambda e: e.scratch.add_files([5]), InputError,
            ("paths[0]", "5")),
    Refusal("add_files(None)", lambda e: e.scratch.add_files(None), InputError,
            ("paths", "None")),
    Refusal("add_files(root=5)", lambda e: e.scratch.add_files([e.files / "a"], root=5),
            InputError, ("root", "5")),
    Refusal("add_files(chunking='early')",
            lambda e: e.scratch.add_files([e.files / "a"], chunking="early"),
            InputError, ("chunking", "'early'")),
    Refusal("add_files(overlap=-1)", lambda e: e.scratch.add_files([e.files / "a"], overlap=-1),
            InputError, ("overlap", "-1")),
    Refusal("add_files(executor='ray')",
            lambda e: e.scratch.add_files([e.files / "a"], executor="ray"),
            InputError, ("executor", "'ray'", "RayExecutor")),
    Refusal("delete()", lambda e: e.scratch.delete(), InputError, ("ids", "where")),
    Refusal("delete(where='x')", lambda e: e.scratch.delete(where="x"), InputError,
            ("where", "'x'")),
    Refusal("get(where=5)", lambda e: e.index.get(where=5), InputError, ("where", "5")),
    Refusal("get(ids='d1')", lambda e: e.index.get(ids="d1"), InputError, ("ids", "str")),
    Refusal("verify(repair='yes')", lambda e: e.index.verify(repair="yes"), InputError,
            ("repair", "'yes'")),
    Refusal("verify(repair=0)", lambda e: e.index.verify(repair=0), InputError,
            ("repair", "0")),
    Refusal("search(k=0)", lambda e: e.index.search("wing", k=0), InputError, ("k", "0")),
    Refusal("search(k=2.0)", lambda e: e.index.search("wing", k=2.0), InputError, ("k", "2.0")),
    Refusal("search(mode='semantic')", lambda e: e.index.search("wing", mode="semantic"),
            InputError, ("mode", "'semantic'", "hybrid")),
    Refusal("search(fusion='sum')", lambda e: e.index.search("wing", fusion="sum"), InputError,
            ("fusion", "'sum'", "dbsf")),
    Refusal("search(weights={...})",
            lambda e: e.index.search("wing", weights={"dense": 1, "bm25": 1}),
            InputError, ("weights", "dict")),
    Refusal("search(where='topic')", lambda e: e.index.search("wing", where="topic"),
            InputError, ("where", "'topic'")),
    Refusal("search(candidates=0)", lambda e: e.index.search("wing", candidates=0), InputError,
            ("candidates", "0")),
    Refusal("search(rerank='yes')", lambda e: e.index.search("wing", rerank="yes"), InputError,
            ("rerank", "'yes'")),
    Refusal("search(rerank=<Embedder>)", lambda e: e.index.search("wing", rerank=e.emb),
            InputError, ("rerank", "Embedder")),
    Refusal("search(rerank_top=0)", lambda e: e.index.search("wing", rerank_top=0), InputError,
            ("rerank_top", "0")),
    Refusal("search(rerank_top='5')", lambda e: e.index.search("wing", rerank_top="5"),
            InputError, ("rerank_top", "'5'")),
    Refusal("search(rrf_k=-1)", lambda e: e.index.search("wing", rrf_k=-1), InputError,
            ("rrf_k", "-1")),
    Refusal("search(rrf_k='60', mode='dense')",
            lambda e: e.index.search("wing", mode="dense", rrf_k="60"), InputError,
            ("rrf_k", "'60'")),
    Refusal("search(query_embedding='v')", lambda e: e.index.search("wing", query_embedding="v"),
            InputError, ("query_embedding", "'v'")),
    Refusal("search(top_k=)", lambda e: e.index.search("wing", top_k=3), InputError,
            ("top_k", "candidates")),
    Refusal("sources(candidates=0)", lambda e: e.index.sources("wing", candidates=0),
            InputError, ("candidates", "0")),
    Refusal("sources(where=5)", lambda e: e.index.sources("wing", where=5), InputError,
            ("where", "5")),
]


# --------------------------------------------------------------------------- fusion, evaluation


def _fuse(*args: Any, **kwargs: Any):
    return lambda e: jinarag.fusion.fuse(*args, **kwargs)


EVALUATION: list[Refusal] = [
    Refusal("fuse('RRF')", _fuse("RRF", [[("a", 1.0)]]), InputError, ("fusion", "'RRF'")),
    Refusal("fuse(k=-1)", _fuse("rrf", [[("a", 1.0)]], k=-1), InputError, ("k", "-1")),
    Refusal("fuse(rankings='ab')", _fuse("rrf", "ab"), InputError, ("rankings", "str")),
    Refusal("fuse(rankings={...})", _fuse("dbsf", {"dense": [("a", 1.0)]}), InputError,
            ("rankings", "dict")),
    Refusal("fuse(score='x')", _fuse("relative", [[("a", "x")]]), InputError,
            ("rankings[0][0]", "'x'")),
    Refusal("fuse(pair=('a',))", _fuse("rrf", [[("a",)]]), InputError,
            ("rankings[0][0]", "('a',)")),
    Refusal("load_beir(None)", lambda e: jinarag.evaluation.load_beir(None), InputError,
            ("path", "None")),
    Refusal("load_beir(split=5)", lambda e: jinarag.evaluation.load_beir(e.root / "beir", 5),
            InputError, ("split", "5")),
    Refusal("select_queries('half')",
            lambda e: jinarag.evaluation.select_queries(e.dataset, "half"),
            InputError, ("'half'", "even")),
    Refusal("records(limit=-1)", lambda e: e.dataset.records(limit=-1), InputError,
            ("limit", "-1")),
    Refusal("records(title_in_text='no')", lambda e: e.dataset.records(title_in_text="no"),
            InputError, ("title_in_text", "'no'")),
    Refusal("ndcg_at_k(k=0)", lambda e: jinarag.evaluation.ndcg_at_k(["d0"], {"d0": 1}, k=0),
            InputError, ("k", "0")),
    Refusal("ndcg_at_k(ranking='d0')", lambda e: jinarag.evaluation.ndcg_at_k("d0", {"d0": 1}),
            InputError, ("ranking", "str")),
    Refusal("recall_at_k(k='10')",
            lambda e: jinarag.evaluation.recall_at_k(["d0"], {"d0": 1}, k="10"),
            InputError, ("k", "'10'")),
    Refusal("recall_at_k(judgements=list)",
            lambda e: jinarag.evaluation.recall_at_k(["d0"], ["d0"]),
            InputError, ("judgements", "list")),
    Refusal("evaluate(query_ids='12')",
            lambda e: jinarag.evaluation.evaluate(e.index, e.dataset, query_ids="12"),
            InputError, ("query_ids", "str")),
    Refusal("evaluate(query_ids=['nope'])",
            lambda e: jinarag.evaluation.evaluate(e.index, e.dataset, query_ids=["nope"]),
            InputError, ("'nope'",)),
    Refusal("evaluate(configs=[Config(mode='semantic')])",
            lambda e: jinarag.evaluation.evaluate(
                e.index, e.dataset, [e.Config("x", mode="semantic")]),
            InputError, ("mode", "'semantic'")),
    Refusal("evaluate(configs=['bm25'])",
            lambda e: jinarag.evaluation.evaluate(e.index, e.dataset, ["bm25"]),
            InputError, ("configs[0]", "'bm25'", "Config")),
    Refusal("evaluate(index=None)",
            lambda e: jinarag.evaluation.evaluate(None, e.dataset),
            InputError, ("index", "None")),
    Refusal("select_queries(judged='no')",
            lambda e: jinarag.evaluation.select_queries(e.dataset, judged="no"),
            InputError, ("judged", "'no'")),
    Refusal("Config(rerank='yes')", lambda e: e.Config("x", rerank="yes"), InputError,
            ("rerank", "'yes'")),
    Refusal("evaluate(reranker=<Embedder>)",
            lambda e: jinarag.evaluation.evaluate(e.index, e.dataset, reranker=e.emb),
            InputError, ("reranker", "Embedder")),
    Refusal("format_sweep(top=0)",
            lambda e: jinarag.evaluation.format_sweep(jinarag.evaluation.SweepResult(), top=0),
            InputError, ("top", "0")),
    Refusal("default_configs(rerank='no')",
            lambda e: jinarag.evaluation.default_configs("no"),
            InputError, ("rerank", "'no'")),
    Refusal("sweep(candidates=[0])",
            lambda e: jinarag.evaluation.sweep({}, e.dataset, ["1"], candidates=[0]),
            InputError, ("candidates", "0")),
    Refusal("sweep(query_ids=['9'])",
            lambda e: jinarag.evaluation.sweep({}, e.dataset, ["9"]),
            InputError, ("query_ids[0]='9'", "select_queries")),
    Refusal("sweep(lists={})",
            lambda e: jinarag.evaluation.sweep({}, e.dataset, ["1"]),
            InputError, ("query_ids[0]='1'", "source_lists")),
    Refusal("source_lists(candidates=0)",
            lambda e: jinarag.evaluation.source_lists(e.index, e.dataset, ["1"], candidates=0),
            InputError, ("candidates", "0")),
    Refusal("svg_chart([rows])", lambda e: jinarag.evaluation.svg_chart([e.row]), InputError,
            ("results", "list")),
    Refusal("format_table(None)", lambda e: jinarag.evaluation.format_table(None), InputError,
            ("rows", "None")),
    Refusal("build_index(embedder='small')",
            lambda e: jinarag.evaluation.build_index(e.dataset, "small"),
            InputError, ("embedder", "'small'")),
]

TABLES: dict[str, list[Refusal]] = {
    "Embedder/Reranker": MODELS,
    "Checkpoint files": CHECKPOINTS,
    "HybridIndex": INDEX,
    "Fusion/evaluation": EVALUATION,
}


@pytest.mark.parametrize("row", rows_of(TABLES), ids=str)
def test_refused(row, env):
    assert_refused(row, env)


def probe(root: Path):
    return probe_tables(TABLES, build_env(root))


# --------------------------------------------------------------------------- still accepted


def test_a_single_path_is_read_as_one_path(env, tmp_path):
    index = jinarag.HybridIndex(tmp_path / "store", embedder=env.emb)
    report = _in(env.files, lambda: index.add_files("a"))
    assert report.added == ["a.txt"]
    report = index.add_files(env.files / "b")
    assert report.added == ["b.txt"]
    assert index.count() == 2


def test_legitimate_values_next_to_the_refused_ones_still_work(env):
    assert len(env.index.search("wing", k=2, rerank_top=1)) == 2
    assert env.index.search("wing", k=1, rrf_k=0)[0].id
    assert env.index.verify(repair=False).healthy
    assert jinarag.evaluation.ndcg_at_k(("d0",), {"d0": 1}, k=1) == 1.0
    ids, _, _ = env.dataset.records(limit=0)
    assert ids == []
    with jinarag.HybridIndex(None, embedder=env.emb, b=0, k1=0.0, reranker=env.rr) as index:
        index.add(["a wing"], ids=["x"])
        assert [h.id for h in index.search("wing", rerank=True)] == ["x"]
    loaded = jinarag.Embedder.from_pretrained(os.fspath(env.ckpt[EMBEDDER]), **CPU,
                                              query_prefix="q: ", document_prefix="")
    assert loaded.query_prefix == "q: "

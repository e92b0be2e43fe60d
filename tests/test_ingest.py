"""Reading txt/md/jsonl/BEIR files and token-based chunking with the embedder's tokenizer."""

from __future__ import annotations

import json
import re

import pytest

from jinarag.errors import InputError
from jinarag.retrieval.ingest.chunking import chunk_document, chunk_spans
from jinarag.retrieval.ingest.readers import (
    Document,
    document_text,
    find_files,
    read_documents,
    read_file,
)
from jinarag.retrieval.layout import CHUNKING_KEY, DOC_CHUNKS_KEY, visible


def _words(text):
    return [m.span() for m in re.finditer(r"\S+", text)]


@pytest.fixture
def corpus_dir(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("Plain text file.", encoding="utf-8")
    (tmp_path / "sub" / "b.md").write_text("# Title\n\nMarkdown body.", encoding="utf-8")
    (tmp_path / "sub" / "skip.pdf").write_bytes(b"%PDF")
    rows = [
        {"_id": "7", "title": "A wing", "text": "lift and drag", "year": 1958, "tags": ["x"]},
        {"id": 8, "text": "no title here", "source": "ignored", "ok": True},
        {"text": "no id at all"},
    ]
    (tmp_path / "c.jsonl").write_text(
        "\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8"
    )
    return tmp_path


def test_find_files_walks_folders_in_order(corpus_dir):
    found = find_files([corpus_dir])
    assert [p.relative_to(corpus_dir).as_posix() for p in found] == [
        "a.txt",
        "c.jsonl",
        "sub/b.md",
    ]
    with pytest.raises(InputError, match=r"unsupported file type '\.pdf'; supported: \.txt"):
        find_files([corpus_dir / "sub" / "skip.pdf"])
    with pytest.raises(InputError, match="no such file or folder"):
        find_files([corpus_dir / "missing"])


def test_read_text_and_markdown(corpus_dir):
    (doc,) = read_file(corpus_dir / "sub" / "b.md")
    assert doc.id == str(corpus_dir / "sub" / "b.md")
    assert doc.text == "# Title\n\nMarkdown body."
    assert doc.metadata == {"source": doc.id}


def test_read_jsonl_and_beir_lines(corpus_dir):
    path = corpus_dir / "c.jsonl"
    docs = list(read_file(path))
    assert [d.id for d in docs] == ["7", "8", f"{path}:3"]
    assert docs[0].text == "A wing lift and drag"  # BEIR: title in front
    assert docs[0].metadata == {"source": str(path), "title": "A wing", "year": 1958}
    assert docs[1].text == "no title here"
    assert docs[1].metadata == {"source": str(path), "ok": True}
    assert len(list(read_documents([corpus_dir]))) == 5


def test_read_the_cranfield_corpus(cranfield_dir):
    docs = list(read_file(cranfield_dir / "corpus.jsonl"))
    assert len(docs) == 1400
    first = json.loads((cranfield_dir / "corpus.jsonl").open().readline())
    assert docs[0].id == first["_id"]
    assert docs[0].text == document_text(first["title"], first["text"])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "bad.jsonl:2 is not valid JSON"),
        ('{"title": "no text"}', 'bad.jsonl:2 needs a "text" string'),
        ('["a list"]', 'bad.jsonl:2 needs a "text" string'),
    ],
)
def test_bad_jsonl_lines_name_the_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "fine"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=re.escape(message)):
        list(read_file(path))


def test_chunk_spans_cover_everything_with_overlap():
    text = " ".join(f"w{i}" for i in range(23))
    offsets = _words(text)
    spans = chunk_spans(text, offsets, 8, 3)
    assert spans[0][0] == 0 and spans[-1][1] == len(offsets)
    for (a0, a1), (b0, b1) in zip(spans, spans[1:], strict=False):
        assert a1 - a0 <= 8 and b1 - b0 <= 8
        assert a1 - b0 == 3  # exactly the overlap when every token starts a word
        assert b0 > a0
    assert chunk_spans("", [], 8, 3) == []


def test_chunk_options_are_checked():
    with pytest.raises(InputError, match="smaller than the chunk size"):
        chunk_spans("a b", _words("a b"), 4, 4)
    with pytest.raises(InputError, match="at least 1 token"):
        chunk_spans("a b", _words("a b"), 0, 0)


def test_short_document_keeps_its_id_and_text():
    doc = Document("doc", "  short text  ", {"source": "s"})
    (record,) = chunk_document(doc, _words, 10, 2)
    assert (record.id, record.text) == ("doc", "  short text  ")
    assert visible(record.metadata) == {
        "source": "s",
        "doc_id": "doc",
        "chunk": 0,
        "span_start": 0,
        "span_end": len(doc.text),
    }
    assert (
        record.metadata[DOC_CHUNKS_KEY] == 1
        and record.metadata[CHUNKING_KEY] == "tokens=10,overlap=2"
    )
    assert chunk_document(Document("e", "   "), _words, 10, 2) == []
    assert doc.metadata == {"source": "s"}  # not mutated


def test_chunks_fit_the_model_and_end_at_words(minilm_embedder):
    tok = minilm_embedder.tokenizer
    text = " ".join(
        f"Hypersonic aerodynamicists{i} studied unswept wings, boundary-layer transition and "
        f"thermoelasticity at Mach {i}.{i % 7} in 19{i:02d}."
        for i in range(12)
    )
    offsets = tok.token_offsets(text)
    records = chunk_document(Document("long", text, {"source": "x"}), tok.token_offsets, 40, 8)
    spans = chunk_spans(text, offsets, 40, 8)
    assert len(records) == len(spans) > 3
    assert [r.id for r in records] == [f"long#{i}" for i in range(len(records))]
    assert [r.metadata["chunk"] for r in records] == list(range(len(records)))
    chars = [(offsets[first][0], offsets[end - 1][1]) for first, end in spans]
    for record, (start, end) in zip(records, chars, strict=True):
        assert record.text == text[start:end]
        assert len(tok.token_offsets(record.text)) <= 40  # the model reads all of it
        # Chunk edges fall on word boundaries (no word cut in two).
        assert start == 0 or not (text[start - 1].isalnum() and text[start].isalnum())
        assert end == len(text) or not (text[end - 1].isalnum() and text[end].isalnum())
    for (_, a_end), (b_start, _) in zip(chars, chars[1:], strict=False):
        assert b_start < a_end  # consecutive chunks overlap
    assert chars[0][0] == 0 and chars[-1][1] == len(text)  # nothing is lost


def test_text_without_word_boundaries_is_still_cut(minilm_embedder):
    tok = minilm_embedder.tokenizer
    text = "超音速翼型" * 30  # CJK characters: no spaces anywhere
    records = chunk_document(Document("zh", text), tok.token_offsets, 16, 4)
    assert len(records) > 1
    assert all(len(tok.token_offsets(r.text)) <= 16 for r in records)
    assert text.endswith(records[-1].text)

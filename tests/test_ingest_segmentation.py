"""Ingestion's two text clean-ups: sentences found by pysbd (abbreviations, initials and
decimal numbers do not end a sentence), and HTML pages read for their main content by
trafilatura (navigation, headers, footers, sidebars and cookie banners left out)."""

from __future__ import annotations

import logging
import re
import sys

import pytest

from jinarag.retrieval.ingest import chunking
from jinarag.retrieval.ingest.chunking import Chunking, document_records, split_text
from jinarag.retrieval.ingest.readers import html_text, read_file

# Each case: the exact sentences, joined by one space to make the text.
HARD_CASES = [
    ["Dr. Smith examined the wing.", "It had cracked."],
    ["See Fig. 3 for the lift curve.", "Drag follows."],
    ["Thin plates, e.g. aluminium sheets, buckle early.", "Thick ones do not."],
    ["The U.S. Navy tested the hull in 1962.", "It held."],
    ["Smith et al. reported the same effect.", "Others disagreed."],
    ["The ratio is 3.14 at low speed.", "It rises to 4.5 later."],
    ["Mr. and Mrs. Jones flew to Paris.", "They stayed a week."],
    ["The load, i.e. the weight per area, was small.", "Nothing failed."],
    ["Prof. Lee and Prof. Chen wrote the report.", "It was short."],
    ["The sample weighed 2.5 kg.", "The next weighed 3.0 kg."],
    ['He asked: "Will it stall?"', "Nobody answered."],
    ["Results are in Sec. 4.2 of the paper.", "See also Table 1."],
    ["The Boeing Co. built the prototype.", "It flew in May."],
    ["The cost was $4.50 per unit.", "Buyers agreed."],
    ["Visit www.example.com for details.", "The page lists all runs."],
    ["Wings lift!", "They also stall?", "Flaps help."],
    ["Section 2 (cf. Appendix A) covers the maths.", "Section 3 covers tests."],
    ["St. Louis hosted the 1904 fair.", "Millions came."],
    ["Jan. 5 was cold.", "Feb. 2 was warmer."],
    ["The value was 0.5 vs. 0.7 in the control.", "The gap is small."],
]


def _sentences(text: str) -> list[str]:
    return [text[start:end] for start, end in split_text(text, None, by="sentences")]


@pytest.mark.parametrize("sentences", HARD_CASES, ids=lambda case: case[0][:24])
def test_abbreviations_and_numbers_do_not_end_a_sentence(sentences):
    assert _sentences(" ".join(sentences)) == sentences


def test_spans_are_exact_and_blank_lines_end_sentences_while_line_breaks_do_not():
    text = "  The wing was tested\nat high speed by Dr. Lee.  It held!\n \n\nNo stop here\n\n  "
    spans = split_text(text, None, by="sentences")
    assert [text[a:b] for a, b in spans] == [
        "The wing was tested\nat high speed by Dr. Lee.",
        "It held!",
        "No stop here",
    ]
    covered = 0
    for start, end in spans:  # consecutive, stripped, only whitespace between
        assert text[covered:start].strip() == "" and text[start:end] == text[start:end].strip()
        covered = end
    assert split_text("", None, by="sentences") == split_text(" \n ", None, by="sentences") == []


def test_a_long_paragraph_is_read_in_windows_without_a_wrong_cut():
    sentences = [s for case in HARD_CASES for s in case] * 40  # ~40,000 characters
    text = " ".join(sentences)
    assert len(text) > 10 * chunking._WINDOW
    assert _sentences(text) == sentences
    unbroken = "x" * (3 * chunking._WINDOW) + ". Then a stop. " + "y" * 50
    assert [s[:6] for s in _sentences(unbroken)] == ["xxxxxx", "Then a", "yyyyyy"]


def test_a_missing_segmenter_names_the_dependency(monkeypatch):
    chunking._segmenter.cache_clear()
    monkeypatch.setitem(sys.modules, "pysbd", None)
    try:
        with pytest.raises(ImportError, match=r"pip install 'pysbd"):
            split_text("One. Two.", None, by="sentences")
    finally:
        chunking._segmenter.cache_clear()


COOKIE = "We use cookies to improve your experience"
BOILERPLATE = [
    COOKIE,
    "Accept all cookies",
    "Manage preferences",
    "Structures Weekly",
    "Subscribe to our newsletter",
    "Sign in",
    "Most read this week",
    "Ten bridges that changed engineering forever",
    "Buy premium steel beams",
    "All rights reserved",
    "Privacy policy",
    "Terms of use",
    "Follow us on social media",
]
ARTICLE = [
    "Why thin shells buckle",
    "Thin cylindrical shells carry large axial loads for their weight, which is why rockets, "
    "silos and beverage cans are built from them.",
    "Their weakness is buckling: under a critical load the wall suddenly folds into a pattern "
    "of diamond-shaped dimples.",
    "The classical prediction",
    "The classical theory of elastic stability predicts a critical stress proportional to the "
    "wall thickness divided by the radius.",
    "Imperfections explain the gap",
    "Koiter showed in 1945 that tiny geometric imperfections, far smaller than the wall "
    "thickness, lower the buckling load sharply.",
    "Recent work uses controlled dimple imperfections and nondestructive probing to measure "
    "how close a given shell is to collapse before it fails.",
]
PAGE = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Why thin shells buckle | Structures Weekly</title>
<style>body {{ font-family: sans-serif; }}</style><script>window.dataLayer = [];</script>
</head><body>
<div id="cookie-banner" class="cookie-consent">
  <p>{COOKIE}. By continuing to browse you accept our cookie policy.</p>
  <button>Accept all cookies</button> <button>Manage preferences</button>
</div>
<header class="site-header"><a href="/" class="logo">Structures Weekly</a>
  <nav class="main-nav"><ul><li><a href="/news">News</a></li><li><a href="/reviews">Reviews</a>
  </li><li><a href="/subscribe">Subscribe to our newsletter</a></li>
  <li><a href="/login">Sign in</a></li></ul></nav>
</header>
<div class="layout"><main><article class="post">
  <h1>{ARTICLE[0]}</h1>
  <p class="byline">By Ada Lovelace, 12 March 2024</p>
  <p>{ARTICLE[1]} {ARTICLE[2]}</p>
  <h2>{ARTICLE[3]}</h2>
  <p>{ARTICLE[4]} Experiments from the 1930s onward found that real shells fail at a fraction
  of that value, often between one fifth and one half of the prediction.</p>
  <h2>{ARTICLE[5]}</h2>
  <p>{ARTICLE[6]} Modern designs therefore apply knockdown factors that reduce the theoretical
  load to a safe design value.</p>
  <p>{ARTICLE[7]}</p>
</article></main>
<aside class="sidebar"><h3>Most read this week</h3><ul>
  <li><a href="/a">Ten bridges that changed engineering forever</a></li>
  <li><a href="/b">Our favourite torque wrenches reviewed</a></li></ul>
  <div class="ad">Advertisement: Buy premium steel beams today with free shipping</div>
</aside></div>
<footer class="site-footer">
  <p>Copyright 2024 Structures Weekly Media Group. All rights reserved.</p>
  <p><a href="/privacy">Privacy policy</a> | <a href="/terms">Terms of use</a> |
  <a href="/contact">Contact us</a></p>
  <p>Follow us on social media for daily engineering news.</p>
</footer></body></html>
"""


def _words(text: str) -> list[tuple[int, int]]:  # a stand-in tokenizer: one token per word
    return [match.span() for match in re.finditer(r"\S+", text)]


def test_html_chunks_hold_the_article_and_no_boilerplate(tmp_path):
    (tmp_path / "shells.html").write_text(PAGE, encoding="utf-8")
    [doc] = read_file(tmp_path / "shells.html", "shells.html")
    assert doc.text.split("\n")[:2] == [ARTICLE[0], f"{ARTICLE[1]} {ARTICLE[2]}"]
    for settings in (Chunking(256, late=True, by="sentences"), Chunking(40, 8)):
        records = document_records(doc, _words, settings)
        chunks = " ".join(" ".join(record.text.split()) for record in records)
        assert [phrase for phrase in BOILERPLATE if phrase in chunks] == []
        if settings.late:  # chunks that do not overlap: every passage whole in the joined text
            assert [passage for passage in ARTICLE if passage not in chunks] == []
    late = document_records(doc, _words, Chunking(256, late=True, by="sentences"))
    assert [r.text for r in late[1:3]] == [ARTICLE[2], f"{ARTICLE[3]}\n{ARTICLE[4]}"]


def test_a_page_without_main_content_is_read_whole_and_says_so(caplog):
    with caplog.at_level(logging.INFO, logger="jinarag.retrieval.ingest.readers"):
        assert html_text("<title>Only a title</title>", "bare.html") == "Only a title"
    assert "no main content in bare.html; reading its whole text" in caplog.text
    assert html_text("<title>Wings</title><p>Lift <b>grows</b>.</p><script>x()</script>") == (
        "Wings\nLift grows."
    )


def test_a_missing_extractor_names_the_dependency(monkeypatch):
    monkeypatch.setitem(sys.modules, "trafilatura", None)
    with pytest.raises(ImportError, match=r"pip install 'trafilatura"):
        html_text("<p>text</p>")

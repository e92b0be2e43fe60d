"""Reading files into documents: txt, md, html and jsonl (a BEIR ``corpus.jsonl`` reads as is).

Supported inputs (a folder is searched recursively for them, in sorted order):

* ``.txt``, ``.md``, ``.markdown``: one document per file; its id is the file's name
  (``source``, by default the path as given).
* ``.html``, ``.htm``, ``.xhtml``: one document per file, its main content extracted by
  trafilatura (navigation, headers, footers, sidebars and cookie banners left out; the
  article's headings, lists and tables kept, one line per block), the page's title in front
  like a BEIR title. A page where trafilatura finds no main content is read whole by the
  standard library's HTML parser (:class:`html.parser.HTMLParser`; scripts, styles and
  templates left out, block elements end lines), and a log line says so.
* ``.jsonl``: one JSON object per line with a ``"text"`` string; the id comes from ``"_id"`` or
  ``"id"`` (else ``path:line``); a ``"title"`` is put in front of the text
  (:func:`document_text`, the BEIR convention and the one title rule of the project). Other
  scalar fields (str, int, float, bool) become metadata; nested values are skipped.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from jinarag.errors import InputError

__all__ = [
    "HTML_SUFFIXES",
    "SUFFIXES",
    "Document",
    "document_text",
    "find_files",
    "html_text",
    "read_documents",
    "read_file",
]

logger = logging.getLogger(__name__)

SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".xhtml", ".jsonl")
HTML_SUFFIXES = (".html", ".htm", ".xhtml")


@dataclass(frozen=True)
class Document:
    """A whole document as read from a file, before chunking."""

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


def document_text(title: str | None, text: str) -> str:
    """The text to index for a titled document: ``"title text"`` (the BEIR convention)."""
    return f"{title} {text}" if title else text


def find_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Expand files and folders into the supported files, in a stable order.

    Raises:
        InputError: a path does not exist, or a file given by name has an unsupported suffix.
    """
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(
                sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
            )
        elif path.is_file():
            if path.suffix.lower() not in SUFFIXES:
                raise InputError(
                    f"cannot read {str(path)!r}: unsupported file type {path.suffix!r}; "
                    f"supported: {', '.join(SUFFIXES)}"
                )
            out.append(path)
        else:
            raise InputError(f"no such file or folder: {str(path)!r}")
    return out


def _scalar_fields(obj: dict[str, Any], skip: set[str]) -> dict[str, Any]:
    return {
        key: value
        for key, value in obj.items()
        if key not in skip and isinstance(value, str | int | float | bool)
    }


class _HTMLText(HTMLParser):
    """Collects the visible text of an HTML page, and its title apart."""

    _HIDDEN = frozenset({"script", "style", "template", "noscript", "head", "svg"})
    _BLOCKS = frozenset(
        {"address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption"}
        | {"figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li"}
        | {"main", "nav", "ol", "p", "pre", "section", "table", "td", "th", "tr", "ul"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: list[str] = []
        self._hidden = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in self._HIDDEN:
            self._hidden += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title.append(data)
        elif not self._hidden:
            self.parts.append(data)


def _whole_text(markup: str) -> str:
    """The whole visible text of a page, its ``<title>`` in front, one line per block."""
    parser = _HTMLText()
    parser.feed(markup)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    body = "\n".join(line for line in lines if line)
    title = " ".join("".join(parser.title).split())
    return f"{title}\n{body}" if title and body else title or body


def _main_content(markup: str) -> tuple[str | None, str]:
    try:
        import trafilatura
    except ImportError as exc:
        raise ImportError(
            "reading HTML needs trafilatura, a dependency of jinarag: pip install "
            "'trafilatura>=2.0' (or reinstall jinarag)"
        ) from exc
    found = trafilatura.bare_extraction(
        markup,
        favor_precision=True,  # no rescue by a whole-page dump: that is the fallback below
        include_comments=False,
        include_tables=True,
        with_metadata=True,
    )
    if found is None:
        return None, ""
    return found.title, found.text or ""


def html_text(markup: str, where: str = "an HTML page") -> str:
    """The main content of an HTML page (trafilatura), its title in front, one line per block;
    the whole visible text when trafilatura finds no main content (logged, naming ``where``).

    Example:
        >>> html_text("<title>Wings</title><p>Lift <b>grows</b>.</p><script>x()</script>")
        'Wings\nLift grows.'
    """
    title, text = _main_content(markup)
    lines = [" ".join(line.split()) for line in text.splitlines()]
    body = "\n".join(line for line in lines if line)
    if not body:
        logger.info("found no main content in %s; reading its whole text", where)
        return _whole_text(markup)
    title = " ".join(title.split()) if title else ""
    first_line = body.split("\n", 1)[0]
    return body if not title or first_line == title else f"{title}\n{body}"


def read_file(path: str | os.PathLike[str], source: str | None = None) -> Iterator[Document]:
    """The documents of one file (see the module docstring for the formats).

    Args:
        path: the file.
        source: its name in ids and in each document's ``source`` metadata (default: the path
            as given); :mod:`jinarag.retrieval.ingest.sources` passes the path relative to a root.

    Raises:
        InputError: a JSONL line is not an object with a ``"text"`` string.
        UnicodeDecodeError: the file is not UTF-8 text.
    """
    path = Path(path)
    source = source if source is not None else str(path)
    suffix = path.suffix.lower()
    if suffix in HTML_SUFFIXES:
        text = html_text(path.read_text(encoding="utf-8", errors="strict"), source)
        yield Document(source, text, {"source": source})
        return
    if suffix != ".jsonl":
        yield Document(source, path.read_text(encoding="utf-8"), {"source": source})
        return
    with path.open(encoding="utf-8") as lines:
        for line_no, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{source}:{line_no}"
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise InputError(f"{where} is not valid JSON ({exc}); fix or remove it") from exc
            if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                raise InputError(
                    f'{where} needs a "text" string, e.g. {{"_id": "1", "text": "..."}}; '
                    f"got {line.strip()[:80]!r}"
                )
            raw_id = obj.get("_id", obj.get("id"))
            doc_id = str(raw_id) if raw_id is not None else where
            title = obj.get("title") if isinstance(obj.get("title"), str) else None
            metadata = {"source": source, **_scalar_fields(obj, {"_id", "id", "text", "source"})}
            yield Document(doc_id, document_text(title, obj["text"]), metadata)


def read_documents(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Document]:
    """The documents of every supported file under ``paths``."""
    for path in find_files(paths):
        yield from read_file(path)

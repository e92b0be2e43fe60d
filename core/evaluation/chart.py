"""The eval table as a picture: an SVG bar chart, nDCG@10 and Recall@100 per method, with the
median latency written beside each method. Each dataset's panel has a method axis and a score
axis (0 to 1, ticks and grid lines every 0.2, labelled). Plain SVG text, no plotting library
(matplotlib is not a dependency of ours): any browser or image viewer opens it.

Example:
    >>> svg = svg_chart({"cranfield": [Row("bm25", 0.39, 0.75, 6.8, 225)]})
    >>> svg.startswith("<svg")
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape

from jinarag.evaluation.runner import Row, rows_list
from jinarag.validation import check_instance

__all__ = ["svg_chart"]

_LABEL_WIDTH = 170  # method names
_BAR_WIDTH = 360  # a score of 1.0
_LATENCY_WIDTH = 110
_BAR_HEIGHT = 11
_ROW_HEIGHT = 2 * _BAR_HEIGHT + 10
_TITLE_HEIGHT = 28
_AXIS_HEIGHT = 34  # the score axis under a panel: ticks, their values, its label
_TICKS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
_AXIS = "#444444"
_GRID = "#dddddd"
_COLOURS = {"nDCG@10": "#3b6fb6", "Recall@100": "#e08a2c"}


def svg_chart(results: Mapping[str, Sequence[Row]]) -> str:
    """One panel per dataset (``{dataset name: rows}``): for each method a bar for nDCG@10 and
    one for Recall@100 on a 0–1 scale, the values at the bars' ends, p50 latency on the right."""
    check_instance("results", results, Mapping, "pass {dataset name: evaluate(...)'s rows}")
    results = {name: rows_list(rows, f"results[{name!r}]") for name, rows in results.items()}
    width = _LABEL_WIDTH + _BAR_WIDTH + _LATENCY_WIDTH
    parts: list[str] = []
    y = 0
    for name, rows in results.items():
        queries = rows[0].queries if rows else 0
        parts.append(_text(8, y + 20, f"{name}: {queries} queries", bold=True))
        parts.append(_text(width - 8, y + 20, "p50 latency", anchor="end"))
        y += _TITLE_HEIGHT
        top, start = y, len(parts)
        for row in rows:
            parts.append(_text(_LABEL_WIDTH - 8, y + _BAR_HEIGHT + 4, row.label, anchor="end"))
            for offset, (metric, value) in enumerate(
                (("nDCG@10", row.ndcg10), ("Recall@100", row.recall100))
            ):
                bar_top = y + offset * _BAR_HEIGHT
                length = max(0.0, min(1.0, value)) * _BAR_WIDTH
                parts.append(
                    f'<rect x="{_LABEL_WIDTH}" y="{bar_top}" width="{length:.1f}" '
                    f'height="{_BAR_HEIGHT - 1}" fill="{_COLOURS[metric]}">'
                    f"<title>{escape(row.label)} {metric} {value:.4f}</title></rect>"
                )
                parts.append(
                    _text(_LABEL_WIDTH + length + 4, bar_top + 9, f"{value:.3f}", size=9)
                )
            parts.append(
                _text(width - 8, y + _BAR_HEIGHT + 4, f"{row.p50_ms:.1f} ms", anchor="end")
            )
            y += _ROW_HEIGHT
        grid, axes = _axes(top, y)
        parts[start:start] = grid  # under the bars
        parts.extend(axes)
        y += _AXIS_HEIGHT
    legend_y = y + 14
    x = _LABEL_WIDTH
    for metric, colour in _COLOURS.items():
        parts.append(f'<rect x="{x}" y="{legend_y - 9}" width="10" height="10" fill="{colour}"/>')
        parts.append(_text(x + 14, legend_y, metric))
        x += 110
    height = legend_y + 10
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">'
        f'<rect width="100%" height="100%" fill="white"/>{"".join(parts)}</svg>\n'
    )


def _axes(top: float, bottom: float) -> tuple[list[str], list[str]]:
    """A panel's grid lines (drawn under the bars) and axes: ticks at every 0.2 of the score
    scale with their values, the score axis along the bottom with its label, the method axis
    along the left."""
    grid, out = [], []
    for tick in _TICKS:
        x = _LABEL_WIDTH + tick * _BAR_WIDTH
        grid.append(_line(x, top, x, bottom, _GRID))
        out.append(_line(x, bottom, x, bottom + 4, _AXIS))
        out.append(_text(x, bottom + 15, f"{tick:.1f}", anchor="middle", size=9))
    out.append(_line(_LABEL_WIDTH, bottom, _LABEL_WIDTH + _BAR_WIDTH, bottom, _AXIS))
    out.append(_line(_LABEL_WIDTH, top, _LABEL_WIDTH, bottom, _AXIS))
    out.append(
        _text(_LABEL_WIDTH + _BAR_WIDTH / 2, bottom + 28, "score (0 to 1)", anchor="middle")
    )
    return grid, out


def _line(x1: float, y1: float, x2: float, y2: float, colour: str) -> str:
    return (
        f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}" '
        'stroke-width="1"/>'
    )


def _text(
    x: float, y: float, text: str, *, anchor: str = "start", size: int = 11, bold: bool = False
) -> str:
    weight = ' font-weight="bold"' if bold else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}"{weight}>'
        f"{escape(text)}</text>"
    )

"""`jinarag eval --chart`: the SVG bar chart of the eval table."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from jinarag.cli import main
from jinarag.evaluation import Row, svg_chart

SVG = "{http://www.w3.org/2000/svg}"


def _rows() -> list[Row]:
    return [Row("bm25", 0.25, 0.5, 6.8, 10), Row("dense <&>", 0.5, 1.0, 18.75, 10)]


def test_the_chart_draws_both_metrics_per_method_to_scale_with_latency_beside():
    root = ET.fromstring(svg_chart({"cranfield": _rows(), "cacm": _rows()[:1]}))
    bars = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert len(bars) == 2 * 2 + 2  # nDCG@10 and Recall@100 for each method of each dataset
    widths = {r.find(f"{SVG}title").text: float(r.get("width")) for r in bars}
    # Bars share one 0-1 scale: a score of 0.5 is half as long as 1.0, twice as long as 0.25.
    full = widths["dense <&> Recall@100 1.0000"]
    assert widths["dense <&> nDCG@10 0.5000"] == pytest.approx(full / 2, abs=0.1)
    assert widths["bm25 nDCG@10 0.2500"] == pytest.approx(full / 4, abs=0.1)
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "18.8 ms" in texts and "6.8 ms" in texts
    assert "dense <&>" in texts  # escaped in the file, read back as written
    assert "cranfield: 10 queries" in texts and "cacm: 10 queries" in texts


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--chart", "quality.png"], "name the file *.svg"),
        (["--chart", "q.svg", "--tune"], "--tune"),
    ],
)
def test_a_chart_option_that_cannot_work_is_refused_before_any_model_loads(
    tmp_path, capsys, cranfield_dir, extra, message
):
    assert main(["eval", str(cranfield_dir), *extra]) == 1
    err = capsys.readouterr().err
    assert message in err
    assert not (tmp_path / "quality.png").exists()


def test_each_panel_has_a_labelled_score_axis_with_ticks():
    root = ET.fromstring(svg_chart({"cranfield": _rows(), "cacm": _rows()[:1]}))
    texts = [t.text for t in root.iter(f"{SVG}text")]
    for tick in ("0.0", "0.2", "0.4", "0.6", "0.8", "1.0"):
        assert texts.count(tick) == 2  # one scale per dataset panel
    assert texts.count("score (0 to 1)") == 2
    lines = list(root.iter(f"{SVG}line"))
    # Per panel: a grid line and a tick mark at each of 6 values, the score and method axes.
    assert len(lines) == 2 * (6 * 2 + 2)
    bars = {r.find(f"{SVG}title").text: r for r in root.iter(f"{SVG}rect") if len(r)}
    full = bars["dense <&> Recall@100 1.0000"]
    end = float(full.get("x")) + float(full.get("width"))
    ticks = {float(line.get("x1")) for line in lines if line.get("x1") == line.get("x2")}
    assert float(full.get("x")) in ticks and end in ticks  # bars start at 0 and reach 1.0

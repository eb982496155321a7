"""The server-drawn SVG charts: valid markup, escaped text, accessible names, the values'
geometry and tooltips."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from scheduled_tasks import charts
from scheduled_tasks.charts import Series

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)  # noqa: S314 - markup the tests themselves produced


def titles(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}title")]


@pytest.mark.parametrize(
    ("value", "ceiling"),
    [(0, 1), (-3, 1), (0.3, 0.5), (1, 1), (3, 5), (7, 10), (12, 20), (250, 500), (1000, 1000)],
)
def test_nice_ceiling_rounds_up_to_one_two_or_five(value: float, ceiling: float) -> None:
    assert charts.nice_ceiling(value) == pytest.approx(ceiling)


def test_format_number_drops_needless_decimals() -> None:
    assert charts.format_number(3.0) == "3"
    assert charts.format_number(2.5) == "2.5"
    assert charts.format_number(0.1234) == "0.12"


def test_stacked_bars_is_an_image_named_by_its_title_and_description() -> None:
    markup = charts.stacked_bars(
        "c1",
        "Runs per day",
        "Completed and failed.",
        ["1 Jan", "2 Jan"],
        [Series("completed", [3, 0]), Series("failed", [1, 2])],
    )
    root = parse(markup)
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "c1-title c1-desc"
    assert root.find(f"{SVG}title").get("id") == "c1-title"
    assert root.find(f"{SVG}title").text == "Runs per day"
    assert root.find(f"{SVG}desc").text == "Completed and failed."


def test_stacked_bars_draw_one_rect_per_non_zero_value_with_its_tooltip() -> None:
    root = parse(
        charts.stacked_bars(
            "c",
            "t",
            "d",
            ["1 Jan", "2 Jan"],
            [Series("completed", [3, 0]), Series("failed", [1, 2])],
        )
    )
    rects = list(root.iter(f"{SVG}rect"))
    assert [r.get("class") for r in rects] == ["chart-series-0", "chart-series-1", "chart-series-1"]
    assert [r.find(f"{SVG}title").text for r in rects] == [
        "1 Jan: 3 completed",
        "1 Jan: 1 failed",
        "2 Jan: 2 failed",
    ]


def test_stacked_bars_stack_bottom_up_and_scale_to_a_nice_top() -> None:
    root = parse(charts.stacked_bars("c", "t", "d", ["a"], [Series("x", [3]), Series("y", [1])]))
    low, high = list(root.iter(f"{SVG}rect"))
    plot = charts.HEIGHT - charts.TOP - charts.BOTTOM
    # total 4 -> axis top 5: the bars fill 3/5 and 1/5 of the plot, the second on the first.
    assert float(low.get("height")) == pytest.approx(plot * 3 / 5, abs=0.1)
    assert float(high.get("height")) == pytest.approx(plot * 1 / 5, abs=0.1)
    assert float(low.get("y")) + float(low.get("height")) == pytest.approx(
        charts.HEIGHT - charts.BOTTOM, abs=0.1
    )
    assert float(high.get("y")) + float(high.get("height")) == pytest.approx(
        float(low.get("y")), abs=0.1
    )
    ticks = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "chart-tick"]
    assert ticks == ["5", "0"]


def test_all_zero_bars_draw_no_rect_and_an_axis_to_one() -> None:
    root = parse(charts.stacked_bars("c", "t", "d", ["a", "b"], [Series("x", [0, 0])]))
    assert list(root.iter(f"{SVG}rect")) == []
    assert [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "chart-tick"] == [
        "1",
        "0",
    ]


def test_every_text_is_escaped() -> None:
    evil = '<script>alert("x")</script>&'
    markup = charts.lines('id"><b', evil, evil, [evil, "b"], [Series(evil, [1.5, None])], unit=" s")
    assert "<script>" not in markup
    assert "<b" not in markup.replace("<b>", "")  # no element smuggled through the id
    root = parse(markup)  # still well-formed XML
    assert root.find(f"{SVG}title").text == evil
    assert root.find(f"{SVG}desc").text == evil
    assert f"{evil}, {evil}: 1.5 s" in titles(root)
    bars = charts.stacked_bars("c", evil, evil, [evil], [Series(evil, [2])])
    assert "<script>" not in bars
    assert f"{evil}: 2 {evil}" in titles(parse(bars))


def test_lines_break_at_missing_values_and_mark_every_value_with_a_dot() -> None:
    root = parse(
        charts.lines(
            "c",
            "t",
            "d",
            ["1", "2", "3", "4", "5"],
            [Series("slow", [1, 2, None, 4, None]), Series("lonely", [None, None, 3, None, None])],
            unit=" s",
        )
    )
    groups = list(root.iter(f"{SVG}g"))
    assert [g.get("class") for g in groups] == ["chart-series-0", "chart-series-1"]
    slow, lonely = groups
    assert len(slow.findall(f"{SVG}polyline")) == 1  # 1-2; 4 alone has no line, only a dot
    assert len(slow.findall(f"{SVG}circle")) == 3
    assert lonely.findall(f"{SVG}polyline") == []
    assert [c.find(f"{SVG}title").text for c in lonely.findall(f"{SVG}circle")] == [
        "lonely, 3: 3 s"
    ]
    assert slow.find(f"{SVG}title").text == "slow"


def test_lines_with_one_label_centre_it() -> None:
    root = parse(charts.lines("c", "t", "d", ["only"], [Series("s", [2])]))
    (dot,) = root.iter(f"{SVG}circle")
    assert float(dot.get("cx")) == pytest.approx(
        charts.LEFT + (charts.WIDTH - charts.LEFT - charts.RIGHT) / 2, abs=0.1
    )


def test_x_labels_are_thinned_to_a_readable_few() -> None:
    labels = [f"d{n}" for n in range(30)]
    root = parse(charts.stacked_bars("c", "t", "d", labels, [Series("x", [1] * 30)]))
    shown = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "chart-label"]
    assert len(shown) <= charts.X_LABELS + 1
    assert shown[0] == "d0" and shown[-1] == "d29"


def test_a_series_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="2 values for 3 labels"):
        charts.lines("c", "t", "d", ["a", "b", "c"], [Series("s", [1, 2])])


def test_labels_on_the_plots_edges_stay_inside_the_picture() -> None:
    labels = [f"{day:02d} Dec" for day in range(1, 8)]
    svg = charts.lines("c", "t", "d", labels, [charts.Series("a", [1.0] * 7)])
    anchors = re.findall(r'text-anchor="(\w+)">(\d\d Dec)<', svg)
    assert anchors[0] == ("start", "01 Dec") and anchors[-1] == ("end", "07 Dec")
    bars = charts.stacked_bars("b", "t", "d", labels, [charts.Series("a", [1] * 7)])
    assert set(re.findall(r'text-anchor="(\w+)">\d\d Dec<', bars)) == {"middle"}

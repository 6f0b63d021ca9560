"""The dashboard's bar chart macro (web/templates/_charts.html), rendered by jinja2 with autoescape on."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import jinja2

import queuectl.web
from queuectl.services.activity import Bucket

T0 = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC
SVG = "{http://www.w3.org/2000/svg}"


def render(buckets: list[Bucket], title: str) -> ET.Element:
    """The macro's output, parsed as XML (so it must be well formed)."""
    templates = os.path.join(os.path.dirname(queuectl.web.__file__), "templates")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates), autoescape=True)
    page = env.from_string('{% from "_charts.html" import bars %}{{ bars(buckets, title) }}')
    return ET.fromstring(page.render(buckets=buckets, title=title))


def bars_of(figure: ET.Element) -> list[ET.Element]:
    svg = figure.find(f"{SVG}svg")
    assert svg is not None
    return svg.findall(f"{SVG}g")


def rect(bar: ET.Element, cls: str) -> ET.Element | None:
    return next((r for r in bar.findall(f"{SVG}rect") if r.get("class") == cls), None)


def test_one_bar_per_bucket_completed_below_failed_scaled_to_the_tallest() -> None:
    buckets = [Bucket(T0, 0, 0), Bucket(T0 + 60, 3, 1), Bucket(T0 + 120, 8, 0)]
    bars = bars_of(render(buckets, "Last hour"))
    assert len(bars) == 3
    assert rect(bars[0], "bar-ok") is None and rect(bars[0], "bar-failed") is None
    ok, failed = rect(bars[1], "bar-ok"), rect(bars[1], "bar-failed")
    assert ok is not None and failed is not None
    assert (float(ok.get("height", "")), float(failed.get("height", ""))) == (15.0, 5.0)  # 40 high for 8 runs
    assert float(failed.get("y", "")) + 5.0 == float(ok.get("y", "")) == 25.0  # failed stacked on completed
    tallest = rect(bars[2], "bar-ok")
    assert tallest is not None and (tallest.get("y"), tallest.get("height")) == ("0.00", "40.00")


def test_each_bar_says_its_time_and_counts_on_hover() -> None:
    bars = bars_of(render([Bucket(T0, 0, 0), Bucket(T0 + 60, 3, 1)], "Last hour"))
    assert [bar.findtext(f"{SVG}title") for bar in bars] == [
        "08:00–08:01 UTC: 0 completed, 0 failed",
        "08:01–08:02 UTC: 3 completed, 1 failed",
    ]
    hours = bars_of(render([Bucket(T0, 1, 0), Bucket(T0 + 3600, 0, 2)], "Last day"))
    assert hours[1].findtext(f"{SVG}title") == "09:00–10:00 UTC: 0 completed, 2 failed"


def test_the_chart_has_an_accessible_label_and_escapes_its_title() -> None:
    figure = render([Bucket(T0, 2, 1), Bucket(T0 + 60, 1, 0)], "<script>alert(1)</script>")
    svg = figure.find(f"{SVG}svg")
    assert svg is not None
    assert svg.get("role") == "img"
    assert svg.get("aria-label") == "<script>alert(1)</script>: 3 completed, 1 failed"  # as text: parsed back
    assert figure.find("script") is None and not list(figure.iter("script"))
    assert figure.findtext("figcaption", "").startswith("<script>alert(1)</script>")


def test_an_empty_chart_draws_no_bar_and_no_division_by_zero() -> None:
    bars = bars_of(render([Bucket(T0 + 60 * n, 0, 0) for n in range(60)], "Quiet"))
    assert len(bars) == 60
    assert all(rect(bar, "bar-hit") is not None and rect(bar, "bar-ok") is None for bar in bars)

"""tenants/web/charts.py: SVG charts drawn on the server, escaped, with readable axis labels."""

from tenants.web import charts


def test_a_histogram_of_dates_labels_its_ends_with_dates():
    bins = [{"start": "2019-01-02T00:00:00", "end": "2022-01-01T00:00:00", "count": 4},
            {"start": "2022-01-01T00:00:00", "end": "2025-12-27T00:00:00", "count": 6}]
    svg = str(charts.histogram(bins, label="signed_up"))
    assert ">2019-01-02<" in svg and ">2025-12-27<" in svg and "T00:00:00<" not in svg


def test_times_of_day_and_numbers_keep_their_precision():
    bins = [{"start": "2024-03-01T12:30:00", "end": "2024-03-02T08:00:00", "count": 1}]
    assert ">2024-03-01T12:30:00<" in str(charts.histogram(bins, label="t"))
    svg = str(charts.histogram([{"start": 0.5, "end": 12345.678, "count": 3}], label="x"))
    assert ">0.5<" in svg and ">12,345.678<" in svg


def test_labels_are_escaped():
    svg = str(charts.bars([("<script>", 3)], label="a&b"))
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_the_daily_chart_keeps_its_tallest_bar_below_the_max_label():
    import re

    svg = str(charts.daily([("2026-11-27", 0), ("2026-11-28", 0.602)], label="CPU-seconds"))
    assert ">max 0.602<" in svg
    tallest_top = min(float(y) for y in re.findall(r'<rect x="[^"]+" y="([^"]+)"', svg))
    assert tallest_top >= 14  # the label's baseline is at y=11


def test_bars_show_counts_as_integers_and_scores_as_decimals():
    svg = str(charts.bars([("plan", 1234), ("tenure", 0.12345), ("noise", 0.0)], label="x"))
    assert ">1,234<" in svg and ">0.123<" in svg and ">0<" in svg

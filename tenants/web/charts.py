"""Small server-side SVG charts: no JavaScript, no inline styles (CSP), colours from CSS.

Every chart has role="img", a <title> and an aria-label that says what it shows, so it reads well
in a screen reader; the pages also show the numbers in text or tables.
"""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe


def _fmt(value) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "–"
        if abs(value) >= 1e5 or (abs(value) < 1e-3 and value != 0):
            return f"{value:.3g}"
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    text = str(value)
    if len(text) > 10 and text[4:5] == "-" and text[10:11] == "T" and text[11:].startswith("00:00:00"):
        text = text[:10]  # an ISO date-time at midnight (a histogram edge of dates): the date says it
    return escape(text)


def _value(value) -> str:
    return f"{value:,}" if isinstance(value, int) else _fmt(float(value))


def _svg(width: int, height: int, label: str, body: list[str]) -> SafeString:
    head = (f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg" '
            f'preserveAspectRatio="xMidYMid meet"><title>{escape(label)}</title>')
    return mark_safe(head + "".join(body) + "</svg>")  # noqa: S308 - every text part is escaped


def histogram(bins: list[dict], *, label: str, width: int = 260, height: int = 90) -> SafeString:
    """Vertical bars, one per bin ({start, end, count})."""
    if not bins:
        return mark_safe("")
    top = max(b["count"] for b in bins) or 1
    plot_h = height - 18
    bar_w = width / len(bins)
    body = [f'<line class="axis" x1="0" y1="{plot_h}" x2="{width}" y2="{plot_h}"/>']
    for i, b in enumerate(bins):
        h = 0 if not b["count"] else max(1.0, plot_h * b["count"] / top)
        tip = f"{_fmt(b['start'])} – {_fmt(b['end'])}: {b['count']:,}"
        body.append(f'<rect x="{i * bar_w + 1:.1f}" y="{plot_h - h:.1f}" width="{max(bar_w - 2, 1):.1f}" '
                    f'height="{h:.1f}"><title>{tip}</title></rect>')
    body.append(f'<text x="0" y="{height - 3}" class="tick">{_fmt(bins[0]["start"])}</text>')
    body.append(f'<text x="{width}" y="{height - 3}" text-anchor="end" class="tick">'
                f'{_fmt(bins[-1]["end"])}</text>')
    return _svg(width, height, label, body)


def bars(items: list[tuple[str, float]], *, label: str, width: int = 260, row: int = 18) -> SafeString:
    """Horizontal bars with their labels: counts of categories and booleans, or scores."""
    if not items:
        return mark_safe("")
    top = max(count for _, count in items) or 1
    label_w = 96
    height = row * len(items)
    body = []
    for i, (name, count) in enumerate(items):
        y = i * row
        w = max(1.0, (width - label_w - 48) * count / top)
        text = escape(str(name)[:14] + ("…" if len(str(name)) > 14 else ""))
        body.append(f'<text x="{label_w - 6}" y="{y + row * 0.7:.1f}" text-anchor="end" class="tick">{text}</text>')
        body.append(f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 6}">'
                    f'<title>{escape(str(name))}: {_value(count)}</title></rect>')
        body.append(f'<text x="{label_w + w + 4:.1f}" y="{y + row * 0.7:.1f}" class="tick">{_value(count)}</text>')
    return _svg(width, height, label, body)


def line(series: list[tuple[str, list[tuple[float, float]]]], *, label: str, x_label: str = "",
         y_label: str = "", width: int = 320, height: int = 260, diagonal: bool = False,
         x_range: tuple[float, float] = (0.0, 1.0), y_range: tuple[float, float] = (0.0, 1.0),
         points_only: bool = False) -> SafeString:
    """Lines (ROC curves) or points (predicted vs actual) in a square-ish plot with axes."""
    pad_l, pad_b, pad_t, pad_r = 40, 34, 8, 10
    pw, ph = width - pad_l - pad_r, height - pad_t - pad_b
    (x0, x1), (y0, y1) = x_range, y_range

    def sx(x: float) -> float:
        return pad_l + pw * (x - x0) / ((x1 - x0) or 1)

    def sy(y: float) -> float:
        return pad_t + ph - ph * (y - y0) / ((y1 - y0) or 1)

    body = [f'<rect class="bg" x="{pad_l}" y="{pad_t}" width="{pw}" height="{ph}"/>',
            f'<line class="axis" x1="{pad_l}" y1="{pad_t + ph}" x2="{pad_l + pw}" y2="{pad_t + ph}"/>',
            f'<line class="axis" x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{pad_t + ph}"/>']
    for frac in (0.25, 0.5, 0.75):
        gy = pad_t + ph * frac
        body.append(f'<line x1="{pad_l}" y1="{gy:.1f}" x2="{pad_l + pw}" y2="{gy:.1f}"/>')
    if diagonal:
        body.append(f'<path class="diagonal" d="M{sx(x0):.1f},{sy(y0):.1f} L{sx(x1):.1f},{sy(y1):.1f}"/>')
    for index, (name, pts) in enumerate(series):
        css = f"s{index % 5 + 1}"
        if points_only:
            for x, y in pts:
                body.append(f'<circle class="{css}" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2"/>')
        elif pts:
            d = " ".join(f"{'M' if i == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for i, (x, y) in enumerate(pts))
            body.append(f'<path class="{css}" d="{d}"><title>{escape(name)}</title></path>')
    body += [
        f'<text x="{pad_l}" y="{height - 18}" class="tick">{_fmt(x0)}</text>',
        f'<text x="{pad_l + pw}" y="{height - 18}" text-anchor="end" class="tick">{_fmt(x1)}</text>',
        f'<text x="{pad_l - 4}" y="{pad_t + ph}" text-anchor="end" class="tick">{_fmt(y0)}</text>',
        f'<text x="{pad_l - 4}" y="{pad_t + 10}" text-anchor="end" class="tick">{_fmt(y1)}</text>',
        f'<text x="{pad_l + pw / 2}" y="{height - 4}" text-anchor="middle" class="axis-label">{escape(x_label)}</text>',
        f'<text x="12" y="{pad_t + ph / 2}" text-anchor="middle" class="axis-label" '
        f'transform="rotate(-90 12 {pad_t + ph / 2})">{escape(y_label)}</text>',
    ]
    return _svg(width, height, label, body)


def daily(points: list[tuple[str, float]], *, label: str, width: int = 420, height: int = 110) -> SafeString:
    """One bar per day (oldest first); the first and last dates under the axis."""
    if not points:
        return mark_safe("")
    bins = [{"start": day, "end": day, "count": value} for day, value in points]
    top = max(value for _, value in points)
    plot_h = height - 18
    bar_room = plot_h - 16  # the tallest bar stops below the "max" label
    bar_w = width / len(points)
    body = [f'<line class="axis" x1="0" y1="{plot_h}" x2="{width}" y2="{plot_h}"/>']
    for i, b in enumerate(bins):
        h = 0 if not b["count"] or not top else max(1.0, bar_room * b["count"] / top)
        body.append(f'<rect x="{i * bar_w + 1:.1f}" y="{plot_h - h:.1f}" width="{max(bar_w - 2, 1):.1f}" '
                    f'height="{h:.1f}"><title>{escape(str(b["start"]))}: {_fmt(b["count"])}</title></rect>')
    body.append(f'<text x="0" y="{height - 3}" class="tick">{escape(str(points[0][0]))}</text>')
    body.append(f'<text x="{width}" y="{height - 3}" text-anchor="end" class="tick">'
                f'{escape(str(points[-1][0]))}</text>')
    body.append(f'<text x="{width}" y="11" text-anchor="end" class="tick">max {_fmt(top)}</text>')
    return _svg(width, height, label, body)


def trend(points: list[tuple[str, float | None]], *, label: str, threshold: float | None = None,
          threshold_label: str = "threshold", width: int = 560, height: int = 180) -> SafeString:
    """A value per day (oldest first) as a line with its points, and a dashed horizontal line at
    `threshold`; days without a value (None) break the line."""
    if not points:
        return mark_safe("")
    pad_l, pad_b, pad_t, pad_r = 44, 22, 10, 10
    pw, ph = width - pad_l - pad_r, height - pad_t - pad_b
    values = [v for _, v in points if v is not None]
    top = max(values + ([threshold * 1.25] if threshold is not None else []) + [1e-9])

    def sx(i: int) -> float:
        return pad_l + (pw * i / (len(points) - 1) if len(points) > 1 else pw / 2)

    def sy(v: float) -> float:
        return pad_t + ph - ph * min(v, top) / top

    body = [f'<rect class="bg" x="{pad_l}" y="{pad_t}" width="{pw}" height="{ph}"/>',
            f'<line class="axis" x1="{pad_l}" y1="{pad_t + ph}" x2="{pad_l + pw}" y2="{pad_t + ph}"/>',
            f'<line class="axis" x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{pad_t + ph}"/>']
    if threshold is not None:
        y = sy(threshold)
        body.append(f'<line class="threshold" x1="{pad_l}" y1="{y:.1f}" x2="{pad_l + pw}" y2="{y:.1f}" '
                    f'stroke-dasharray="6 4"><title>{escape(threshold_label)} {_fmt(float(threshold))}</title></line>')
        body.append(f'<text x="{pad_l + pw - 2}" y="{y - 4:.1f}" text-anchor="end" class="tick">'
                    f'{escape(threshold_label)} {_fmt(float(threshold))}</text>')
    path, pen = [], "M"
    for i, (day, value) in enumerate(points):
        if value is None:
            pen = "M"
            continue
        path.append(f"{pen}{sx(i):.1f},{sy(value):.1f}")
        pen = "L"
        over = threshold is not None and value > threshold
        body.append(f'<circle class="s1{" over" if over else ""}" cx="{sx(i):.1f}" cy="{sy(value):.1f}" r="3">'
                    f'<title>{escape(str(day))}: {_fmt(float(value))}</title></circle>')
    if path:
        body.insert(3, f'<path class="s1" d="{" ".join(path)}"/>')
    body += [f'<text x="{pad_l - 4}" y="{pad_t + ph}" text-anchor="end" class="tick">0</text>',
             f'<text x="{pad_l - 4}" y="{pad_t + 10}" text-anchor="end" class="tick">{_fmt(float(top))}</text>',
             f'<text x="{pad_l}" y="{height - 4}" class="tick">{escape(str(points[0][0]))}</text>',
             f'<text x="{pad_l + pw}" y="{height - 4}" text-anchor="end" class="tick">{escape(str(points[-1][0]))}</text>']
    return _svg(width, height, label, body)


def signed_bars(items: list[tuple[str, float]], *, label: str, width: int = 420, row: int = 20) -> SafeString:
    """Horizontal bars either side of a zero line: positive to the right (class "s2"), negative to
    the left ("s4"), each with its value; for contributions that push a number up or down."""
    if not items:
        return mark_safe("")
    label_w, pad = 120, 52  # room for the names, and for the value beside the longest bar
    half = (width - label_w - 2 * pad) / 2
    zero = label_w + pad + half
    top = max(abs(value) for _, value in items) or 1
    height = row * len(items) + 4
    body = [f'<line class="axis" x1="{zero:.1f}" y1="0" x2="{zero:.1f}" y2="{height}"/>']
    for i, (name, value) in enumerate(items):
        y = i * row + 2
        w = max(1.0, half * abs(value) / top)
        x = zero if value >= 0 else zero - w
        text = escape(str(name)[:18] + ("…" if len(str(name)) > 18 else ""))
        shown = ("+" if value > 0 else "") + _fmt(float(value))
        body.append(f'<text x="{label_w - 6}" y="{y + row * 0.65:.1f}" text-anchor="end" class="tick">{text}</text>')
        body.append(f'<rect class="{"s2" if value >= 0 else "s4"}" x="{x:.1f}" y="{y + 3}" width="{w:.1f}" '
                    f'height="{row - 6}"><title>{escape(str(name))}: {shown}</title></rect>')
        tx, anchor = (x + w + 4, "start") if value >= 0 else (x - 4, "end")
        body.append(f'<text x="{tx:.1f}" y="{y + row * 0.65:.1f}" text-anchor="{anchor}" class="tick">{shown}</text>')
    return _svg(width, height, label, body)

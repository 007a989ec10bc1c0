"""Charts drawn on the server as inline SVG: nothing loaded from other sites, no script, readable
at 360 px (the SVG scales to its box) and printable. Every chart sits beside a table of the same
figures, and values are written on the bars, so colour is never the only signal."""

from markupsafe import Markup, escape

PLUS = "#1b7a33"
MINUS = "#b00020"
NEUTRAL = "#5b6b8c"


def _fmt(n: int) -> str:
    return f"{n:,}"


def bars(rows: list[tuple[str, int]], label: str, colour: str = NEUTRAL) -> Markup:
    """Horizontal bars, one per (label, value); negative values in red, drawn leftwards from
    the same axis as positive ones."""
    if not rows:
        return Markup("")
    # About the width of a phone's screen, so the text is drawn near its real size there.
    width, left, right, bar_h, gap = 360, 84, 56, 20, 7
    lo = min(0, *(v for _l, v in rows))
    hi = max(0, *(v for _l, v in rows))
    span = (hi - lo) or 1
    plot = width - left - right
    zero = left + plot * (-lo) / span
    height = len(rows) * (bar_h + gap) + gap
    parts = [
        f'<line x1="{zero:.1f}" y1="0" x2="{zero:.1f}" y2="{height}" stroke="#999" '
        f'stroke-width="1"/>'
    ]
    for i, (name, value) in enumerate(rows):
        y = gap + i * (bar_h + gap)
        w = plot * abs(value) / span
        x = zero if value >= 0 else zero - w
        fill = MINUS if value < 0 else colour
        # A negative value's number goes right of the axis: left of its bar is the label.
        text_x = x + w + 4 if value >= 0 else zero + 4
        anchor = "start"
        parts.append(
            f'<text x="{left - 6}" y="{y + bar_h * 0.72:.1f}" text-anchor="end" '
            f'font-size="13">{escape(_short(name, 6))}</text>'
            f'<rect x="{x:.1f}" y="{y}" width="{max(w, 1):.1f}" height="{bar_h}" fill="{fill}"/>'
            f'<text x="{text_x:.1f}" y="{y + bar_h * 0.72:.1f}" text-anchor="{anchor}" '
            f'font-size="13">{_fmt(value)}</text>'
        )
    return _svg(width, height, label, "".join(parts))


def trend(months: list[str], series: list[tuple[str, list[int], str]], label: str) -> Markup:
    """Lines over months: each series (name, values, colour), with a dot and a legend; the
    month labels below, every other one when there are many."""
    if not months:
        return Markup("")
    width, height, left, right, top, bottom = 360, 220, 44, 14, 30, 30
    values = [v for _n, vs, _c in series for v in vs]
    lo, hi = min(0, *values), max(1, *values)
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(len(months) - 1, 1)

    def y_of(v):
        return top + plot_h * (hi - v) / ((hi - lo) or 1)

    parts = []
    for tick in (lo, (lo + hi) // 2, hi):
        y = y_of(tick)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="11">'
            f"{_fmt(tick)}</text>"
        )
    every = 1 if len(months) <= 4 else 3
    for i, m in enumerate(months):
        if i % every == 0 or i == len(months) - 1:
            parts.append(
                f'<text x="{left + i * step:.1f}" y="{height - bottom + 18}" text-anchor="middle" '
                f'font-size="11">{escape(m[2:])}</text>'
            )
    legend_x = left
    for name, vs, colour in series:
        points = " ".join(f"{left + i * step:.1f},{y_of(v):.1f}" for i, v in enumerate(vs))
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2.5"/>'
        )
        parts.extend(
            f'<circle cx="{left + i * step:.1f}" cy="{y_of(v):.1f}" r="3" fill="{colour}"/>'
            for i, v in enumerate(vs)
        )
        parts.append(
            f'<rect x="{legend_x}" y="6" width="14" height="14" fill="{colour}"/>'
            f'<text x="{legend_x + 18}" y="18" font-size="12">{escape(name)}</text>'
        )
        legend_x += 28 + 12 * len(name)
    return _svg(width, height, label, "".join(parts))


def _short(name: str, n: int = 10) -> str:
    return name if len(name) <= n else name[: n - 1] + "…"


def _svg(width: int, height: int, label: str, body: str) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg" '
        f'font-family="system-ui, sans-serif" fill="#1f2328"><title>{escape(label)}</title>'
        f"{body}</svg>"
    )

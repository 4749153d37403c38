"""The report as one self-contained HTML page: tables, bar charts and scatter plots as inline SVG.

No script, no external file, no plotting library: the page is a pure function of the report
dict, opens offline in any browser and can be attached to a CI run as a single artifact.

Per target: one bar chart per correlation (Spearman, Kendall) of every proxy with its
bootstrap interval as an error bar and the noise ceiling as a line, then one scatter plot per
proxy of proxy rank against target rank (1 = best, best at the top right; at most
`DEFAULT_SCATTER_POINTS` architectures drawn at random, the caption says how many).
"""

from __future__ import annotations

import math
from html import escape

from zcnas.report.metrics import metric_label
from zcnas.report.render import (
    RELIABILITY_FLAG,
    Footnotes,
    above_ceiling,
    architectures_phrase,
    bootstrap_sentence,
    ceiling_sentence,
    fmt,
    fmt_interval,
    has_reliability,
    ordered_targets,
    ranked_proxies,
    reliability_columns,
    reliability_rows,
    reliability_sentence,
    table_columns,
)

BAR_METRICS = ("spearman", "kendall")

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2330;
       margin: 0 auto; padding: 16px 24px 48px; max-width: 1180px; background: #fff; }
h1 { font-size: 22px; margin: 8px 0 4px; }
h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #d8dde6; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
p.meta, p.note { color: #4a5263; margin: 4px 0; }
table { border-collapse: collapse; font-size: 12.5px; margin: 8px 0 12px; }
th, td { padding: 3px 8px; border-bottom: 1px solid #e6e9ef; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f5f9; font-weight: 600; white-space: normal; vertical-align: bottom; }
td { vertical-align: top; }
.ci { color: #6a7284; font-size: 11px; }
.table-wrap { overflow-x: auto; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.scatters { display: grid; grid-template-columns: repeat(auto-fill, minmax(250px, 1fr)); gap: 10px; }
figure { margin: 0; }
svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; fill: #1d2330; }
.failures li { color: #8a1c1c; }
"""

BAR_COLOURS = {"spearman": "#3b6fb6", "kendall": "#3f9a6e"}
CEILING_COLOUR = "#c0392b"


def _number(value: float) -> str:
    return f"{value:.1f}"


def bar_chart_svg(report: dict, target: str, metric: str) -> str:
    """Horizontal bars: every proxy's `metric` against `target`, interval whiskers, ceiling line."""
    proxies = ranked_proxies(report, target, metric)
    ceiling = (report.get("noise_ceiling") or {}).get(target)
    bound = ceiling["metrics"][metric] if ceiling else None
    values = []
    for entry in proxies:
        cell = entry["targets"][target][metric]
        values += [v for v in (cell["value"], cell["low"], cell["high"]) if v is not None]
    low_end = min([0.0, *values])
    low_end = math.floor(low_end * 5) / 5  # a gridline below the smallest whisker
    left, right, top, row = 150, 60, 46, 22
    width = 560
    height = top + row * max(len(proxies), 1) + 40
    plot = width - left - right

    def x(value: float) -> float:
        return left + (value - low_end) / (1.0 - low_end) * plot

    title = f"{metric_label(metric)} of each proxy with {target}"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="bar-chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" data-target="{escape(target)}" data-metric="{metric}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{left}" y="16" font-size="13" font-weight="600">{escape(title)}</text>',
    ]
    tick = low_end
    while tick <= 1.0 + 1e-9:
        tx = _number(x(tick))
        parts.append(f'<line x1="{tx}" y1="{top - 6}" x2="{tx}" y2="{height - 34}" stroke="#e3e6ec" stroke-width="1"/>')
        parts.append(f'<text x="{tx}" y="{height - 20}" font-size="10" text-anchor="middle">{tick:.1f}</text>')
        tick = round(tick + 0.2, 10)
    zero = _number(x(0.0))
    parts.append(f'<line x1="{zero}" y1="{top - 6}" x2="{zero}" y2="{height - 34}" stroke="#7a8294" stroke-width="1"/>')
    if bound and bound["ceiling"]["value"] is not None:
        c = bound["ceiling"]
        if c["low"] is not None and c["high"] is not None:
            parts.append(
                f'<rect class="ceiling-band" x="{_number(x(c["low"]))}" y="{top - 6}" '
                f'width="{_number(max(x(c["high"]) - x(c["low"]), 1.0))}" height="{height - 34 - top + 6}" '
                f'fill="{CEILING_COLOUR}" fill-opacity="0.10"/>'
            )
        cx = _number(x(c["value"]))
        parts.append(
            f'<line class="noise-ceiling" x1="{cx}" y1="{top - 6}" x2="{cx}" y2="{height - 34}" '
            f'stroke="{CEILING_COLOUR}" stroke-width="2" stroke-dasharray="6 3"/>'
        )
        parts.append(
            f'<text x="{cx}" y="{top - 10}" font-size="10.5" text-anchor="end" fill="{CEILING_COLOUR}">'
            f"noise ceiling {c['value']:.2f} </text>"
        )
        a = bound["agreement"]["value"]
        if a is not None:
            ax = _number(x(a))
            parts.append(
                f'<line class="seed-agreement" x1="{ax}" y1="{top - 6}" x2="{ax}" y2="{height - 34}" '
                f'stroke="{CEILING_COLOUR}" stroke-width="1" stroke-dasharray="1 3"/>'
            )
    colour = BAR_COLOURS.get(metric, "#555")
    for i, entry in enumerate(proxies):
        cell = entry["targets"][target][metric]
        y = top + i * row
        name = escape(entry["proxy"])
        flag = above_ceiling(entry["targets"][target], ceiling)
        parts.append(f'<text x="{left - 8}" y="{y + 15}" font-size="11.5" text-anchor="end">{name}</text>')
        if cell["value"] is None:
            parts.append(f'<text x="{zero}" y="{y + 15}" font-size="11" fill="#7a8294"> undefined</text>')
            continue
        x0, x1 = sorted((x(0.0), x(cell["value"])))
        parts.append(
            f'<rect class="bar" x="{_number(x0)}" y="{y + 4}" width="{_number(max(x1 - x0, 0.5))}" height="{row - 8}" '
            f'fill="{colour}" fill-opacity="0.85"><title>{name}: {escape(fmt_interval(cell))}</title></rect>'
        )
        if cell["low"] is not None and cell["high"] is not None:
            lo, hi, mid = _number(x(cell["low"])), _number(x(cell["high"])), y + row / 2
            parts.append(
                f'<path class="interval" d="M{lo} {mid - 5}V{mid + 5}M{lo} {mid}H{hi}M{hi} {mid - 5}V{mid + 5}" '
                f'stroke="#1d2330" stroke-width="1.3" fill="none"/>'
            )
        parts.append(
            f'<text x="{_number(left + plot + 8)}" y="{y + 15}" font-size="10.5">{cell["value"]:.3f}{" ▲" if flag else ""}</text>'
        )
    parts.append(
        f'<text x="{left + plot / 2}" y="{height - 4}" font-size="11" text-anchor="middle">'
        f"{escape(metric_label(metric))} (bars: value; whiskers: {_confidence(report)} interval)</text>"
    )
    parts.append("</svg>")
    return "".join(parts)


def _legend(report: dict, target: str) -> str:
    ceiling = (report.get("noise_ceiling") or {}).get(target)
    if not ceiling:
        return ""
    other = "two seeds" if ceiling["source"] == "seeds" else "the two targets of the pair"
    return (
        f'<p class="note"><span style="color:{CEILING_COLOUR}">- - -</span> noise ceiling (shaded: its interval); '
        f'<span style="color:{CEILING_COLOUR}">· · ·</span> agreement between {other}.</p>'
    )


def _confidence(report: dict) -> str:
    b = report.get("bootstrap") or {}
    return f"{round(100 * b['confidence'])}%" if b.get("resamples") else "no"


def scatter_svg(entry: dict, target: str) -> str:
    """Proxy rank against target rank for one proxy (1 = best, drawn at the top right)."""
    cells = entry["targets"][target]
    scatter = cells.get("scatter") or {"n": 0, "proxy_rank": [], "target_rank": []}
    n = scatter["n"]
    size, margin_left, margin_bottom, margin_top = 250, 38, 36, 34
    plot = size - margin_left - 10
    plot_h = size - margin_top - margin_bottom

    def fraction(rank: float) -> float:
        return 1.0 if n <= 1 else (n - rank) / (n - 1)

    name = escape(entry["proxy"])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="scatter" role="img" width="{size}" height="{size}" '
        f'viewBox="0 0 {size} {size}" data-proxy="{name}" data-target="{escape(target)}">',
        f"<title>{name}: proxy rank against {escape(target)} rank</title>",
        f'<text x="{margin_left}" y="14" font-size="12.5" font-weight="600">{name}</text>',
        f'<text x="{margin_left}" y="27" font-size="10.5" fill="#4a5263">ρ {fmt(cells["spearman"]["value"], 2)}, '
        f'τ {fmt(cells["kendall"]["value"], 2)}; {len(scatter["proxy_rank"])} of {n} shown</text>',
        f'<rect x="{margin_left}" y="{margin_top}" width="{plot}" height="{plot_h}" fill="#fafbfd" stroke="#c9ced8"/>',
        f'<line x1="{margin_left}" y1="{margin_top + plot_h}" x2="{margin_left + plot}" y2="{margin_top}" '
        f'stroke="#c9ced8" stroke-dasharray="4 3"/>',
    ]
    for p_rank, t_rank in zip(scatter["proxy_rank"], scatter["target_rank"]):
        cx = margin_left + fraction(p_rank) * plot
        cy = margin_top + (1 - fraction(t_rank)) * plot_h
        parts.append(f'<circle cx="{_number(cx)}" cy="{_number(cy)}" r="2" fill="#3b6fb6" fill-opacity="0.55"/>')
    parts.append(
        f'<text x="{margin_left + plot / 2}" y="{size - 18}" font-size="10.5" text-anchor="middle">proxy rank (best →)</text>'
    )
    parts.append(
        f'<text x="{margin_left - 8}" y="{margin_top + plot_h / 2}" font-size="10.5" text-anchor="middle" '
        f'transform="rotate(-90 {margin_left - 8} {margin_top + plot_h / 2})">{escape(target)} rank (best →)</text>'
    )
    parts.append(f'<text x="{margin_left}" y="{size - 4}" font-size="9.5" fill="#7a8294">{n}</text>')
    parts.append(f'<text x="{margin_left + plot}" y="{size - 4}" font-size="9.5" text-anchor="end" fill="#7a8294">1</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(report: dict, target: str) -> str:
    """The per-target table; intervals under their values, so the table fits the page."""
    head = "".join(f"<th>{escape(c)}</th>" for c in table_columns(report))
    ceiling = (report.get("noise_ceiling") or {}).get(target)
    notes = Footnotes()
    rows = []
    for entry in ranked_proxies(report, target):
        cells = entry["targets"][target]
        flag = (" ▲" if above_ceiling(cells, ceiling) else "") + (f" {RELIABILITY_FLAG}" if cells.get("above_reliability_bound") else "")
        row = [f"<td>{escape(entry['proxy'])}{flag}</td>"]
        for metric in report["metrics"]:
            cell = cells[metric]
            text = fmt(cell["value"]) if cell["value"] is not None else escape(notes.undefined(cell))
            if cell["value"] is not None and cell["low"] is not None:
                text += f'<br><span class="ci">[{fmt(cell["low"])}, {fmt(cell["high"])}]</span>'
            row.append(f"<td>{text}</td>")
        row += [f"<td>{cells['n']}</td>", f"<td>{entry['failed']}</td>", f"<td>{fmt(entry['median_seconds'], 4)}</td>"]
        rows.append("<tr>" + "".join(row) + "</tr>")
    footnotes = "".join(f'<p class="note footnote">{escape(line)}</p>' for line in notes.lines())
    return f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>{footnotes}'


def _reliability_table(report: dict, target: str) -> str:
    """The proxies' test-retest reliability and attenuation bounds (runs with repeats only)."""
    if not has_reliability(report):
        return ""
    head = "".join(f"<th>{escape(c)}</th>" for c in reliability_columns(report))
    rows = []
    for row in reliability_rows(report, target):
        cells = []
        for text in row:
            value, _, interval = text.partition(" [")
            cells.append(f"<td>{escape(value)}" + (f'<br><span class="ci">[{escape(interval)}</span>' if interval else "") + "</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<h3>Reliability of the proxies</h3><p class="note">{escape(reliability_sentence(report))}</p>'
        f'<div class="table-wrap"><table class="reliability"><thead><tr>{head}</tr></thead>'
        f'<tbody>{"".join(rows)}</tbody></table></div>'
    )


def expected_svg_count(report: dict) -> int:
    """How many SVG images `to_html` draws: per target, the bar charts and one scatter per proxy."""
    return len(report["targets"]) * (len(BAR_METRICS) + len(report["proxies"]))


def to_html(report: dict) -> str:
    title = f"zcnas report: {report['benchmark']}"
    where = f" of {report['search_space']} on {report['dataset']}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">{escape(architectures_phrase(report, where))}; '
        f'run seed {report["seed"]}, probe batch {report["batch_size"]}'
        + (f', {report["repeats"]} repeats (vary {escape(report["vary"])}, {escape(report["protocol"])} protocol)' if has_reliability(report) else "")
        + "; "
        f'zcnas {escape(report["zcnas_version"])}, {escape(report["created"])}.</p>',
        f'<p class="meta">{escape(bootstrap_sentence(report))} ▲: above the noise ceiling.</p>',
    ]
    for target in ordered_targets(report):
        parts += [
            f'<section class="target" data-target="{escape(target)}">',
            f"<h2>{escape(target)}</h2>",
            f'<p class="note">{escape(ceiling_sentence(report, target))}</p>',
            _table(report, target),
            _reliability_table(report, target),
            '<div class="charts">',
            *[f"<figure>{bar_chart_svg(report, target, m)}</figure>" for m in BAR_METRICS],
            "</div>",
            _legend(report, target),
            f"<h3>Proxy rank against {escape(target)} rank</h3>",
            '<div class="scatters">',
            *[f"<figure>{scatter_svg(entry, target)}</figure>" for entry in ranked_proxies(report, target)],
            "</div>",
            "</section>",
        ]
    failures = [e for e in report["proxies"] if e["failed"]]
    if failures:
        parts += ["<h2>Failures</h2>", '<ul class="failures">']
        for entry in failures:
            parts.append(
                f"<li>{escape(entry['proxy'])}: {entry['failed']} failed; e.g. {escape('; '.join(entry['first_errors']))}</li>"
            )
        parts.append("</ul>")
    parts += [
        '<p class="note">The format and every definition: docs/report-format.md in the zcnas repository.</p>',
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(parts)

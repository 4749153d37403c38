"""Renderers of a report dict: JSON for machines and `check`, Markdown for people and CI logs.

The table helpers are shared: `table_columns`/`table_rows` (every metric with its interval) by
the Markdown and the HTML page, `terminal_columns`/`terminal_rows` (a compact subset) by the
CLI, which draws them with rich; `ceiling_sentence` and `bootstrap_sentence` by all three. So
every rendering shows the same numbers in the same order.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Callable, Sequence

from zcnas.report.metrics import metric_label

SUFFIXES = {"json": ".report.json", "md": ".report.md", "html": ".report.html"}


def fmt(value, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


class Footnotes:
    """The reasons of one table's undefined cells, numbered in order of appearance: `undefined`
    gives the cell's text ("—¹"), `lines` the notes to print under the table."""

    def __init__(self) -> None:
        self.reasons: list[str] = []

    def undefined(self, cell: dict | None) -> str:
        reason = (cell or {}).get("reason")
        if not reason:
            return "—"
        if reason not in self.reasons:
            self.reasons.append(reason)
        return "—" + str(self.reasons.index(reason) + 1).translate(SUPERSCRIPTS)

    def lines(self) -> list[str]:
        return [f"{str(i).translate(SUPERSCRIPTS)} undefined: {reason}." for i, reason in enumerate(self.reasons, 1)]


def fmt_interval(cell: dict | None, digits: int = 3, notes: Footnotes | None = None) -> str:
    """'0.712 [0.690, 0.731]', or the value alone without an interval, or '—' (with the mark of
    its reason in `notes`, when given)."""
    if not cell or cell.get("value") is None:
        return notes.undefined(cell) if notes is not None else "—"
    text = fmt(cell["value"], digits)
    if cell.get("low") is not None and cell.get("high") is not None:
        text += f" [{fmt(cell['low'], digits)}, {fmt(cell['high'], digits)}]"
    return text


def _json_safe(value):
    """NaN and infinities as null: JSON has no NaN, and a reader must not meet one."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def to_json(report: dict) -> str:
    return json.dumps(_json_safe(report), indent=2, sort_keys=False, allow_nan=False) + "\n"


def ranked_proxies(report: dict, target: str, metric: str = "spearman") -> list[dict]:
    """The report's proxies, best `metric` against `target` first, undefined ones last."""

    def key(entry):
        value = entry["targets"][target][metric]["value"]
        return (value is None, -(value or 0.0))

    return sorted(report["proxies"], key=key)


def table_columns(report: dict) -> list[str]:
    """Column titles of the full per-target table (Markdown, HTML)."""
    return ["proxy", *[metric_label(m) for m in report["metrics"]], "n", "failed", "median s/arch"]


def _proxy_rows(report: dict, target: str, metric_cells: Callable[[dict], list[str]]) -> list[list[str]]:
    """One row per proxy, best Spearman first: its name (▲ where it lies above the target's
    noise ceiling), `metric_cells` of its cells for `target`, failures, median s/arch."""
    ceiling = report.get("noise_ceiling", {}).get(target)
    rows = []
    for entry in ranked_proxies(report, target):
        cells = entry["targets"][target]
        flag = (" ▲" if above_ceiling(cells, ceiling) else "") + (f" {RELIABILITY_FLAG}" if cells.get("above_reliability_bound") else "")
        rows.append(
            [
                entry["proxy"] + flag,
                *metric_cells(cells),
                str(entry["failed"]),
                fmt(entry["median_seconds"], 4),
            ]
        )
    return rows


def table_rows(report: dict, target: str, notes: Footnotes | None = None) -> list[list[str]]:
    """The full table's rows; undefined cells marked with their reason in `notes` when given."""
    names = report["metrics"]
    return _proxy_rows(report, target, lambda cells: [*[fmt_interval(cells[m], notes=notes) for m in names], str(cells["n"])])


def terminal_columns(report: dict) -> list[str]:
    """The compact table a terminal shows: intervals for ρ and τ only, no within-top τ."""
    precision = [m for m in report["metrics"] if m.endswith("_precision")]
    return ["proxy", "Spearman ρ (95%)", "Kendall τ (95%)", "Pearson r", *[metric_label(m).replace(" precision", "") for m in precision], "failed", "s/arch"]


def terminal_rows(report: dict, target: str, notes: Footnotes | None = None) -> list[list[str]]:
    """The compact table's rows; `notes` collects the reasons of undefined cells."""
    precision = [m for m in report["metrics"] if m.endswith("_precision")]
    notes = notes if notes is not None else Footnotes()

    def value(cell: dict) -> str:
        return notes.undefined(cell) if cell["value"] is None else fmt(cell["value"])

    def compact(cell: dict) -> str:
        if cell["value"] is None or cell["low"] is None:
            return value(cell)
        return f"{fmt(cell['value'])} ({fmt(cell['low'], 2)}–{fmt(cell['high'], 2)})"

    def metric_cells(cells: dict) -> list[str]:
        return [
            compact(cells["spearman"]),
            compact(cells["kendall"]),
            value(cells["pearson"]),
            *[value(cells[m]) for m in precision],
        ]

    return _proxy_rows(report, target, metric_cells)


def above_ceiling(cells: dict, ceiling: dict | None) -> bool:
    """Whether a proxy's Spearman or Kendall lies above the target's noise ceiling (a warning sign:
    a leak of the target into the proxy, or a ceiling measured on too few seeds)."""
    if not ceiling:
        return False
    for metric in ("spearman", "kendall"):
        value = cells[metric]["value"]
        bound = ceiling["metrics"][metric]["ceiling"]
        limit = bound["high"] if bound["high"] is not None else bound["value"]
        if value is not None and limit is not None and value > limit:
            return True
    return False


def ceiling_sentence(report: dict, target: str) -> str:
    """One sentence on the noise ceiling of `target` (or why there is none)."""
    ceiling = report.get("noise_ceiling", {}).get(target)
    if not ceiling:
        return (
            f"Noise ceiling: none for {target} — the benchmark has no training seeds for it "
            "(targets/<metric>_seeds) and no --ceiling-pair names it."
        )
    m = ceiling["metrics"]
    if ceiling["source"] == "seeds":
        source = f"{ceiling['seeds']} training seeds ({target} is the {ceiling['target_is']})"
        agreement = "seed-to-seed agreement"
    else:
        source = f"the pair {ceiling['pair'][0]} : {ceiling['pair'][1]}"
        agreement = "agreement of the pair"
    return (
        f"Noise ceiling from {source}: Kendall τ {fmt_interval(m['kendall']['ceiling'])}, "
        f"Spearman ρ {fmt_interval(m['spearman']['ceiling'])} — the most a proxy that sees only the "
        f"architecture can honestly reach; {agreement}: τ {fmt_interval(m['kendall']['agreement'])}, "
        f"ρ {fmt_interval(m['spearman']['agreement'])}."
    )


RELIABILITY_FLAG = "◆"
SOURCE_LABELS = {"init": "init only", "batch": "batch only", "both": "init and batch"}


def has_reliability(report: dict) -> bool:
    """Whether the report is of a run with repeats (every proxy then has a reliability entry)."""
    return (report.get("repeats") or 1) > 1


def reliability_sentence(report: dict) -> str:
    """What the reliability table of a run with repeats shows, in one paragraph."""
    repeats, vary = report.get("repeats") or 1, report.get("vary", "both")
    protocol = report.get("protocol", "zcnas")
    varied = {"init": "the initialisation", "batch": "the probe batch", "both": "the initialisation and the probe batch"}[vary]
    kinds = [SOURCE_LABELS[k] for k in ("init", "batch", "both") if k in _pair_kinds(report)]
    return (
        f"Reliability: every architecture scored {repeats} times ({protocol} protocol), varying {varied}; "
        f"the score is the mean of the repeats. Retest ρ: mean Spearman between two repeats"
        + (f" (by what differs between them: {', '.join(kinds)})" if len(kinds) > 1 else "")
        + "; ICC(2,1) of their ranks; aggregate: the reliability of the mean of the repeats (Spearman–Brown). "
        f"Bound: the most |ρ| the proxy's and the target's reliabilities permit (√(rel_proxy·rel_target)); "
        f"{RELIABILITY_FLAG} above it."
    )


def _pair_kinds(report: dict) -> list[str]:
    kinds: list[str] = []
    for entry in report["proxies"]:
        for kind in (entry.get("reliability") or {}).get("sources", {}):
            if kind not in kinds:
                kinds.append(kind)
    return kinds


def reliability_columns(report: dict, *, compact: bool = False) -> list[str]:
    """Columns of the reliability table of one target (`compact`: the terminal's)."""
    kinds = _pair_kinds(report)
    by_source = [f"retest ρ, {SOURCE_LABELS[k]}" for k in kinds] if len(kinds) > 1 else []
    single = "retest ρ (95%)" if compact else "retest ρ"
    return [
        "proxy", "ρ (aggregate)", "ρ one repeat", single, "ICC(2,1)", *by_source,
        f"aggregate reliability ρ ({report.get('repeats')})", "bound on |ρ|", "repeat failures",
    ]


def reliability_rows(report: dict, target: str, *, compact: bool = False) -> list[list[str]]:
    """One row per proxy, in the order of the target's table; a flag where |ρ| is above the bound."""
    kinds = _pair_kinds(report)

    def cell(c: dict | None) -> str:
        if not c or c.get("value") is None:
            return "—"
        if c.get("low") is None:
            return fmt(c["value"])
        if compact:
            return f"{fmt(c['value'])} ({fmt(c['low'], 2)}–{fmt(c['high'], 2)})"
        return fmt_interval(c)

    rows = []
    for entry in ranked_proxies(report, target):
        cells = entry["targets"][target]
        reliability = entry.get("reliability")
        single = [v for v in cells.get("repeat_spearman") or [] if v is not None]
        flag = f" {RELIABILITY_FLAG}" if cells.get("above_reliability_bound") else ""
        if not reliability:
            rows.append([entry["proxy"], fmt(cells["spearman"]["value"]), "—", "—", "—", *["—"] * (len(kinds) if len(kinds) > 1 else 0), "—", "—", "—"])
            continue
        sources = reliability.get("sources", {})
        rows.append(
            [
                entry["proxy"] + flag,
                fmt(cells["spearman"]["value"]),
                fmt(sum(single) / len(single)) if single else "—",
                cell(reliability["agreement"]["spearman"]),
                cell(reliability["agreement"]["icc"]) if not compact else fmt(reliability["agreement"]["icc"]["value"]),
                *([cell((sources.get(k) or {}).get("spearman")) if not compact else fmt(((sources.get(k) or {}).get("spearman") or {}).get("value")) for k in kinds] if len(kinds) > 1 else []),
                cell(reliability["aggregate"]["spearman"]),
                cell(cells.get("reliability_bound")) if not compact else fmt((cells.get("reliability_bound") or {}).get("value")),
                f"{reliability['repeat_failed']}",
            ]
        )
    return rows


def architectures_phrase(report: dict, of: str = "") -> str:
    """'40 architectures' of a finished run, '14 of 40 architectures scored (26 pending)' of an
    unfinished one; `of` (e.g. ' of nb201 on cifar10') goes after 'architectures'."""
    total, pending = report["architectures"], report.get("pending") or 0
    if not pending:
        return f"{total} architectures{of}"
    return f"{total - pending} of {total} architectures{of} scored ({pending} pending)"


def ordered_targets(report: dict) -> list[str]:
    """The report's targets, its primary target first (docs/report-format.md)."""
    targets = list(report["targets"])
    primary = report.get("primary_target")
    return [primary, *[t for t in targets if t != primary]] if primary in targets else targets


def summary_columns() -> list[str]:
    """Columns of the one-line-per-target summary (`summary_rows`)."""
    return ["target", "best proxy", "Spearman ρ (95%)", "noise ceiling ρ"]


def summary_rows(report: dict, targets: list[str]) -> list[list[str]]:
    """One row per target: the proxy with the best Spearman ρ, its ρ and interval, the ceiling."""
    rows = []
    for target in targets:
        best = ranked_proxies(report, target)[0] if report["proxies"] else None
        cell = best["targets"][target]["spearman"] if best else None
        ceiling = (report.get("noise_ceiling") or {}).get(target)
        rows.append(
            [
                target,
                best["proxy"] if best and cell["value"] is not None else "—",
                fmt_interval(cell),
                fmt_interval(ceiling["metrics"]["spearman"]["ceiling"]) if ceiling else "none",
            ]
        )
    return rows


def bootstrap_sentence(report: dict) -> str:
    b = report.get("bootstrap", {})
    if not b.get("resamples"):
        return "No bootstrap (intervals not computed)."
    return (
        f"[low, high]: {round(100 * b['confidence'])}% percentile bootstrap intervals over architectures "
        f"({b['resamples']} resamples, seed {b['seed']}; {b['seconds']:.1f} s)."
    )


def to_markdown(report: dict) -> str:
    top = ", ".join(f"{p:g}%" for p in report.get("top_k_percent", []))
    where = f" of {report['search_space']} on {report['dataset']}"
    lines = [
        f"# zcnas report: {report['benchmark']}",
        "",
        f"{architectures_phrase(report, where)}, "
        f"seed {report['seed']}, probe batch {report['batch_size']}"
        + (f", {report['repeats']} repeats (vary {report['vary']}, {report['protocol']} protocol)." if has_reliability(report) else "."),
        "",
        bootstrap_sentence(report) + (f" Top-k: {top} (k = ceil(k% of n), at least 1)." if top else ""),
        "",
    ]
    for target in ordered_targets(report):
        columns = table_columns(report)
        primary = " (primary target)" if target == report.get("primary_target") and len(report["targets"]) > 1 else ""
        lines += [f"## {target}{primary}", "", ceiling_sentence(report, target), ""]
        lines.append("| " + " | ".join(columns) + " |")
        lines.append("|---|" + "---:|" * (len(columns) - 1))
        notes = Footnotes()
        for row in table_rows(report, target, notes):
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
        if notes.reasons:
            lines += [*[line + "  " for line in notes.lines()], ""]
        if any(above_ceiling(e["targets"][target], report.get("noise_ceiling", {}).get(target)) for e in report["proxies"]):
            lines += ["▲ above the noise ceiling: suspect a leak of the target into the proxy.", ""]
        if has_reliability(report):
            columns = reliability_columns(report)
            lines += [f"### Reliability of the proxies ({target})", "", reliability_sentence(report), ""]
            lines.append("| " + " | ".join(columns) + " |")
            lines.append("|---|" + "---:|" * (len(columns) - 1))
            for row in reliability_rows(report, target):
                lines.append("| " + " | ".join(row) + " |")
            lines.append("")
            if any(e["targets"][target].get("above_reliability_bound") for e in report["proxies"]):
                lines += [
                    f"{RELIABILITY_FLAG} |ρ| above what the proxy's own reliability and the target's permit: "
                    "suspect a leak or a bug, or too few repeats/architectures to measure the reliability.",
                    "",
                ]
    failures = [e for e in report["proxies"] if e["failed"]]
    if failures:
        lines += ["## Failures", ""]
        for entry in failures:
            lines.append(f"- {entry['proxy']}: {entry['failed']} failed; e.g. {'; '.join(entry['first_errors'])}")
        lines.append("")
    lines += ["The format and every definition: docs/report-format.md.", ""]
    return "\n".join(lines)


def report_paths(run_path: str | os.PathLike, targets: Sequence[str] | None = None) -> dict[str, Path]:
    """Where the report files of a run go: RUN.report.json, .md and .html next to RUN.h5; a
    report of only some of the run's `targets` goes to RUN.report.<T1>+<T2>.json etc., so it
    never replaces the report of every target."""
    stem = Path(run_path).with_suffix("")
    part = ""
    if targets:
        part = "." + "+".join(re.sub(r"[^A-Za-z0-9_.-]", "_", t) for t in targets)
    return {kind: stem.with_name(stem.name + ".report" + part + suffix[len(".report"):]) for kind, suffix in SUFFIXES.items()}


def restricted_targets(report: dict) -> list[str] | None:
    """The report's targets when they are only some of the run's (`--target`), else None."""
    run_targets = report.get("run_targets")
    if run_targets is None or set(report["targets"]) >= set(run_targets):
        return None
    return list(report["targets"])


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_report_files(report: dict, run_path: str | os.PathLike, *, html: bool = True) -> dict[str, Path]:
    """Write the report next to the run file (each atomically); kind -> path of what was written."""
    from zcnas.report.html import to_html

    paths = report_paths(run_path, restricted_targets(report))
    texts = {"json": to_json(report), "md": to_markdown(report)}
    if html:
        texts["html"] = to_html(report)
    for kind, text in texts.items():
        _write_atomically(paths[kind], text)
    return {kind: paths[kind] for kind in texts}


def write_report(report: dict, run_path: str | os.PathLike, *, html: bool = True) -> tuple[Path, Path]:
    """Write RUN.report.json, .md and .html next to the run file; returns (json, md) paths.

    Kept with its original return value for callers written before the HTML page; use
    `write_report_files` for every path.
    """
    written = write_report_files(report, run_path, html=html)
    return written["json"], written["md"]

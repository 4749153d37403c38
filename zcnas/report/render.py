"""Renderers of a report dict: JSON for machines and `check`, Markdown for people and CI logs."""

from __future__ import annotations

import json
import os
from pathlib import Path


def _fmt(value, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def to_json(report: dict) -> str:
    return json.dumps(report, indent=2, sort_keys=False) + "\n"


def to_markdown(report: dict) -> str:
    lines = [
        f"# zcnas report: {report['benchmark']}",
        "",
        f"{report['architectures']} architectures of {report['search_space']} on {report['dataset']}, "
        f"seed {report['seed']}, probe batch {report['batch_size']}.",
        "",
    ]
    for target in report["targets"]:
        lines += [
            f"## {target}",
            "",
            "| proxy | Spearman ρ | Kendall τ | Pearson r | n | failed | median s/arch |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for entry in report["proxies"]:
            t = entry["targets"][target]
            lines.append(
                f"| {entry['proxy']} | {_fmt(t['spearman'])} | {_fmt(t['kendall'])} | {_fmt(t['pearson'])} "
                f"| {t['n']} | {entry['failed']} | {_fmt(entry['median_seconds'], 4)} |"
            )
        lines.append("")
    failures = [e for e in report["proxies"] if e["failed"]]
    if failures:
        lines += ["## Failures", ""]
        for entry in failures:
            lines.append(f"- {entry['proxy']}: {entry['failed']} failed; e.g. {'; '.join(entry['first_errors'])}")
        lines.append("")
    return "\n".join(lines)


def write_report(report: dict, run_path: str | os.PathLike) -> tuple[Path, Path]:
    """Write RUN.report.json and RUN.report.md next to the run file (atomically each)."""
    run_path = Path(run_path)
    stem = run_path.with_suffix("")
    written = []
    for suffix, text in ((".report.json", to_json(report)), (".report.md", to_markdown(report))):
        path = stem.with_name(stem.name + suffix)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        written.append(path)
    return written[0], written[1]

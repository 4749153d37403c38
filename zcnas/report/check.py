"""The CI regression check: compare a report's correlations with a baseline file.

A baseline (`zcnas check REPORT --baseline FILE --update`) holds, per proxy x target x metric,
the value a report had, the tolerance, the metrics to check and where the numbers came from.
`compare` marks each baseline value of the new report:

* ``fell``: more than `tolerance` below the baseline        -> the check fails
* ``missing``: the report lacks the proxy, the target or a value (undefined) -> fails
* ``rose``: more than `tolerance` above the baseline        -> passes, listed (update on purpose)
* ``held``: within the tolerance                            -> passes
* ``undefined``: no number to compare, by design: the baseline holds null, or the report's
  value is a top-k metric over fewer than `MIN_TOP_K_ARCHITECTURES` architectures even with
  every architecture of the run usable                      -> passes, listed with its reason

Exit codes of `zcnas check`: 0 passed, 1 something fell or is missing, 2 unusable input (a file
that is missing, not JSON, not a report/baseline, of an unknown schema version, or a metric
asked for that the baseline does not hold).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from zcnas import __version__
from zcnas.errors import ZcnasError
from zcnas.files import identify, wrong_kind
from zcnas.report.build import REPORT_KIND, metric_value
from zcnas.report.metrics import MIN_TOP_K_ARCHITECTURES, top_k_count

BASELINE_KIND = "zcnas-baseline"
BASELINE_SCHEMA_VERSION = 1
READABLE_REPORT_VERSIONS = (1, 2)
DEFAULT_TOLERANCE = 0.02
DEFAULT_CHECK_METRICS = ("spearman", "kendall")
FAILING = ("fell", "missing")


class CheckError(ZcnasError):
    """A report or baseline that cannot be used for a check (exit code 2)."""

    exit_code = 2


@dataclass(frozen=True)
class Movement:
    proxy: str
    target: str
    metric: str
    baseline: float | None
    current: float | None
    status: str  # fell | missing | rose | held | undefined
    note: str | None = None  # why an undefined value was not checked

    @property
    def delta(self) -> float | None:
        return None if self.current is None or self.baseline is None else self.current - self.baseline


@dataclass
class CheckResult:
    tolerance: float
    metrics: tuple[str, ...]
    rows: list[Movement] = field(default_factory=list)
    not_in_report: list[str] = field(default_factory=list)  # baseline proxies left out by common_only

    @property
    def failed(self) -> list[Movement]:
        return [r for r in self.rows if r.status in FAILING]

    @property
    def rose(self) -> list[Movement]:
        return [r for r in self.rows if r.status == "rose"]

    @property
    def undefined(self) -> list[Movement]:
        return [r for r in self.rows if r.status == "undefined"]

    @property
    def passed(self) -> bool:
        return not self.failed

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1


def _load_json(path: str | os.PathLike, what: str) -> dict:
    path = Path(path)
    if not path.exists():
        hint = " Create one with `zcnas check REPORT --baseline FILE --update`." if what == "baseline" else ""
        raise CheckError(f"The {what} file {path} does not exist.{hint}")
    found = identify(path)  # a run, model or summary; a report/baseline swap is told below
    if found is not None and found.name not in ("report", "baseline"):
        raise CheckError(wrong_kind(path, found, f"a {what}"))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckError(f"{path} is not a JSON {what} ({error.__class__.__name__}: {error}).") from None
    except OSError as error:
        raise CheckError(f"Cannot read the {what} file {path} ({error.strerror or error}).") from None
    if not isinstance(data, dict):
        raise CheckError(f"{path} is JSON but not a zcnas {what} (expected an object at the top).")
    return data


def load_report(path: str | os.PathLike) -> dict:
    """A report JSON written by `zcnas report`/`zcnas score` (schema version 1 or 2)."""
    report = _load_json(path, "report")
    if report.get("kind") == BASELINE_KIND:
        raise CheckError(f"{path} is a baseline, not a report; pass the report first and the baseline with --baseline.")
    if report.get("kind") != REPORT_KIND:
        raise CheckError(f"{path} is not a zcnas report (no kind={REPORT_KIND!r}); it is written by `zcnas report RUN.h5`.")
    version = report.get("schema_version")
    if version not in READABLE_REPORT_VERSIONS:
        raise CheckError(
            f"{path} has report schema_version {version}; this zcnas reads versions "
            f"{', '.join(map(str, READABLE_REPORT_VERSIONS))}. Rewrite it with `zcnas report RUN.h5`."
        )
    if not isinstance(report.get("proxies"), list):
        raise CheckError(f"{path} is a zcnas report without a list of proxies; rewrite it with `zcnas report RUN.h5`.")
    return report


def load_baseline(path: str | os.PathLike) -> dict:
    baseline = _load_json(path, "baseline")
    if baseline.get("kind") == REPORT_KIND:
        raise CheckError(f"{path} is a report, not a baseline; make a baseline from it with `--update`.")
    if baseline.get("kind") != BASELINE_KIND:
        raise CheckError(f"{path} is not a zcnas baseline (no kind={BASELINE_KIND!r}).")
    if baseline.get("schema_version") != BASELINE_SCHEMA_VERSION:
        raise CheckError(
            f"{path} has baseline schema_version {baseline.get('schema_version')}; this zcnas reads "
            f"version {BASELINE_SCHEMA_VERSION}. Write a new one with --update."
        )
    values = baseline.get("values")
    try:
        ok = isinstance(values, dict) and all(
            v is None or (isinstance(v, (int, float)) and math.isfinite(v))  # None: undefined, skipped
            for targets in values.values()
            for metrics in targets.values()
            for v in metrics.values()
        )
        tolerance_ok = isinstance(baseline.get("tolerance"), (int, float)) and baseline["tolerance"] >= 0
    except AttributeError:
        ok = tolerance_ok = False
    if not ok or not tolerance_ok or not isinstance(baseline.get("metrics"), list):
        raise CheckError(f"{path} is a damaged baseline (values, metrics or tolerance unreadable); write a new one with --update.")
    return baseline


def parse_metrics(text: str | Sequence[str] | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    items = text.split(",") if isinstance(text, str) else list(text)
    metrics = tuple(dict.fromkeys(m.strip() for m in items if m.strip()))
    if not metrics:
        raise CheckError("--metrics needs at least one metric name, e.g. spearman,kendall.")
    return metrics


def make_baseline(
    report: dict,
    *,
    metrics: Sequence[str] | None = None,
    tolerance: float | None = None,
    report_path: str | os.PathLike | None = None,
) -> dict:
    """A baseline of `report`: its values of `metrics` for every proxy and target."""
    metrics = tuple(metrics or DEFAULT_CHECK_METRICS)
    tolerance = DEFAULT_TOLERANCE if tolerance is None else float(tolerance)
    if tolerance < 0:
        raise CheckError(f"--tolerance must be >= 0; got {tolerance}.")
    available = report.get("metrics") or []
    unknown = [m for m in metrics if m not in available]
    if unknown:
        raise CheckError(f"The report has no metric {unknown[0]!r}; it has: {', '.join(available)}.")
    values: dict[str, dict[str, dict[str, float]]] = {}
    for entry in report["proxies"]:
        for target, cells in entry["targets"].items():
            kept = {m: metric_value(cells, m) for m in metrics}
            kept = {m: v for m, v in kept.items() if v is not None}
            if kept:
                values.setdefault(entry["proxy"], {})[target] = kept
    return {
        "kind": BASELINE_KIND,
        "schema_version": BASELINE_SCHEMA_VERSION,
        "tolerance": tolerance,
        "metrics": list(metrics),
        "values": values,
        "provenance": {
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "zcnas_version": __version__,
            "report": None if report_path is None else str(report_path),
            "report_created": report.get("created"),
            "run": report.get("run"),
            "benchmark": report.get("benchmark"),
            "search_space": report.get("search_space"),
            "dataset": report.get("dataset"),
            "architectures": report.get("architectures"),
            "seed": report.get("seed"),
            "batch_size": report.get("batch_size"),
            # How the scores were drawn (reports before repeats have none: one repeat).
            "repeats": report.get("repeats", 1),
            "vary": report.get("vary"),
            "protocol": report.get("protocol"),
            "bootstrap": report.get("bootstrap"),
        },
    }


def write_baseline(baseline: dict, path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.is_symlink():  # benchmarks_data/default.baseline.json: update the packaged file it links to
        path = path.resolve()
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(baseline, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def compare(
    report: dict,
    baseline: dict,
    *,
    tolerance: float | None = None,
    metrics: Sequence[str] | None = None,
    common_only: bool = False,
) -> CheckResult:
    """Every baseline value against the report (the baseline's tolerance and metrics unless given).

    With `common_only`, only the proxies both hold are checked, and the baseline's others are
    listed in `not_in_report` instead of failing as missing: a report of fewer proxies (the
    quickstart's five against the regression baseline's ten) can be checked on purpose.
    """
    tolerance = float(baseline["tolerance"] if tolerance is None else tolerance)
    if tolerance < 0:
        raise CheckError(f"--tolerance must be >= 0; got {tolerance}.")
    metrics = tuple(metrics or baseline["metrics"])
    unknown = [m for m in metrics if m not in baseline["metrics"]]
    if unknown:
        raise CheckError(
            f"The baseline holds no {unknown[0]!r} (it holds {', '.join(baseline['metrics'])}); "
            f"write one that does with --update --metrics {','.join(metrics)}."
        )
    by_proxy = {entry["proxy"]: entry for entry in report["proxies"]}
    result = CheckResult(tolerance=tolerance, metrics=metrics)
    if common_only:
        result.not_in_report = [proxy for proxy in baseline["values"] if proxy not in by_proxy]
        if len(result.not_in_report) == len(baseline["values"]):
            raise CheckError(
                f"The report has none of the baseline's proxies ({', '.join(baseline['values'])}); "
                f"it has {', '.join(by_proxy) or 'none'}, so there is nothing to check."
            )
    slack = 1e-12  # a value exactly at the tolerance holds
    for proxy, targets in baseline["values"].items():
        if proxy in result.not_in_report:
            continue
        for target, values in targets.items():
            cells = (by_proxy.get(proxy) or {}).get("targets", {}).get(target)
            for metric in metrics:
                if metric not in values:
                    continue
                if values[metric] is None:
                    result.rows.append(Movement(proxy, target, metric, None, None, "undefined", "null in the baseline"))
                    continue
                expected = float(values[metric])
                current = None if cells is None else metric_value(cells, metric)
                note = None
                if current is None and cells is not None and _undefined_by_design(report, metric):
                    status = "undefined"
                    cell = cells.get(metric)
                    note = cell.get("reason") if isinstance(cell, dict) else None
                    note = note or f"undefined: top-k over fewer than {MIN_TOP_K_ARCHITECTURES} architectures"
                elif current is None:
                    status = "missing"
                elif current < expected - tolerance - slack:
                    status = "fell"
                elif current > expected + tolerance + slack:
                    status = "rose"
                else:
                    status = "held"
                result.rows.append(Movement(proxy, target, metric, expected, current, status, note))
    return result


def _undefined_by_design(report: dict, metric: str) -> bool:
    """Whether `metric` is a top-k metric whose set is too small in this report even with every
    architecture usable (so no proxy can make it defined; failures cannot hide behind it)."""
    if not (metric.startswith("top") and metric.endswith(("_precision", "_kendall"))):
        return False
    try:
        percent = float(metric[3:].rsplit("_", 1)[0])
        architectures = int(report["architectures"])
    except (KeyError, TypeError, ValueError):
        return False
    return architectures > 0 and top_k_count(percent, architectures) < MIN_TOP_K_ARCHITECTURES


def provenance_warnings(report: dict, baseline: dict) -> list[str]:
    """Differences between what the baseline was made on and what the report is of."""
    made = baseline.get("provenance") or {}
    warnings = []
    for key in ("benchmark", "search_space", "dataset", "architectures"):
        if made.get(key) is not None and report.get(key) is not None and made[key] != report[key]:
            warnings.append(f"the baseline was made on {key} {made[key]!r}, the report is of {report[key]!r}")
    # Another protocol or number of repeats scores differently (a mean of 3 repeats is less noisy
    # than one): a warning, like another benchmark; reliability numbers themselves are not checked.
    for key in ("protocol", "repeats"):
        if made.get(key) is not None and report.get(key) is not None and made[key] != report[key]:
            warnings.append(f"the baseline's scores were made with {key} {made[key]!r}, the report's with {report[key]!r}")
    return warnings

"""`zcnas check`: 0 when every baseline value held, 1 naming what fell, 2 on unusable input."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest
from typer.testing import CliRunner

from conftest import make_tiny_benchmark
from zcnas.cli import app
from zcnas.report import build_report, to_json
from zcnas.report.check import compare, make_baseline
from zcnas.run import runner as run_module
from zcnas.run.runner import JobOptions, run_job

cli = CliRunner()


def invoke(*args):
    return cli.invoke(app, [str(a) for a in args])


def real_report(tmp_path, name: str, *, break_proxy: str | None = None) -> dict:
    """A report of a real tiny run; `break_proxy` returns negated scores (a sign bug)."""
    bench = tmp_path / "bench.h5"
    if not bench.exists():
        make_tiny_benchmark(bench, n_archs=16)
    original = run_module.compute_proxies

    def broken(*args, **kwargs):
        outcomes = original(*args, **kwargs)
        outcome = outcomes[break_proxy]
        if outcome.error is None:
            outcomes[break_proxy] = dataclasses.replace(outcome, score=-outcome.score)
        return outcomes

    if break_proxy:
        run_module.compute_proxies = broken
    try:
        store = run_job(bench, tmp_path / f"{name}.h5", JobOptions(proxies="params,synflow", batch_size=8))
    finally:
        run_module.compute_proxies = original
    report = build_report(store, resamples=100)
    (tmp_path / f"{name}.report.json").write_text(to_json(report))
    return report


@pytest.fixture
def good(tmp_path):
    report = real_report(tmp_path, "good")
    return report, tmp_path / "good.report.json"


def test_update_then_check_passes(good, tmp_path):
    report, path = good
    baseline = tmp_path / "baseline.json"
    result = invoke("check", path, "--baseline", baseline, "--update")
    assert result.exit_code == 0, result.output
    data = json.loads(baseline.read_text())
    assert data["kind"] == "zcnas-baseline" and data["schema_version"] == 1
    assert data["tolerance"] == 0.02 and data["metrics"] == ["spearman", "kendall"]
    assert set(data["values"]) == {"params", "synflow"}
    assert data["values"]["params"]["acc"]["spearman"] == report["proxies"][0]["targets"]["acc"]["spearman"]["value"]
    assert data["provenance"]["benchmark"] == "tiny" and data["provenance"]["report"] == str(path)
    result = invoke("check", path, "--baseline", baseline)
    assert result.exit_code == 0, result.output
    assert "check passed: 4 values within 0.02" in result.output


def test_a_broken_proxy_fails_the_check_and_is_named(good, tmp_path):
    _, path = good
    baseline = tmp_path / "baseline.json"
    assert invoke("check", path, "--baseline", baseline, "--update").exit_code == 0
    real_report(tmp_path, "broken", break_proxy="params")
    result = invoke("check", tmp_path / "broken.report.json", "--baseline", baseline)
    assert result.exit_code == 1, result.output
    assert "fell" in result.output and "params" in result.output
    assert "check failed" in result.output
    lines = [line for line in result.output.splitlines() if "fell" in line and "│" in line]
    assert lines and all("params" in line for line in lines)  # synflow held: not listed


def test_rose_is_listed_but_passes_and_tolerance_can_be_overridden(good, tmp_path):
    report, path = good
    baseline = make_baseline(report, tolerance=0.02)
    lower = copy.deepcopy(baseline)
    lower["values"]["synflow"]["acc"]["kendall"] -= 0.3
    (tmp_path / "lower.json").write_text(json.dumps(lower))
    result = invoke("check", path, "--baseline", tmp_path / "lower.json")
    assert result.exit_code == 0, result.output
    assert "rose" in result.output and "1 rose" in result.output
    higher = copy.deepcopy(baseline)
    higher["values"]["synflow"]["acc"]["kendall"] += 0.05
    (tmp_path / "higher.json").write_text(json.dumps(higher))
    assert invoke("check", path, "--baseline", tmp_path / "higher.json").exit_code == 1
    assert invoke("check", path, "--baseline", tmp_path / "higher.json", "--tolerance", "0.1").exit_code == 0


def test_a_proxy_missing_from_the_report_counts_as_fallen(good, tmp_path):
    report, path = good
    baseline = make_baseline(report)
    baseline["values"]["zen"] = {"acc": {"spearman": 0.3, "kendall": 0.2}}
    (tmp_path / "b.json").write_text(json.dumps(baseline))
    result = invoke("check", path, "--baseline", tmp_path / "b.json")
    assert result.exit_code == 1
    assert "missing" in result.output and "zen" in result.output


def test_compare_statuses_and_tolerance_edge(good):
    report, _ = good
    baseline = make_baseline(report, tolerance=0.05)
    value = report["proxies"][1]["targets"]["acc"]["spearman"]["value"]
    baseline["values"]["synflow"]["acc"]["spearman"] = value + 0.05  # exactly at the tolerance: holds
    result = compare(report, baseline)
    assert result.passed and result.exit_code == 0
    assert {r.status for r in result.rows} == {"held"}
    result = compare(report, baseline, tolerance=0.01, metrics=["spearman"])
    assert [(r.proxy, r.metric, r.status) for r in result.failed] == [("synflow", "spearman", "fell")]
    assert result.exit_code == 1


def test_metrics_option(good, tmp_path):
    _, path = good
    baseline = tmp_path / "b.json"
    assert invoke("check", path, "--baseline", baseline, "--update", "--metrics", "pearson,top10_precision").exit_code == 0
    assert json.loads(baseline.read_text())["metrics"] == ["pearson", "top10_precision"]
    assert invoke("check", path, "--baseline", baseline, "--metrics", "pearson").exit_code == 0
    result = invoke("check", path, "--baseline", baseline, "--metrics", "kendall")
    assert result.exit_code == 2 and "holds no 'kendall'" in result.output
    result = invoke("check", path, "--baseline", baseline, "--update", "--metrics", "telepathy")
    assert result.exit_code == 2 and "no metric 'telepathy'" in result.output


def test_unusable_input_exits_2_with_one_sentence(good, tmp_path):
    report, path = good
    baseline = tmp_path / "b.json"
    assert invoke("check", path, "--baseline", baseline, "--update").exit_code == 0
    (tmp_path / "junk.json").write_text("{not json")
    (tmp_path / "list.json").write_text("[1, 2]")
    old = dict(report, schema_version=99)
    (tmp_path / "future.json").write_text(json.dumps(old))
    damaged = json.loads(baseline.read_text())
    damaged["values"]["params"]["acc"]["spearman"] = "high"
    (tmp_path / "damaged.json").write_text(json.dumps(damaged))
    cases = [
        ((tmp_path / "nope.json", baseline), "does not exist"),
        ((tmp_path / "junk.json", baseline), "not a JSON report"),
        ((tmp_path / "list.json", baseline), "not a zcnas report"),
        ((tmp_path / "future.json", baseline), "schema_version 99"),
        ((baseline, baseline), "is a baseline, not a report"),
        ((path, path), "is a report, not a baseline"),
        ((path, tmp_path / "missing.json"), "--update"),
        ((path, tmp_path / "junk.json"), "not a JSON baseline"),
        ((path, tmp_path / "damaged.json"), "damaged baseline"),
    ]
    for (report_file, baseline_file), fragment in cases:
        result = invoke("check", report_file, "--baseline", baseline_file)
        assert result.exit_code == 2, (fragment, result.output)
        assert fragment in result.output and "Traceback" not in result.output, result.output


def test_a_schema_1_report_can_still_be_checked(good, tmp_path):
    report, _ = good
    flat = copy.deepcopy(report)
    flat["schema_version"] = 1
    for entry in flat["proxies"]:
        for cells in entry["targets"].values():
            for metric in ("spearman", "kendall", "pearson"):
                cells[metric] = cells[metric]["value"]
    (tmp_path / "v1.json").write_text(json.dumps(flat))
    baseline = tmp_path / "b.json"
    assert invoke("check", tmp_path / "v1.json", "--baseline", baseline, "--update").exit_code == 0
    assert invoke("check", tmp_path / "good.report.json", "--baseline", baseline).exit_code == 0


def test_a_report_with_repeats_checks_its_correlations_and_records_how_it_was_scored(tmp_path):
    """Reliability entries are not baseline values (check compares correlations); the baseline
    records repeats, vary and protocol, and a report scored otherwise gets a warning."""
    from zcnas.report.check import provenance_warnings

    bench = make_tiny_benchmark(tmp_path / "bench.h5", n_archs=16)
    store = run_job(bench, tmp_path / "rep.h5", JobOptions(proxies="params,grad_norm", batch_size=8, repeats=2))
    report = build_report(store, resamples=50)
    assert report["proxies"][0]["reliability"]["repeats"] == 2
    path = tmp_path / "rep.report.json"
    path.write_text(to_json(report))
    baseline = tmp_path / "baseline.json"
    assert invoke("check", path, "--baseline", baseline, "--update").exit_code == 0
    data = json.loads(baseline.read_text())
    assert data["provenance"]["repeats"] == 2 and data["provenance"]["protocol"] == "zcnas"
    assert data["provenance"]["vary"] == "both"
    assert set(data["values"]["grad_norm"]["acc"]) == {"spearman", "kendall"}  # no reliability values
    result = invoke("check", path, "--baseline", baseline)
    assert result.exit_code == 0 and "check passed: 4 values" in result.output, result.output
    single = copy.deepcopy(report)
    single["repeats"], single["protocol"] = 1, "suite-zero"
    warnings = provenance_warnings(single, data)
    assert any("protocol 'zcnas'" in w for w in warnings) and any("repeats 2" in w for w in warnings)
    assert provenance_warnings(report, data) == []
    # a report of before repeats existed (no such keys) against this baseline: no false warning
    older = {k: v for k, v in report.items() if k not in ("repeats", "vary", "protocol")}
    assert provenance_warnings(older, data) == []

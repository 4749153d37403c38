"""The report dict (docs/report-format.md): schema, intervals, noise ceiling, Markdown, CLI options."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from zcnas.cli import app
from zcnas.errors import ZcnasError
from zcnas.proxies.compute import ProxyOutcome
from zcnas.report import build_report, to_json, to_markdown, write_report, write_report_files
from zcnas.report.ceiling import ceiling_from_agreement, how_target_uses_seeds, seed_ceiling
from zcnas.report.metrics import metric_names
from zcnas.run.store import RunSpec, RunStore

runner = CliRunner()


def make_store(tmp_path, n=60, proxies=("good", "noisy", "broken", "pending"), seeds=3, seed=0, extra_targets=None):
    """A finished run with a target that has training seeds; 'broken' fails on a few archs."""
    rng = np.random.default_rng(seed)
    quality = rng.normal(size=n)
    seed_columns = quality[:, None] + rng.normal(0, 0.5, (n, seeds))
    targets = {"acc": seed_columns.mean(axis=1), **(extra_targets or {})}
    spec = RunSpec(
        benchmark="b.h5", benchmark_name="fake", search_space="nb201", dataset="cifar10", num_classes=10,
        proxies=tuple(proxies), seed=0, sample=n, batch_size=8,
    )
    store = RunStore.create(
        tmp_path / "run.h5", spec, encodings=[f"a{i}" for i in range(n)], index=np.arange(n),
        arch_seeds=np.arange(n), targets=targets, target_seeds={"acc": seed_columns},
    )
    scores = {"good": quality + rng.normal(0, 0.3, n), "noisy": quality + rng.normal(0, 2, n), "broken": quality}
    for row in range(n):
        outcomes = {}
        for name in proxies:
            if name == "pending":
                continue
            if name == "broken" and row % 10 == 0:
                outcomes[name] = ProxyOutcome(float("nan"), seconds=0.01, error="FloatingPointError: boom")
            else:
                outcomes[name] = ProxyOutcome(float(scores[name][row]), seconds=0.01 + row * 1e-4)
        store.record(row, outcomes)
    return store


def test_schema_of_a_report(tmp_path):
    store = make_store(tmp_path)
    report = build_report(store, resamples=200)
    assert report["schema_version"] == 2 and report["kind"] == "zcnas-report"
    assert report["metrics"] == metric_names((10, 1))
    assert report["top_k_percent"] == [10.0, 1.0]
    assert report["bootstrap"] == {**report["bootstrap"], "method": "percentile", "resamples": 200, "seed": 0, "confidence": 0.95}
    by_name = {p["proxy"]: p for p in report["proxies"]}
    assert by_name["broken"]["failed"] == 6 and by_name["broken"]["first_errors"] == ["FloatingPointError: boom"]
    assert by_name["broken"]["targets"]["acc"]["n"] == 54
    assert by_name["good"]["median_seconds"] == pytest.approx(np.median(0.01 + np.arange(60) * 1e-4))
    good = by_name["good"]["targets"]["acc"]
    for name in report["metrics"]:
        cell = good[name]
        assert set(cell) >= {"value", "low", "high"}
        if cell["value"] is None:  # a top-k set of 6 or 1 of 60 architectures: undefined, and why
            assert cell["k"] < 10 and cell["low"] is None and "fewer than 10" in cell["reason"], name
            continue
        assert cell["low"] <= cell["value"] + 1e-9 and cell["value"] - 1e-9 <= cell["high"], name
    assert good["top10_precision"]["k"] == 6 and good["top1_precision"]["k"] == 1
    assert good["spearman"]["value"] == pytest.approx(stats.spearmanr(store.scores["good"], store.targets["acc"]).statistic)
    assert len(good["scatter"]["proxy_rank"]) == 60
    pending = by_name["pending"]["targets"]["acc"]
    assert pending["n"] == 0 and pending["spearman"] == {
        "value": None, "low": None, "high": None, "reason": "fewer than 3 architectures with a finite score and target (0)",
    }
    text = to_json(report)
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text)["proxies"][0]["proxy"] == "good"


def test_intervals_are_reproducible_and_follow_the_seed(tmp_path):
    store = make_store(tmp_path)
    first = build_report(store, resamples=100, bootstrap_seed=3)
    again = build_report(store, resamples=100, bootstrap_seed=3)
    other = build_report(store, resamples=100, bootstrap_seed=4)
    cell = lambda r: r["proxies"][1]["targets"]["acc"]["kendall"]  # noqa: E731
    assert cell(first) == cell(again)
    assert cell(first) != cell(other)
    assert first["noise_ceiling"] == again["noise_ceiling"]


def test_no_bootstrap_gives_values_without_intervals(tmp_path):
    report = build_report(make_store(tmp_path), resamples=0)
    cell = report["proxies"][0]["targets"]["acc"]["spearman"]
    assert cell["value"] is not None and cell["low"] is None and cell["high"] is None
    assert report["noise_ceiling"]["acc"]["metrics"]["kendall"]["ceiling"]["low"] is None


def test_noise_ceiling_from_seeds(tmp_path):
    store = make_store(tmp_path)
    ceiling = build_report(store, resamples=100)["noise_ceiling"]["acc"]
    assert ceiling["source"] == "seeds" and ceiling["seeds"] == 3
    assert ceiling["target_is"] == "mean of the seed columns" and ceiling["averaged_measurements"] == 3
    seeds = store.target_seeds["acc"]
    pairwise = [stats.kendalltau(seeds[:, i], seeds[:, j]).statistic for i, j in ((0, 1), (0, 2), (1, 2))]
    kendall = ceiling["metrics"]["kendall"]
    assert kendall["agreement"]["value"] == pytest.approx(np.mean(pairwise))
    assert kendall["ceiling"]["value"] > kendall["agreement"]["value"]
    assert kendall["ceiling"]["low"] <= kendall["ceiling"]["value"] <= kendall["ceiling"]["high"]


def test_the_ceiling_is_what_a_perfect_proxy_reaches_and_seed_agreement_is_not():
    """Simulate accuracy = quality + seed noise: the proxy that *is* the quality reaches the
    ceiling (within sampling error), far above the raw seed-to-seed agreement."""
    rng = np.random.default_rng(0)
    n = 3000
    quality = rng.normal(size=n)
    for columns, noise, averaged in ((3, 0.7, True), (2, 1.0, False)):
        seeds = quality[:, None] + rng.normal(0, noise, (n, columns))
        target = seeds.mean(axis=1) if averaged else seeds[:, 0]
        ceiling = seed_ceiling(target, seeds, None, 0.95)
        for metric, correlation in (("kendall", stats.kendalltau), ("spearman", stats.spearmanr), ("pearson", stats.pearsonr)):
            perfect = correlation(quality, target).statistic
            bound = ceiling["metrics"][metric]
            assert perfect == pytest.approx(bound["ceiling"]["value"], abs=0.02), metric
            assert perfect > bound["agreement"]["value"] + 0.05, metric


def test_ceiling_transform_edges():
    assert ceiling_from_agreement("kendall", 1.0, 1) == pytest.approx(1.0)
    assert ceiling_from_agreement("pearson", 0.64, 1) == pytest.approx(0.8)
    assert ceiling_from_agreement("pearson", 0.5, 3) == pytest.approx(math.sqrt(1.5 / 2))
    assert ceiling_from_agreement("spearman", -0.3, 3) == pytest.approx(0.0)


def test_how_target_uses_seeds():
    seeds = np.array([[1.0, 2, 3], [2, 2, 5], [0, 1, 2]])
    assert how_target_uses_seeds(seeds.mean(axis=1), seeds) == ("mean of the seed columns", 3.0)
    assert how_target_uses_seeds(seeds[:, 2], seeds) == ("seed column 2", 1.0)
    described, averaged = how_target_uses_seeds(np.array([9.0, 1, 4]), seeds)
    assert described.startswith("not the mean") and averaged == 3.0


def test_ceiling_pair_and_no_ceiling(tmp_path):
    rng = np.random.default_rng(1)
    store = make_store(tmp_path, extra_targets={"other": rng.normal(size=60), "valid": rng.normal(size=60)})
    report = build_report(store, resamples=50, ceiling_pairs=["valid:other"])
    assert report["noise_ceiling"]["acc"]["source"] == "seeds"
    assert report["noise_ceiling"]["other"]["source"] == "pair"
    assert report["noise_ceiling"]["other"]["pair"] == ["valid", "other"]
    assert report["noise_ceiling"]["valid"] is report["noise_ceiling"]["other"] or report["noise_ceiling"]["valid"] == report["noise_ceiling"]["other"]
    plain = build_report(store, resamples=0)
    assert plain["noise_ceiling"]["other"] is None
    assert "Noise ceiling: none for other" in to_markdown(plain)
    with pytest.raises(ZcnasError, match="does not have"):
        build_report(store, ceiling_pairs=["acc:nope"])
    with pytest.raises(ZcnasError, match="A:B"):
        build_report(store, ceiling_pairs=["acc"])


def test_markdown_and_files(tmp_path):
    store = make_store(tmp_path)
    report = build_report(store, resamples=50)
    text = to_markdown(report)
    assert text.startswith("# zcnas report: fake")
    assert "Noise ceiling from 3 training seeds" in text and "top-10% precision" in text
    assert "## Failures" in text and "broken: 6 failed" in text
    json_path, md_path = write_report(report, store.path)  # the entry point `score` uses
    assert json_path.name == "run.report.json" and md_path.name == "run.report.md"
    assert (tmp_path / "run.report.html").exists()
    written = write_report_files(report, store.path, html=False)
    assert set(written) == {"json", "md"}


def test_a_proxy_above_the_ceiling_is_flagged(tmp_path):
    store = make_store(tmp_path)
    store.scores["good"] = store.targets["acc"].copy()  # a leak: the proxy is the target
    report = build_report(store, resamples=50)
    assert "good ▲" in to_markdown(report)


def test_report_cli_options(tmp_path):
    store = make_store(tmp_path, extra_targets={"valid": np.arange(60.0)})
    store.checkpoint()
    result = runner.invoke(
        app,
        ["report", str(store.path), "--top-k", "20,5", "--bootstrap", "50", "--ceiling-pair", "acc:valid", "--no-html", "-t", "acc", "-t", "valid"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "run.report.json").read_text())
    assert report["top_k_percent"] == [20.0, 5.0] and "top20_precision" in report["metrics"]
    assert report["bootstrap"]["resamples"] == 50
    assert report["noise_ceiling"]["acc"]["source"] == "pair"
    assert not (tmp_path / "run.report.html").exists()
    assert "Noise ceiling from the pair acc : valid" in result.output
    for bad in (["--top-k", "0"], ["--bootstrap", "-1"], ["--ceiling-pair", "acc:nope"], ["-t", "nope"]):
        result = runner.invoke(app, ["report", str(store.path), *bad])
        assert result.exit_code == 2, (bad, result.output)
        assert "Traceback" not in result.output

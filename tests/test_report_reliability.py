"""Reliability of proxies in runs with repeats (docs/report-format.md): test-retest Spearman,
ICC(2,1), the split by noise source, the attenuation bound, and every rendering of them."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from zcnas.cli import app
from zcnas.proxies.compute import ProxyOutcome
from zcnas.report import build_report, to_markdown
from zcnas.report.bootstrap import resample_counts
from zcnas.report.html import to_html
from zcnas.report.reliability import icc, pair_kind, proxy_reliability, spearman_brown
from zcnas.run.store import OK, RunSpec, RunStore, repeat_design

runner = CliRunner()


def make_repeat_store(tmp_path, *, n=120, repeats=4, vary="both", seed=0, init_noise=0.2, batch_noise=1.0):
    """A finished run with repeats. 'split' has small init noise and large batch noise, each
    drawn once per init id / batch id of `repeat_design` (as a real run shares them);
    'leaky' has repeats that disagree (t + e, t - e, ...) yet average to the target exactly;
    'flat' is quality plus independent noise in every repeat."""
    rng = np.random.default_rng(seed)
    quality = rng.normal(size=n)
    seed_columns = quality[:, None] + rng.normal(0, 0.4, (n, 2))
    target = seed_columns.mean(axis=1)
    spec = RunSpec(
        benchmark="b.h5", benchmark_name="fake", search_space="nb201", dataset="cifar10", num_classes=10,
        proxies=("split", "leaky", "flat"), seed=0, sample=n, batch_size=8, repeats=repeats, vary=vary,
    )
    store = RunStore.create(
        tmp_path / "run.h5", spec, encodings=[f"a{i}" for i in range(n)], index=np.arange(n),
        arch_seeds=np.arange(n), targets={"acc": target}, target_seeds={"acc": seed_columns},
    )
    design = [repeat_design(r, vary) for r in range(repeats)]
    init_effect = {i: rng.normal(0, init_noise, n) for i, _ in design}
    batch_effect = {b: rng.normal(0, batch_noise, n) for _, b in design}
    swing = rng.normal(0, 3, n)
    for r, (i, b) in enumerate(design):
        for row in range(n):
            store.record(
                row,
                {
                    "split": ProxyOutcome(float(quality[row] + init_effect[i][row] + batch_effect[b][row]), seconds=0.01),
                    "leaky": ProxyOutcome(float(target[row] + (swing[row] if r % 2 == 0 else -swing[row])), seconds=0.01),
                    "flat": ProxyOutcome(float(quality[row] + rng.normal(0, 0.5)), seconds=0.01),
                },
                r,
            )
    return store


def test_icc_matches_shrout_and_fleiss():
    """Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges; ICC(2,1) = .29, ICC(2,4) = .62."""
    ratings = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], dtype=float)
    single, average = icc(ratings[None], np.ones((1, 6)))
    assert single[0] == pytest.approx(0.2898, abs=5e-4) and average[0] == pytest.approx(0.6201, abs=5e-4)
    # A weight of 2 is the row written twice.
    weights = np.array([[2, 1, 1, 1, 1, 1]], dtype=float)
    doubled = np.vstack([ratings[:1], ratings])
    assert icc(ratings[None], weights)[0][0] == pytest.approx(icc(doubled[None], np.ones((1, 7)))[0][0], rel=1e-12)


def _naive(columns: np.ndarray, vary: str) -> dict[str, float]:
    """The statistics computed the plain way: scipy ranks, Spearman per pair, ANOVA by loops."""
    n, k = columns.shape
    ranks = np.column_stack([stats.rankdata(columns[:, j]) for j in range(k)])
    pairs = list(itertools.combinations(range(k), 2))
    rho = {p: stats.spearmanr(columns[:, p[0]], columns[:, p[1]]).statistic for p in pairs}

    def anova_icc(y):
        n, k = y.shape
        grand = y.mean()
        ms_rows = k * ((y.mean(axis=1) - grand) ** 2).sum() / (n - 1)
        ms_columns = n * ((y.mean(axis=0) - grand) ** 2).sum() / (k - 1)
        ss_error = ((y - grand) ** 2).sum() - ms_rows * (n - 1) - ms_columns * (k - 1)
        ms_error = ss_error / ((n - 1) * (k - 1))
        return (ms_rows - ms_error) / (ms_rows + (k - 1) * ms_error + k * (ms_columns - ms_error) / n)

    out = {"spearman": float(np.mean(list(rho.values()))), "icc": anova_icc(ranks)}
    for kind in ("init", "batch", "both"):
        mine = [p for p in pairs if pair_kind(*p, vary) == kind]
        if mine:
            out[f"{kind}:spearman"] = float(np.mean([rho[p] for p in mine]))
            out[f"{kind}:icc"] = float(np.mean([anova_icc(ranks[:, list(p)]) for p in mine]))
    return out


def test_reliability_and_its_bootstrap_replicates_are_exact(tmp_path):
    """Point values equal the plain computation; each bootstrap replicate equals the plain
    computation on the materialised resample (np.repeat: copies tie)."""
    from zcnas.report import reliability as module

    store = make_repeat_store(tmp_path, n=40, repeats=4)
    columns = store.repeat_scores["split"]
    entry = proxy_reliability(columns, store.repeat_status["split"], "both", None)
    naive = _naive(columns, "both")
    assert entry["agreement"]["spearman"]["value"] == pytest.approx(naive["spearman"], abs=1e-12)
    assert entry["agreement"]["icc"]["value"] == pytest.approx(naive["icc"], abs=1e-12)
    for kind in ("init", "batch", "both"):
        assert entry["sources"][kind]["spearman"]["value"] == pytest.approx(naive[f"{kind}:spearman"], abs=1e-12)
        assert entry["sources"][kind]["icc"]["value"] == pytest.approx(naive[f"{kind}:icc"], abs=1e-12)
    assert {k: v["pairs"] for k, v in entry["sources"].items()} == {"init": 2, "batch": 2, "both": 2}
    counts = resample_counts(40, 5, seed=3)
    replicates = module._statistics(columns, counts.astype(float), "both")
    for b in range(5):
        materialised = np.repeat(columns, counts[b], axis=0)
        expected = _naive(materialised, "both")
        for name, value in expected.items():
            assert replicates[name][b] == pytest.approx(value, abs=1e-9), (name, b)


def test_a_subset_of_repeats_keeps_what_separates_them(tmp_path):
    """Columns 0 and 2 of a --vary both run are repeats (0,0) and (0,1): one pair that differs
    only in the batch, as in the full run, not the (0,0)/(1,1) pair that columns 0 and 1 are."""
    store = make_repeat_store(tmp_path, n=40, repeats=4)
    columns, status = store.repeat_scores["split"], store.repeat_status["split"]
    subset = proxy_reliability(columns[:, [0, 2]], status[:, [0, 2]], "both", None, indices=(0, 2))
    assert {kind: v["pairs"] for kind, v in subset["sources"].items()} == {"batch": 1}
    rho = stats.spearmanr(columns[:, 0], columns[:, 2]).statistic
    assert subset["agreement"]["spearman"]["value"] == pytest.approx(rho, abs=1e-12)
    assert subset["sources"]["batch"]["spearman"]["value"] == pytest.approx(rho, abs=1e-12)
    default = proxy_reliability(columns[:, [0, 2]], status[:, [0, 2]], "both", None)
    assert set(default["sources"]) == {"both"}  # read as repeats 0 and 1


def test_the_split_by_source_finds_the_batch_noise(tmp_path):
    store = make_repeat_store(tmp_path, n=300, repeats=4, init_noise=0.1, batch_noise=1.5)
    report = build_report(store, resamples=200)
    split = next(p for p in report["proxies"] if p["proxy"] == "split")["reliability"]
    sources = {kind: split["sources"][kind]["spearman"] for kind in ("init", "batch", "both")}
    # init-only pairs share the batch (the large noise): they agree far more
    assert sources["init"]["low"] > sources["batch"]["high"]
    assert sources["init"]["value"] > 0.9 and sources["batch"]["value"] < 0.5
    assert sources["both"]["value"] < sources["init"]["value"]
    # the aggregate of 4 repeats is more reliable than one
    assert split["aggregate"]["spearman"]["value"] > split["agreement"]["spearman"]["value"]
    assert split["aggregate"]["spearman"]["value"] == pytest.approx(
        float(spearman_brown(split["agreement"]["spearman"]["value"], 4)), abs=1e-12
    )


def test_a_proxy_above_its_attenuation_bound_is_flagged_in_every_rendering(tmp_path):
    store = make_repeat_store(tmp_path, n=120, repeats=2)
    report = build_report(store, resamples=200)
    by_name = {p["proxy"]: p for p in report["proxies"]}
    leaky, flat = by_name["leaky"]["targets"]["acc"], by_name["flat"]["targets"]["acc"]
    # the repeats of 'leaky' disagree, yet their mean is the target itself
    assert by_name["leaky"]["reliability"]["agreement"]["spearman"]["value"] < 0.2
    assert leaky["spearman"]["value"] == pytest.approx(1.0)
    assert leaky["above_reliability_bound"] and not flat["above_reliability_bound"]
    bound = flat["reliability_bound"]
    assert bound["low"] <= bound["value"] <= bound["high"] and bound["target_reliability"] == "noise ceiling"
    # bound = from_pearson(sqrt(rel_proxy) * sqrt(rel_target)), checked by hand
    from zcnas.report.ceiling import from_pearson_equivalent, to_pearson_equivalent

    rel_proxy = to_pearson_equivalent("spearman", by_name["flat"]["reliability"]["aggregate"]["spearman"]["value"])
    root_target = to_pearson_equivalent("spearman", report["noise_ceiling"]["acc"]["metrics"]["spearman"]["ceiling"]["value"])
    assert bound["value"] == pytest.approx(float(from_pearson_equivalent("spearman", np.sqrt(rel_proxy) * root_target)))
    assert flat["spearman"]["value"] <= bound["high"]
    assert len(flat["repeat_spearman"]) == 2 and all(-1 <= v <= 1 for v in flat["repeat_spearman"])
    markdown = to_markdown(report)
    assert "### Reliability of the proxies (acc)" in markdown and "| leaky ◆ |" in markdown
    assert "| leaky ▲ ◆ |" in markdown.split("### Reliability")[0]  # flagged in the main table too (the target itself: above the ceiling as well)
    assert "2 repeats (vary both, zcnas protocol)" in markdown
    html = to_html(report)
    assert 'class="reliability"' in html and "leaky ◆" in html
    from test_report_html import parse
    from zcnas.report.html import expected_svg_count

    page = parse(html)
    assert page.errors == [] and page.stack == []
    assert page.counts["svg"] == expected_svg_count(report)  # the table adds no image
    assert page.counts["table"] == 2 * len(report["targets"])  # metrics and reliability, per target
    text = json.dumps(report)
    assert '"above_reliability_bound": true' in text


def test_the_report_of_a_run_with_repeats_in_the_terminal(tmp_path):
    store = make_repeat_store(tmp_path, n=60, repeats=3)
    store.checkpoint()
    result = runner.invoke(app, ["report", str(store.path), "--bootstrap", "50"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "reliability of the proxies (3 repeats, vary both)" in result.output
    assert "retest ρ" in result.output and "leaky ◆" in result.output
    data = json.loads(store.path.with_name("run.report.json").read_text())
    assert data["repeats"] == 3 and data["vary"] == "both" and data["protocol"] == "zcnas"
    assert set(data["proxies"][0]["reliability"]) >= {"agreement", "aggregate", "sources", "repeats", "n", "repeat_failed"}


def test_failed_repeats_are_counted_and_left_out_of_the_reliability(tmp_path):
    n = 30
    spec = RunSpec(
        benchmark="b.h5", benchmark_name="fake", search_space="nb201", dataset="cifar10", num_classes=10,
        proxies=("p",), seed=0, sample=n, batch_size=8, repeats=2, vary="init",
    )
    store = RunStore.create(
        tmp_path / "run.h5", spec, encodings=[f"a{i}" for i in range(n)], index=np.arange(n),
        arch_seeds=np.arange(n), targets={"acc": np.arange(n, dtype=float)},
    )
    for row in range(n):
        store.record(row, {"p": ProxyOutcome(float(row))}, 0)
        failed = row < 4
        store.record(row, {"p": ProxyOutcome(float("nan"), error="RuntimeError: x") if failed else ProxyOutcome(row + 0.5)}, 1)
    assert (store.status["p"] == OK).all()  # one success is enough for the aggregate
    assert store.scores["p"][0] == 0.0 and store.scores["p"][10] == 10.25
    report = build_report(store, resamples=0)
    reliability = report["proxies"][0]["reliability"]
    assert reliability["n"] == n - 4 and reliability["repeat_failed"] == 4
    assert reliability["architectures_with_a_failed_repeat"] == 4
    assert reliability["agreement"]["spearman"]["value"] == pytest.approx(1.0)
    assert reliability["agreement"]["spearman"]["low"] is None  # no bootstrap asked


def test_a_run_of_one_repeat_has_no_reliability(tmp_path):
    spec = RunSpec(
        benchmark="b.h5", benchmark_name="fake", search_space="nb201", dataset="cifar10", num_classes=10,
        proxies=("p",), seed=0, sample=10, batch_size=8,
    )
    store = RunStore.create(
        tmp_path / "run.h5", spec, encodings=[f"a{i}" for i in range(10)], index=np.arange(10),
        arch_seeds=np.arange(10), targets={"acc": np.arange(10, dtype=float)},
    )
    for row in range(10):
        store.record(row, {"p": ProxyOutcome(float(row))})
    report = build_report(store, resamples=0)
    assert report["repeats"] == 1 and "reliability" not in report["proxies"][0]
    assert "reliability_bound" not in report["proxies"][0]["targets"]["acc"]
    assert "Reliability" not in to_markdown(report) and 'class="reliability"' not in to_html(report)

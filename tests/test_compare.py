"""`zcnas compare`: per-proxy agreement of two runs on the architectures both scored.

Runs are built in tmp_path from NB201 cells (no shared data needed), plus one check on the real
Suite-Zero table when ../shared/data is there.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import shared_file
from zcnas.cli import app
from zcnas.errors import ZcnasError
from zcnas.report.compare import compare_runs
from zcnas.run.store import FAILED, OK, RunSpec, RunStore
from zcnas.spaces import get_space

runner = CliRunner()
NB201 = get_space("nb201")
ARCHS = NB201.sample(120, np.random.default_rng(0))


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_user_error(result, *fragments):
    assert result.exit_code == 2, result.output
    text = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert "Traceback" not in text
    for fragment in fragments:
        assert fragment in " ".join(text.split()), text


def new_run(path, encodings, proxies, *, space="nb201", **spec_options) -> RunStore:
    """An empty run file of `proxies` on `encodings` (spec_options: repeats, vary, ...)."""
    spec = RunSpec(
        benchmark="none.h5", benchmark_name="test", search_space=space, dataset="cifar10", num_classes=10,
        proxies=tuple(proxies), seed=0, sample=len(encodings), batch_size=8, **spec_options,
    )
    return RunStore.create(
        path, spec, encodings=list(encodings), index=np.arange(len(encodings)),
        arch_seeds=np.zeros(len(encodings), dtype=np.int64), targets={"acc": np.linspace(0, 1, len(encodings))},
    )


def make_run(path, encodings, scores: dict[str, np.ndarray], *, space="nb201", failed: dict | None = None) -> RunStore:
    """A finished run file holding the given scores (NaN where `failed` marks a row)."""
    store = new_run(path, encodings, scores, space=space)
    for name, values in scores.items():
        store.scores[name] = np.array(values, dtype=float)  # a copy: rows may be set to NaN below
        store.status[name] = np.full(len(encodings), OK, dtype=np.int8)
        for row in (failed or {}).get(name, []):
            store.scores[name][row] = np.nan
            store.status[name][row] = FAILED
            store.errors[name][row] = "RuntimeError: boom"
    store.checkpoint()
    return RunStore.open(path)


@pytest.fixture
def base(tmp_path):
    rng = np.random.default_rng(1)
    return make_run(tmp_path / "a.h5", ARCHS, {"synflow": rng.normal(size=120), "nwot": rng.normal(size=120), "snip": rng.normal(size=120)})


def entry(result, proxy):
    return next(e for e in result["proxies"] if e["proxy"] == proxy)


def test_a_run_compared_with_itself_agrees_perfectly(base):
    result = compare_runs(base, base, resamples=100)
    assert result["common_architectures"] == 120 and result["search_space"] == "nb201"
    for proxy in ("synflow", "nwot", "snip"):
        e = entry(result, proxy)
        assert e["n"] == 120
        for metric in ("spearman", "kendall"):
            assert e[metric]["value"] == pytest.approx(1.0)
            assert e[metric]["low"] == pytest.approx(1.0) and e[metric]["high"] == pytest.approx(1.0)
    assert result["only_in_a"] == [] and result["notes"] == []


def test_a_noisy_copy_agrees_less(base, tmp_path):
    rng = np.random.default_rng(2)
    noisy = {name: base.scores[name] + rng.normal(scale=0.5, size=120) for name in ("synflow", "nwot", "snip")}
    other = make_run(tmp_path / "b.h5", base.encodings, noisy)
    result = compare_runs(base, other, resamples=200)
    for proxy in ("synflow", "nwot", "snip"):
        e = entry(result, proxy)
        assert 0.6 < e["spearman"]["value"] < 0.99
        assert e["kendall"]["value"] < e["spearman"]["value"]
        assert e["spearman"]["low"] < e["spearman"]["value"] < e["spearman"]["high"] < 1.0


def test_architectures_are_matched_by_encoding_not_row(base, tmp_path):
    order = np.random.default_rng(3).permutation(120)[:50]  # 50 of them, shuffled
    encodings = [base.encodings[i] for i in order]
    scores = {"synflow": base.scores["synflow"][order], "zen": np.arange(50.0)}
    other = make_run(tmp_path / "b.h5", encodings, scores)
    result = compare_runs(other, base, resamples=0)
    assert result["common_architectures"] == 50
    assert [e["proxy"] for e in result["proxies"]] == ["synflow"]
    assert entry(result, "synflow")["spearman"]["value"] == pytest.approx(1.0)
    assert entry(result, "synflow")["spearman"]["low"] is None  # no resamples, no interval
    assert result["only_in_a"] == ["zen"] and result["only_in_b"] == ["nwot", "snip"]
    assert any("only in" in note and "zen" in note for note in result["notes"])
    # Reversed scores give -1: the sign is kept, not folded into |rho|.
    reversed_run = make_run(tmp_path / "c.h5", encodings, {"synflow": -base.scores["synflow"][order]})
    assert entry(compare_runs(reversed_run, base, resamples=0), "synflow")["kendall"]["value"] == pytest.approx(-1.0)


def test_failed_architectures_are_left_out_and_counted(base, tmp_path):
    other = make_run(tmp_path / "b.h5", base.encodings, {"snip": base.scores["snip"]}, failed={"snip": [0, 5, 9]})
    e = entry(compare_runs(base, other, resamples=0), "snip")
    assert e["n"] == 117 and e["unusable_a"] == 0 and e["unusable_b"] == 3
    assert e["spearman"]["value"] == pytest.approx(1.0)


def test_too_few_shared_architectures_gives_a_reason(base, tmp_path):
    other = make_run(tmp_path / "b.h5", base.encodings[:2], {"snip": [1.0, 2.0]})
    e = entry(compare_runs(base, other, resamples=10), "snip")
    assert e["n"] == 2 and e["spearman"]["value"] is None and "fewer than 3" in e["spearman"]["reason"]


def test_runs_that_cannot_be_compared_are_refused(base, tmp_path):
    disjoint_archs = [a for a in NB201.sample(400, np.random.default_rng(5)) if a not in set(ARCHS)][:10]
    disjoint = make_run(tmp_path / "d.h5", disjoint_archs, {"snip": np.arange(10.0)})
    with pytest.raises(ZcnasError, match="share no architecture"):
        compare_runs(base, disjoint)
    other_proxies = make_run(tmp_path / "p.h5", base.encodings, {"zen": np.arange(120.0)})
    with pytest.raises(ZcnasError, match="share no proxy"):
        compare_runs(base, other_proxies)
    micro = make_run(tmp_path / "m.h5", ["(1, 0, 0, 2, 1, 0)", "(1, 2, 3, 2, 1, 0)"], {"snip": [1.0, 2.0]}, space="transbench101_micro")
    with pytest.raises(ZcnasError, match="different search spaces"):
        compare_runs(base, micro)


def test_cli_table_json_and_errors(base, tmp_path):
    result = invoke("compare", base.path, base.path, "--bootstrap", "50")
    assert result.exit_code == 0, result.output
    assert "Spearman" in result.output and "synflow" in result.output and "1.000" in result.output
    data = json.loads(invoke("compare", base.path, base.path, "--json", "--bootstrap", "0").output)
    assert data["kind"] == "zcnas-compare" and {e["proxy"] for e in data["proxies"]} == {"synflow", "nwot", "snip"}
    other_proxies = make_run(tmp_path / "p.h5", base.encodings, {"zen": np.arange(120.0)})
    assert_user_error(invoke("compare", base.path, other_proxies.path), "share no proxy")
    assert_user_error(invoke("compare", base.path, tmp_path / "absent.h5"), "does not exist")


def test_suite_zero_cifar10_against_cifar100(tmp_path):
    """Real data: Suite-Zero's own scores on two datasets agree exactly where a proxy ignores the data."""
    from zcnas.bench.naslib_zc import import_naslib_zc

    table = shared_file("nb201_zc_naslib_subset725.csv")
    [c10] = import_naslib_zc(table, tmp_path / "c10.h5", task="cifar10")
    [c100] = import_naslib_zc(table, tmp_path / "c100.h5", task="cifar100")
    result = compare_runs(RunStore.open(c10.run_path), RunStore.open(c100.run_path), resamples=0)
    assert result["common_architectures"] == 725
    assert entry(result, "params")["kendall"]["value"] == pytest.approx(1.0)
    assert entry(result, "flops")["kendall"]["value"] == pytest.approx(1.0)
    assert entry(result, "nwot")["spearman"]["value"] > 0.95
    assert entry(result, "plain")["spearman"]["value"] < 0.5  # plain depends on the data and the init
    assert any("different datasets" in note for note in result["notes"])


def test_a_run_with_repeats_is_compared_like_for_like(base, tmp_path):
    """One repeat against the other run (the mean over repeats) and the run against itself (the
    mean Spearman between its repeats): checked against scipy on the raw repeats."""
    from itertools import combinations

    from scipy import stats

    rng = np.random.default_rng(4)
    truth = base.scores["synflow"]
    repeats = truth[:, None] + rng.normal(scale=0.8, size=(120, 3))
    store = new_run(tmp_path / "r.h5", base.encodings, ["synflow"], repeats=3, vary="batch")
    store.repeat_scores["synflow"][:] = repeats
    store.repeat_status["synflow"][:] = OK
    store.scores["synflow"] = repeats.mean(axis=1)
    store.status["synflow"][:] = OK
    store.checkpoint()
    result = compare_runs(RunStore.open(tmp_path / "r.h5"), base, resamples=100)
    synflow = entry(result, "synflow")
    one = np.mean([stats.spearmanr(repeats[:, r], truth)[0] for r in range(3)])
    retest = np.mean([stats.spearmanr(repeats[:, i], repeats[:, j])[0] for i, j in combinations(range(3), 2)])
    mine = synflow["repeats_a"]
    assert mine["repeats"] == 3 and mine["vary"] == "batch" and mine["retest"]["n"] == 120
    assert mine["one_repeat"]["spearman"]["value"] == pytest.approx(one)
    assert mine["retest"]["spearman"]["value"] == pytest.approx(retest)
    assert mine["one_repeat"]["spearman"]["low"] < one < mine["one_repeat"]["spearman"]["high"]
    assert synflow["spearman"]["value"] > one  # the mean of three repeats agrees better than one
    assert "repeats_b" not in synflow and "repeats_a" not in entry(compare_runs(base, base, resamples=0), "synflow")

    output = invoke("compare", tmp_path / "r.h5", base.path, "--bootstrap", "0").output
    assert "'one repeat of A' is one scoring against the other run" in " ".join(output.split()), output
    assert f"{one:.3f}" in output and f"{retest:.3f}" in output


def test_repeats_on_run_b_over_a_permuted_subset_with_a_failed_and_a_pending_repeat(base, tmp_path):
    """Rows are matched by encoding (a shuffled subset), the B side is measured as the A side,
    a repeat that failed everywhere is left out and counted (the retest uses the others), and
    architectures with a pending repeat are left out of every repeat number."""
    from itertools import combinations

    from scipy import stats

    from zcnas.run.store import PENDING

    rng = np.random.default_rng(7)
    rows = rng.permutation(120)[:90]
    truth = base.scores["snip"][rows]
    repeats = truth[:, None] + rng.normal(scale=0.6, size=(90, 3))
    store = new_run(tmp_path / "r.h5", [base.encodings[r] for r in rows], ["snip"], repeats=3, vary="both")
    store.repeat_scores["snip"][:] = repeats
    store.repeat_status["snip"][:] = OK
    store.repeat_status["snip"][:, 2] = FAILED  # repeat 2 failed on every architecture
    store.repeat_scores["snip"][:, 2] = np.nan
    store.repeat_status["snip"][:10, 1] = PENDING  # the first 10 are not finished
    store.repeat_scores["snip"][:10, 1] = np.nan
    store.scores["snip"] = np.where(np.arange(90) < 10, np.nan, repeats[:, :2].mean(axis=1))
    store.status["snip"] = np.where(np.arange(90) < 10, PENDING, OK).astype(np.int8)
    store.checkpoint()

    result = compare_runs(base, RunStore.open(tmp_path / "r.h5"), resamples=50)
    snip = entry(result, "snip")
    assert "repeats_a" not in snip
    theirs = snip["repeats_b"]
    done = slice(10, None)
    one = np.mean([stats.spearmanr(repeats[done, r], truth[done])[0] for r in range(2)])
    assert theirs["repeats_left_out"] == 1 and theirs["n"] == 80
    assert theirs["one_repeat"]["spearman"]["value"] == pytest.approx(one)
    # the retest stands on the two usable repeats (no architecture has all three)
    assert theirs["retest"]["n"] == 80
    assert theirs["retest"]["spearman"]["value"] == pytest.approx(stats.spearmanr(repeats[done, 0], repeats[done, 1])[0])


def test_one_usable_repeat_has_no_retest(base, tmp_path):
    """Two repeats, the second failed everywhere: one repeat against the other run is still
    measured; the run against itself has nothing to pair with and says so (no value)."""
    from scipy import stats

    rng = np.random.default_rng(11)
    truth = base.scores["snip"]
    first = truth + rng.normal(scale=0.5, size=120)
    store = new_run(tmp_path / "r.h5", base.encodings, ["snip"], repeats=2, vary="init")
    store.repeat_scores["snip"][:, 0] = first
    store.repeat_status["snip"][:, 0] = OK
    store.repeat_status["snip"][:, 1] = FAILED
    store.scores["snip"] = first
    store.status["snip"][:] = OK
    store.checkpoint()
    mine = entry(compare_runs(RunStore.open(tmp_path / "r.h5"), base, resamples=20), "snip")["repeats_a"]
    assert mine["repeats_left_out"] == 1
    assert mine["one_repeat"]["spearman"]["value"] == pytest.approx(stats.spearmanr(first, truth)[0])
    assert mine["retest"] == {"n": 0, "spearman": {"value": None, "low": None, "high": None}}

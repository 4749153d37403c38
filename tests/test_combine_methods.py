"""What each combine method does, beyond the common battery: formulas, options, files, features."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from test_combine_support import SLOTS, make_synthetic_run
from zcnas.combine import (
    CombineError,
    Features,
    apply_model,
    create_method,
    evaluate_combine,
    load_model,
    required_inputs,
    split_rows,
)
from zcnas.combine.base import MODEL_KIND
from zcnas.run.store import OK


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_synthetic_run(tmp_path_factory.mktemp("methods") / "run.h5", n=90, seed=2)


# -- Features -------------------------------------------------------------------------------


def test_features_from_run_mark_failures_as_nan_and_absent_layers_as_zero(run):
    features = Features.from_run(run, layers=True)
    assert features.proxies == list(run.spec.proxies)
    assert features.scalar.shape == (len(run), len(run.spec.proxies))
    for j, name in enumerate(features.proxies):
        failed = run.status[name] != OK
        assert failed.any()  # the synthetic run has failures
        assert np.all(np.isnan(features.scalar[failed, j]))
        np.testing.assert_array_equal(features.scalar[~failed, j], run.scores[name][~failed])
        slots, matrix = run.layer_matrix(name)
        assert features.layer_slots[name] == slots
        assert np.all(features.layers[name][failed] == 0)
        expected = np.where(np.isnan(matrix), 0.0, matrix)[~failed]
        np.testing.assert_array_equal(features.layers[name][~failed], expected)
        assert np.isnan(matrix[~failed]).any()  # some layers were absent, and became 0
    rows = [3, 1, 4]
    part = Features.from_run(run, proxies=["synflow"], rows=rows)
    np.testing.assert_array_equal(part.index, run.index[rows])
    assert part.layers == {}


def test_layer_block_aligns_slots_by_name(run):
    features = Features.from_run(run, proxies=["snip"], layers=True)
    wanted = {"snip": ["no.such.slot", SLOTS[2], SLOTS[0]]}
    block = features.layer_block(wanted)
    have = features.layer_slots["snip"]
    assert np.all(block[:, 0] == 0)
    np.testing.assert_array_equal(block[:, 1], features.layers["snip"][:, have.index(SLOTS[2])])
    np.testing.assert_array_equal(block[:, 2], features.layers["snip"][:, have.index(SLOTS[0])])


def test_features_refuse_unknown_proxies_and_missing_layers(run, tmp_path):
    with pytest.raises(CombineError, match="no proxy nope; it has grad_norm"):
        Features.from_run(run, proxies=["nope"])
    flat = make_synthetic_run(tmp_path / "flat.h5", n=12, layers=False)
    with pytest.raises(CombineError, match="no per-layer statistics for proxy grad_norm"):
        Features.from_run(flat, layers=True)
    with pytest.raises(CombineError, match="per-layer statistics of snip"):
        Features.from_run(flat).require(["snip"], layers=True, who="parzc")


# -- rank_average ---------------------------------------------------------------------------


def test_rank_average_is_the_mean_of_population_ranks():
    a = np.array([3.0, 1.0, 2.0, np.nan])
    b = np.array([10.0, 30.0, 20.0, 40.0])
    features = Features.from_arrays({"a": a, "b": b})
    model = create_method("rank_average").fit(features, np.arange(4.0))
    expected = np.array([(3 / 3 + 1 / 4) / 2, (1 / 3 + 3 / 4) / 2, (2 / 3 + 2 / 4) / 2, 4 / 4])
    np.testing.assert_allclose(model.predict(features), expected)
    # population-relative: the same architecture scores differently among other ones
    assert model.predict(features.take([0, 1]))[0] != model.predict(features)[0]


# -- ridge ----------------------------------------------------------------------------------


def test_ridge_recovers_a_linear_target_and_matches_the_closed_form():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = 2 * x[:, 0] - x[:, 1] + 0.01 * rng.normal(size=200)
    features = Features.from_arrays({"p": x[:, 0], "q": x[:, 1], "r": x[:, 2]})
    model = create_method("ridge", alpha=0.0, transform="none", target="value").fit(features, y)
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    t = (y - y.mean()) / y.std()
    np.testing.assert_allclose(model.coef_, np.linalg.lstsq(z, t, rcond=None)[0], atol=1e-10)
    assert np.corrcoef(model.predict(features), y)[0, 1] > 0.999
    shrunk = create_method("ridge", alpha=1000.0, transform="none", target="value").fit(features, y)
    assert np.linalg.norm(shrunk.coef_) < 0.5 * np.linalg.norm(model.coef_)


def test_ridge_rejects_bad_options(run):
    features = Features.from_run(run)
    with pytest.raises(CombineError, match="target must be"):
        create_method("ridge", target="percent").fit(features, run.targets["acc"])
    with pytest.raises(CombineError, match="transform must be"):
        create_method("ridge", transform="log").fit(features, run.targets["acc"])


# -- robot ----------------------------------------------------------------------------------


def test_robot_weights_lie_in_the_box_and_the_objective_is_the_top1_target(run):
    pytest.importorskip("bayes_opt")
    features = Features.from_run(run)
    y = run.targets["acc"]
    model = create_method("robot", n_iter=3, acquisition_restarts=1, tie_break=0.0).fit(features, y)
    assert np.all(np.abs(model.weights_) <= 1.0)
    assert model.evaluations_ == 3 + len(features.proxies)  # the single-proxy probes, then BO
    top1 = int(np.nanargmax(model.predict(features)))
    assert model.objective_ == pytest.approx((y[top1] - y.min()) / np.ptp(y))


def test_robot_without_bayes_opt_is_one_clear_sentence(run, monkeypatch):
    monkeypatch.setitem(sys.modules, "bayes_opt", None)  # import bayes_opt now raises ImportError
    with pytest.raises(CombineError, match=r"pip install 'zcnas\[robot\]'"):
        create_method("robot").fit(Features.from_run(run), run.targets["acc"])


# -- parzc ----------------------------------------------------------------------------------

PARZC_FAST = dict(epochs=3, dim=16, depth=1, batch_size=16, sequence_length=64, patch_size=8, mc_samples=5)


def test_diffkendall_matches_the_sigmoid_form_of_the_reference():
    import torch

    from zcnas.combine.parzc import diffkendall_loss

    rng = np.random.default_rng(0)
    p, t = rng.normal(size=7), rng.normal(size=7)
    alpha = 0.5
    sigma = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    total = sum(
        (sigma(alpha * (p[i] - p[j])) - sigma(-alpha * (p[i] - p[j]))) * (sigma(alpha * (t[i] - t[j])) - sigma(-alpha * (t[i] - t[j])))
        for i in range(7) for j in range(7) if i != j
    )
    expected = -total / (7 * 6 / 2)
    assert float(diffkendall_loss(torch.tensor(p), torch.tensor(t), alpha)) == pytest.approx(expected)
    ordered = torch.arange(6.0) * 100
    assert float(diffkendall_loss(ordered, ordered, 0.5)) < -1.9  # well ordered, large margins -> near -2


def test_bayesian_layers_resample_their_noise_on_every_forward():
    import torch

    from zcnas.combine.parzc import build_network

    network = build_network(10, sequence_length=32, patch_size=8, dim=8, depth=1, dropout=0.0)
    layers = network.bayesian_layers()
    assert len(layers) == 2
    for layer in layers:
        assert torch.all(layer.rho == -5.0)
    x = torch.randn(4, 10)
    with torch.no_grad():
        assert not torch.equal(network(x), network(x))


def test_parzc_uncertainty_and_loss_options(run):
    features = Features.from_run(run, proxies=["grad_norm", "snip", "synflow"], layers=True)
    y = run.targets["acc"]
    model = create_method("parzc", **PARZC_FAST, loss="mse+pairwise+diffkendall").fit(features, y)
    mean, std = model.predict_with_uncertainty(features)
    again = model.predict_with_uncertainty(features)
    np.testing.assert_array_equal(mean, again[0])  # seeded noise
    np.testing.assert_array_equal(std, again[1])
    ok = np.isfinite(mean)
    point = model.predict(features)  # the mean weights: close to the Monte Carlo mean
    assert np.max(np.abs(point[ok] - mean[ok])) < 0.2 * np.std(point[ok])
    assert np.all(std[ok] > 0) and np.all(np.isnan(std[~ok]))
    assert len(model.loss_history_) == PARZC_FAST["epochs"]
    with pytest.raises(CombineError, match="loss must be"):
        create_method("parzc", **PARZC_FAST, loss="hinge").fit(features, y)


def test_parzc_round_trip_keeps_the_proxy_order(run, tmp_path):
    proxies = ["synflow", "grad_norm"]  # not alphabetical: the file's JSON keys are
    features = Features.from_run(run, proxies=proxies, layers=True)
    model = create_method("parzc", **PARZC_FAST, proxies=proxies).fit(features, run.targets["acc"])
    loaded = load_model(model.save(tmp_path / "parzc.npz"))
    assert list(loaded.layer_slots_) == proxies
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))


def test_parzc_reads_slots_by_name_not_position(run):
    features = Features.from_run(run, proxies=["grad_norm", "snip", "synflow"], layers=True)
    model = create_method("parzc", **PARZC_FAST).fit(features, run.targets["acc"])
    shuffled = features.take(np.arange(len(run)))
    for name in shuffled.proxies:
        order = np.arange(len(shuffled.layer_slots[name]))[::-1]
        shuffled.layer_slots[name] = [shuffled.layer_slots[name][k] for k in order]
        shuffled.layers[name] = shuffled.layers[name][:, order]
    np.testing.assert_array_equal(model.predict(shuffled), model.predict(features))


# -- model files and apply_model ------------------------------------------------------------


def test_apply_model_scores_every_row_and_nan_where_an_input_failed(run, tmp_path):
    features = Features.from_run(run, proxies=["synflow", "grad_norm"])
    model = create_method("ridge", proxies=["synflow", "grad_norm"]).fit(features, run.targets["acc"])
    path = model.save(tmp_path / "ridge.npz", info={"note": "test"})
    assert required_inputs(path) == (["synflow", "grad_norm"], False)
    scores = apply_model(path, run)
    lacking = features.missing_any(["synflow", "grad_norm"])
    assert lacking.any()
    assert np.all(np.isnan(scores[lacking]))
    np.testing.assert_allclose(scores[~lacking], model.predict(features)[~lacking])
    assert np.all(np.isfinite(apply_model(path, run, strict=False)[~features.missing_all(["synflow", "grad_norm"])]))
    assert load_model(path).info_ == {"note": "test"}


def test_bad_model_files_are_refused_without_unpickling(tmp_path):
    missing = tmp_path / "missing.npz"
    with pytest.raises(CombineError, match="does not exist"):
        load_model(missing)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a model")
    with pytest.raises(CombineError, match="not a readable zcnas combine model"):
        load_model(garbage)
    pickled = tmp_path / "pickled.npz"
    with open(pickled, "wb") as handle:
        np.savez(handle, meta=np.array([{"kind": MODEL_KIND}], dtype=object))
    with pytest.raises(CombineError):
        load_model(pickled)
    future = tmp_path / "future.npz"
    with open(future, "wb") as handle:
        np.savez(handle, meta=np.array(json.dumps({"kind": MODEL_KIND, "format_version": 99})))
    with pytest.raises(CombineError, match="format_version 99"):
        load_model(future)


# -- held-out evaluation --------------------------------------------------------------------


def test_split_rows_is_seeded_and_disjoint():
    usable = np.arange(5, 55)
    train, test = split_rows(usable, 10, seed=3)
    assert len(train) == 10 and len(test) == 40 and not set(train) & set(test)
    assert set(train) | set(test) == set(usable)
    np.testing.assert_array_equal(train, split_rows(usable, 10, seed=3)[0])
    assert not np.array_equal(train, split_rows(usable, 10, seed=4)[0])


def test_a_held_out_top_k_metric_too_small_to_measure_is_undefined_without_an_interval(run):
    result = evaluate_combine(run, "ridge", "half_nan", 20, seed=7, repeats=1, resamples=50, top_k=(10,))
    split = result.summary["splits"][0]
    assert split["n_test"] < 91  # so the top 10% of the held-out architectures is fewer than 10
    assert split["metrics"]["top10_kendall"] is None and split["metrics"]["top10_precision"] is None
    assert split["intervals"]["top10_kendall"] == [None, None] and split["intervals"]["top10_precision"] == [None, None]
    assert split["intervals"]["kendall"][0] is not None


def test_evaluate_combine_reports_every_split_and_the_single_proxies(run):
    result = evaluate_combine(run, "ridge", "half_nan", 20, seed=7, repeats=2, resamples=50, top_k=(10,))
    summary = result.summary
    assert [s["seed"] for s in summary["splits"]] == [7, 8]
    usable = int(np.isfinite(run.targets["half_nan"]).sum())
    assert summary["usable"] == usable
    for entry in summary["splits"]:
        assert entry["n_train"] == 20 and entry["n_test"] == usable - 20
        assert set(entry["intervals"]) == set(summary["metrics"])
        low, high = entry["intervals"]["kendall"]
        assert low <= entry["metrics"]["kendall"] <= high
        assert entry["best_single"]["proxy"] in run.spec.proxies
    spread = summary["summary"]["method"]["kendall"]
    assert spread["min"] <= spread["mean"] <= spread["max"] and spread["n"] == 2
    assert set(summary["summary"]["single_proxies"]) == set(run.spec.proxies)
    json.dumps(summary, allow_nan=False)
    assert result.model.is_fitted

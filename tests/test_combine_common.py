"""The common battery: every registered combine method must pass each of these checks.

scikit-learn's estimator checks, for zcnas: a new method gets all of them by registering.
Slow settings (BO iterations, epochs) are cut through `FAST`, as sklearn's
`_set_checking_parameters` does; a method not listed runs with its defaults.
"""

from __future__ import annotations

import numpy as np
import pytest

from test_combine_support import make_synthetic_run
from zcnas.combine import METHODS, CombineError, Features, apply_model, create_method, get_method, load_model, required_inputs
from zcnas.combine.evaluate import split_rows
from zcnas.errors import ZcnasError
from zcnas.report.metrics import kendall

FAST = {
    "robot": dict(n_iter=4, acquisition_restarts=1),
    "parzc": dict(epochs=30, dim=16, depth=1, batch_size=16, sequence_length=64, patch_size=8, mc_samples=4),
}
ALL = sorted(METHODS)


def needs(name: str) -> None:
    if name == "robot":
        pytest.importorskip("bayes_opt", reason="the robot method needs the optional bayesian-optimization package")


def make(name: str, **params):
    needs(name)
    return create_method(name, **{**FAST.get(name, {}), **params})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_synthetic_run(tmp_path_factory.mktemp("combine") / "run.h5", n=160, seed=1)


@pytest.fixture(scope="module")
def split(run):
    return split_rows(np.arange(len(run)), 80, seed=0)


def features_for(name: str, run, proxies=None) -> Features:
    cls = get_method(name)
    chosen = proxies or (list(cls.default_proxies) if cls.default_proxies else None)
    return Features.from_run(run, proxies=chosen, layers=cls.needs_layers)


@pytest.fixture(scope="module")
def fitted(run, split):
    """One fitted model per method (fitting is the slow part; the checks below share it)."""
    train, _ = split
    y = run.targets["acc"]
    cache = {}

    def get(name):
        if name not in cache:
            features = features_for(name, run)
            cache[name] = make(name).fit(features.take(train), y[train])
        return cache[name]

    return get


@pytest.mark.parametrize("name", ALL)
def test_fit_predict_shapes(name, run, split, fitted):
    train, test = split
    model = fitted(name)
    prediction = model.predict(features_for(name, run).take(test))
    assert prediction.shape == (len(test),) and prediction.dtype == np.float64
    assert np.isfinite(prediction).mean() > 0.9
    assert model.required_proxies and all(p in run.spec.proxies for p in model.required_proxies)
    assert isinstance(type(model).needs_layers, bool)


@pytest.mark.parametrize("name", ALL)
def test_deterministic_for_a_seed(name, run, split, fitted):
    train, test = split
    y = run.targets["acc"]
    features = features_for(name, run)
    again = make(name).fit(features.take(train), y[train])
    np.testing.assert_array_equal(fitted(name).predict(features.take(test)), again.predict(features.take(test)))


@pytest.mark.parametrize("name", ALL)
def test_save_load_round_trip_gives_identical_predictions(name, run, split, fitted, tmp_path):
    _, test = split
    model = fitted(name)
    path = model.save(tmp_path / f"{name}.model")
    assert path.exists() and not (tmp_path / f"{name}.model.tmp").exists()
    features = features_for(name, run).take(test)
    for loaded in (load_model(path), type(model).load(path)):
        assert type(loaded) is type(model)
        assert loaded.get_params() == model.get_params()
        np.testing.assert_array_equal(loaded.predict(features), model.predict(features))
    assert required_inputs(path) == (model.required_proxies, type(model).needs_layers)
    # The file holds numbers and one JSON string: it loads without pickle.
    with np.load(path, allow_pickle=False) as data:
        assert all(data[k].dtype != object for k in data.files)


@pytest.mark.parametrize("name", ALL)
def test_refuses_a_run_missing_a_required_proxy(name, run, fitted, tmp_path):
    model = fitted(name)
    assert "synflow" in model.required_proxies
    others = [p for p in run.spec.proxies if p != "synflow"]
    with pytest.raises(CombineError, match="synflow"):
        model.predict(Features.from_run(run, proxies=others, layers=type(model).needs_layers))
    lacking = make_synthetic_run(tmp_path / "lacking.h5", n=20, proxies=tuple(others))
    with pytest.raises(ZcnasError, match="synflow"):
        Features.from_run(lacking, proxies=model.required_proxies, layers=type(model).needs_layers)
    path = model.save(tmp_path / "model.npz")
    with pytest.raises(ZcnasError, match="synflow"):
        apply_model(path, lacking)


@pytest.mark.parametrize("name", ALL)
def test_handles_nan_features(name, run, split):
    train, test = split
    y = run.targets["acc"]
    features = features_for(name, run)
    rng = np.random.default_rng(0)
    holes = rng.random(features.scalar.shape) < 0.2
    features.scalar[holes] = np.nan
    for proxy, matrix in features.layers.items():
        matrix[holes[:, features.proxies.index(proxy)]] = 0.0  # a failed row has no per-layer values
    features.scalar[test[0], :] = np.nan  # one architecture where every proxy failed
    model = make(name).fit(features.take(train), y[train])
    prediction = model.predict(features.take(test))
    # NaN exactly where every input proxy is missing; the other rows are imputed.
    nothing = features.take(test).missing_all(model.required_proxies)
    assert nothing[0] and nothing.sum() < len(test) // 4
    np.testing.assert_array_equal(np.isnan(prediction), nothing)


@pytest.mark.parametrize("name", ALL)
def test_beats_random_on_a_target_driven_by_one_proxy(name, run, split, fitted):
    _, test = split
    y = run.targets["acc"]
    prediction = fitted(name).predict(features_for(name, run).take(test))
    ok = np.isfinite(prediction)
    tau = kendall(prediction[ok], y[test][ok])
    # Random scores: tau ~ N(0, 0.076) on 80 architectures, so 0.25 is > 3 sigma; synflow alone
    # gets about 0.9, and rank_average (one informative proxy of four) about 0.4.
    assert tau > 0.25, f"{name}: held-out Kendall {tau:.3f}"


@pytest.mark.parametrize("name", ALL)
def test_parameters_live_in_init_and_fit_leaves_them_alone(name, run, split):
    train, _ = split
    model = make(name)
    before = model.get_params()
    assert type(model)(**before).get_params() == before
    model.fit(features_for(name, run).take(train), run.targets["acc"][train])
    assert model.get_params() == before
    with pytest.raises(CombineError, match="no parameter"):
        create_method(name, no_such_parameter=1)


@pytest.mark.parametrize("name", ALL)
def test_predict_before_fit_is_a_clear_error(name, run):
    with pytest.raises(CombineError, match="not fitted"):
        make(name).predict(features_for(name, run))


@pytest.mark.parametrize("name", ALL)
def test_fit_needs_two_finite_targets(name, run, split):
    train, _ = split
    y = np.full(len(train), np.nan)
    y[0] = 1.0
    with pytest.raises(CombineError, match="at least 2"):
        make(name).fit(features_for(name, run).take(train), y)

"""`zcnas combine`: files written, the table, and one-sentence errors with exit code 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from test_combine_support import make_synthetic_run
from zcnas.cli_combine import combine_command
from zcnas.combine import apply_model, load_model
from zcnas.run.store import RunStore

# The main app mounts the command the same way: app.command("combine")(combine_command).
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
app.command("combine")(combine_command)


@app.command("version")
def _second_command() -> None:  # with two commands Typer keeps the "combine" name on the command line
    pass


runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, ["combine", *[str(a) for a in args]])


def assert_user_error(result, *fragments):
    assert result.exit_code == 2, result.output
    text = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert "Traceback" not in text
    for fragment in fragments:
        assert fragment in text, text


@pytest.fixture(scope="module")
def run_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "run.h5"
    make_synthetic_run(path, n=70, seed=3)
    return path


def test_combine_writes_model_and_summary_and_prints_the_table(run_path, tmp_path):
    out = tmp_path / "models" / "ridge.npz"
    result = invoke(run_path, "--method", "ridge", "--target", "acc", "--train-size", 30, "--seed", 4, "--repeats", 2,
                    "--proxies", "syn*,grad_norm", "--resamples", 40, "--out", out)
    assert result.exit_code == 0, result.output
    assert "Kendall τ" in result.output and "best single proxy" in result.output and "synflow" in result.output
    summary = json.loads((tmp_path / "models" / "ridge.json").read_text())
    assert summary["kind"] == "zcnas-combine-summary" and summary["model"] == str(out)
    assert summary["proxies"] == ["synflow", "grad_norm"]
    assert [s["seed"] for s in summary["splits"]] == [4, 5]
    assert all(s["n_train"] == 30 and s["n_test"] == 40 for s in summary["splits"])
    model = load_model(out)
    assert model.info_["split_seed"] == 4 and model.info_["train_index"] == summary["splits"][0]["train_index"]
    assert model.required_proxies == ["synflow", "grad_norm"]
    assert np.isfinite(apply_model(out, RunStore.open(run_path))).sum() > 50


def test_combine_defaults_and_params(run_path, tmp_path):
    store = RunStore.open(run_path)
    out = tmp_path / "parzc.model"
    result = invoke(run_path, "-m", "parzc", "-t", "acc", "-k", 20, "-r", 1, "--resamples", 0, "-o", out, "--quiet",
                    "-P", "epochs=2", "-P", "dim=8", "-P", "depth=1", "-P", "sequence_length=32", "-P", "patch_size=8",
                    "-P", "loss=mse+diffkendall")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == ""
    model = load_model(out)
    assert model.required_proxies == ["grad_norm", "snip", "synflow"]
    assert model.epochs == 2 and model.loss == "mse+diffkendall" and model.seed == 0
    assert (tmp_path / "parzc.json").exists()
    # without --out the model goes next to the run
    result = invoke(run_path, "-m", "rank_average", "-t", "acc", "-k", 10, "-r", 1, "--resamples", 0, "-q")
    assert result.exit_code == 0, result.output
    assert run_path.with_name("run.rank_average.npz").exists() and run_path.with_name("run.rank_average.json").exists()
    assert store.spec.proxies  # the run itself is untouched and still readable


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["-m", "boosting", "-t", "acc"], ["Unknown combine method 'boosting'", "parzc, rank_average, ridge, robot"]),
        (["-m", "ridge", "-t", "top1"], ["Unknown target 'top1'", "acc, all_nan, half_nan"]),
        (["-m", "ridge"], ["Choose a target with --target", "acc, all_nan, half_nan"]),
        (["-m", "ridge", "-t", "all_nan"], ["no finite value", "acc, half_nan"]),
        (["-m", "ridge", "-t", "acc", "-k", 70], ["--train-size 70 leaves nothing", "at most 69"]),
        (["-m", "ridge", "-t", "half_nan", "-k", 40], ["finite for only 35", "at most 34"]),
        (["-m", "ridge", "-t", "acc", "-k", 1], ["--train-size must be at least 2"]),
        (["-m", "ridge", "-t", "acc", "-p", "zen"], ["no proxy zen", "grad_norm, snip, synflow, noise"]),
        (["-m", "ridge", "-t", "acc", "-p", "zz*"], ["matches no proxy"]),
        (["-m", "ridge", "-t", "acc", "-P", "alpha"], ["KEY=VALUE"]),
        (["-m", "ridge", "-t", "acc", "-P", "alpha=big"], ["alpha expects a float"]),
        (["-m", "ridge", "-t", "acc", "-P", "epochs=3"], ["no parameter 'epochs'"]),
        (["-m", "ridge", "-t", "acc", "--top-k", "200"], ["--top-k"]),
    ],
)
def test_bad_inputs_are_one_sentence_and_exit_2(run_path, tmp_path, args, fragments):
    if "-k" not in args:
        args = [*args, "-k", 10]
    assert_user_error(invoke(run_path, *args, "-q", "-o", tmp_path / "m.npz"), *fragments)
    assert not (tmp_path / "m.npz").exists()


def test_per_layer_method_on_a_run_without_layers(tmp_path):
    flat = make_synthetic_run(tmp_path / "flat.h5", n=30, layers=False)
    assert_user_error(invoke(flat.path, "-m", "parzc", "-t", "acc", "-k", 10, "-q"), "no per-layer statistics for proxies grad_norm, snip")


def test_missing_run_file(tmp_path):
    assert_user_error(invoke(tmp_path / "nope.h5", "-m", "ridge", "-t", "acc"), "does not exist")


# -- runs with repeats (zcnas score --repeats) ---------------------------------------------
def make_repeat_run(path, n=60, repeats=3, seed=0) -> RunStore:
    """A run scored 3 times: each proxy is the latent quality plus noise that changes with the
    repeat; per-layer statistics split the score over two slots."""
    from zcnas.proxies.compute import ProxyOutcome
    from zcnas.run.store import RunSpec

    rng = np.random.default_rng(seed)
    latent = rng.normal(size=n)
    spec = RunSpec(
        benchmark="r.h5", benchmark_name="repeats", search_space="synthetic", dataset="none", num_classes=10,
        proxies=("a", "b"), seed=0, sample=n, batch_size=8, repeats=repeats,
    )
    store = RunStore.create(
        path, spec, encodings=[f"x{i}" for i in range(n)], index=np.arange(n), arch_seeds=np.arange(n),
        targets={"acc": latent + rng.normal(0, 0.3, n)}, slot_order=["s0", "s1"],
    )
    for r in range(repeats):
        for row in range(n):
            outcomes = {}
            for name, noise in (("a", 0.5), ("b", 1.0)):
                value = float(latent[row] + rng.normal(0, noise))
                outcomes[name] = ProxyOutcome(value, {"s0": 0.25 * value, "s1": 0.75 * value}, 0.001)
            store.record(row, outcomes, r)
    store.checkpoint()
    return RunStore.open(path)


def test_augment_repeats_fits_on_every_repeat_and_evaluates_on_the_mean(tmp_path, monkeypatch):
    from zcnas.combine import evaluate as module
    from zcnas.combine import evaluate_combine

    store = make_repeat_run(tmp_path / "run.h5")
    fits = []
    original = module.create_method

    def spying(method, **params):
        model = original(method, **params)
        fit = model.fit

        def recorded(features, y):
            fits.append((features, np.asarray(y)))
            return fit(features, y)

        model.fit = recorded
        return model

    monkeypatch.setattr(module, "create_method", spying)
    result = evaluate_combine(store, "ridge", "acc", 20, repeats=1, resamples=0, augment_repeats=True)
    features, y = fits[0]
    train = np.flatnonzero(np.isin(store.index, result.summary["splits"][0]["train_index"]))
    assert features.n_rows == 60 and len(y) == 60  # 20 architectures x 3 repeats
    for r in range(3):
        block = features.scalar[20 * r : 20 * (r + 1)]
        np.testing.assert_array_equal(block[:, 0], store.repeat_scores["a"][train, r])
        np.testing.assert_array_equal(block[:, 1], store.repeat_scores["b"][train, r])
        np.testing.assert_array_equal(y[20 * r : 20 * (r + 1)], store.targets["acc"][train])
    assert result.summary["augment_repeats"] is True and result.summary["run_repeats"] == 3
    # held out: the model scores the aggregate (the mean of the repeats)
    from zcnas.combine import Features
    from zcnas.report.metrics import point_metrics

    test = np.setdiff1d(np.arange(60), train)
    prediction = result.model.predict(Features.from_run(store, proxies=["a", "b"]).take(test))
    expected = point_metrics(prediction, store.targets["acc"][test])
    assert result.summary["splits"][0]["metrics"]["kendall"] == pytest.approx(expected["kendall"])
    fits.clear()
    plain = evaluate_combine(store, "ridge", "acc", 20, repeats=1, resamples=0)
    assert fits[0][0].n_rows == 20 and plain.summary["augment_repeats"] is False
    np.testing.assert_allclose(fits[0][0].scalar[:, 0], store.repeat_scores["a"][train].mean(axis=1), rtol=1e-12)


def test_per_repeat_features_carry_that_repeats_layers_and_stack_by_slot(tmp_path):
    from zcnas.combine import Features

    store = make_repeat_run(tmp_path / "run.h5", n=10)
    second = Features.from_run(store, proxies=["a"], layers=True, repeat=1)
    np.testing.assert_allclose(second.layers["a"][:, 1], 0.75 * store.repeat_scores["a"][:, 1])
    swapped = Features(
        proxies=["a"], scalar=second.scalar, layer_slots={"a": ["s1", "s0"]}, layers={"a": second.layers["a"][:, ::-1]},
    )
    stacked = Features.stacked([second, swapped])
    assert stacked.n_rows == 20 and stacked.layer_slots["a"] == ["s0", "s1"]
    np.testing.assert_array_equal(stacked.layers["a"][10:], second.layers["a"])


def test_augment_repeats_on_a_run_of_one_repeat_is_one_sentence(run_path, tmp_path):
    result = invoke(run_path, "--method", "ridge", "--target", "acc", "--train-size", 30, "--augment-repeats",
                    "--out", tmp_path / "m.npz")
    assert_user_error(result, "--augment-repeats needs a run scored with --repeats 2 or more")


def test_augment_repeats_from_the_command_line(tmp_path):
    path = make_repeat_run(tmp_path / "run.h5").path
    out = tmp_path / "m.npz"
    result = invoke(path, "--method", "ridge", "--target", "acc", "--train-size", 20, "--repeats", 1,
                    "--resamples", 0, "--augment-repeats", "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["augment_repeats"] is True and summary["run_repeats"] == 3

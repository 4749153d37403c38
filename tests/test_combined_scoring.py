"""A fitted combine model is just another proxy: `zcnas score --proxies combined:MODEL`."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from conftest import make_tiny_benchmark
from zcnas.cli import app
from zcnas.run.store import OK, RunStore

runner = CliRunner()


def test_score_with_a_saved_ridge_model(tmp_path):
    bench = make_tiny_benchmark(tmp_path / "bench.h5", n_archs=14)
    first = tmp_path / "first.h5"
    done = runner.invoke(app, ["score", str(bench), "-p", "params,synflow,grad_norm", "-b", "8", "-o", str(first), "-q"])
    assert done.exit_code == 0, done.output
    model = tmp_path / "ridge.npz"
    done = runner.invoke(app, ["combine", str(first), "-m", "ridge", "-t", "acc", "-k", "8", "-r", "1", "-o", str(model), "-q"])
    assert done.exit_code == 0, done.output

    second = tmp_path / "second.h5"
    done = runner.invoke(app, ["score", str(bench), "-p", f"combined:{model},params", "-b", "8", "-o", str(second), "-q"])
    assert done.exit_code == 0, done.output
    store = RunStore.open(second)
    assert "combined:ridge" in store.spec.derived
    # the model's inputs were computed although only params was asked for besides it
    assert set(store.spec.proxies) >= {"params", "synflow", "grad_norm"}
    assert (store.status["combined:ridge"] == OK).all()
    from zcnas.combine import apply_model

    np.testing.assert_allclose(store.scores["combined:ridge"], apply_model(model, store))
    import json

    report = json.loads((tmp_path / "second.report.json").read_text())
    assert "combined:ridge" in {entry["proxy"] for entry in report["proxies"]}


def test_missing_model_file_is_one_sentence(tmp_path):
    bench = make_tiny_benchmark(tmp_path / "bench.h5", n_archs=4)
    done = runner.invoke(app, ["score", str(bench), "-p", "combined:nowhere.npz", "-o", str(tmp_path / "r.h5"), "-q"])
    assert done.exit_code == 2 and "no saved combine model" in done.output

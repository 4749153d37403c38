"""The command line: exit codes, one-sentence errors, files written."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from conftest import make_tiny_benchmark
from zcnas.cli import app

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result


def assert_user_error(result, *fragments):
    assert result.exit_code == 2, result.output
    text = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert "Traceback" not in text
    for fragment in fragments:
        assert fragment in text, text


@pytest.fixture
def bench(tmp_path):
    return make_tiny_benchmark(tmp_path / "bench.h5", n_archs=6)


def test_proxies_lists_the_registry():
    result = invoke("proxies", "--json")
    assert result.exit_code == 0
    names = {row["name"] for row in json.loads(result.output)}
    assert {"synflow", "nwot", "grad_norm", "params", "flops"} <= names
    result = invoke("proxies", "syn*")
    assert result.exit_code == 0 and "synflow" in result.output


def test_score_writes_run_and_reports(bench, tmp_path):
    out = tmp_path / "run.h5"
    result = invoke("score", bench, "--proxies", "synflow,params", "--batch-size", "8", "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    assert "Spearman" in result.output and "synflow" in result.output
    report = json.loads((tmp_path / "run.report.json").read_text())
    assert report["architectures"] == 6
    assert {p["proxy"] for p in report["proxies"]} == {"synflow", "params"}
    assert (tmp_path / "run.report.md").read_text().startswith("# zcnas report")
    again = invoke("report", out, "--quiet")
    assert again.exit_code == 0


def test_not_hdf5_is_one_sentence_and_exit_2(tmp_path):
    bogus = tmp_path / "bogus.h5"
    bogus.write_text("this is not a benchmark\n")
    assert_user_error(invoke("score", bogus, "--out", tmp_path / "r.h5", "--quiet"), "bogus.h5")
    assert not (tmp_path / "r.h5").exists()


def test_unknown_proxy_is_one_sentence_and_exit_2(bench, tmp_path):
    assert_user_error(
        invoke("score", bench, "--proxies", "synflow,telepathy", "--out", tmp_path / "r.h5", "--quiet"),
        "Unknown proxy 'telepathy'",
    )


def test_existing_out_is_not_overwritten(bench, tmp_path):
    out = tmp_path / "r.h5"
    assert invoke("score", bench, "-p", "params", "-b", "8", "-o", out, "-q").exit_code == 0
    assert_user_error(invoke("score", bench, "-p", "params", "-b", "8", "-o", out, "-q"), "--resume")
    assert invoke("score", bench, "-p", "params", "-b", "8", "-o", out, "-q", "--resume").exit_code == 0


def test_report_of_a_file_that_is_not_a_run(bench):
    assert_user_error(invoke("report", bench), "not a zcnas run file")


def test_module_entry_point_runs():
    done = subprocess.run([sys.executable, "-m", "zcnas", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "score" in done.stdout

"""What people read of a report: complete at any width, brackets kept, the primary target first,
pending architectures counted, undefined top-k metrics shown as such, no report overwritten."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import h5py
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from conftest import TINY_ARCHS, make_tiny_benchmark
from zcnas.bench import open_benchmark, write_benchmark
from zcnas.cli import app
from zcnas.cli_common import user_errors
from zcnas.errors import BenchmarkError, ZcnasError
from zcnas.proxies.compute import ProxyOutcome
from zcnas.report import build_report, to_json, to_markdown
from zcnas.report.html import to_html
from zcnas.run.store import RunSpec, RunStore

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def make_run(tmp_path, *, n=240, targets=("acc",), primary=None, scored=None, proxies=("synflow", "grad_norm")):
    """A run of `n` fake architectures whose first `scored` rows are done (all by default)."""
    rng = np.random.default_rng(0)
    quality = rng.normal(size=n)
    values = {t: quality + rng.normal(0, 0.5 + 0.2 * i, n) for i, t in enumerate(targets)}
    spec = RunSpec(
        benchmark="b.h5", benchmark_name="fake", search_space="nb201", dataset="cifar10", num_classes=10,
        proxies=tuple(proxies), seed=0, sample=n, batch_size=8,
    )
    store = RunStore.create(
        tmp_path / "run.h5", spec, encodings=[f"a{i}" for i in range(n)], index=np.arange(n),
        arch_seeds=np.arange(n), targets=values, **({"primary_target": primary} if primary else {}),
    )
    scores = {name: quality + rng.normal(0, 0.4 * (i + 1), n) for i, name in enumerate(proxies)}
    for row in range(n if scored is None else scored):
        store.record(row, {name: ProxyOutcome(float(scores[name][row]), seconds=0.01) for name in proxies})
    store.checkpoint()
    return store


# -- item 7: square brackets survive ------------------------------------------------------------


def test_messages_keep_their_square_brackets(tmp_path):
    store = make_run(tmp_path, n=60)
    result = invoke("report", store.path, "--bootstrap", "20", "--no-html")
    assert result.exit_code == 0, result.output
    assert "[low, high]: 95% percentile bootstrap intervals" in result.output

    mini = typer.Typer()

    @mini.command()
    @user_errors
    def needs_dask() -> None:
        raise ZcnasError("--scheduler needs Dask: pip install 'zcnas[dask]'.")

    failed = CliRunner().invoke(mini, [])
    assert failed.exit_code == 2
    assert "pip install 'zcnas[dask]'." in failed.output


def test_help_texts_keep_their_square_brackets():
    @app.command("bracket-probe", help="Needs an extra: pip install 'zcnas[robot]'; prints [low, high].")
    def probe(option: int = typer.Option(0, help="see [docs] and 'zcnas[dask]'")) -> None:
        pass

    try:
        result = runner.invoke(app, ["bracket-probe", "--help"], env={"COLUMNS": "200"})
    finally:
        app.registered_commands.pop()
    assert result.exit_code == 0, result.output
    for text in ("'zcnas[robot]'", "[low, high]", "see [docs] and 'zcnas[dask]'"):
        assert text in result.output, result.output
    combine = runner.invoke(app, ["combine", "--help"], env={"COLUMNS": "200"})
    assert "pip install 'zcnas[robot]'" in combine.output and "\\[" not in combine.output


# -- item 8: complete at any width --------------------------------------------------------------


def _compact(cell: dict) -> str:
    return f"{cell['value']:.3f} ({cell['low']:.2f}–{cell['high']:.2f})"


def _expected_cells(report_path) -> list[str]:
    report = json.loads(report_path.read_text())
    return [
        _compact(entry["targets"]["acc"][metric]) for entry in report["proxies"] for metric in ("spearman", "kendall")
    ]


@pytest.mark.parametrize("columns", ["60", "80"])
def test_piped_output_is_complete_at_any_width(tmp_path, columns):
    store = make_run(tmp_path, n=60, proxies=("synflow", "grad_norm", "jacob_cov_relu"))
    env = {**os.environ, "COLUMNS": columns}
    result = subprocess.run(
        [sys.executable, "-m", "zcnas", "report", str(store.path), "--bootstrap", "50", "--no-html"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "…" not in result.stdout
    for cell in _expected_cells(tmp_path / "run.report.json"):
        assert cell in result.stdout, (cell, result.stdout)
    for name in ("synflow", "grad_norm", "jacob_cov_relu"):  # one line per proxy, whole
        assert any(line.split("│")[1].strip() == name for line in result.stdout.splitlines() if line.count("│") > 3)


def _run_in_a_terminal(args: list[str], columns: int) -> str:
    """Run zcnas with its output on a pseudo-terminal `columns` wide; what it drew, sans escapes."""
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {**os.environ, "COLUMNS": str(columns), "TERM": "xterm"}
    process = subprocess.Popen([sys.executable, "-m", "zcnas", *args], stdout=child, stderr=child, env=env)
    os.close(child)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert process.wait(timeout=300) == 0
    os.close(main)
    return re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", b"".join(chunks).decode()).replace("\r", "")


@pytest.mark.parametrize("columns", [60, 100])
def test_a_terminal_of_any_width_gets_every_value_and_interval(tmp_path, columns):
    store = make_run(tmp_path, n=60, proxies=("synflow", "grad_norm", "jacob_cov_relu"))
    text = _run_in_a_terminal(["report", str(store.path), "--bootstrap", "50", "--no-html"], columns)
    drawn = [line for line in text.splitlines() if not line.startswith("report: ")]  # paths: one line, the terminal wraps it
    assert max(len(line) for line in drawn) <= columns
    assert "…" not in text
    report = json.loads((tmp_path / "run.report.json").read_text())
    for entry in report["proxies"]:
        for metric in ("spearman", "kendall"):
            cell = entry["targets"]["acc"][metric]
            if columns == 60:  # narrower than any table: one block per proxy, a line per value
                assert f"{_compact(cell)}" in text, text
            else:  # the table: the interval wraps under its value
                assert f"{cell['value']:.3f}" in text and f"({cell['low']:.2f}–{cell['high']:.2f})" in text, text


# -- item 9: score names every file it wrote ------------------------------------------------------


def test_score_lists_every_report_file_it_wrote(tmp_path):
    bench = make_tiny_benchmark(tmp_path / "bench.h5", n_archs=6)
    result = invoke("score", bench, "-p", "params", "-b", "8", "-o", tmp_path / "run.h5", "-q")
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-1]
    for name in ("run.report.json", "run.report.md", "run.report.html"):
        assert name in last and (tmp_path / name).exists()


# -- item 10: the primary target leads ------------------------------------------------------------


NINE = ("a_top1", "b_top5", "cifar10_test_acc", "cifar10_valid_acc", "cifar100_test_acc", "d", "e", "f", "g")


def test_the_primary_target_has_the_full_table_and_the_others_one_line_each(tmp_path):
    store = make_run(tmp_path, n=60, targets=NINE, primary="cifar10_test_acc")
    result = invoke("report", store.path, "--bootstrap", "20", "--no-html")
    assert result.exit_code == 0, result.output
    assert result.output.count("architectures vs ") == 1  # one full table: the primary target's
    assert "60 architectures vs cifar10_test_acc (primary target)" in result.output
    summary = result.output[result.output.index("other targets"):]
    report = json.loads((tmp_path / "run.report.json").read_text())
    assert report["primary_target"] == "cifar10_test_acc"
    for target in NINE:
        if target == "cifar10_test_acc":
            continue
        best = max(report["proxies"], key=lambda e: e["targets"][target]["spearman"]["value"])
        rho = best["targets"][target]["spearman"]["value"]
        line = next(line for line in summary.splitlines() if f" {target} " in line)
        assert best["proxy"] in line and f"{rho:.3f}" in line
    # the files keep every table, the primary target's first
    markdown = (tmp_path / "run.report.md").read_text()
    sections = re.findall(r"^## (\S+)", markdown, flags=re.M)
    assert sections[0] == "cifar10_test_acc" and sorted(sections) == sorted(NINE)
    # asked for by name, every table is printed
    every = invoke("report", store.path, "--bootstrap", "0", "--no-html", *[f"-t{t}" for t in NINE])
    assert every.output.count("architectures vs ") == 9


def test_without_a_recorded_primary_target_the_report_leads_with_its_first(tmp_path):
    store = make_run(tmp_path, n=30, targets=("zeta", "alpha"))
    report = build_report(store, resamples=0)
    assert report["primary_target"] == "alpha"


def test_the_benchmark_names_its_primary_target_and_a_run_records_it(tmp_path):
    common = dict(
        name="tiny", search_space="nb201", dataset="random16", num_classes=10, encodings=TINY_ARCHS[:6],
        probe_images=np.zeros((16, 16, 16, 3), dtype=np.uint8), probe_labels=np.arange(16) % 10,
        probe_mean=(0.5,) * 3, probe_std=(0.25,) * 3, source="test", extra_attrs={"space_options": '{"C": 4, "N": 1}'},
    )
    values = np.linspace(80, 90, 6)
    targets = {"zeta": values, "acc": values[::-1].copy()}
    # no attribute: the first target in the writer's order (not the alphabetical first)
    assert open_benchmark(write_benchmark(tmp_path / "plain.h5", targets=targets, **common)).primary_target == "zeta"
    path = write_benchmark(tmp_path / "b.h5", targets=targets, primary_target="acc", **common)
    assert open_benchmark(path).primary_target == "acc"
    assert open_benchmark(path).summary()["primary_target"] == "acc"
    info = invoke("bench", "info", path)
    assert re.search(r"^primary target\s+acc\s*$", info.output, flags=re.M), info.output
    with pytest.raises(BenchmarkError, match="primary target 'nope', which is not one of its targets"):
        write_benchmark(tmp_path / "bad.h5", targets=targets, primary_target="nope", **common)
    assert not (tmp_path / "bad.h5").exists()
    with pytest.raises(BenchmarkError, match="reserved"):
        write_benchmark(tmp_path / "bad.h5", targets=targets, **{**common, "extra_attrs": {"primary_target": "acc"}})
    damaged = tmp_path / "damaged.h5"
    damaged.write_bytes(path.read_bytes())
    with h5py.File(damaged, "r+") as f:
        f.attrs["primary_target"] = "gone"
    with pytest.raises(BenchmarkError, match="primary target 'gone'"):
        open_benchmark(damaged)

    result = invoke("score", path, "-p", "params", "-b", "8", "-o", tmp_path / "run.h5", "-q")
    assert result.exit_code == 0, result.output
    assert RunStore.open(tmp_path / "run.h5").primary_target == "acc"
    assert json.loads((tmp_path / "run.report.json").read_text())["primary_target"] == "acc"
    assert "6 architectures vs acc" in result.output and "architectures vs zeta" not in result.output


# -- item 11: report --target keeps the report of every target ------------------------------------


def test_report_of_one_target_does_not_replace_the_report_of_every_target(tmp_path):
    store = make_run(tmp_path, n=60, targets=("acc", "valid"))
    assert invoke("report", store.path, "--bootstrap", "20").exit_code == 0
    full = tmp_path / "run.report.json"
    before = full.read_bytes()
    result = invoke("report", store.path, "--bootstrap", "20", "-t", "valid")
    assert result.exit_code == 0, result.output
    assert full.read_bytes() == before
    for suffix in ("json", "md", "html"):
        assert (tmp_path / f"run.report.valid.{suffix}").exists()
        assert f"run.report.valid.{suffix}" in result.output
    assert json.loads((tmp_path / "run.report.valid.json").read_text())["targets"] == ["valid"]
    assert "Only the target(s) valid of acc, valid." in result.output
    baseline = tmp_path / "baseline.json"
    assert invoke("check", full, "--baseline", baseline, "--update").exit_code == 0
    recorded = json.loads(baseline.read_text())["values"]
    assert all(set(targets) == {"acc", "valid"} for targets in recorded.values())


# -- item 12: an unfinished run says how much is pending ------------------------------------------


def test_an_unfinished_run_says_how_many_architectures_are_pending(tmp_path):
    store = make_run(tmp_path, n=40, scored=14)
    report = build_report(store, resamples=20)
    assert report["pending"] == 26
    assert "14 of 40 architectures of nb201 on cifar10 scored (26 pending)" in to_markdown(report)
    assert "14 of 40 architectures of nb201 on cifar10 scored (26 pending)" in to_html(report)
    result = invoke("report", store.path, "--bootstrap", "20", "--no-html")
    assert "fake: 14 of 40 architectures scored (26 pending) vs acc" in " ".join(result.output.split())
    finished = build_report(make_run(tmp_path, n=40), resamples=0)
    assert finished["pending"] == 0 and "40 architectures of nb201" in to_markdown(finished)
    assert "pending" not in to_markdown(finished)


# -- issue 12 item 7: a top-k metric over fewer than 10 architectures is undefined ------------------


def test_a_top_k_metric_over_too_few_architectures_is_undefined_in_every_rendering(tmp_path):
    store = make_run(tmp_path, n=240)
    report = build_report(store, resamples=50)
    reason = "the top 1% of 240 architectures is 3, fewer than 10: too few to measure"
    for entry in report["proxies"]:
        cells = entry["targets"]["acc"]
        for metric in ("top1_kendall", "top1_precision"):
            assert cells[metric] == {"value": None, "low": None, "high": None, "k": 3, "reason": reason}
        assert cells["top10_kendall"]["value"] is not None and "reason" not in cells["top10_kendall"]  # 24
    assert json.loads(to_json(report))["proxies"][0]["targets"]["acc"]["top1_kendall"]["reason"] == reason
    markdown = to_markdown(report)
    assert "—¹" in markdown and f"¹ undefined: {reason}." in markdown
    assert "-1.000" not in markdown
    html = to_html(report)
    assert "—¹" in html and f"¹ undefined: {reason}." in html
    result = invoke("report", store.path, "--bootstrap", "20", "--no-html")
    assert "—¹" in result.output and "¹ undefined: the top 1% of 240 architectures is 3" in result.output


def test_check_skips_a_value_undefined_by_design_with_a_note_but_fails_a_broken_proxy(tmp_path):
    store = make_run(tmp_path, n=240)
    path = tmp_path / "run.report.json"
    path.write_text(to_json(build_report(store, resamples=20)))
    report = json.loads(path.read_text())
    spearman = {e["proxy"]: e["targets"]["acc"]["spearman"]["value"] for e in report["proxies"]}
    baseline = tmp_path / "old.baseline.json"
    assert invoke("check", path, "--baseline", baseline, "--update", "--metrics", "spearman,top1_kendall").exit_code == 0
    made = json.loads(baseline.read_text())
    assert all("top1_kendall" not in v["acc"] for v in made["values"].values())  # undefined: not recorded
    # a baseline from before: top1_kendall was a number (-1.0 over 3 architectures), and a null
    made["values"]["synflow"]["acc"]["top1_kendall"] = -1.0
    made["values"]["grad_norm"]["acc"]["top1_kendall"] = None
    baseline.write_text(json.dumps(made))
    result = invoke("check", path, "--baseline", baseline)
    assert result.exit_code == 0, result.output
    assert "not checked: top1_kendall of synflow vs acc: the top 1% of 240 architectures is 3" in " ".join(result.output.split())
    assert "not checked: top1_kendall of grad_norm vs acc: null in the baseline" in " ".join(result.output.split())
    assert "2 undefined, not checked" in result.output
    # a proxy that became constant: its Spearman is undefined because of the proxy -> fails
    broken = json.loads(path.read_text())
    broken["proxies"][0]["targets"]["acc"]["spearman"] = {"value": None, "low": None, "high": None,
                                                          "reason": "the proxy gives every architecture the same score"}
    (tmp_path / "broken.report.json").write_text(json.dumps(broken))
    failed = invoke("check", tmp_path / "broken.report.json", "--baseline", baseline)
    assert failed.exit_code == 1 and "missing" in failed.output
    assert spearman  # the baseline held real values

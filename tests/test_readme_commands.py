"""The README's own commands, run as a user runs them (subprocesses) on a tiny benchmark."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import make_tiny_benchmark

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def zcnas(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "zcnas", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def readme_command(pattern: str) -> list[str]:
    """The README's command that starts with `pattern` (one line, without the leading `zcnas`)."""
    match = re.search(re.escape(pattern) + r"[^`\n]*", README)
    assert match, f"the README has no command starting with {pattern!r}"
    return match.group(0).split()[1:]


def replace(args: list[str], **values) -> list[str]:
    """Swap the README's placeholders or sizes for the tiny benchmark's: {"--sample": "20", "RUN.h5": path}."""
    out = list(args)
    for i, item in enumerate(args):
        if i and args[i - 1].startswith("--") and args[i - 1] in values:
            out[i] = str(values[args[i - 1]])
        elif not item.startswith("--") and item in values:
            out[i] = str(values[item])
    return out


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory) -> Path:
    """The README's NB201 scoring command (synflow,nwot) on a tiny NB201 benchmark."""
    folder = tmp_path_factory.mktemp("readme")
    make_tiny_benchmark(folder / "nb201-cifar10.h5", n_archs=24)
    args = readme_command("zcnas score nb201-cifar10.h5 --proxies synflow,nwot")
    args = replace(args, **{"--sample": 20, "--workers": 1}) + ["--batch-size", "16", "--quiet"]
    result = zcnas(*args, cwd=folder)
    assert result.returncode == 0, result.stderr
    out = folder / args[args.index("--out") + 1]
    assert out.exists()
    return out


def combine_args(run: Path, out: Path, *extra) -> list[str]:
    args = readme_command("zcnas combine RUN.h5 --method parzc")
    args = replace(args, **{"RUN.h5": run, "--target": "acc", "--train-size": 10, "--repeats": 1, "--out": out})
    return [*args, "--param", "epochs=5", "--resamples", "20", "--quiet", *extra]


def test_readme_combine_example_runs_on_the_readme_scoring_run(readme_run):
    """parzc's default proxies on a synflow,nwot run: synflow, the one with per-layer statistics."""
    out = readme_run.with_name("parzc.npz")
    result = zcnas(*combine_args(readme_run, out), cwd=readme_run.parent)
    assert result.returncode == 0, result.stderr
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["proxies"] == ["synflow"]


def test_parzc_on_nwot_says_nwot_has_no_per_layer_statistics_by_definition(readme_run):
    result = zcnas(*combine_args(readme_run, readme_run.with_name("nwot.npz"), "--proxies", "nwot"), cwd=readme_run.parent)
    assert result.returncode == 2, result.stderr
    text = " ".join(result.stderr.split())
    assert "Traceback" not in text
    assert "nwot has no per-layer statistics by definition" in text
    assert "--proxies synflow" in text  # the run's proxy that has them
    assert "score it again" not in text  # no advice that cannot help


def test_parzc_on_a_run_without_per_layer_statistics_says_so_in_one_sentence(tmp_path):
    make_tiny_benchmark(tmp_path / "bench.h5", n_archs=12)
    scored = zcnas("score", "bench.h5", "--proxies", "nwot", "--batch-size", "16", "--out", "run.h5", "--quiet", cwd=tmp_path)
    assert scored.returncode == 0, scored.stderr
    result = zcnas(*combine_args(tmp_path / "run.h5", tmp_path / "m.npz"), cwd=tmp_path)
    assert result.returncode == 2
    text = " ".join(result.stderr.split())
    assert "Traceback" not in text
    assert "by definition" in text and "none of the run's proxies (nwot) has them" in text
    assert "--proxies grad_norm,snip,synflow" in text


def test_readme_check_command_checks_a_report_of_fewer_proxies_than_its_baseline(tmp_path):
    """The quickstart's report (5 proxies) against the regression baseline (10): --common-only."""
    make_tiny_benchmark(tmp_path / "bench.h5", n_archs=12)
    for out, proxies in (("base.h5", "synflow,nwot,params"), ("quick.h5", "synflow,params")):
        scored = zcnas("score", "bench.h5", "--proxies", proxies, "--batch-size", "16", "--out", out, "--quiet", cwd=tmp_path)
        assert scored.returncode == 0, scored.stderr
    made = zcnas("check", "base.report.json", "--baseline", "base.json", "--update", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    args = replace(
        readme_command("zcnas check runs/default-s0.report.json"),
        **{"runs/default-s0.report.json": "quick.report.json", "--baseline": "base.json"},
    )
    assert "--common-only" in args
    checked = zcnas(*args, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    text = " ".join(checked.stdout.split())
    assert "not in the report, not checked (--common-only): nwot" in text and "check passed" in text
    strict = zcnas(*[a for a in args if a != "--common-only"], cwd=tmp_path)
    assert strict.returncode == 1
    assert "the report has no nwot" in " ".join(strict.stdout.split())


def test_check_common_only_with_nothing_in_common_is_refused(tmp_path):
    make_tiny_benchmark(tmp_path / "bench.h5", n_archs=12)
    for out, proxies in (("a.h5", "synflow"), ("b.h5", "params")):
        scored = zcnas("score", "bench.h5", "--proxies", proxies, "--batch-size", "16", "--out", out, "--quiet", cwd=tmp_path)
        assert scored.returncode == 0, scored.stderr
    assert zcnas("check", "a.report.json", "--baseline", "a.json", "--update", cwd=tmp_path).returncode == 0
    result = zcnas("check", "b.report.json", "--baseline", "a.json", "--common-only", cwd=tmp_path)
    assert result.returncode == 2 and "none of the baseline's proxies (synflow)" in " ".join(result.stderr.split())


@pytest.mark.slow
def test_readme_quickstart_report_passes_the_readme_check(tmp_path):
    """The quickstart (`zcnas score`, the embedded benchmark, 240 architectures), then the README's
    check of its report against the regression baseline."""
    scored = zcnas("score", "--quiet", cwd=tmp_path)
    assert scored.returncode == 0, scored.stderr
    args = readme_command("zcnas check runs/default-s0.report.json")
    args = replace(args, **{"--baseline": ROOT / args[args.index("--baseline") + 1]})
    checked = zcnas(*args, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr

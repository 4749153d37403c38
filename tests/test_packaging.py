"""A wheel carries the embedded default benchmark: `zcnas score` works outside a clone too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGED = ["zcnas/data/default.h5", "zcnas/data/default.baseline.json"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )
    if build.returncode != 0 and "No module named pip" in build.stderr:
        pytest.skip("pip is not installed in this environment")
    assert build.returncode == 0, build.stderr
    (path,) = out.glob("zcnas-*.whl")
    return path


def test_wheel_holds_the_default_benchmark_and_its_baseline(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in PACKAGED:
        assert name in names, f"{name} is not in {wheel.name}"


def test_an_installed_wheel_scores_its_default_benchmark(wheel, tmp_path):
    """Installed = the wheel unpacked on sys.path ahead of the clone (no benchmarks_data/ there)."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site)}
    work = tmp_path / "work"
    work.mkdir()
    where = subprocess.run(
        [sys.executable, "-c", "import zcnas, zcnas.cli as c; print(zcnas.__file__); print(c.default_benchmark())"],
        cwd=work, env=env, capture_output=True, text=True, timeout=120,
    )
    assert where.returncode == 0, where.stderr
    module, benchmark = where.stdout.split()
    assert Path(module).is_relative_to(site) and Path(benchmark).is_relative_to(site), where.stdout
    score = subprocess.run(
        [sys.executable, "-m", "zcnas", "score", "--proxies", "params", "--sample", "12", "--quiet", "--out", "run.h5"],
        cwd=work, env=env, capture_output=True, text=True, timeout=120,
    )
    assert score.returncode == 0, score.stderr
    report = json.loads((work / "run.report.json").read_text())
    assert report["architectures"] == 12 and report["benchmark"] == "nb201-c8n2-mnist5k"


def test_benchmarks_data_links_to_the_packaged_files():
    """The clone's benchmarks_data/ paths (docs, older commands) reach the one packaged copy."""
    for name in PACKAGED:
        link = ROOT / "benchmarks_data" / Path(name).name
        assert link.resolve() == (ROOT / name).resolve(), f"{link} should be a link to {name}; write into {name}"


def test_a_baseline_written_through_a_link_updates_the_file_it_links_to(tmp_path):
    from zcnas.report.check import write_baseline

    (tmp_path / "data").mkdir()
    target = tmp_path / "data" / "base.json"
    target.write_text("{}")
    link = tmp_path / "base.json"
    link.symlink_to(Path("data") / "base.json")
    write_baseline({"kind": "zcnas-baseline"}, link)
    assert link.is_symlink() and json.loads(target.read_text()) == {"kind": "zcnas-baseline"}

"""A third-party search space (examples/plugin_space) installed as a plugin and scored end to end.

"Installed" the way pip leaves a package: the module and a ``*.dist-info`` folder with an
``entry_points.txt`` in a site folder on the path, which is all `importlib.metadata` reads.
Every command runs in a subprocess, so nothing of the test process's registry leaks in.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "examples" / "plugin_space"
ZCNAS = [sys.executable, "-m", "zcnas"]


def install_plugin(site: Path) -> Path:
    """The example package and its entry point, as `pip install` would leave them."""
    site.mkdir(parents=True, exist_ok=True)
    shutil.copytree(PLUGIN / "zcnas_widths", site / "zcnas_widths")
    info = site / "zcnas_widths-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: zcnas-widths\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[zcnas.spaces]\nwidths = zcnas_widths:WidthSpace\n")
    return site


def zcnas(*args, path: Path | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="200")
    env.pop("PYTHONPATH", None)
    if path is not None:
        env["PYTHONPATH"] = str(path)
    return subprocess.run([*ZCNAS, *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def widths_space():
    sys.path.insert(0, str(PLUGIN))
    try:
        from zcnas_widths import WidthSpace
    finally:
        sys.path.remove(str(PLUGIN))
    return WidthSpace()


def widths_benchmark_inputs(folder: Path, n: int = 10) -> tuple[Path, Path]:
    """A CSV of widths architectures with a made-up accuracy, and 16 random probe images."""
    rng = np.random.default_rng(0)
    archs = widths_space().sample(n, rng)
    table = folder / "widths.csv"
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["arch", "acc"])
        for arch in archs:
            width = sum(int(stage.split("x")[0]) for stage in arch.split("-"))
            writer.writerow([arch, 60 + width / 4 + rng.normal(0, 1)])
    probe = folder / "probe.npz"
    np.savez(probe, images=rng.integers(0, 256, size=(16, 16, 16, 3), dtype=np.uint8), labels=np.arange(16) % 10)
    return table, probe


def test_installed_plugin_is_listed_with_its_example(tmp_path):
    site = install_plugin(tmp_path / "site")
    result = zcnas("spaces", "--json", path=site)
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["widths"]["example"] == "16x1-24x2-32x1"
    assert rows["widths"]["origin"] == "zcnas_widths:WidthSpace"
    assert rows["widths"]["slots"] == 20
    assert "nb201" in rows
    assert "widths" not in {row["name"] for row in json.loads(zcnas("spaces", "--json").stdout)}


def test_installed_plugin_scored_end_to_end_and_missing_package_named(tmp_path):
    site = install_plugin(tmp_path / "site")
    table, probe = widths_benchmark_inputs(tmp_path)
    bench, run = tmp_path / "widths.h5", tmp_path / "runs" / "widths-run.h5"
    made = zcnas(
        "bench", "import", "csv", table, "--space", "widths", "--arch-column", "arch", "--dataset", "random16",
        "--num-classes", "10", "--probe", probe, "--out", bench, path=site,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    with h5py.File(bench, "r") as f:
        assert f.attrs["search_space"] == "widths"
        assert f.attrs["space_plugin"] == "zcnas_widths:WidthSpace"

    scored = zcnas(
        "score", bench, "--proxies", "synflow,snip,params", "--batch-size", "8", "--workers", "2",
        "--out", run, "--quiet", path=site,
    )
    assert scored.returncode == 0, scored.stdout + scored.stderr
    report = json.loads(run.with_suffix(".report.json").read_text())
    assert report["search_space"] == "widths"
    assert "10" in str(report["architectures"])
    with h5py.File(run, "r") as f:
        slots = [s.decode() if isinstance(s, bytes) else s for s in f["proxies/snip/layers"].attrs["slots"]]
        # Slots in the space's order, every one a slot the space declares (no raw module paths).
        assert slots and slots == [s for s in widths_space().layer_slots() if s in slots]
        assert np.isfinite(f["proxies/snip/score"][()]).all()

    missing = zcnas("score", bench, "--proxies", "params", "--out", tmp_path / "again.h5")
    assert missing.returncode == 2
    message = missing.stderr.strip()
    assert "zcnas_widths" in message and "not installed" in message
    assert "Traceback" not in missing.stdout + missing.stderr


def test_space_given_as_module_factory_without_packaging(tmp_path):
    table, probe = widths_benchmark_inputs(tmp_path, n=6)
    bench = tmp_path / "widths.h5"
    made = zcnas(
        "bench", "import", "csv", table, "--space", "zcnas_widths:WidthSpace", "--arch-column", "arch",
        "--dataset", "random16", "--num-classes", "10", "--probe", probe, "--out", bench, path=PLUGIN,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    with h5py.File(bench, "r") as f:
        assert f.attrs["search_space"] == "widths"
        assert f.attrs["space_plugin"] == "zcnas_widths:WidthSpace"
    scored = zcnas("score", bench, "--proxies", "params,nwot", "--batch-size", "8", "--out", tmp_path / "r.h5",
                   "--quiet", path=PLUGIN)
    assert scored.returncode == 0, scored.stdout + scored.stderr


@pytest.mark.parametrize(
    "reference, phrase",
    [
        ("no_such_package_xyz.space:Space", "no_such_package_xyz"),
        ("json:JSONDecoder", "is not a zcnas search space"),
        ("zcnas.spaces.base:NoSuchThing", "has no 'NoSuchThing'"),
    ],
)
def test_bad_plugin_references_are_one_sentence(reference, phrase):
    result = zcnas("spaces", "--space", reference)
    assert result.returncode == 2
    assert phrase in result.stderr
    assert "Traceback" not in result.stderr

"""Importers: probe images (npz, CIFAR pickles), CSV benchmarks, AnalogNAS-Bench, and the CLI.

Tests on real data read ../shared/data and skip when it is absent; all others build tiny
files in tmp_path.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from zcnas.bench.format import open_benchmark
from zcnas.bench.importers import import_analognas, import_csv, read_analognas
from zcnas.bench.probe import CIFAR10_MEAN, CIFAR10_STD, Probe, balanced_subset, load_probe, load_probe_cifar, load_probe_npz
from zcnas.errors import BenchmarkError

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

ARCH_A = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
NASLIB_A = "2,2,0,4,2,0"  # the same cell as a NASLib tuple (shared/data/nb201_accuracies.csv row 1)
ARCH_B = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
NASLIB_B = "4,3,3,0,0,0"
ARCH_C = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
NASLIB_C = "1,1,1,1,1,1"


def shared(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"real data {name} not found in {SHARED_DATA} (only CI and developers have ../shared/data)")
    return path


def tiny_probe(n: int = 20, classes: int = 10, size: int = 8) -> Probe:
    rng = np.random.default_rng(0)
    return Probe(
        images=rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8),
        labels=np.arange(n) % classes,
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        source="test probe",
    )


def write_npz(path: Path, n: int = 30, classes: int = 3) -> Path:
    rng = np.random.default_rng(1)
    np.savez(path, images=rng.integers(0, 256, size=(n, 8, 8, 3), dtype=np.uint8), labels=np.arange(n) % classes)
    return path


def fake_cifar_batch(path: Path, n: int, *, seed: int, label_key: bytes = b"labels", protocol: int = 2, classes: int = 10):
    """A CIFAR python batch as the Toronto files hold it: bytes keys, uint8 (N, 3072) rows."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, classes, size=n)]
    batch = {b"batch_label": b"fake batch", label_key: labels, b"data": data, b"filenames": [b"x.png"] * n}
    with open(path, "wb") as handle:
        pickle.dump(batch, handle, protocol=protocol)
    return data, np.array(labels)


# ------------------------------------------------------------------ probe: npz


def test_npz_probe_keeps_a_class_balanced_prefix(tmp_path):
    probe = load_probe_npz(write_npz(tmp_path / "p.npz"), size=9, seed=3)
    assert probe.images.shape == (9, 8, 8, 3) and probe.images.dtype == np.uint8
    assert probe.labels.dtype == np.int64
    assert probe.labels[:3].tolist() == [0, 1, 2] and np.bincount(probe.labels).tolist() == [3, 3, 3]
    again = load_probe_npz(tmp_path / "p.npz", size=9, seed=3)
    assert (again.images == probe.images).all()
    images, labels, mean, std = probe  # unpacks like a tuple too
    assert len(mean) == 3 and all(s > 0 for s in std)


def test_npz_probe_statistics_default_to_the_images(tmp_path):
    path = write_npz(tmp_path / "p.npz")
    probe = load_probe_npz(path)
    images = np.load(path)["images"].astype(np.float64) / 255
    np.testing.assert_allclose(probe.mean, images.mean(axis=(0, 1, 2)))
    np.testing.assert_allclose(probe.std, images.std(axis=(0, 1, 2)))
    assert load_probe_npz(path, mean="cifar10").mean == CIFAR10_MEAN
    assert load_probe_npz(path, mean=(0.1, 0.2, 0.3), std=(1, 1, 1)).std == (1.0, 1.0, 1.0)


def test_npz_probe_errors(tmp_path):
    with pytest.raises(BenchmarkError, match=r"Probe file .*absent\.npz does not exist"):
        load_probe_npz(tmp_path / "absent.npz")
    np.savez(tmp_path / "nolabels.npz", images=np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(BenchmarkError, match=r"has no array 'labels'"):
        load_probe_npz(tmp_path / "nolabels.npz")
    with pytest.raises(BenchmarkError, match=r"Probe size 31 is not possible .* holds 30 images"):
        load_probe_npz(write_npz(tmp_path / "p.npz"), size=31)
    (tmp_path / "text.npz").write_text("no")
    with pytest.raises(BenchmarkError, match=r"not a readable \.npz"):
        load_probe_npz(tmp_path / "text.npz")


def test_balanced_subset_round_robin():
    labels = np.array([0] * 10 + [1] * 2 + [2] * 5)
    order = balanced_subset(labels, size=9, seed=0)
    assert labels[order].tolist() == [0, 1, 2, 0, 1, 2, 0, 2, 0]
    assert len(set(order.tolist())) == 9


# ------------------------------------------------------------------ probe: CIFAR pickles


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_cifar_batch_file_is_converted_to_nhwc(tmp_path, protocol):
    data, labels = fake_cifar_batch(tmp_path / "data_batch_1", 20, seed=0, protocol=protocol)
    probe = load_probe_cifar(tmp_path / "data_batch_1", size=20, seed=0)
    assert probe.images.shape == (20, 32, 32, 3) and probe.images.dtype == np.uint8
    kept = balanced_subset(labels, 20, 0)
    first = kept[0]
    # Row layout: 1024 red, 1024 green, 1024 blue values, each row-major 32x32.
    row, col = 5, 17
    for channel in range(3):
        assert probe.images[0, row, col, channel] == data[first, channel * 1024 + row * 32 + col]
    assert probe.labels.tolist() == labels[kept].tolist()


def test_cifar_directory_reads_all_training_batches_or_the_test_batch(tmp_path):
    directory = tmp_path / "cifar-10-batches-py"
    directory.mkdir()
    fake_cifar_batch(directory / "data_batch_1", 12, seed=1)
    fake_cifar_batch(directory / "data_batch_2", 12, seed=2)
    fake_cifar_batch(directory / "test_batch", 7, seed=3)
    assert len(load_probe_cifar(directory).labels) == 24
    assert len(load_probe_cifar(directory, split="test").labels) == 7
    assert len(load_probe(directory, size=10).labels) == 10  # dispatch by path


def test_cifar100_uses_fine_labels(tmp_path):
    _, labels = fake_cifar_batch(tmp_path / "train", 30, seed=4, label_key=b"fine_labels", classes=100)
    probe = load_probe_cifar(tmp_path / "train", mean="cifar100")
    assert sorted(probe.labels.tolist()) == sorted(labels.tolist())


def test_cifar_pickle_cannot_run_code(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    (tmp_path / "data_batch_1").write_bytes(pickle.dumps({b"data": Exploit()}))
    with pytest.raises(BenchmarkError, match=r"not a CIFAR python pickle \(refusing to load .*system\)"):
        load_probe_cifar(tmp_path / "data_batch_1")
    assert not (tmp_path / "pwned").exists()


def test_cifar_errors(tmp_path):
    with pytest.raises(BenchmarkError, match=r"does not exist"):
        load_probe_cifar(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchmarkError, match=r"holds no train batches"):
        load_probe_cifar(tmp_path / "empty")
    (tmp_path / "data_batch_1").write_bytes(pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(BenchmarkError, match=r"expected uint8 \(N, 3072\)"):
        load_probe_cifar(tmp_path / "data_batch_1")


# ------------------------------------------------------------------ CSV


def write_csv(path: Path, rows: list[str]) -> Path:
    header = "index,arch_str,naslib_op_indices,test_acc,valid_acc,comment"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def tiny_csv(tmp_path) -> Path:
    return write_csv(
        tmp_path / "tiny.csv",
        [
            f'7,{ARCH_A},"{NASLIB_A}",93.5,90.1,good',
            f'3,{ARCH_B},"{NASLIB_B}",85.9,,meh',
            f'9,{ARCH_C},"{NASLIB_C}",10.0,9.9,bad',
        ],
    )


def test_csv_import_arch_strings(tmp_path):
    b = import_csv(tiny_csv(tmp_path), tmp_path / "out.h5", probe=tiny_probe(), dataset="cifar10")
    assert b.encodings == [ARCH_A, ARCH_B, ARCH_C]
    assert b.index.tolist() == [7, 3, 9]
    assert list(b.targets) == ["test_acc", "valid_acc"]  # numeric columns only, in CSV order
    assert np.isnan(b.target("valid_acc")[1])  # empty cell = not measured
    assert b.num_classes == 10 and b.name == "tiny"
    assert "tiny.csv" in b.source and "sha256" in b.source
    assert open_benchmark(tmp_path / "out.h5").n_archs == 3


def test_csv_import_naslib_tuples_gives_the_same_archs(tmp_path):
    b = import_csv(
        tiny_csv(tmp_path), tmp_path / "out.h5", probe=tiny_probe(), dataset="cifar10", encoding="naslib",
        index_column=None, target_columns=["test_acc"],
    )
    assert b.encodings == [ARCH_A, ARCH_B, ARCH_C]
    assert b.index.tolist() == [0, 1, 2]
    assert list(b.targets) == ["test_acc"]


def test_csv_import_exclude_and_missing_index_column(tmp_path):
    path = tmp_path / "noindex.csv"
    path.write_text(f"arch_str,acc,params\n{ARCH_A},90,1.5\n{ARCH_B},80,0.3\n")
    b = import_csv(path, tmp_path / "out.h5", probe=tiny_probe(), dataset="cifar100", exclude_columns=["params"])
    assert list(b.targets) == ["acc"] and b.index.tolist() == [0, 1] and b.num_classes == 100


def test_csv_import_errors(tmp_path):
    probe = tiny_probe()
    bad = write_csv(tmp_path / "bad.csv", [f'0,{ARCH_A},"{NASLIB_A}",1,2,x', '1,|nope|,"0,0,0,0,0,0",1,2,x'])
    with pytest.raises(BenchmarkError, match=r"bad\.csv line 3: column 'arch_str' holds '\|nope\|'"):
        import_csv(bad, tmp_path / "o.h5", probe=probe, dataset="cifar10")
    dup = write_csv(tmp_path / "dup.csv", [f'0,{ARCH_A},"{NASLIB_A}",1,2,x', f'1,{ARCH_A},"{NASLIB_A}",1,2,x'])
    with pytest.raises(BenchmarkError, match=r"duplicate architectures: rows 0 and 1"):
        import_csv(dup, tmp_path / "o.h5", probe=probe, dataset="cifar10")
    with pytest.raises(BenchmarkError, match=r"no architecture column 'cell'"):
        import_csv(tiny_csv(tmp_path), tmp_path / "o.h5", probe=probe, dataset="cifar10", arch_column="cell")
    with pytest.raises(BenchmarkError, match=r"target column 'comment' holds 'good', which is not a number"):
        import_csv(tiny_csv(tmp_path), tmp_path / "o.h5", probe=probe, dataset="cifar10", target_columns=["comment"])
    with pytest.raises(BenchmarkError, match=r"Dataset 'mnist' .* give --num-classes"):
        import_csv(tiny_csv(tmp_path), tmp_path / "o.h5", probe=probe, dataset="mnist")
    with pytest.raises(BenchmarkError, match=r"probe label 5 at position 5, outside \[0, 5\)"):
        import_csv(tiny_csv(tmp_path), tmp_path / "o.h5", probe=probe, dataset="mnist", num_classes=5)
    assert not (tmp_path / "o.h5").exists()


def test_shared_nb201_csv_imports_all_15625_archs(tmp_path):
    csv_path = shared("nb201_accuracies.csv")
    probe = load_probe_npz(shared("cifar10_kaggle_train200_png.npz"), size=100)
    b = import_csv(csv_path, tmp_path / "nb201.h5", probe=probe, dataset="cifar10")
    assert b.n_archs == 15_625
    assert "naslib_op_indices" not in b.targets and "arch_str" not in b.targets and "index" not in b.targets
    for column in ("cifar10_test_acc", "cifar100_test_acc", "ImageNet16_120_test_acc", "cifar10valid_valid_acc", "params_M"):
        assert column in b.targets
    assert sorted(b.index.tolist()) == list(range(15_625))
    best = int(np.nanargmax(b.target("cifar10_test_acc")))
    assert b.index[best] == 6111 and b.target("cifar10_test_acc")[best] == pytest.approx(94.373, abs=1e-3)
    assert np.bincount(b.probe_labels).tolist() == [10] * 10


def test_shared_nb201_csv_naslib_encoding_matches_arch_strings(tmp_path):
    csv_path = shared("nb201_accuracies.csv")
    probe = tiny_probe()
    by_string = import_csv(csv_path, tmp_path / "a.h5", probe=probe, dataset="cifar10", target_columns=["cifar10_test_acc"])
    by_tuple = import_csv(
        csv_path, tmp_path / "b.h5", probe=probe, dataset="cifar10", encoding="naslib", target_columns=["cifar10_test_acc"]
    )
    assert by_string.encodings == by_tuple.encodings


# ------------------------------------------------------------------ AnalogNAS-Bench


def fake_anb(path: Path, monkeypatch, entries) -> Path:
    """A data.anb like the package's: records of classes named analognasbench.data.Architecture
    and .DriftMeasurement, pickled from stand-ins in fake modules (the real package is never imported)."""
    package = types.ModuleType("analognasbench")
    package.__path__ = []
    module = types.ModuleType("analognasbench.data")
    architecture = type("Architecture", (), {"__module__": "analognasbench.data"})
    drift_measurement = type("DriftMeasurement", (), {"__module__": "analognasbench.data"})
    module.Architecture, module.DriftMeasurement = architecture, drift_measurement
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "analognasbench", package)
        patch.setitem(sys.modules, "analognasbench.data", module)
        records = {}
        for arch, baseline, drift in entries:
            measurement = drift_measurement()
            measurement.value, measurement.uncertainty = drift
            record = architecture()
            record.__dict__.update(architecture=arch, baseline_accuracy=baseline, analog_drift_60=measurement)
            records[arch] = record
        path.write_bytes(pickle.dumps(records, protocol=4))
    return path


def test_analognas_reader_on_a_fake_data_file(tmp_path, monkeypatch):
    data = fake_anb(
        tmp_path / "data.anb",
        monkeypatch,
        [((4, 3, 3, 0, 0, 0), 85.0, (50.0, 1.5)), ((2, 2, 0, 4, 2, 0), 93.0, (80.0, 0.5)), ((1, 1, 1, 1, 1, 1), 10.0, (9.0, 0.0))],
    )
    targets, uncertainties, tuples = read_analognas(data)
    assert set(targets) == {"baseline_accuracy", "analog_drift_60"} and set(uncertainties) == {"analog_drift_60"}
    b = import_analognas(tmp_path / "anb.h5", probe=tiny_probe(), data_file=data)
    by_arch = dict(zip(b.encodings, b.target("baseline_accuracy")))
    assert by_arch == {ARCH_B: 85.0, ARCH_A: 93.0, ARCH_C: 10.0}  # NASLib tuples decoded
    std = dict(zip(b.encodings, b.target_std["analog_drift_60"]))
    assert std[ARCH_B] == 1.5
    assert b.target_attrs["analog_drift_60"]["drift_seconds"] == 60
    assert b.dataset == "cifar10" and b.num_classes == 10


def test_analognas_pickle_cannot_run_code(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    (tmp_path / "data.anb").write_bytes(pickle.dumps({(0,) * 6: Exploit()}))
    with pytest.raises(BenchmarkError, match=r"cannot be read safely \(refusing to load"):
        read_analognas(tmp_path / "data.anb")
    assert not (tmp_path / "pwned").exists()


def test_analognas_missing_package_says_how_to_install(tmp_path, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "analognasbench" else real_find_spec(name, *a)
    )
    with pytest.raises(BenchmarkError, match=r"pip install analog-nasbench"):
        import_analognas(tmp_path / "anb.h5", probe=tiny_probe())


def test_analognas_package_import(tmp_path):
    if importlib.util.find_spec("analognasbench") is None:
        pytest.skip("analog-nasbench is not installed (pip install analog-nasbench)")
    b = import_analognas(tmp_path / "anb.h5", probe=tiny_probe())
    assert b.n_archs == 15_625
    for target in ("baseline_accuracy", "ptq_accuracy", "qat_accuracy", "noisy_accuracy", "analog_accuracy"):
        assert target in b.targets and not np.isnan(b.target(target)).any()
    assert "analog_drift_86400" in b.target_std
    assert b.source.startswith("analog-nasbench ")
    # The README's check: best baseline cell is (2,2,0,2,3,2) with 94.066.
    best = b.encodings[int(np.argmax(b.target("baseline_accuracy")))]
    assert best == "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"
    assert "analognasbench.data" not in sys.modules  # read, never imported


# ------------------------------------------------------------------ CLI


def cli_app() -> typer.Typer:
    from zcnas.cli_bench import bench_app

    app = typer.Typer()
    app.add_typer(bench_app, name="bench")

    @app.callback()
    def main():
        pass

    return app


def test_cli_import_csv_then_refuses_to_overwrite(tmp_path):
    csv_path = tiny_csv(tmp_path)
    npz = write_npz(tmp_path / "probe.npz", n=30, classes=3)
    out = tmp_path / "out.h5"
    arguments = ["bench", "import", "csv", str(csv_path), "--dataset", "cifar10", "--probe", str(npz), "--out", str(out)]
    result = CliRunner().invoke(cli_app(), [*arguments, "--probe-size", "12", "-x", "valid_acc"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "3 architectures" in result.stdout
    b = open_benchmark(out)
    assert list(b.targets) == ["test_acc"] and len(b.probe_labels) == 12

    again = CliRunner().invoke(cli_app(), arguments, terminal_width=400)
    assert again.exit_code == 2 and "already exists; pass --force" in again.stderr
    assert "Traceback" not in again.output
    forced = CliRunner().invoke(cli_app(), [*arguments, "--force", "--probe-stats", "cifar10"])
    assert forced.exit_code == 0, forced.output
    assert open_benchmark(out).probe_std == pytest.approx(CIFAR10_STD)


def test_cli_import_csv_with_a_bad_probe_is_one_sentence(tmp_path):
    result = CliRunner().invoke(
        cli_app(),
        ["bench", "import", "csv", str(tiny_csv(tmp_path)), "--dataset", "cifar10", "--probe", str(tmp_path / "none.npz"), "--out", str(tmp_path / "o.h5")],
        terminal_width=400,
    )
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error: Probe file") and len(result.stderr.strip().splitlines()) == 1


def test_cli_help_has_examples():
    runner = CliRunner()
    for command in (["bench", "info", "--help"], ["bench", "import", "csv", "--help"], ["bench", "import", "analognas", "--help"]):
        result = runner.invoke(cli_app(), command, terminal_width=200)
        assert result.exit_code == 0 and "Example: zcnas bench" in result.stdout

"""The benchmark file: write/open round trip, probe batches, and every validation rule.

Each invalid file is made by writing a valid one and then breaking exactly one thing with
h5py, so each test pins one rule of docs/benchmark-format.md.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from pathlib import Path

import h5py
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from zcnas.bench.format import FORMAT_VERSION, Benchmark, open_benchmark, write_benchmark
from zcnas.errors import BenchmarkError

ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    "|nor_conv_1x1~0|+|none~0|nor_conv_3x3~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|",
    "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
]
N = len(ARCHS)
PROBE_N = 12


def write_tiny(path: Path, **overrides) -> Path:
    rng = np.random.default_rng(0)
    arguments = dict(
        name="tiny",
        search_space="nb201",
        dataset="cifar10",
        num_classes=10,
        encodings=ARCHS,
        index=np.array([10, 11, 12, 13, 14]),
        targets={"test_acc": np.array([91.0, 85.0, 10.0, np.nan, 70.0]), "valid_acc": np.arange(N) * 1.5},
        target_attrs={"test_acc": {"epochs": 200, "seeds": 3, "description": "mean over seeds"}},
        target_seeds={"test_acc": rng.normal(80, 1, size=(N, 3))},
        target_std={"valid_acc": np.full(N, 0.5)},
        probe_images=rng.integers(0, 256, size=(PROBE_N, 8, 8, 3), dtype=np.uint8),
        probe_labels=np.arange(PROBE_N) % 10,
        probe_mean=(0.5, 0.4, 0.3),
        probe_std=(0.2, 0.25, 0.3),
        source="tests/test_bench_format.py",
        extra_attrs={"note": "tiny"},
    )
    arguments.update(overrides)
    return write_benchmark(path, **arguments)


@pytest.fixture
def tiny(tmp_path) -> Path:
    return write_tiny(tmp_path / "tiny.h5")


def break_file(path: Path, change) -> Path:
    with h5py.File(path, "r+") as file:
        change(file)
    return path


def replace(file: h5py.File, name: str, data, **kwargs) -> None:
    attrs = dict(file[name].attrs)
    del file[name]
    file.create_dataset(name, data=data, **kwargs)
    file[name].attrs.update(attrs)


# ------------------------------------------------------------------ round trip


def test_roundtrip_keeps_everything(tiny):
    b = open_benchmark(tiny)
    assert isinstance(b, Benchmark)
    assert (b.name, b.search_space, b.dataset, b.num_classes) == ("tiny", "nb201", "cifar10", 10)
    assert b.source == "tests/test_bench_format.py"
    assert datetime.fromisoformat(b.created).utcoffset().total_seconds() == 0
    assert b.encodings == ARCHS and b.n_archs == N
    assert b.index.dtype == np.int64 and b.index.tolist() == [10, 11, 12, 13, 14]
    assert list(b.targets) == ["test_acc", "valid_acc"]  # writer's order, not alphabetical
    assert b.target("test_acc").dtype == np.float64
    np.testing.assert_array_equal(b.target("test_acc"), [91.0, 85.0, 10.0, np.nan, 70.0])
    assert b.target_attrs["test_acc"] == {"epochs": 200, "seeds": 3, "description": "mean over seeds"}
    assert b.target_seeds["test_acc"].shape == (N, 3)
    np.testing.assert_array_equal(b.target_std["valid_acc"], np.full(N, 0.5))
    assert b.probe_images.dtype == np.uint8 and b.probe_images.shape == (PROBE_N, 8, 8, 3)
    assert b.probe_labels.dtype == np.int64
    assert b.probe_mean == pytest.approx((0.5, 0.4, 0.3)) and b.probe_std == pytest.approx((0.2, 0.25, 0.3))
    assert b.attrs["format_version"] == FORMAT_VERSION and b.attrs["note"] == "tiny"


def test_layout_and_dtypes_on_disk(tiny):
    with h5py.File(tiny, "r") as file:
        assert file.attrs["format_version"] == 2
        assert file["probe"].attrs["kind"] == "images"
        for key in ("name", "search_space", "dataset", "num_classes", "source", "created"):
            assert key in file.attrs
        assert h5py.check_string_dtype(file["archs/encoding"].dtype).encoding == "utf-8"
        assert file["archs/index"].dtype == np.int64
        assert file["targets/test_acc"].dtype == np.float64
        assert file["targets/test_acc_seeds"].shape == (N, 3)
        assert file["targets/test_acc_seeds"].attrs["role"] == "seeds"
        assert file["targets/valid_acc_std"].attrs["role"] == "std"
        assert file["probe/x"].dtype == np.uint8 and file["probe/y"].dtype == np.int64
        assert file["probe/x"].attrs["mean"].shape == (3,)


def test_write_is_atomic_and_leaves_no_temp_file(tmp_path):
    path = write_tiny(tmp_path / "b.h5")
    write_tiny(path, name="second")  # replacing an existing file
    assert open_benchmark(path).name == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.h5"]


def test_invalid_data_is_refused_before_anything_is_written(tmp_path):
    path = write_tiny(tmp_path / "b.h5")
    with pytest.raises(BenchmarkError, match=r"duplicate architectures: rows 0 and 1"):
        write_tiny(path, encodings=[ARCHS[0]] * N, name="broken")
    assert open_benchmark(path).name == "tiny"  # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.h5"]
    with pytest.raises(BenchmarkError, match=r"not written.*row 1 .*'bogus'"):
        write_tiny(tmp_path / "c.h5", encodings=[ARCHS[0], "bogus", *ARCHS[2:]])
    assert not (tmp_path / "c.h5").exists()


def test_write_stores_canonical_encodings_and_default_index(tmp_path):
    path = write_tiny(tmp_path / "b.h5", encodings=[f"  {a} " for a in ARCHS], index=None)
    b = open_benchmark(path)
    assert b.encodings == ARCHS
    assert b.index.tolist() == list(range(N))


# ------------------------------------------------------------------ API


def test_target_unknown_name_lists_available(tiny):
    with pytest.raises(BenchmarkError, match=r"no target 'nope'; available targets: test_acc, valid_acc"):
        open_benchmark(tiny).target("nope")


def test_probe_batch_first_images_normalised(tiny):
    b = open_benchmark(tiny)
    x, y = b.probe_batch(4)
    assert x.dtype.is_floating_point and str(x.dtype) == "torch.float32"
    assert tuple(x.shape) == (4, 3, 8, 8) and str(y.dtype) == "torch.int64"
    expected = (b.probe_images[:4].astype(np.float32) / 255 - np.float32([0.5, 0.4, 0.3])) / np.float32([0.2, 0.25, 0.3])
    np.testing.assert_allclose(x.numpy(), expected.transpose(0, 3, 1, 2), rtol=1e-6, atol=1e-6)
    assert y.tolist() == b.probe_labels[:4].tolist()


def test_probe_batch_with_seed_is_deterministic_without_replacement(tiny):
    b = open_benchmark(tiny)
    # The uniform draw (draw="random"); the default class-balanced draw is pinned in test_runner.py.
    x1, y1 = b.probe_batch(PROBE_N, seed=7, draw="random")
    x2, y2 = b.probe_batch(PROBE_N, seed=7, draw="random")
    assert (x1 == x2).all() and (y1 == y2).all()
    chosen = np.random.default_rng(7).choice(PROBE_N, size=PROBE_N, replace=False)
    assert sorted(chosen.tolist()) == list(range(PROBE_N))
    assert y1.tolist() == b.probe_labels[chosen].tolist()
    assert not (b.probe_batch(5, seed=1)[0] == b.probe_batch(5, seed=2)[0]).all()


def test_probe_batch_larger_than_probe_set_is_an_error(tiny):
    with pytest.raises(BenchmarkError, match=rf"batch of 13 images .* holds {PROBE_N} probe images"):
        open_benchmark(tiny).probe_batch(PROBE_N + 1)


def test_summary_counts_nan_and_seeds(tiny):
    summary = open_benchmark(tiny).summary()
    json.dumps(summary)  # JSON-ready
    assert summary["n_archs"] == N and summary["search_space"] == "nb201"
    assert summary["targets"]["test_acc"]["nan"] == 1
    assert summary["targets"]["test_acc"]["seeds"] == 3
    assert summary["targets"]["test_acc"]["max"] == 91.0 and summary["targets"]["test_acc"]["min"] == 10.0
    assert summary["targets"]["valid_acc"]["has_std"] is True
    assert summary["probe_shape"] == [PROBE_N, 8, 8, 3]
    assert summary["source"] and summary["created"]


def test_nan_targets_are_allowed(tmp_path):
    path = write_tiny(tmp_path / "b.h5", targets={"acc": np.full(N, np.nan)}, target_attrs=None, target_seeds=None, target_std=None)
    b = open_benchmark(path)
    assert np.isnan(b.target("acc")).all()
    stats = b.summary()["targets"]["acc"]
    assert stats["nan"] == N and stats["min"] is None and stats["mean"] is None


# ------------------------------------------------------------------ validation on open


def test_missing_path(tmp_path):
    with pytest.raises(BenchmarkError, match=r"absent\.h5 does not exist"):
        open_benchmark(tmp_path / "absent.h5")


def test_text_file_is_not_hdf5(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("this is not a benchmark\n")
    with pytest.raises(BenchmarkError, match=r"notes\.h5 is not an HDF5 file"):
        open_benchmark(path)


def test_truncated_hdf5(tiny):
    data = tiny.read_bytes()
    tiny.write_bytes(data[: len(data) // 2])
    with pytest.raises(BenchmarkError, match=r"tiny\.h5 is a truncated or damaged HDF5 file"):
        open_benchmark(tiny)


@pytest.mark.parametrize("name", ["archs/encoding", "archs/index", "probe/x", "probe/y"])
def test_missing_dataset_is_named(tiny, name):
    break_file(tiny, lambda f: f.__delitem__(name))
    with pytest.raises(BenchmarkError, match=rf"has no dataset '{name}'"):
        open_benchmark(tiny)


def test_missing_targets_group(tiny):
    break_file(tiny, lambda f: f.__delitem__("targets"))
    with pytest.raises(BenchmarkError, match=r"has no group 'targets'"):
        open_benchmark(tiny)


def test_missing_root_attribute_is_named(tiny):
    break_file(tiny, lambda f: f.attrs.__delitem__("num_classes"))
    with pytest.raises(BenchmarkError, match=r"lacks the root attribute 'num_classes'"):
        open_benchmark(tiny)


def test_missing_format_version(tiny):
    break_file(tiny, lambda f: f.attrs.__delitem__("format_version"))
    with pytest.raises(BenchmarkError, match=r"no format_version attribute.*format versions 1 and 2"):
        open_benchmark(tiny)


def test_unknown_format_version_says_which_are_supported(tiny):
    break_file(tiny, lambda f: f.attrs.__setitem__("format_version", 99))
    with pytest.raises(BenchmarkError, match=r"format_version 99, but this zcnas reads only format versions 1 and 2;"):
        open_benchmark(tiny)


def test_unknown_search_space(tiny):
    break_file(tiny, lambda f: f.attrs.__setitem__("search_space", "nb999"))
    with pytest.raises(BenchmarkError, match=r"unknown search space 'nb999'; known spaces: nb201"):
        open_benchmark(tiny)


def test_empty_benchmark(tiny):
    def empty(file):
        replace(file, "archs/encoding", np.array([], dtype=object), dtype=h5py.string_dtype("utf-8"))
        replace(file, "archs/index", np.array([], dtype=np.int64))
        for name in list(file["targets"]):
            del file["targets"][name]

    break_file(tiny, empty)
    with pytest.raises(BenchmarkError, match=r"holds no architectures"):
        open_benchmark(tiny)


def test_target_of_wrong_length(tiny):
    break_file(tiny, lambda f: replace(f, "targets/valid_acc", np.zeros(N - 1)))
    with pytest.raises(BenchmarkError, match=rf"target 'valid_acc' of length {N - 1} for its {N} architectures"):
        open_benchmark(tiny)


def test_target_seeds_of_wrong_length(tiny):
    break_file(tiny, lambda f: replace(f, "targets/test_acc_seeds", np.zeros((N + 2, 3))))
    with pytest.raises(BenchmarkError, match=rf"target seeds for 'test_acc' of shape \({N + 2}, 3\), but {N} architectures"):
        open_benchmark(tiny)


def test_seeds_for_a_missing_target(tiny):
    break_file(tiny, lambda f: f.__delitem__("targets/test_acc"))
    with pytest.raises(BenchmarkError, match=r"test_acc_seeds \(seeds\) for target 'test_acc', which does not exist"):
        open_benchmark(tiny)


def test_non_numeric_target(tiny):
    break_file(tiny, lambda f: replace(f, "targets/valid_acc", np.array(["a"] * N, dtype=object), dtype=h5py.string_dtype()))
    with pytest.raises(BenchmarkError, match=r"target 'valid_acc' holds .* not numbers"):
        open_benchmark(tiny)


def test_unparseable_architecture_names_row_and_string(tiny):
    bad = list(ARCHS)
    bad[2] = "|conv9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    break_file(tiny, lambda f: replace(f, "archs/encoding", bad, dtype=h5py.string_dtype("utf-8")))
    with pytest.raises(BenchmarkError, match=r"row 2 that does not parse \('\|conv9x9~0\|.*'\)"):
        open_benchmark(tiny)


def test_duplicate_architectures(tiny):
    dup = list(ARCHS)
    dup[3] = ARCHS[0]
    break_file(tiny, lambda f: replace(f, "archs/encoding", dup, dtype=h5py.string_dtype("utf-8")))
    with pytest.raises(BenchmarkError, match=r"duplicate architectures: rows 0 and 3"):
        open_benchmark(tiny)


def test_duplicate_ids(tiny):
    break_file(tiny, lambda f: replace(f, "archs/index", np.array([1, 2, 3, 3, 4])))
    with pytest.raises(BenchmarkError, match=r"duplicate ids in archs/index \(e\.g\. 3\)"):
        open_benchmark(tiny)


def test_index_of_wrong_length(tiny):
    break_file(tiny, lambda f: replace(f, "archs/index", np.arange(N + 1)))
    with pytest.raises(BenchmarkError, match=rf"{N + 1} entries in archs/index for {N} architectures"):
        open_benchmark(tiny)


@pytest.mark.parametrize(
    "shape, fact",
    [((PROBE_N, 4, 4, 3), "4x4"), ((PROBE_N, 8, 8, 1), "1 channels")],
)
def test_probe_images_that_do_not_fit_the_space(tiny, shape, fact):
    break_file(tiny, lambda f: replace(f, "probe/x", np.zeros(shape, dtype=np.uint8)))
    with pytest.raises(BenchmarkError, match=rf"probe images of shape .* do not fit the nb201 space: .*{fact}"):
        open_benchmark(tiny)


def test_probe_images_not_uint8(tiny):
    break_file(tiny, lambda f: replace(f, "probe/x", np.zeros((PROBE_N, 8, 8, 3), dtype=np.float32)))
    with pytest.raises(BenchmarkError, match=r"probe images of type float32 .* must be uint8"):
        open_benchmark(tiny)


def test_probe_without_normalisation_attrs(tiny):
    break_file(tiny, lambda f: f["probe/x"].attrs.__delitem__("std"))
    with pytest.raises(BenchmarkError, match=r"lacks the probe/x attribute 'std'"):
        open_benchmark(tiny)


def test_probe_labels_of_wrong_length(tiny):
    break_file(tiny, lambda f: replace(f, "probe/y", np.zeros(PROBE_N - 2, dtype=np.int64)))
    with pytest.raises(BenchmarkError, match=rf"{PROBE_N - 2} probe labels for {PROBE_N} probe images"):
        open_benchmark(tiny)


@pytest.mark.parametrize("label", [10, -1])
def test_probe_labels_outside_num_classes(tiny, label):
    labels = np.zeros(PROBE_N, dtype=np.int64)
    labels[5] = label
    break_file(tiny, lambda f: replace(f, "probe/y", labels))
    with pytest.raises(BenchmarkError, match=rf"probe label {label} at position 5, outside \[0, 10\)"):
        open_benchmark(tiny)


def test_messages_are_one_sentence_naming_the_file(tiny):
    break_file(tiny, lambda f: f.attrs.__setitem__("format_version", 3))
    with pytest.raises(BenchmarkError) as caught:
        open_benchmark(tiny)
    message = str(caught.value)
    assert str(tiny) in message
    assert message.endswith(".") and "\n" not in message


# ------------------------------------------------------------------ CLI


def cli_app() -> typer.Typer:
    from zcnas.cli_bench import bench_app

    app = typer.Typer()
    app.add_typer(bench_app, name="bench")

    @app.callback()
    def main():  # a callback keeps "bench" a sub-command, as in the real app
        pass

    return app


def test_cli_info_on_corrupt_file_is_one_sentence_and_exit_2(tmp_path):
    path = tmp_path / "corrupt.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 40)
    result = CliRunner().invoke(cli_app(), ["bench", "info", str(path)], terminal_width=400)
    assert result.exit_code == 2
    stderr = result.stderr.strip()
    assert "Traceback" not in result.output and "Traceback" not in stderr
    assert "corrupt.h5" in stderr and len(stderr.splitlines()) == 1
    assert re.match(r"error: Benchmark file .* HDF5 file .*\.$", stderr)


def test_cli_info_on_missing_file(tmp_path):
    result = CliRunner().invoke(cli_app(), ["bench", "info", str(tmp_path / "nope.h5")], terminal_width=400)
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_cli_info_shows_summary(tiny):
    result = CliRunner().invoke(cli_app(), ["bench", "info", str(tiny)], terminal_width=200)
    assert result.exit_code == 0, result.output
    for fact in ("tiny", "nb201", "cifar10", "test_acc", "valid_acc"):
        assert fact in result.stdout


def test_cli_info_json(tiny):
    result = CliRunner().invoke(cli_app(), ["bench", "info", "--json", str(tiny)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["n_archs"] == N and summary["targets"]["test_acc"]["nan"] == 1
    assert summary["targets"]["test_acc"]["mean"] == pytest.approx(np.nanmean([91.0, 85.0, 10.0, 70.0]))
    assert not math.isnan(summary["targets"]["valid_acc"]["mean"])

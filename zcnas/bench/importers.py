"""Turn existing benchmarks into zcnas benchmark files.

* `import_csv`: a table of architectures (NB201 strings or NASLib tuples) and accuracies.
* `import_analognas`: AnalogNAS-Bench, read from the data file of the PyPI package
  ``analog-nasbench`` without importing (running) the package.

Each importer takes a `Probe` (see `zcnas.bench.probe`), writes the file atomically and
returns the validated `Benchmark` read back from disk.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.metadata
import importlib.util
import math
import pickle
from pathlib import Path
from typing import Sequence

import numpy as np

from zcnas import __version__
from zcnas.bench.format import Benchmark, open_benchmark, write_benchmark
from zcnas.bench.probe import Probe
from zcnas.errors import ArchError, BenchmarkError

# Class counts of the datasets NAS benchmarks are trained on, so --num-classes is optional.
KNOWN_DATASETS = {"cifar10": 10, "cifar100": 100, "imagenet16-120": 120, "imagenet16_120": 120}

ENCODINGS = ("arch_str", "naslib")
_DEFAULT_ARCH_COLUMN = {"arch_str": "arch_str", "naslib": "naslib_op_indices"}


def num_classes_for(dataset: str, num_classes: int | None) -> int:
    """`num_classes` if given, else the class count of a known dataset."""
    if num_classes is not None:
        if num_classes < 1:
            raise BenchmarkError(f"num_classes must be at least 1, not {num_classes}.")
        return int(num_classes)
    try:
        return KNOWN_DATASETS[dataset.lower()]
    except KeyError:
        raise BenchmarkError(
            f"Dataset {dataset!r} is not one zcnas knows the class count of "
            f"({', '.join(sorted(KNOWN_DATASETS))}); give --num-classes."
        ) from None


# --------------------------------------------------------------------------- CSV


def import_csv(
    csv_path,
    out_path,
    *,
    probe: Probe,
    dataset: str,
    num_classes: int | None = None,
    name: str | None = None,
    space: str = "nb201",
    encoding: str = "arch_str",
    arch_column: str | None = None,
    index_column: str | None = "index",
    target_columns: Sequence[str] | None = None,
    exclude_columns: Sequence[str] = (),
) -> Benchmark:
    """Import a CSV with one architecture per row.

    `encoding` says what `arch_column` holds: ``"arch_str"`` (NB201 strings; default column
    ``arch_str``) or ``"naslib"`` (NASLib 6-tuples such as ``"4,3,3,0,0,0"``; default column
    ``naslib_op_indices``). Ids come from `index_column` (default ``index``; when the CSV has
    no such column the row number is used). Targets are `target_columns`, or by default every
    column whose non-empty cells are at least half numbers, minus the id/encoding columns and
    `exclude_columns`; an empty cell is NaN (not measured). A target cell that is not a number,
    and a default target column without a single value, are refused with their line and
    column (never a column dropped without a word); a column of mostly text is not a target.
    """
    csv_path, out_path = Path(csv_path), Path(out_path)
    if encoding not in ENCODINGS:
        raise BenchmarkError(f"Encoding {encoding!r} is not one of {', '.join(ENCODINGS)}.")
    search_space = _space(space)
    arch_column = arch_column or _DEFAULT_ARCH_COLUMN[encoding]
    header, rows = _read_csv(csv_path)

    if arch_column not in header:
        raise BenchmarkError(
            f"CSV {csv_path} has no architecture column {arch_column!r} (columns: {', '.join(header)}); "
            f"choose one with --arch-column."
        )
    if index_column is not None and index_column not in header:
        if index_column != "index":
            raise BenchmarkError(f"CSV {csv_path} has no index column {index_column!r} (columns: {', '.join(header)}).")
        index_column = None
    unknown = [c for c in list(target_columns or []) + list(exclude_columns) if c not in header]
    if unknown:
        raise BenchmarkError(f"CSV {csv_path} has no column {unknown[0]!r} (columns: {', '.join(header)}).")

    arch_at = header.index(arch_column)
    encodings = []
    for row_number, row in enumerate(rows):
        cell = row[arch_at]
        try:
            if encoding == "naslib":
                encodings.append(search_space.from_naslib(cell))
            else:
                encodings.append(search_space.canonical(cell))
        except ArchError as error:
            raise BenchmarkError(
                f"CSV {csv_path} line {row_number + 2}: column {arch_column!r} holds {cell!r}, "
                f"which is not a valid {encoding} encoding ({str(error).rstrip('.')})."
            ) from None

    if index_column is None:
        index = np.arange(len(rows), dtype=np.int64)
        index_meaning = "row number in the CSV (0-based)"
    else:
        index = _integer_column(csv_path, header, rows, index_column)
        index_meaning = f"CSV column {index_column!r}"

    skip = {arch_column, index_column, *exclude_columns}
    if target_columns is None:
        chosen = [c for c in header if c not in skip and _is_numeric_column(csv_path, rows, header.index(c), c)]
        hint = "leave the column out with --exclude {column}"
    else:
        chosen = list(target_columns)
        hint = "leave it out of --target"
    if not chosen:
        raise BenchmarkError(f"CSV {csv_path} has no numeric target column; name them with --target.")
    targets = {column: _float_column(csv_path, header, rows, column, hint.format(column=column)) for column in chosen}

    write_benchmark(
        out_path,
        name=name or csv_path.stem,
        search_space=search_space.name,
        dataset=dataset,
        num_classes=num_classes_for(dataset, num_classes),
        encodings=encodings,
        index=index,
        targets=targets,
        target_attrs={column: {"source_column": column} for column in chosen},
        probe_images=probe.images,
        probe_labels=probe.labels,
        probe_mean=probe.mean,
        probe_std=probe.std,
        source=(
            f"zcnas {__version__} bench import csv {csv_path.name} (sha256 {file_sha256(csv_path)[:16]}, "
            f"{encoding} column {arch_column!r}); probe {probe.source}"
        ),
        extra_attrs={"index_meaning": index_meaning},
    )
    return open_benchmark(out_path)


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    if not path.is_file():
        raise BenchmarkError(f"CSV file {path} does not exist.")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            rows = [row for row in reader if row]
    except (UnicodeDecodeError, csv.Error) as error:
        raise BenchmarkError(f"CSV file {path} cannot be read as UTF-8 CSV ({error}).") from None
    if not header:
        raise BenchmarkError(f"CSV file {path} is empty.")
    header = [column.strip() for column in header]
    for row_number, row in enumerate(rows):
        if len(row) != len(header):
            raise BenchmarkError(
                f"CSV file {path} line {row_number + 2} has {len(row)} cells but the header has {len(header)}."
            )
    if not rows:
        raise BenchmarkError(f"CSV file {path} has a header but no rows.")
    return header, rows


def _parse_float(cell: str) -> float:
    text = cell.strip()
    return math.nan if text == "" else float(text)


def _is_numeric_column(path, rows, at: int, column: str) -> bool:
    """Whether a column is meant as a target: at least half of its non-empty cells are numbers
    (its other cells are then refused by `_float_column`, with their line). A named column
    with no value at all (every cell empty or NaN) is refused here: dropping it would lose it
    without a word, keeping it would add a target that ranks nothing."""
    values = []
    for row in rows:
        try:
            values.append(_parse_float(row[at]))
        except ValueError:
            values.append(None)
    filled = [v for v, row in zip(values, rows) if row[at].strip()]
    numbers = [v for v in filled if v is not None]
    if 2 * len(numbers) < len(filled):
        return False  # a text column (names, notes, another encoding)
    if len(numbers) == len(filled) and all(math.isnan(v) for v in numbers):
        if not column:
            return False  # an unnamed, empty column (a trailing comma on every line)
        raise BenchmarkError(
            f"CSV {path}: column {column!r} has no value on any line (every cell empty or NaN); "
            f"leave it out with --exclude {column}, or fill it in."
        )
    return True


def _float_column(path, header, rows, column, hint: str = "") -> np.ndarray:
    at = header.index(column)
    values = np.empty(len(rows))
    for row_number, row in enumerate(rows):
        try:
            values[row_number] = _parse_float(row[at])
        except ValueError:
            raise BenchmarkError(
                f"CSV {path} line {row_number + 2}: target column {column!r} holds {row[at]!r}, which is not a number; "
                f"fix that cell (leave it empty if it was not measured){' or ' + hint if hint else ''}."
            ) from None
    return values


def _integer_column(path, header, rows, column) -> np.ndarray:
    at = header.index(column)
    values = np.empty(len(rows), dtype=np.int64)
    for row_number, row in enumerate(rows):
        try:
            values[row_number] = int(row[at].strip())
        except ValueError:
            raise BenchmarkError(
                f"CSV {path} line {row_number + 2}: index column {column!r} holds {row[at]!r}, which is not an integer."
            ) from None
    return values


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file (provenance of imported and built benchmarks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _space(name: str):
    from zcnas.spaces import get_space

    try:
        return get_space(name)
    except ArchError as error:
        raise BenchmarkError(str(error)) from None


# --------------------------------------------------------------------------- AnalogNAS-Bench

ANALOGNAS_PACKAGE = "analog-nasbench"
ANALOGNAS_MODULE = "analognasbench"


class _AnalogRecord:
    """Stand-in for ``analognasbench.data.Architecture``: only its attributes are kept."""


class _AnalogDrift:
    """Stand-in for ``analognasbench.data.DriftMeasurement`` (``value``, ``uncertainty``)."""


class _AnalogUnpickler(pickle.Unpickler):
    """A pickle can name any callable; this one may only build the two record classes
    (as inert stand-ins) and plain builtin containers."""

    _ALLOWED = {
        ("analognasbench.data", "Architecture"): _AnalogRecord,
        ("analognasbench.data", "DriftMeasurement"): _AnalogDrift,
    }
    _BUILTINS = {"dict", "list", "tuple", "set", "frozenset", "str", "int", "float", "complex", "bytes"}

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        if module in ("builtins", "__builtin__") and name in self._BUILTINS:
            return getattr(__import__("builtins"), name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def analognas_data_file() -> tuple[Path, str]:
    """Path of the installed package's ``data.anb`` and the package version.

    `importlib.util.find_spec` on a top-level package locates it without executing its
    ``__init__`` (which imports ``pkg_resources`` and fails on current setuptools).
    """
    spec = importlib.util.find_spec(ANALOGNAS_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise BenchmarkError(
            f"AnalogNAS-Bench is not installed; run `pip install {ANALOGNAS_PACKAGE}` and import again."
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "data.anb"
        if candidate.is_file():
            break
    else:
        raise BenchmarkError(
            f"The installed {ANALOGNAS_PACKAGE} package has no data.anb; reinstall it with "
            f"`pip install --force-reinstall {ANALOGNAS_PACKAGE}`."
        )
    try:
        version = importlib.metadata.version(ANALOGNAS_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return candidate, version


def read_analognas(data_file) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[tuple]]:
    """Read ``data.anb`` into (targets, uncertainties, naslib tuples), archs in file order.

    Every numeric field of the records becomes a target; every drift field (value ±
    uncertainty) becomes a target plus its uncertainty. A field missing on a record is NaN.
    """
    data_file = Path(data_file)
    try:
        with open(data_file, "rb") as handle:
            records = _AnalogUnpickler(handle).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise BenchmarkError(
            f"AnalogNAS-Bench data {data_file} cannot be read safely ({str(error).rstrip('.')}); "
            f"this zcnas knows analog-nasbench 0.1.3."
        ) from None
    if not isinstance(records, dict) or not records:
        raise BenchmarkError(f"AnalogNAS-Bench data {data_file} does not hold a dictionary of architectures.")

    fields: dict[str, str] = {}  # name -> "number" | "drift", in first-seen order
    for record in records.values():
        if not isinstance(record, _AnalogRecord):
            raise BenchmarkError(f"AnalogNAS-Bench data {data_file} holds a {type(record).__name__}, not a record.")
        for key, value in vars(record).items():
            if key == "architecture":
                continue
            kind = "drift" if isinstance(value, _AnalogDrift) else "number" if _is_number(value) else None
            if kind is not None:
                fields.setdefault(key, kind)

    tuples = list(records.keys())
    targets = {key: np.full(len(tuples), np.nan) for key in fields}
    uncertainties = {key: np.full(len(tuples), np.nan) for key, kind in fields.items() if kind == "drift"}
    for row, arch in enumerate(tuples):
        attributes = vars(records[arch])
        for key, kind in fields.items():
            value = attributes.get(key)
            if kind == "drift" and isinstance(value, _AnalogDrift):
                targets[key][row] = float(getattr(value, "value", math.nan))
                uncertainties[key][row] = float(getattr(value, "uncertainty", math.nan))
            elif kind == "number" and _is_number(value):
                targets[key][row] = float(value)
    return targets, uncertainties, tuples


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def import_analognas(
    out_path,
    *,
    probe: Probe,
    name: str = "analognas-bench",
    dataset: str = "cifar10",
    num_classes: int | None = None,
    data_file=None,
) -> Benchmark:
    """Import AnalogNAS-Bench (all 15,625 NB201 cells, CIFAR-10) from the installed package.

    Its keys are NASLib 6-tuples (checked: the identity mapping to NASLib's encoding gives
    Spearman 0.991 against NB201's CIFAR-10 test accuracy; see shared/data/README.md).
    Targets keep the package's field names (``baseline_accuracy``, ``ptq_accuracy``,
    ``qat_accuracy``, ``noisy_accuracy``, ``analog_accuracy`` and the eight ``*_drift_<s>``
    accuracies after <s> seconds of drift, with their ± uncertainty as ``targets/<name>_std``).
    Architectures are sorted by the space's ordinal, which is also their id: AnalogNAS-Bench
    has no NB201 index of its own. `data_file` overrides the installed package's data file.
    """
    from zcnas.spaces import get_space

    space = get_space("nb201")
    if data_file is None:
        data_file, version = analognas_data_file()
        package = f"{ANALOGNAS_PACKAGE} {version}"
    else:
        data_file = Path(data_file)
        package = f"{ANALOGNAS_PACKAGE} data file {data_file.name}"
    targets, uncertainties, tuples = read_analognas(data_file)

    encodings = []
    for arch in tuples:
        try:
            encodings.append(space.from_naslib(arch))
        except ArchError as error:
            raise BenchmarkError(
                f"AnalogNAS-Bench data {data_file} holds architecture {arch!r}, which is not a NASLib "
                f"NB201 tuple ({str(error).rstrip('.')})."
            ) from None
    ordinals = np.array([space.ordinal(e) for e in encodings], dtype=np.int64)
    order = np.argsort(ordinals, kind="stable")

    target_attrs = {}
    for key in targets:
        attrs = {"package_field": key, "unit": "percent"}
        if "_drift_" in key:
            attrs["drift_seconds"] = int(key.rsplit("_", 1)[1]) if key.rsplit("_", 1)[1].isdigit() else None
            attrs["std_meaning"] = "the package's ± uncertainty of this drift measurement"
        target_attrs[key] = attrs

    write_benchmark(
        out_path,
        name=name,
        search_space=space.name,
        dataset=dataset,
        num_classes=num_classes_for(dataset, num_classes),
        encodings=[encodings[i] for i in order],
        index=ordinals[order],
        targets={key: values[order] for key, values in targets.items()},
        target_std={key: values[order] for key, values in uncertainties.items()},
        target_attrs=target_attrs,
        probe_images=probe.images,
        probe_labels=probe.labels,
        probe_mean=probe.mean,
        probe_std=probe.std,
        source=f"{package} (data.anb, NASLib tuples); zcnas {__version__} bench import analognas; probe {probe.source}",
        extra_attrs={"index_meaning": "zcnas nb201 ordinal (NB201.ordinal), not the NAS-Bench-201 index"},
    )
    return open_benchmark(out_path)

"""NAS-Bench-Suite-Zero tables as zcnas benchmarks plus reference runs.

NAS-Bench-Suite-Zero (Krishnakumar et al., NeurIPS 2022 Datasets and Benchmarks) published
the zero-cost proxy scores NASLib computed on samples of several search spaces, with each
architecture's accuracy, as JSON files (NASLib ``naslib/data/zc_<space>.json``); for NB201
a CSV export of the same table exists. `import_naslib_zc` turns one task of such a file into

* a benchmark file (architectures in the space's canonical form, the ``val_accuracy``
  target, Suite-Zero's ``idx`` as ``archs/index`` where the table has one), and
* a finished run file next to it (``B.suitezero.h5``) holding Suite-Zero's scores, so that
  ``zcnas report`` and ``zcnas combine`` work on it at once and ``zcnas compare`` can set a
  zcnas run of the same proxies against it.

The file kinds, told apart by their structure (`read_suite_zero`):

* NB201 CSV: columns ``dataset, naslib_idx, naslib_op_indices, nb201_index, arch_str,
  val_accuracy`` then one column per proxy; one block of rows per dataset.
* NB201 JSON: ``{dataset: {"(0, 2, 3, 2, 3, 1)": {"idx", "arch", proxy: {"score", "time"},
  "val_accuracy"}}}`` (NASLib op tuples, converted by `NB201.from_naslib`).
* NB101: ``{"nasbench101": {"cifar10": {"(56 ints)": {proxy: score, "val_accuracy"}}}}``.
* NB301 (DARTS): ``{"cifar10": {"[[(0, 0), (1, 5), ...], [...]]": {...}}}``.
* TransNAS-Bench-101 micro / macro: ``{task: {"(1, 0, 0, 2, 1, 0)": {...}}}`` for the 7
  Taskonomy tasks; micro or macro from the file name, else from which space parses every key.

Scores are kept as Suite-Zero stored them, under zcnas's proxy names (``jacov`` is
``jacob_cov``), with one exception: zcnas's ``plain`` is the negation of NASLib's (see
`zcnas.proxies.gradient.plain`), so the reference column holds −plain and compares like with
like. NASLib stores ``ln(synflow)`` (``naslib/predictors/zerocost.py``) where zcnas keeps the
raw value: the ranks, and so every rank metric, are the same; the values are not. NASLib
replaces a NaN or infinite score by −1e8; that value, and a score the table lacks, become a
failure of that proxy on that architecture (NaN, with the reason), counted.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zcnas import __version__
from zcnas.bench.format import Benchmark, open_benchmark, write_benchmark
from zcnas.bench.probe import Probe
from zcnas.errors import ArchError, BenchmarkError

# Suite-Zero (NASLib) proxy name -> zcnas proxy name, where they differ.
ZCNAS_NAME = {"jacov": "jacob_cov"}
# zcnas proxies defined with the opposite sign of NASLib's (negated at the source in zcnas).
NEGATED = {"plain": "zcnas negates NASLib's plain (higher = predicted better), so the column holds -plain"}
# NASLib transforms zcnas does not apply; ranks are unchanged.
TRANSFORMS = {"synflow": "NASLib stores ln(synflow); zcnas's synflow is the raw sum (same ranks)"}
# NASLib's ZeroCost.query replaces a NaN or infinite score by this value.
NASLIB_FAILURE = -1e8
NASLIB_FAILURE_MESSAGE = "Suite-Zero stored -1e8, NASLib's marker for a NaN or infinite score"
MISSING_MESSAGE = "the Suite-Zero table holds no score for this architecture"

ORIGIN = (
    "NAS-Bench-Suite-Zero (Krishnakumar et al., NeurIPS 2022 Datasets and Benchmarks), scores precomputed "
    "by NASLib; imported, not computed by zcnas"
)
TRANSBENCH_TASKS = (
    "class_scene", "class_object", "autoencoder", "normal", "jigsaw", "room_layout", "segmentsemantic",
)
NB201_DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
ALL_TASKS = "all"
TARGET = "val_accuracy"
_META_FIELDS = {"idx", "arch", TARGET}
_CSV_META = {"dataset", "naslib_idx", "naslib_op_indices", "nb201_index", "arch_str", TARGET}
_COMMIT = re.compile(r"(?:^|[_-])([0-9a-f]{7,40})$")


@dataclass
class SuiteZeroRow:
    """One architecture of one task, as the table holds it."""

    key: str  # the table's own key (NASLib's encoding text)
    encoding: str  # canonical in the space
    index: int | None  # Suite-Zero's idx / naslib_idx, None when the table has none
    target: float
    scores: dict[str, float]  # Suite-Zero proxy name -> value (NaN: the table has none)
    seconds: dict[str, float]  # Suite-Zero proxy name -> seconds NASLib measured (NaN: unknown)


@dataclass
class SuiteZeroTable:
    path: Path
    kind: str  # "nb201-csv", "nb201-json", "nasbench101", "nasbench301", "transbench101"
    space: str
    tasks: dict[str, list[SuiteZeroRow]]

    @property
    def task_names(self) -> list[str]:
        return list(self.tasks)


@dataclass
class ImportedTask:
    """What `import_naslib_zc` wrote for one task."""

    task: str
    benchmark: Benchmark
    run_path: Path
    proxies: list[str]  # zcnas names, in the table's order
    failures: dict[str, int]  # proxy -> architectures without a usable score
    duplicates: int  # table rows dropped because their architecture appeared earlier
    n_rows: int  # rows of the task in the table
    reference: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- reading


def read_suite_zero(path, *, space: str | None = None) -> SuiteZeroTable:
    """Read a Suite-Zero table (JSON or the NB201 CSV) and tell its space from its structure.

    `space` overrides the detection (a registered space name). Every key is canonicalised in
    the space; a file of another shape, or a key that does not parse, is a `BenchmarkError`
    in one sentence.
    """
    path = Path(path)
    if not path.is_file():
        raise BenchmarkError(f"Suite-Zero file {path} does not exist.")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise BenchmarkError(
            f"{path} is not a text file; give a NAS-Bench-Suite-Zero table (NASLib's zc_<space>.json, or the NB201 CSV)."
        ) from None
    if path.suffix.lower() == ".csv" or not text.lstrip().startswith(("{", "[")):
        return _read_csv(path, text, space)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise BenchmarkError(
            f"{path} is not valid JSON (line {error.lineno}: {error.msg}); give a NAS-Bench-Suite-Zero table "
            "(NASLib's zc_<space>.json, or the NB201 CSV)."
        ) from None
    return _read_json(path, data, space)


def _shape_error(path: Path, what: str) -> BenchmarkError:
    return BenchmarkError(
        f"{path} is not a NAS-Bench-Suite-Zero table: {what} (expected {{task: {{architecture: "
        "{proxy: score, ..., 'val_accuracy': number}}}, as NASLib's naslib/data/zc_<space>.json)."
    )


def _read_json(path: Path, data, space: str | None) -> SuiteZeroTable:
    if not isinstance(data, dict) or not data:
        raise _shape_error(path, f"its top level is {_kind_of(data)}, not an object of tasks")
    kind = None
    if list(data) == ["nasbench101"]:
        data, kind = data["nasbench101"], "nasbench101"
        if not isinstance(data, dict) or not data:
            raise _shape_error(path, "'nasbench101' holds no object of tasks")
    for task, archs in data.items():
        if not isinstance(archs, dict) or not archs:
            raise _shape_error(path, f"task {task!r} holds {_kind_of(archs)}, not an object of architectures")
        for key, record in archs.items():
            if not isinstance(record, dict):
                raise _shape_error(path, f"architecture {key!r} of task {task!r} holds {_kind_of(record)}")
            if TARGET not in record:
                raise _shape_error(path, f"architecture {key!r} of task {task!r} has no 'val_accuracy'")
            break
    keys = [key for archs in data.values() for key in archs]
    if kind is None:
        kind = _json_kind(path, data, keys)
    space_name = space or {
        "nasbench101": "nb101",
        "nasbench301": "darts",
        "nb201-json": "nb201",
    }.get(kind) or _transbench_space(path, keys)
    to_canonical = _canonicaliser(space_name, naslib_tuples=space_name == "nb201")
    tasks = {}
    for task, archs in data.items():
        rows = []
        for key, record in archs.items():
            where = f"{path}, task {task!r}, architecture {key!r}"
            if not isinstance(record, dict):
                raise _shape_error(path, f"architecture {key!r} of task {task!r} holds {_kind_of(record)}")
            scores, seconds = {}, {}
            for name, value in record.items():
                if name in _META_FIELDS:
                    continue
                scores[name], seconds[name] = _score_of(value, f"{where}, proxy {name!r}")
            rows.append(
                SuiteZeroRow(
                    key=key,
                    encoding=_canonical_or_error(to_canonical, key, where, space_name),
                    index=_optional_int(record.get("idx"), f"{where}: 'idx'"),
                    target=_number(record.get(TARGET), f"{where}: 'val_accuracy'"),
                    scores=scores,
                    seconds=seconds,
                )
            )
        tasks[str(task)] = rows
    return SuiteZeroTable(path=path, kind=kind, space=space_name, tasks=tasks)


def _json_kind(path: Path, data: dict, keys: list[str]) -> str:
    first = keys[0].strip() if keys else ""
    if first.startswith("[["):
        return "nasbench301"
    if set(data) <= set(TRANSBENCH_TASKS):
        return "transbench101"
    if set(data) <= set(NB201_DATASETS) and first.startswith("("):
        return "nb201-json"
    raise _shape_error(
        path,
        f"its tasks ({', '.join(map(str, list(data)[:4]))}) and keys (e.g. {first[:40]!r}) match none of "
        "NB101, NB201, NB301 or TransNAS-Bench-101; name the space with --space",
    )


def _transbench_space(path: Path, keys: list[str]) -> str:
    """micro or macro: from the file name, else the one space that parses every key."""
    name = path.name.lower()
    if "micro" in name and "macro" not in name:
        return "transbench101_micro"
    if "macro" in name and "micro" not in name:
        return "transbench101_macro"
    fits = []
    for candidate in ("transbench101_micro", "transbench101_macro"):
        to_canonical = _canonicaliser(candidate)
        try:
            for key in keys:
                to_canonical(key)
        except ArchError:
            continue
        fits.append(candidate)
    if len(fits) == 1:
        return fits[0]
    raise BenchmarkError(
        f"{path} holds TransNAS-Bench-101 tasks, but its name does not say micro or macro and its architectures "
        f"{'fit both spaces' if fits else 'fit neither space'}; give --space transbench101_micro or transbench101_macro."
    )


def _read_csv(path: Path, text: str, space: str | None) -> SuiteZeroTable:
    try:
        reader = csv.reader(text.splitlines())
        header = [column.strip() for column in next(reader, [])]
        rows = [row for row in reader if row]
    except csv.Error as error:
        raise BenchmarkError(f"{path} cannot be read as CSV ({error}).") from None
    arch_column = "arch_str" if "arch_str" in header else "naslib_op_indices" if "naslib_op_indices" in header else None
    if "dataset" not in header or TARGET not in header or arch_column is None:
        raise BenchmarkError(
            f"{path} is neither a NAS-Bench-Suite-Zero JSON table nor its NB201 CSV, which needs the columns "
            f"dataset, val_accuracy and arch_str or naslib_op_indices (its first line: {', '.join(header[:6])[:80]!r})."
        )
    space_name = space or "nb201"
    proxies = [c for c in header if c not in _CSV_META]
    at = {column: i for i, column in enumerate(header)}
    check_naslib = space_name == "nb201" and arch_column == "arch_str" and "naslib_op_indices" in at
    to_canonical = _canonicaliser(space_name, naslib_tuples=arch_column == "naslib_op_indices" and space_name == "nb201")
    from_naslib = _canonicaliser("nb201", naslib_tuples=True) if check_naslib else None
    tasks: dict[str, list[SuiteZeroRow]] = {}
    for line, row in enumerate(rows, start=2):
        where = f"{path} line {line}"
        if len(row) != len(header):
            raise BenchmarkError(f"{where} has {len(row)} cells but the header has {len(header)}.")
        key = row[at[arch_column]]
        encoding = _canonical_or_error(to_canonical, key, where, space_name)
        if from_naslib is not None:
            naslib = row[at["naslib_op_indices"]]
            if _canonical_or_error(from_naslib, naslib, where, "nb201") != encoding:
                raise BenchmarkError(
                    f"{where}: arch_str {key!r} and naslib_op_indices {naslib!r} are different architectures."
                )
        scores = {name: _csv_number(row[at[name]], f"{where}, column {name!r}") for name in proxies}
        tasks.setdefault(row[at["dataset"]].strip(), []).append(
            SuiteZeroRow(
                key=key,
                encoding=encoding,
                index=_optional_int(row[at["naslib_idx"]], f"{where}: naslib_idx") if "naslib_idx" in at else None,
                target=_csv_number(row[at[TARGET]], f"{where}, column 'val_accuracy'"),
                scores=scores,
                seconds={name: math.nan for name in proxies},
            )
        )
    if not tasks:
        raise BenchmarkError(f"{path} has a header but no rows.")
    return SuiteZeroTable(path=path, kind="nb201-csv", space=space_name, tasks=tasks)


def _canonicaliser(space_name: str, naslib_tuples: bool = False):
    from zcnas.spaces import get_space

    try:
        space = get_space(space_name)
    except ArchError as error:
        raise BenchmarkError(str(error)) from None
    if naslib_tuples and hasattr(space, "from_naslib"):
        return space.from_naslib
    return space.canonical


def _canonical_or_error(to_canonical, key: str, where: str, space_name: str) -> str:
    try:
        return to_canonical(key)
    except ArchError as error:
        reason = str(error).rstrip(".")
        raise BenchmarkError(f"{where} is not an architecture of the {space_name} space: {reason}.") from None


def _score_of(value, where: str) -> tuple[float, float]:
    """(score, seconds) of one proxy entry: a number, or {"score": number, "time": seconds}."""
    if isinstance(value, dict):
        if "score" not in value:
            raise BenchmarkError(f"{where} is an object without 'score'.")
        seconds = value.get("time")
        return _number(value["score"], where, allow_none=True), _number(seconds, where, allow_none=True)
    return _number(value, where, allow_none=True), math.nan


def _number(value, where: str, allow_none: bool = False) -> float:
    if value is None and allow_none:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BenchmarkError(f"{where} holds {value!r}, not a number.")
    return float(value)


def _csv_number(cell: str, where: str) -> float:
    text = cell.strip()
    if text == "":
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise BenchmarkError(f"{where} holds {cell!r}, not a number.") from None


def _optional_int(value, where: str) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        raise BenchmarkError(f"{where} holds {value!r}, not an integer.") from None
    return number


def _kind_of(value) -> str:
    return {dict: "an object", list: "a list", str: "a string"}.get(type(value), type(value).__name__)


# --------------------------------------------------------------------------- importing


def import_naslib_zc(
    path,
    out,
    *,
    task: str | None = None,
    space: str | None = None,
    name: str | None = None,
    probe: Probe | None = None,
    run_out=None,
    num_classes: int | None = None,
    overwrite: bool = False,
) -> list[ImportedTask]:
    """Write a benchmark and a reference run for one task of a Suite-Zero table, or for each.

    `task` picks the dataset/task of a file that has several (file 7: cifar10, cifar100,
    ImageNet16-120; TransNAS-Bench-101: 7 Taskonomy tasks); a file with one needs none.
    ``task="all"`` writes ``<out>/<task>.h5`` and ``<out>/<task>.suitezero.h5`` for every
    task, `out` then being a folder. Otherwise the run goes to `run_out`, by default
    ``<out stem>.suitezero.h5`` next to `out`. `probe` attaches probe images (buildable spaces
    only), so that zcnas can score the same architectures. Existing files are refused unless
    `overwrite`.
    """
    from zcnas.bench.importers import file_sha256
    from zcnas.spaces import get_space

    table = read_suite_zero(path, space=space)
    out = Path(out)
    chosen = _choose_tasks(table, task)
    if task == ALL_TASKS:
        if run_out is not None:
            raise BenchmarkError("--run-out names one run file; with --task all each task's run goes next to its benchmark.")
        if out.exists() and not out.is_dir():
            raise BenchmarkError(f"With --task all, --out names a folder, and {out} is a file.")
        plan = [(t, out / f"{_file_part(t)}.h5", out / f"{_file_part(t)}.suitezero.h5") for t in chosen]
    else:
        if out.suffix.lower() not in (".h5", ".hdf5"):
            raise BenchmarkError(f"Output file {out} should end in .h5 (it is an HDF5 file).")
        run_path = Path(run_out) if run_out is not None else out.with_name(f"{out.stem}.suitezero.h5")
        if run_path.resolve() == out.resolve():
            raise BenchmarkError(f"--run-out {run_path} is the benchmark file itself; give the run another name.")
        plan = [(chosen[0], out, run_path)]
    if not overwrite:
        for _, bench_path, run_path in plan:
            for existing in (bench_path, run_path):
                if existing.exists():
                    raise BenchmarkError(f"Output file {existing} already exists; pass --force to replace it.")

    space_obj = get_space(table.space)
    if probe is not None and not getattr(space_obj, "can_build", True):
        raise BenchmarkError(
            f"The {table.space} space is table-only (zcnas builds none of its networks), so it takes no --probe."
        )
    sha = file_sha256(table.path)
    commit = _commit_of(table.path)
    results = []
    for task_name, bench_path, run_path in plan:
        results.append(
            _import_task(
                table, task_name, bench_path, run_path, space_obj=space_obj, name=name, probe=probe,
                num_classes=num_classes, sha=sha, commit=commit, several=len(plan) > 1,
            )
        )
    return results


def _unusable(raw: float) -> str:
    """Why a stored Suite-Zero value is no score ("" when it is one)."""
    if math.isnan(raw):
        return MISSING_MESSAGE
    if raw == NASLIB_FAILURE:
        return NASLIB_FAILURE_MESSAGE
    if not math.isfinite(raw):
        return f"Suite-Zero stored {raw}, not a finite score"
    return ""


def _self_agreement(rows: list[SuiteZeroRow], columns: dict[str, str]) -> dict:
    """Suite-Zero's agreement with itself, from the networks its table scored under two keys.

    NASLib's keys are not canonical: NB101's padded spellings of one pruned cell (245 of the
    500 keys of its table spell one of 46 networks) were each built, initialised and given a fresh probe
    batch, so two keys of one network are two independent runs of Suite-Zero's protocol on
    it. Per proxy: Spearman and Kendall between the first and the second key's score of every
    such network (table order), with 95% bootstrap intervals over those networks (1,000
    resamples, seed 0), where a proxy has at least 3 usable pairs. This is the run-to-run
    noise of the reference itself: an agreement of zcnas with the reference can be no better
    than about what the reference has with itself.
    """
    from zcnas.report import bootstrap
    from zcnas.report.compare import agreement

    keys: dict[str, list[SuiteZeroRow]] = {}
    for row in rows:
        keys.setdefault(row.encoding, []).append(row)
    pairs = [group[:2] for group in keys.values() if len(group) >= 2]
    result = {
        "measured": (
            f"first two keys of each of the {len(pairs)} networks the table holds under 2 or more keys "
            f"({sum(len(g) for g in keys.values() if len(g) >= 2)} keys in all)"
        ),
        "networks": len(pairs),
        "proxies": {},
    }
    if len(pairs) < 3:
        return result
    counts = bootstrap.resample_counts(len(pairs), bootstrap.DEFAULT_RESAMPLES, 0)
    for column, naslib_name in columns.items():
        a, b = (
            np.array([math.nan if _unusable(v := p[k].scores.get(naslib_name, math.nan)) else v for p in pairs])
            for k in (0, 1)
        )
        if np.sum(np.isfinite(a) & np.isfinite(b)) < 3:
            continue
        entry = agreement(a, b, counts, bootstrap.DEFAULT_CONFIDENCE)
        entry["n"] = int(np.sum(np.isfinite(a) & np.isfinite(b)))
        result["proxies"][column] = entry
    return result


def _choose_tasks(table: SuiteZeroTable, task: str | None) -> list[str]:
    names = table.task_names
    if task == ALL_TASKS:
        return names
    if task is None:
        if len(names) == 1:
            return names
        raise BenchmarkError(
            f"{table.path} holds {len(names)} tasks; choose one with --task: {', '.join(names)} (or --task all)."
        )
    if task in names:
        return [task]
    folded = {n.lower(): n for n in names}
    if task.lower() in folded:
        return [folded[task.lower()]]
    raise BenchmarkError(f"{table.path} has no task {task!r}; its tasks: {', '.join(names)} (or --task all).")


def _file_part(task: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", task)


def _commit_of(path: Path) -> str | None:
    """The NASLib commit a file name carries (naslib_zc_nasbench301_6639fd1.json -> 6639fd1)."""
    match = _COMMIT.search(path.stem)
    return match.group(1) if match else None


def _import_task(
    table: SuiteZeroTable,
    task: str,
    bench_path: Path,
    run_path: Path,
    *,
    space_obj,
    name: str | None,
    probe: Probe | None,
    num_classes: int | None,
    sha: str,
    commit: str | None,
    several: bool,
) -> ImportedTask:
    from zcnas.bench.importers import num_classes_for
    from zcnas.run.store import FAILED, OK, RunSpec, RunStore

    all_rows = table.tasks[task]
    rows, seen = [], set()
    for row in all_rows:
        if row.encoding in seen:
            continue  # the same architecture under another NASLib key: keep its first row
        seen.add(row.encoding)
        rows.append(row)
    duplicates = len(all_rows) - len(rows)

    if all(row.index is not None for row in rows) and len({row.index for row in rows}) == len(rows):
        index = np.array([row.index for row in rows], dtype=np.int64)
        index_meaning = "Suite-Zero's idx (naslib_idx in the CSV): NASLib's number of the architecture in its sample"
    else:
        index = np.arange(len(rows), dtype=np.int64)
        index_meaning = "position of the architecture in the Suite-Zero table (0-based; the table has no unique idx)"

    buildable = getattr(space_obj, "can_build", True)
    if num_classes is None:
        # A table-only benchmark builds no network, so its class count is never used.
        num_classes = num_classes_for(task, None) if buildable else 1
    bench_name = name or f"suitezero-{table.space}-{task}"
    if name and several:
        bench_name = f"{name}-{task}"
    target_note = {
        "nasbench301": "NAS-Bench-301's surrogate prediction of the validation accuracy (not a trained accuracy)",
        "transbench101": f"the {task} task's metric as NASLib queried TransNAS-Bench-101 (higher is better)",
    }.get(table.kind, "the validation accuracy NASLib queried from the benchmark (%)")
    source = (
        f"zcnas {__version__} bench import naslib-zc {table.path.name} (sha256 {sha[:16]}, task {task}); "
        f"NAS-Bench-Suite-Zero table{f', NASLib commit {commit}' if commit else ''}; "
        + (f"probe {probe.source}" if probe is not None else "no probe data")
    )
    write_benchmark(
        bench_path,
        name=bench_name,
        search_space=table.space,
        dataset=task,
        num_classes=num_classes,
        encodings=[row.encoding for row in rows],
        index=index,
        targets={TARGET: np.array([row.target for row in rows], dtype=np.float64)},
        target_attrs={TARGET: {"source_field": TARGET, "description": f"Suite-Zero's val_accuracy: {target_note}"}},
        probe_images=None if probe is None else probe.images,
        probe_labels=None if probe is None else probe.labels,
        probe_mean=() if probe is None else probe.mean,
        probe_std=() if probe is None else probe.std,
        source=source,
        extra_attrs={"index_meaning": index_meaning, "suite_zero_task": task},
    )
    benchmark = open_benchmark(bench_path)

    naslib_names = list(dict.fromkeys(p for row in rows for p in row.scores))
    columns = {ZCNAS_NAME.get(p, p): p for p in naslib_names}
    from zcnas.proxies import list_proxies

    registered = {info.name for info in list_proxies("*")}
    failures: dict[str, int] = {}
    proxy_origin: dict[str, dict] = {}
    scores, status, errors, seconds = {}, {}, {}, {}
    for column, naslib_name in columns.items():
        sign = -1.0 if column in NEGATED else 1.0
        values = np.full(len(rows), np.nan)
        state = np.full(len(rows), OK, dtype=np.int8)
        messages = [""] * len(rows)
        spent = np.full(len(rows), np.nan)
        for i, row in enumerate(rows):
            spent[i] = row.seconds.get(naslib_name, math.nan)
            message = _unusable(row.scores.get(naslib_name, math.nan))
            if message:
                state[i], messages[i] = FAILED, message
            else:
                values[i] = sign * row.scores[naslib_name]
        scores[column], status[column], errors[column], seconds[column] = values, state, messages, spent
        failures[column] = int((state == FAILED).sum())
        proxy_origin[column] = {
            "naslib_name": naslib_name,
            "zcnas_proxy": column in registered,
            "sign": "negated" if sign < 0 else "as stored",
            "note": NEGATED.get(column) or TRANSFORMS.get(column) or "",
            "failed": failures[column],
        }

    reference = {
        "origin": ORIGIN,
        "importer": "zcnas bench import naslib-zc",
        "source_file": table.path.name,
        "source_sha256": sha,
        "naslib_commit": commit,
        "table_kind": table.kind,
        "task": task,
        "rows": len(all_rows),
        "duplicates_dropped": duplicates,
        "seconds": (
            "NASLib's measured time per proxy and architecture (Suite-Zero's hardware)"
            if any(np.isfinite(spent).any() for spent in seconds.values())
            else "not in the table (NaN)"
        ),
        "proxies": proxy_origin,
        "self_agreement": _self_agreement(all_rows, columns),
    }
    spec = RunSpec(
        benchmark=str(bench_path.resolve()),
        benchmark_name=benchmark.name,
        search_space=table.space,
        dataset=task,
        num_classes=int(num_classes),
        proxies=tuple(columns),
        seed=0,
        sample=len(rows),
        batch_size=0,  # Suite-Zero's probe batch is not recorded in its tables
        reference=reference,
    )
    RunStore.create_reference(
        run_path, spec, benchmark, scores=scores, status=status, errors=errors, seconds=seconds
    )
    return ImportedTask(
        task=task,
        benchmark=benchmark,
        run_path=run_path,
        proxies=list(columns),
        failures=failures,
        duplicates=duplicates,
        n_rows=len(all_rows),
        reference=reference,
    )

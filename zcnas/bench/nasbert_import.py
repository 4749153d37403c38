"""`zcnas bench import nasbert`: NAS-Bench-BERT's benchmark JSON -> a token benchmark file.

NAS-Bench-BERT (Serianni & Kalita, ACL 2023; github aaronserianni/training-free-nas
``data/BERT_benchmark.json``) holds 500 records, each an architecture
(``hparams.model_hparam_overrides``) and its GLUE dev scores after ELECTRA pre-training and
fine-tuning: cola, mnli, mrpc, qnli, qqp, rte, sst, sts and ``glue`` (their mean). The import
writes one benchmark (space ``nasbert``, dataset ``glue``) with the nine scores as targets,
``glue`` first and primary, the benchmark's ``id`` as ``archs/index``, and a token probe
(`zcnas.bench.text_probe`).

Duplicates: the 500 ids hold 491 distinct architectures (nine configurations appear twice, with
different GLUE scores, as each was trained separately). A benchmark file holds one row per
architecture, so the first id of each pair is kept and the dropped ids are recorded (root
attribute ``duplicates_dropped``, JSON ``{dropped id: kept id}``) and printed. Averaging the
two trainings was the alternative; keeping the first leaves every row a real measurement
and matches the authors' scores row for row (`--reference-scores`).

`--reference-scores` also turns the authors' training-free metric values
(``data/BERT_results_activation.csv``) into a finished *reference run* of the benchmark, with
zcnas's proxy names (`REFERENCE_COLUMNS`), so `zcnas report`, `compare` and `combine` read the
authors' numbers as they read a zcnas run.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zcnas import __version__
from zcnas.bench.format import Benchmark, open_benchmark, write_benchmark
from zcnas.bench.text_probe import JARGON_NAME, RANDOM_NAME, random_probe, text_probe
from zcnas.errors import BenchmarkError, ZcnasError

TASKS = ("cola", "mnli", "mrpc", "qnli", "qqp", "rte", "sst", "sts")
TARGETS = ("glue",) + TASKS
# Most GLUE tasks are binary; the networks get a 2-class head and the probe 2 surrogate classes.
NUM_CLASSES = 2
ORIGIN = "Serianni & Kalita, ACL 2023 (NAS-Bench-BERT), BERT_metrics.ipynb"

# The authors' CSV columns -> zcnas proxy names (zcnas/proxies/transformer.py). Their "Jacobian
# Score Normalized" column is the cosine score, not a normalised covariance score.
REFERENCE_COLUMNS = {
    "Synaptic Diversity": "synaptic_diversity",
    "Synaptic Diversity Normalized": "synaptic_diversity_normalized",
    "Synaptic Saliency": "synaptic_saliency",
    "Synaptic Saliency Normalized": "synaptic_saliency_normalized",
    "Activation Distance": "activation_distance",
    "Activation Distance Normalized": "activation_distance_normalized",
    "Jacobian Score": "jacobian_score",
    "Jacobian Score Normalized": "jacobian_cosine",
    "Number of Parameters": "num_parameters",
    "Head Importance": "head_importance",
    "Head Importance Normalized": "head_importance_normalized",
    "Head Confidence": "head_confidence",
    "Head Confidence Normalized": "head_confidence_normalized",
    "Head Softmax Confidence": "head_softmax_confidence",
    "Head Softmax Confidence Normalized": "head_softmax_confidence_normalized",
}
REFERENCE_NOTES = {
    "activation_distance": "as published: the authors' value times the number of hooks their notebook had "
    "accumulated on a shared GELU (the layers of the models scored so far, +26 before id 365); see the "
    "activation_distance docstring. activation_distance_normalized is unaffected.",
}


@dataclass
class NasbertRecords:
    """The benchmark JSON, read and checked: one entry per id, in file order."""

    path: Path
    sha256: str
    ids: list[int]
    encodings: list[str]
    scores: dict[str, np.ndarray]


@dataclass
class NasbertImport:
    benchmark: Benchmark
    kept: int
    duplicates: dict[int, int] = field(default_factory=dict)  # dropped id -> kept id
    run_path: Path | None = None


def read_records(path: str | Path) -> NasbertRecords:
    """Read NAS-Bench-BERT's JSON (a list of records with id, scores and hparams); one sentence on a bad file."""
    from zcnas.spaces import get_space

    path = Path(path)
    if not path.is_file():
        raise BenchmarkError(f"NAS-Bench-BERT file {path} does not exist or is not a file.")
    raw = path.read_bytes()
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BenchmarkError(f"{path} is not JSON; give NAS-Bench-BERT's data/BERT_benchmark.json.") from None
    if not isinstance(data, list) or not data or not all(isinstance(r, dict) for r in data):
        raise BenchmarkError(f"{path} is not a list of NAS-Bench-BERT records (id, scores, hparams).")
    space = get_space("nasbert")
    ids, encodings = [], []
    scores = {target: np.full(len(data), np.nan) for target in TARGETS}
    for row, record in enumerate(data):
        where = f"{path}: record {row}"
        if not isinstance(record.get("id"), int) or not isinstance(record.get("scores"), dict):
            raise BenchmarkError(f"{where} lacks an integer 'id' or a 'scores' dict.")
        try:
            encodings.append(space.canonical(record))
        except ZcnasError as error:
            raise BenchmarkError(f"{where} (id {record['id']}) is not a NAS-Bench-BERT architecture: {error}") from None
        ids.append(record["id"])
        for target in TARGETS:
            value = record["scores"].get(target)
            if value is not None and not isinstance(value, (int, float)):
                raise BenchmarkError(f"{where} (id {record['id']}) has a non-numeric {target} score {value!r}.")
            scores[target][row] = math.nan if value is None else float(value)
    if len(set(ids)) != len(ids):
        raise BenchmarkError(f"{path} repeats an id; NAS-Bench-BERT ids are unique.")
    return NasbertRecords(path, hashlib.sha256(raw).hexdigest(), ids, encodings, scores)


def import_nasbert(
    path: str | Path,
    out: str | Path,
    *,
    probe_text: str = JARGON_NAME,
    probe_size: int = 512,
    probe_length: int = 128,
    probe_seed: int = 0,
    as_scored: bool = False,
    name: str | None = None,
    reference_scores: str | Path | None = None,
    run_out: str | Path | None = None,
) -> NasbertImport:
    """Write the benchmark (and, with `reference_scores`, the authors' reference run)."""
    records = read_records(path)
    first_row: dict[str, int] = {}
    duplicates: dict[int, int] = {}
    for row, encoding in enumerate(records.encodings):
        if encoding in first_row:
            duplicates[records.ids[row]] = records.ids[first_row[encoding]]
        else:
            first_row[encoding] = row
    rows = sorted(first_row.values())

    if probe_text == RANDOM_NAME:
        probe = random_probe(size=probe_size, length=probe_length, seed=probe_seed, num_classes=NUM_CLASSES)
    else:
        probe = text_probe(probe_text, size=probe_size, length=probe_length, seed=probe_seed, num_classes=NUM_CLASSES)
    options = {"as_scored": True} if as_scored else {}
    networks = (
        "networks as the authors scored them (as_scored: hidden 256, feed-forward 1024 in every layer)"
        if as_scored
        else "networks as configured"
    )
    source = (
        f"zcnas {__version__} bench import nasbert {records.path.name} (sha256 {records.sha256[:16]}; "
        f"NAS-Bench-BERT, Serianni & Kalita ACL 2023, data CC-BY-4.0); {networks}; token probe: "
        f"{probe.size} sequences of {probe.length} tokens of {probe.attrs['text']}, seed {probe_seed}"
    )
    out = Path(out)
    write_benchmark(
        out,
        name=name or ("nasbert-scored" if as_scored else "nasbert"),
        search_space="nasbert",
        dataset="glue",
        num_classes=NUM_CLASSES,
        encodings=[records.encodings[r] for r in rows],
        index=np.array([records.ids[r] for r in rows], dtype=np.int64),
        targets={target: records.scores[target][rows] for target in TARGETS},
        target_attrs={
            target: {
                "description": (
                    "mean of the eight GLUE dev scores after ELECTRA pre-training (100k steps) and fine-tuning"
                    if target == "glue"
                    else f"GLUE {target} dev score after ELECTRA pre-training (100k steps) and fine-tuning"
                ),
                "source_field": f"scores.{target}",
            }
            for target in TARGETS
        },
        probe_tokens=probe,
        source=source,
        primary_target="glue",
        extra_attrs={
            "index_meaning": "NAS-Bench-BERT's id (the record's 'id' in BERT_benchmark.json)",
            "duplicates_dropped": json.dumps({str(k): v for k, v in duplicates.items()}),
            **({"space_options": json.dumps(options)} if options else {}),
        },
    )
    benchmark = open_benchmark(out)
    result = NasbertImport(benchmark, kept=len(rows), duplicates=duplicates)
    if reference_scores is not None:
        run_path = Path(run_out) if run_out is not None else out.with_name(out.stem + ".authors.h5")
        result.run_path = write_reference_run(benchmark, out, reference_scores, run_path, duplicates)
    return result


def read_reference_scores(path: str | Path) -> tuple[dict[int, dict[str, float]], str]:
    """The authors' CSV -> {id: {zcnas proxy: value}} and the file's SHA-256."""
    path = Path(path)
    if not path.is_file():
        raise BenchmarkError(f"Reference scores {path} do not exist or are not a file.")
    raw = path.read_bytes()
    rows = list(csv.DictReader(raw.decode("utf-8", errors="replace").splitlines()))
    missing = [column for column in ("ID", *REFERENCE_COLUMNS) if not rows or column not in rows[0]]
    if missing:
        raise BenchmarkError(
            f"{path} is not the authors' metric table (BERT_results_activation.csv): it lacks the column {missing[0]!r}."
        )
    values: dict[int, dict[str, float]] = {}
    for number, row in enumerate(rows):
        try:
            values[int(row["ID"])] = {name: float(row[column]) for column, name in REFERENCE_COLUMNS.items()}
        except (TypeError, ValueError):
            raise BenchmarkError(f"{path}: row {number + 2} has a non-numeric ID or score.") from None
    return values, hashlib.sha256(raw).hexdigest()


def write_reference_run(benchmark: Benchmark, bench_path: Path, scores_path, run_path: Path, duplicates: dict) -> Path:
    """A finished run holding the authors' scores of the benchmark's architectures (matched by id)."""
    from zcnas.run.store import FAILED, OK, RunSpec, RunStore

    values, sha = read_reference_scores(scores_path)
    proxies = tuple(REFERENCE_COLUMNS.values())
    n = benchmark.n_archs
    scores = {p: np.full(n, np.nan) for p in proxies}
    status = {p: np.full(n, OK, dtype=np.int8) for p in proxies}
    errors = {p: [""] * n for p in proxies}
    for row, arch_id in enumerate(benchmark.index.tolist()):
        found = values.get(int(arch_id))
        for p in proxies:
            value = math.nan if found is None else found[p]
            if math.isfinite(value):
                scores[p][row] = value
            else:
                status[p][row] = FAILED
                errors[p][row] = "not in the authors' table" if found is None else f"the authors' table holds {value}"
    reference = {
        "origin": ORIGIN,
        "importer": "zcnas bench import nasbert --reference-scores",
        "source_file": Path(scores_path).name,
        "source_sha256": sha,
        "rows": len(values),
        "duplicates_dropped": len(duplicates),
        "protocol": "ElectraModel as scored (hidden 256, feed-forward 1024), train mode, 128 OpenWebText documents "
        "padded to 512 ELECTRA WordPiece tokens, ones back-propagated from the last hidden state, torch seed 0",
        "proxies": {
            name: {"column": column, "note": REFERENCE_NOTES.get(name, "")} for column, name in REFERENCE_COLUMNS.items()
        },
    }
    spec = RunSpec(
        benchmark=str(bench_path.resolve()),
        benchmark_name=benchmark.name,
        search_space=benchmark.search_space,
        dataset=benchmark.dataset,
        num_classes=int(benchmark.num_classes),
        proxies=proxies,
        seed=0,
        sample=n,
        batch_size=0,  # 128 documents of 512 tokens; not a zcnas probe batch
        reference=reference,
    )
    RunStore.create_reference(run_path, spec, benchmark, scores=scores, status=status, errors=errors)
    return run_path

"""`zcnas bench ...`: import existing benchmarks into zcnas benchmark files and inspect them.

Thin: options are parsed here, the work is done by `zcnas.bench`, results are drawn with rich.
"""

from __future__ import annotations

import json
import math
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from zcnas.cli_common import check_seed, console, styled, user_errors, warn
from zcnas.errors import BenchmarkError
from zcnas.files import check_writable

bench_app = typer.Typer(
    help="Benchmark files: import existing benchmarks (CSV, AnalogNAS-Bench) and inspect them.",
    no_args_is_help=True,
)
import_app = typer.Typer(
    help=(
        "Convert an existing benchmark into a zcnas benchmark file (.h5) with a probe image set.\n\n"
        "Example: zcnas bench import csv nb201_accuracies.csv --dataset cifar10 "
        "--probe cifar-10-batches-py --out nb201-cifar10.h5"
    ),
    no_args_is_help=True,
)
bench_app.add_typer(import_app, name="import")


class ArchEncoding(str, Enum):
    arch_str = "arch_str"
    naslib = "naslib"


class ProbeStats(str, Enum):
    images = "images"
    cifar10 = "cifar10"
    cifar100 = "cifar100"


# Options shared by every importer.
PROBE = typer.Option(
    ...,
    "--probe",
    help="Probe images: an .npz with 'images' (uint8 N,H,W,C) and 'labels', a CIFAR python batch "
    "file (data_batch_1, test_batch, train) or the extracted cifar-10-batches-py / cifar-100-python directory.",
    show_default=False,
)
PROBE_SIZE = typer.Option(
    None, "--probe-size", help="Probe images to keep, class-balanced (default: all, at most 1024)."
)
PROBE_SEED = typer.Option(0, "--probe-seed", help="Seed of the class-balanced probe subset.")
PROBE_STATS = typer.Option(
    ProbeStats.images,
    "--probe-stats",
    help="Normalisation mean/std: computed from the probe source's images, or the standard CIFAR constants.",
)
FORCE = typer.Option(False, "--force", help="Replace the output file if it exists.")


def _load_probe(path: Path, size: Optional[int], seed: int, stats: ProbeStats):
    from zcnas.bench.probe import load_probe

    check_seed(seed, "--probe-seed")
    return load_probe(path, size=size, seed=seed, mean=None if stats is ProbeStats.images else stats.value)


def _check_out(out: Path, force: bool) -> None:
    check_writable(out, "--out", example="bench.h5")
    if out.exists() and not force:
        raise BenchmarkError(f"Output file {out} already exists; pass --force to replace it.")
    if out.suffix.lower() not in (".h5", ".hdf5"):
        raise BenchmarkError(f"Output file {out} should end in .h5 (it is an HDF5 file).")


@import_app.command("csv")
@user_errors
def import_csv_command(
    csv_file: Path = typer.Argument(..., help="CSV with one architecture per row.", show_default=False),
    dataset: str = typer.Option(..., "--dataset", help="Dataset the targets were measured on, e.g. cifar10.", show_default=False),
    probe: Path = PROBE,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Benchmark file to write (default: <csv name>.h5)."),
    num_classes: Optional[int] = typer.Option(
        None, "--num-classes", help="Classes of the dataset (default: known for cifar10, cifar100, ImageNet16-120)."
    ),
    name: Optional[str] = typer.Option(None, "--name", help="Benchmark name (default: the CSV file's stem)."),
    space: str = typer.Option("nb201", "--space", help="Search space of the architectures."),
    encoding: ArchEncoding = typer.Option(
        ArchEncoding.arch_str, "--encoding", help="What the architecture column holds: NB201 strings or NASLib tuples."
    ),
    arch_column: Optional[str] = typer.Option(
        None, "--arch-column", help="Architecture column (default: arch_str, or naslib_op_indices with --encoding naslib)."
    ),
    index_column: str = typer.Option(
        "index", "--index-column", help="Column of stable integer ids (the row number when the CSV has no 'index')."
    ),
    target: Optional[list[str]] = typer.Option(
        None, "--target", "-t", help="Target column, repeatable (default: every numeric column; a cell that is not a number is refused with its line)."
    ),
    exclude: Optional[list[str]] = typer.Option(None, "--exclude", "-x", help="Column not to import as a target (repeatable)."),
    probe_size: Optional[int] = PROBE_SIZE,
    probe_seed: int = PROBE_SEED,
    probe_stats: ProbeStats = PROBE_STATS,
    force: bool = FORCE,
):
    """Import a CSV of architectures and accuracies.

    Example: zcnas bench import csv nb201_accuracies.csv --dataset cifar10 --probe cifar10_train10k_jpeg.npz --exclude params_M --out nb201.h5
    """
    from zcnas.bench.importers import import_csv

    out = out or Path(f"{csv_file.stem}.h5")
    _check_out(out, force)
    probe_set = _load_probe(probe, probe_size, probe_seed, probe_stats)
    benchmark = import_csv(
        csv_file,
        out,
        probe=probe_set,
        dataset=dataset,
        num_classes=num_classes,
        name=name,
        space=space,
        encoding=encoding.value,
        arch_column=arch_column,
        index_column=index_column,
        target_columns=target or None,
        exclude_columns=exclude or (),
    )
    _report_written(benchmark)


@import_app.command("analognas")
@user_errors
def import_analognas_command(
    probe: Path = PROBE,
    out: Path = typer.Option(Path("analognas-bench.h5"), "--out", "-o", help="Benchmark file to write."),
    name: str = typer.Option("analognas-bench", "--name", help="Benchmark name."),
    probe_size: Optional[int] = PROBE_SIZE,
    probe_seed: int = PROBE_SEED,
    probe_stats: ProbeStats = PROBE_STATS,
    force: bool = FORCE,
):
    """Import AnalogNAS-Bench (15,625 NB201 cells on CIFAR-10) from the `analog-nasbench` package.

    Needs `pip install analog-nasbench`; its data file is read without running the package's code.

    Example: zcnas bench import analognas --probe cifar-10-batches-py --probe-stats cifar10 --out analognas.h5
    """
    from zcnas.bench.importers import analognas_data_file, import_analognas

    analognas_data_file()  # fail on a missing package before the probe is read
    _check_out(out, force)
    probe_set = _load_probe(probe, probe_size, probe_seed, probe_stats)
    benchmark = import_analognas(out, probe=probe_set, name=name)
    _report_written(benchmark)


@import_app.command("naslib-zc")
@user_errors
def import_naslib_zc_command(
    table: Path = typer.Argument(
        ..., help="NAS-Bench-Suite-Zero table: NASLib's zc_<space>.json, or the NB201 CSV export.", show_default=False
    ),
    task: Optional[str] = typer.Option(
        None,
        "--task",
        "--dataset",
        help="Task of a file with several (NB201: cifar10, cifar100, ImageNet16-120; TransNAS-Bench-101: its 7 "
        "Taskonomy tasks), or 'all' for one benchmark and run per task in the --out folder.",
    ),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Benchmark file to write (default: <table stem>[-<task>].h5); a folder with --task all."
    ),
    run_out: Optional[Path] = typer.Option(
        None, "--run-out", help="Reference run file to write (default: <out stem>.suitezero.h5 next to --out)."
    ),
    space: Optional[str] = typer.Option(None, "--space", help="Search space (default: told from the file's structure)."),
    name: Optional[str] = typer.Option(None, "--name", help="Benchmark name (default: suitezero-<space>-<task>)."),
    probe: Optional[Path] = typer.Option(
        None,
        "--probe",
        help="Probe images to attach (buildable spaces only), so zcnas can score the same architectures: "
        "an .npz or CIFAR python batch/directory, as for `bench import csv`.",
    ),
    num_classes: Optional[int] = typer.Option(
        None, "--num-classes", help="Classes of the dataset (default: known for cifar10/100, ImageNet16-120; 1 for table-only spaces)."
    ),
    probe_size: Optional[int] = PROBE_SIZE,
    probe_seed: int = PROBE_SEED,
    probe_stats: ProbeStats = PROBE_STATS,
    force: bool = FORCE,
):
    """Import a NAS-Bench-Suite-Zero table: a benchmark plus a finished reference run of Suite-Zero's scores.

    The run (B.suitezero.h5) works with `zcnas report`, `zcnas combine` and `zcnas compare` at once;
    its proxies carry zcnas's names (jacov -> jacob_cov) and signs (plain negated); see
    docs/benchmark-format.md.

    Example: zcnas bench import naslib-zc nb201_zc_naslib_subset725.csv --task cifar10 --out nb201-sz.h5
    """
    from rich.text import Text

    from zcnas.bench.naslib_zc import ALL_TASKS, import_naslib_zc

    if out is None:
        suffix = "" if task in (None, ALL_TASKS) else f"-{task}"
        out = Path(table.stem) if task == ALL_TASKS else Path(f"{table.stem}{suffix}.h5")
    probe_set = _load_probe(probe, probe_size, probe_seed, probe_stats) if probe is not None else None
    imported = import_naslib_zc(
        table, out, task=task, space=space, name=name, probe=probe_set, run_out=run_out,
        num_classes=num_classes, overwrite=force,
    )
    for result in imported:
        failed = {proxy: count for proxy, count in result.failures.items() if count}
        line = Text.assemble(
            ("wrote", "green"),
            f" {result.benchmark.path} ({result.benchmark.n_archs:,} architectures of {result.benchmark.search_space}, "
            f"task {result.task}) and reference run {result.run_path} ({len(result.proxies)} proxies: "
            f"{', '.join(result.proxies)})",
        )
        if result.duplicates:
            line.append(f"; {result.duplicates} rows repeat an earlier architecture, first kept", style="yellow")
            own = result.reference.get("self_agreement", {})
            if own.get("proxies"):
                line.append(
                    f" ({own['networks']} networks scored under 2+ keys give the reference's own run-to-run "
                    "agreement, shown by zcnas compare)"
                )
        if failed:
            text = ", ".join(f"{proxy} {count}" for proxy, count in failed.items())
            line.append(f"; without a usable score: {text}", style="yellow")
        console.print(line, highlight=False, soft_wrap=True)


@import_app.command("nasbert")
@user_errors
def import_nasbert_command(
    table: Path = typer.Argument(
        ..., help="NAS-Bench-BERT's benchmark JSON (data/BERT_benchmark.json of aaronserianni/training-free-nas).",
        show_default=False,
    ),
    out: Path = typer.Option(Path("nasbert.h5"), "--out", "-o", help="Benchmark file to write."),
    probe_text: str = typer.Option(
        "jargon",
        "--probe-text",
        help="Text of the token probe: 'jargon' (the Jargon File, public domain, Debian package jargon-text), "
        "a UTF-8 text file (plain or .gz), or 'random' (uniformly random token ids).",
    ),
    probe_size: int = typer.Option(512, "--probe-size", help="Probe sequences to keep."),
    probe_length: int = typer.Option(128, "--probe-length", help="Tokens per probe sequence, [CLS] and [SEP] included (3..512)."),
    probe_seed: int = typer.Option(0, "--probe-seed", help="Seed of the probe's windows (or random ids) and surrogate labels."),
    as_scored: bool = typer.Option(
        False,
        "--as-scored/--as-configured",
        help="Score the networks the authors scored (hidden 256, feed-forward 1024 everywhere: their notebook's "
        "config bug) instead of the networks as configured.",
    ),
    reference_scores: Optional[Path] = typer.Option(
        None,
        "--reference-scores",
        help="The authors' metric table (BERT_results_activation.csv): also write it as a finished reference run.",
    ),
    run_out: Optional[Path] = typer.Option(
        None, "--run-out", help="Reference run file (default: <out stem>.authors.h5 next to --out)."
    ),
    name: Optional[str] = typer.Option(None, "--name", help="Benchmark name (default: nasbert, or nasbert-scored)."),
    force: bool = FORCE,
):
    """Import NAS-Bench-BERT: 491 transformer encoders, their GLUE scores, and a token probe.

    Targets: glue (primary) and the eight GLUE tasks. Nine of the 500 ids repeat an architecture:
    the first id is kept, the others recorded. See docs/benchmark-format.md (token probes).

    Example: zcnas bench import nasbert nas_bench_bert_benchmark.json --as-scored --reference-scores
    nas_bench_bert_reference_scores.csv --out nasbert.h5
    """
    from zcnas.bench.nasbert_import import import_nasbert

    _check_out(out, force)
    check_seed(probe_seed, "--probe-seed")
    if run_out is not None:
        check_writable(run_out, "--run-out", example="nasbert.authors.h5")
    result = import_nasbert(
        table, out, probe_text=probe_text, probe_size=probe_size, probe_length=probe_length,
        probe_seed=probe_seed, as_scored=as_scored, name=name, reference_scores=reference_scores, run_out=run_out,
    )
    benchmark = result.benchmark
    probe = benchmark.probe_tokens
    console.print(
        styled(
            "wrote",
            "green",
            f" {benchmark.path}: {benchmark.n_archs:,} architectures, targets {', '.join(benchmark.targets)}, "
            f"{probe.size} probe sequences of {probe.length} tokens ({probe.attrs.get('text')})",
        ),
        highlight=False,
        soft_wrap=True,
    )
    if result.duplicates:
        dropped = ", ".join(f"{k} (= {v})" for k, v in result.duplicates.items())
        warn(f"{len(result.duplicates)} ids repeat an earlier architecture and were dropped, first kept: {dropped}")
    if result.run_path is not None:
        console.print(styled("wrote", "green", f" reference run {result.run_path} (the authors' 15 metric columns)"))


def _report_written(benchmark) -> None:
    console.print(
        styled(
            "wrote",
            "green",
            f" {benchmark.path}: {benchmark.n_archs:,} architectures, "
            f"{len(benchmark.targets)} targets ({', '.join(benchmark.targets)}), "
            + (f"{len(benchmark.probe_labels)} probe images" if benchmark.probe_labels is not None else "no probe data"),
        ),
        highlight=False,
        soft_wrap=True,
    )


@bench_app.command("info")
@user_errors
def info_command(
    file: Path = typer.Argument(..., help="Benchmark file (.h5).", show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON instead of tables."),
):
    """Validate a benchmark file and summarise it: space, dataset, targets, probe set, provenance.

    Example: zcnas bench info nb201.h5
    """
    from zcnas.bench.format import open_benchmark

    summary = open_benchmark(file).summary()
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return

    about = Table.grid(padding=(0, 2))
    about.add_column(style="bold")
    about.add_column()
    about.add_row("file", summary["path"])
    about.add_row("name", summary["name"])
    about.add_row("format", f"version {summary['format_version']}")
    about.add_row("space", summary["search_space"])
    about.add_row("dataset", f"{summary['dataset']} ({summary['num_classes']} classes)")
    about.add_row("architectures", f"{summary['n_archs']:,}")
    about.add_row("primary target", summary.get("primary_target") or "-")
    shape = summary["probe_shape"]
    if summary.get("probe_kind") == "tokens":
        probe_text = (
            f"{shape[0]} token sequences of {shape[1]} (vocabulary {summary['probe_vocab_size']:,}), "
            f"{summary.get('probe_tokenizer') or 'tokenizer not recorded'}"
        )
    elif shape is None:
        probe_text = "none (table-only: nothing to score)"
    else:
        probe_text = (
            f"{shape[0]} images {shape[1]}x{shape[2]}x{shape[3]} (NHWC), "
            f"mean {_numbers(summary['probe_mean'])}, std {_numbers(summary['probe_std'])}"
        )
    about.add_row("probe", probe_text)
    about.add_row("source", summary["source"] or "-")
    about.add_row("created", summary["created"] or "-")
    console.print(about, highlight=False)

    targets = Table(title="targets", title_justify="left")
    targets.add_column("target")
    for column in ("min", "mean", "max", "NaN", "seeds"):
        targets.add_column(column, justify="right")
    targets.add_column("std")
    for metric, stats in summary["targets"].items():
        targets.add_row(
            metric,
            _number(stats["min"]),
            _number(stats["mean"]),
            _number(stats["max"]),
            styled(str(stats["nan"]), "yellow") if stats["nan"] else "0",
            str(stats["seeds"]) if stats["seeds"] else "-",
            "yes" if stats["has_std"] else "-",
        )
    console.print(targets)


def _number(value) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4g}"


def _numbers(values) -> str:
    return "(" + ", ".join(f"{v:.4f}" for v in values) + ")"


def _build_options(space_name: str, channels: int | None, cells: int | None, pairs: list[str]) -> dict:
    """The network options of `bench build`: the space's small variant (NB201's C=8, N=2),
    then --C/--N, then each -O KEY=VALUE (values read as JSON: 8, 2.5, true, "x")."""
    import json

    from zcnas.bench.build import DEFAULT_SPACE_OPTIONS
    from zcnas.errors import BenchmarkError
    from zcnas.spaces import get_space

    space = get_space(space_name)
    options = dict(DEFAULT_SPACE_OPTIONS if space.name == "nb201" else getattr(space, "small_options", {}))
    if channels is not None:
        options["C"] = channels
    if cells is not None:
        options["N"] = cells
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise BenchmarkError(f"--option {pair!r} is not KEY=VALUE (e.g. -O C=16).")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        options[key.strip()] = value
    return options


@bench_app.command("build")
@user_errors
def build_benchmark_command(
    out: Path = typer.Option(..., "--out", "-o", help="Benchmark file to write (.h5).", show_default=False),
    space: str = typer.Option("nb201", "--space", help="Search space to sample architectures from."),
    dataset: str = typer.Option("mnist5k", "--dataset", help="Dataset to train on (see docs/bench-build.md): mnist5k, digits."),
    archs: int = typer.Option(300, "--archs", "-n", help="Architectures to sample (by --seed) and train."),
    seeds: int = typer.Option(2, "--seeds", help="Training seeds per architecture (at least 2: they give the noise ceiling)."),
    seed: int = typer.Option(0, "--seed", help="Build seed: decides the sample and every training run's init and batch order."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Training epochs (default: the recipe's)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", "-b", help="Training batch size (default: the recipe's)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Peak learning rate of the cosine schedule (default: the recipe's)."),
    image_size: Optional[int] = typer.Option(None, "--image-size", help="Resize images to this square size (default: the dataset's; mnist5k 12, digits 8)."),
    channels: Optional[int] = typer.Option(
        None, "--C", help="Channels of the first stage (NB201 default here 8, 16 in NAS-Bench-201; NB101 and DARTS have a C too)."
    ),
    cells: Optional[int] = typer.Option(None, "--N", help="Cells per stage (NB201's N; default here 2, 5 in NAS-Bench-201)."),
    option: Optional[list[str]] = typer.Option(
        None,
        "--option",
        "-O",
        help="A build option of the space as KEY=VALUE, repeatable (e.g. -O stacks=2 -O cells_per_stack=1 for nb101; "
        "see `zcnas spaces --json`). Default: the space's small variant (nb201: C=8, N=2).",
    ),
    name: Optional[str] = typer.Option(None, "--name", help="Benchmark name (default: <space>-<dataset>)."),
    probe_size: Optional[int] = typer.Option(None, "--probe-size", help="Probe images to keep from the training split (default: at most 1024)."),
    workers: int = typer.Option(1, "--workers", "-w", help="Worker processes (one torch thread each)."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Dask scheduler address (tcp://host:8786)."),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Finish an interrupted build of --out, skipping trained (arch, seed) pairs "
        "(with no build there yet: a warning, then a new build).",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start again, replacing --out and any unfinished build of it."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar (for CI logs)."),
):
    """Train a sample of a search space with several seeds on a small real dataset; write a benchmark.

    The recipe is fixed and stored in the file (docs/bench-build.md). Interrupted? Rerun with --resume.

    Example: zcnas bench build --dataset mnist5k --archs 240 --seeds 2 --workers 2 --out my-bench.h5
    """
    import numpy as np

    from zcnas.bench.build import TrainingRecipe, build_benchmark, journal_path

    check_seed(seed)
    check_writable(out, "--out", example="bench.h5")
    if resume and not out.exists() and not journal_path(out).exists():
        warn(f"--resume: there is no build of {out} yet, so a new one starts.")
    overrides = {
        key: value
        for key, value in (("epochs", epochs), ("batch_size", batch_size), ("lr", lr), ("image_size", image_size))
        if value is not None
    }
    options = dict(
        search_space=space,
        dataset=dataset,
        archs=archs,
        seeds=seeds,
        seed=seed,
        space_options=_build_options(space, channels, cells, option or []),
        recipe=TrainingRecipe(**overrides),
        name=name,
        probe_size=probe_size,
        workers=workers,
        scheduler=scheduler,
        resume=resume,
        overwrite=overwrite,
    )
    result = _build_with_progress(out, options, build_benchmark, show=not quiet)
    benchmark = result.benchmark
    accuracy = benchmark.targets["test_acc"]
    ceiling = "-" if result.noise_ceiling is None else f"{result.noise_ceiling:.3f}"
    if result.up_to_date:
        notes = ["already built with these settings, nothing trained"]
    else:
        notes = [f"trained {result.trained} runs in {result.wall_seconds:.0f} s"]
        if result.resumed:
            notes.append(f"{result.resumed} taken from the journal")
    warnings = [f"{result.failed} failed"] if result.failed else []
    warnings += [f"{result.diverged} diverged"] if result.diverged else []
    line = styled(
        "up to date" if result.up_to_date else "wrote",
        "green",
        f" {result.path}: {benchmark.n_archs:,} "
        f"architectures x {benchmark.target_seeds['test_acc'].shape[1]} seeds, test_acc "
        f"{_number(float(np.nanmin(accuracy)))}..{_number(float(np.nanmax(accuracy)))}%, "
        f"noise ceiling (seed-vs-seed Spearman) {ceiling}; {', '.join(notes)}",
    )
    for warning in warnings:
        line.append(", ")
        line.append(warning, style="yellow")
    console.print(
        line,
        highlight=False,
        soft_wrap=True,
    )


def _build_with_progress(out: Path, options: dict, build_benchmark, show: bool):
    """Run a build under the progress bar (rate, ETA) shared with `score`; with `show`
    False nothing is drawn, but SIGTERM is still checked between runs."""
    from zcnas.cli_common import progress_bar

    with progress_bar("training", "runs", show=show) as on_progress:
        return build_benchmark(out, **options, on_progress=on_progress)

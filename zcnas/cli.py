"""The `zcnas` command line: a thin shell over the Python API (parse, call, render)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from zcnas import __version__
from zcnas.cli_common import check_seed, console, err_console, progress_bar, styled, user_errors, warn
from zcnas.errors import ZcnasError
from zcnas.files import check_writable

app = typer.Typer(
    name="zcnas",
    help=(
        "Which training-free proxy ranks your architectures the way training would?\n\n"
        "Example: zcnas score --proxies synflow,nwot --sample 200"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help and usage errors: with rich markup, "pip install 'zcnas[dask]'" in a help text
    # or a usage error would lose its "[dask]" (taken for a style tag).
    rich_markup_mode=None,
)

try:  # the benchmark commands live in their own module
    from zcnas.cli_bench import bench_app

    app.add_typer(bench_app, name="bench")
except ImportError:  # pragma: no cover - only while the module is absent
    pass

from zcnas.cli_combine import CombineCommand, combine_command  # noqa: E402

app.command("combine", cls=CombineCommand)(combine_command)

from zcnas.cli_spaces import spaces_command  # noqa: E402

app.command("spaces")(spaces_command)

from zcnas.cli_compare import compare_command  # noqa: E402

app.command("compare")(compare_command)

# Package data (pyproject's package-data), so that a wheel install has it too; a clone also
# reaches it as benchmarks_data/default.h5, a link to this file.
DEFAULT_BENCHMARK = Path(str(resources.files("zcnas").joinpath("data", "default.h5")))


def default_benchmark() -> Path:
    """The benchmark shipped inside the package (zcnas/data/), used when none is given."""
    if not DEFAULT_BENCHMARK.exists():
        from zcnas.errors import BenchmarkError

        raise BenchmarkError(
            f"No benchmark given and the embedded default ({DEFAULT_BENCHMARK}) is missing from this "
            "installation; reinstall zcnas (`pip install .` from a clone ships it) or pass a benchmark file."
        )
    return DEFAULT_BENCHMARK


@app.callback(invoke_without_command=True)
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    if version:
        console.print(__version__)
        raise typer.Exit(0)


@app.command("proxies")
@user_errors
def proxies_command(
    pattern: str = typer.Argument("*", help="Wildcard on proxy names, e.g. 'grad*'."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    markdown: bool = typer.Option(False, "--markdown", help="Print the full documentation (docs/proxies.md)."),
    space: Optional[str] = typer.Option(
        None, "--space", help="Only the proxies that apply to this space's networks (its input kind: images or tokens)."
    ),
) -> None:
    """List the registered proxies: family, inputs, labels, passes, reference.

    Example: zcnas proxies 'syn*'   or   zcnas proxies --space nasbert
    """
    from zcnas.proxies import list_proxies, proxies_markdown

    input_kind = None
    if space is not None:
        from zcnas.spaces import get_space

        input_kind = get_space(space).input_kind
    infos = list_proxies(pattern, input_kind=input_kind)
    if not infos:
        from zcnas.errors import ProxyError

        if input_kind is not None:
            raise ProxyError(
                f"No proxy matching {pattern!r} applies to the {space} space's networks ({input_kind} input); "
                "run `zcnas proxies` to list them all."
            )
        raise ProxyError(f"No proxy matches {pattern!r}; run `zcnas proxies` to list them all.")
    if markdown:
        typer.echo(proxies_markdown(infos), nl=False)
        return
    if json_out:
        import json

        rows = [
            {
                "name": i.name,
                "family": i.family,
                "applies_to": list(i.applies_to),
                "needs_labels": i.needs_labels,
                "needs_data": i.needs_data,
                "passes": list(i.passes),
                "aggregation": i.aggregation,
                "reference": i.reference,
                "summary": i.summary,
            }
            for i in infos
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"{len(infos)} prox{'y' if len(infos) == 1 else 'ies'}", show_lines=False)
    for column in ("name", "family", "inputs", "labels", "data", "passes", "reference"):
        table.add_column(column, overflow="fold")
    for i in infos:
        table.add_row(
            i.name, i.family, ", ".join(i.applies_to), "yes" if i.needs_labels else "no", "yes" if i.needs_data else "no",
            ", ".join(i.passes), i.reference,
        )
    console.print(table)


@app.command("score")
@user_errors
def score_command(
    benchmark: Optional[Path] = typer.Argument(
        None, help="Benchmark file (.h5). Default: the benchmark embedded in zcnas.", show_default=False
    ),
    proxies: str = typer.Option("synflow,nwot,grad_norm,params,flops", "--proxies", "-p", help="Comma-separated proxy names or wildcards."),
    sample: Optional[int] = typer.Option(None, "--sample", "-n", help="Score this many architectures drawn by --seed (default: all)."),
    seed: int = typer.Option(0, "--seed", help="Job seed: decides the sample, the probe batch and every architecture's init."),
    workers: int = typer.Option(1, "--workers", "-w", help="Worker processes (one torch thread each)."),
    batch_size: Optional[int] = typer.Option(
        None, "--batch-size", "-b", help="Probe batch size (default 64; 32 with --protocol suite-zero).", show_default=False
    ),
    repeats: int = typer.Option(
        1, "--repeats", "-r", help="Score every architecture this many times; the report then shows each proxy's reliability."
    ),
    vary: str = typer.Option("both", "--vary", help="What changes between repeats: init, batch or both."),
    protocol: Optional[str] = typer.Option(
        None,
        "--protocol",
        help="zcnas (default: one class-balanced probe batch per repeat for every architecture) or suite-zero "
        "(NAS-Bench-Suite-Zero's: a fresh randomly cropped and flipped batch of 32 per architecture and repeat).",
        show_default=False,
    ),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run file to write (default: runs/<benchmark>-s<seed>.h5)."),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Finish an interrupted run in --out, skipping what is done (with no run there yet: a warning, then a new run).",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out."),
    no_share: bool = typer.Option(False, "--no-share", help="Run every proxy on its own passes (for comparison)."),
    ntk_samples: int = typer.Option(
        16,
        "--ntk-samples",
        help="Probe samples in the NTK kernel (ntk_cond, ntk_trace, lga): 16 as TE-NAS's default; "
        "64 ranks NB201 better (docs/validation.md) at ~13x the cost.",
    ),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Dask scheduler address (tcp://host:8786)."),
    checkpoint_seconds: float = typer.Option(
        30.0,
        "--checkpoint-seconds",
        help="Fold finished results into the run file at least this often (0: after every result).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar (for CI logs)."),
) -> None:
    """Score a benchmark's architectures with training-free proxies and report the correlations.

    Example: zcnas score bench.h5 --proxies synflow,nwot --sample 200 --workers 2 --out run.h5

    Proxy noise: zcnas score bench.h5 --proxies synflow,nwot --sample 60 --repeats 3 --vary batch
    """
    check_seed(seed)
    if not checkpoint_seconds >= 0:  # NaN too: it would never checkpoint
        raise ZcnasError(f"--checkpoint-seconds must be 0 (after every result) or more; got {checkpoint_seconds}.")
    if workers > 1 or scheduler:
        from zcnas.pools import start_workers

        start_workers(workers, scheduler=scheduler)  # they import torch while this process does, below
    from zcnas.report import build_report, write_report_files
    from zcnas.run.runner import JobOptions, run_job

    from zcnas.combine import fill_derived, split_combined

    computed, derived = split_combined(proxies)
    benchmark = benchmark or default_benchmark()
    default_name = f"{Path(benchmark).stem}-s{seed}.h5"
    out = check_writable(out if out is not None else Path("runs") / default_name, "--out", example=default_name)
    _check_report_writable(out)
    if resume and not out.exists():
        warn(f"--resume: there is no run at {out} yet, so a new one starts there.")
    options = JobOptions(
        proxies=",".join(computed),
        derived=derived,
        sample=sample,
        seed=seed,
        batch_size=batch_size,
        workers=workers,
        share=not no_share,
        device=device,
        scheduler=scheduler,
        resume=resume,
        overwrite=overwrite,
        checkpoint_seconds=checkpoint_seconds,
        ntk_samples=ntk_samples,
        repeats=repeats,
        vary=vary,
        protocol=protocol,
    )
    with progress_bar("scoring", "arch" if repeats == 1 else "scoring", show=not quiet) as on_progress:
        store = run_job(benchmark, out, options, on_progress=on_progress)
    fill_derived(store)
    report = build_report(store)
    written = write_report_files(report, out)
    _print_report(report)
    console.print(f"run: {out}   report: {', '.join(str(p) for p in written.values())}", highlight=False, soft_wrap=True)


@app.command("report")
@user_errors
def report_command(
    run: Path = typer.Argument(..., help="Run file written by `zcnas score`."),
    html: bool = typer.Option(True, "--html/--no-html", help="Also write the self-contained HTML page."),
    top_k: str = typer.Option("10,1", "--top-k", help="Top-k percents for top-k precision and Kendall within the true top k."),
    resamples: int = typer.Option(1000, "--bootstrap", help="Bootstrap resamples over architectures (0: no intervals)."),
    bootstrap_seed: int = typer.Option(0, "--bootstrap-seed", help="Seed of the resamples (same seed, same intervals)."),
    ceiling_pair: Optional[list[str]] = typer.Option(
        None, "--ceiling-pair", help="Two targets measuring the same thing, A:B, for the noise ceiling (repeatable)."
    ),
    target: Optional[list[str]] = typer.Option(
        None,
        "--target",
        "-t",
        help="Report only this target (repeatable; default: all); written as RUN.report.<T>.json etc., "
        "so the report of every target stays.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Write the files, print nothing."),
) -> None:
    """Compute the correlation report of a run (also of an unfinished one): RUN.report.json, .md, .html.

    Example: zcnas report runs/default-s0.h5 --top-k 10,1 --bootstrap 1000 --ceiling-pair test_acc:valid_acc
    """
    from zcnas.report import build_report, parse_top_k, write_report_files
    from zcnas.run.store import RunStore

    check_seed(bootstrap_seed, "--bootstrap-seed")
    store = RunStore.open(run)
    _check_report_writable(run, target)
    report = build_report(
        store,
        targets=target or None,
        top_k=parse_top_k(top_k),
        resamples=resamples,
        bootstrap_seed=bootstrap_seed,
        ceiling_pairs=ceiling_pair or (),
    )
    written = write_report_files(report, run, html=html)
    if not quiet:
        _print_report(report, every_target=bool(target))
        console.print("report: " + ", ".join(str(p) for p in written.values()), highlight=False, soft_wrap=True)


@app.command("check")
@user_errors
def check_command(
    report: Path = typer.Argument(..., help="Report JSON (RUN.report.json) to check."),
    baseline: Path = typer.Option(..., "--baseline", "-b", help="Baseline JSON to compare with (or to write, with --update)."),
    tolerance: Optional[float] = typer.Option(
        None, "--tolerance", help="Allowed fall below the baseline (default: the baseline's own, else 0.02)."
    ),
    metrics: Optional[str] = typer.Option(
        None, "--metrics", help="Metrics to check / to record with --update (default: the baseline's; spearman,kendall)."
    ),
    update: bool = typer.Option(False, "--update", help="Write the report's values as the new baseline, on purpose."),
    common_only: bool = typer.Option(
        False, "--common-only", help="Check only the proxies both files hold; the baseline's others are named, not failed."
    ),
) -> None:
    """Fail (exit 1) when a correlation fell below its baseline by more than the tolerance.

    Exit codes: 0 nothing fell (rises are listed); 1 something fell, or a baseline proxy/target
    is missing from the report (unless --common-only), with a table of what moved; 2 unusable input.

    The quickstart's report against the regression baseline (which holds more proxies):
    zcnas check runs/default-s0.report.json --baseline zcnas/data/default.baseline.json --common-only

    Example: zcnas check runs/default-s0.report.json --baseline zcnas/data/default.baseline.json --tolerance 0.02
    """
    from zcnas.report import check

    data = check.load_report(report)
    chosen = check.parse_metrics(metrics)
    if update:
        check_writable(baseline, "--baseline", example="baseline.json")
        made = check.make_baseline(data, metrics=chosen, tolerance=tolerance, report_path=report)
        check.write_baseline(made, baseline)
        count = sum(len(m) for targets in made["values"].values() for m in targets.values())
        console.print(
            f"baseline written: {baseline} ({count} values of {', '.join(made['metrics'])}, tolerance {made['tolerance']:g})",
            highlight=False,
        )
        return
    base = check.load_baseline(baseline)
    result = check.compare(data, base, tolerance=tolerance, metrics=chosen, common_only=common_only)
    if result.not_in_report:
        console.print(f"not in the report, not checked (--common-only): {', '.join(result.not_in_report)}", highlight=False)
    for warning in check.provenance_warnings(data, base):
        err_console.print(styled("warning:", "yellow", f" {warning}"), highlight=False)
    moved = [r for r in result.rows if r.status != "held"]
    if moved:
        from rich.text import Text

        table = Table(title=f"what moved by more than {result.tolerance:g} ({', '.join(result.metrics)})")
        for column in ("status", "proxy", "target", "metric", "baseline", "now", "change"):
            table.add_column(column, justify="right" if column in ("baseline", "now", "change") else "left", overflow="fold")
        order = {"missing": 0, "fell": 1, "rose": 2, "undefined": 3}
        colours = {"missing": "red", "fell": "red", "rose": "green", "undefined": "yellow"}
        for r in sorted(moved, key=lambda r: (order[r.status], r.proxy, r.target, r.metric)):
            table.add_row(
                Text(r.status, style=colours[r.status]), r.proxy, r.target, r.metric, _fmt(r.baseline),
                _fmt(r.current), "—" if r.delta is None else f"{r.delta:+.3f}",
            )
        _print_whole(table)
        for r in result.undefined:
            console.print(f"not checked: {r.metric} of {r.proxy} vs {r.target}: {r.note}.", highlight=False)
    checked = len(result.rows) - len(result.undefined)
    if result.passed:
        note = f"; {len(result.rose)} rose (record them with --update)" if result.rose else ""
        if result.undefined:
            note += f"; {len(result.undefined)} undefined, not checked"
        console.print(f"check passed: {checked} values within {result.tolerance:g} of the baseline{note}", highlight=False)
        return
    names = sorted({r.proxy for r in result.failed})
    console.print(
        f"check failed: {len(result.failed)} of {checked} values fell by more than {result.tolerance:g} "
        f"or are missing — {', '.join(names)}",
        highlight=False,
    )
    absent = sorted({r.proxy for r in result.failed if r.status == "missing"} - {e["proxy"] for e in data["proxies"]})
    if absent:
        console.print(
            f"the report has no {', '.join(absent)}: score them too, or check only the proxies both hold with --common-only",
            highlight=False,
        )
    raise typer.Exit(1)


def _check_report_writable(run: Path, targets: Optional[list[str]] = None) -> None:
    """The report files go next to the run file: refuse up front what could not be written."""
    from zcnas.report import report_paths

    paths = list(report_paths(run).values()) + (list(report_paths(run, targets).values()) if targets else [])
    for path in paths:
        check_writable(path, "the report file")


def _fmt(value, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _print_report(report: dict, *, every_target: bool = False) -> None:
    """The primary target's table, then one line per other target (its best proxy; every table
    is in the report files), or every target's table with `every_target`."""
    from zcnas.report.render import (
        bootstrap_sentence,
        ordered_targets,
        restricted_targets,
        summary_columns,
        summary_rows,
    )

    targets = ordered_targets(report)
    shown = targets if every_target else targets[:1]
    for target in shown:
        _print_target_table(report, target)
    others = targets[len(shown):]
    if others:
        table = Table(
            title=f"other targets: the best proxy by Spearman ρ ({len(others)}; their tables are in the report files)",
            title_justify="left",
        )
        for column in summary_columns():
            table.add_column(column, justify="left" if column in ("target", "best proxy") else "right", overflow="fold")
        for row in summary_rows(report, others):
            table.add_row(*row)
        _print_whole(table)
    restricted = restricted_targets(report)
    if restricted:
        console.print(f"Only the target(s) {', '.join(restricted)} of {', '.join(report['run_targets'])}.", highlight=False)
    console.print(bootstrap_sentence(report), highlight=False)


def _print_target_table(report: dict, target: str) -> None:
    """One target's table, complete at any width: the boxed table where it fits (cells wrap, an
    interval under its value), a lighter table where that fits, else one block per proxy."""
    from rich import box

    from zcnas.report.render import Footnotes, architectures_phrase, ceiling_sentence, terminal_columns, terminal_rows

    title = f"{report['benchmark']}: {architectures_phrase(report)} vs {target}"
    if target == report.get("primary_target") and len(report["targets"]) > 1:
        title += " (primary target)"
    caption = ceiling_sentence(report, target)
    columns = terminal_columns(report)
    notes = Footnotes()
    rows = terminal_rows(report, target, notes)
    light = {"box": box.SIMPLE_HEAD, "show_edge": False, "padding": (0, 1), "collapse_padding": True}
    for style in ({}, light):
        table = Table(title=title, caption=caption, **style)
        for column in columns:
            table.add_column(column, justify="left" if column == "proxy" else "right", overflow="fold")
        for row in rows:
            table.add_row(*row)
        if not console.is_terminal or _natural_width(table, minimum=True) <= console.width:
            _print_whole(table)
            break
    else:  # narrower than any table: each proxy's values under its name
        console.print(title, highlight=False)
        for row in rows:
            console.print(row[0], style="bold", highlight=False)
            label_width = max(len(c) for c in columns[1:])
            for column, value in zip(columns[1:], row[1:]):
                console.print(f"  {column:<{label_width}}  {value}", highlight=False)
        console.print(caption, highlight=False)
    for line in notes.lines():
        console.print(line, highlight=False)
    _print_reliability(report, target)


def _print_reliability(report: dict, target: str) -> None:
    """A run with repeats: each proxy's test-retest reliability and attenuation bound, under the
    noise ceiling the target's table ends with."""
    from zcnas.report.render import has_reliability, reliability_columns, reliability_rows, reliability_sentence

    if not has_reliability(report):
        return
    table = Table(title=f"reliability of the proxies ({report['repeats']} repeats, vary {report['vary']})", caption=reliability_sentence(report))
    for column in reliability_columns(report, compact=True):
        table.add_column(column, justify="left" if column == "proxy" else "right", overflow="fold")
    for row in reliability_rows(report, target, compact=True):
        table.add_row(*row)
    _print_whole(table)


def _natural_width(renderable, *, minimum: bool = False) -> int:
    """The width `renderable` takes without wrapping (with `minimum`: the least it can take
    without breaking a word)."""
    from rich.measure import Measurement

    measured = Measurement.get(console, console.options.update_width(10_000), renderable)
    return measured.minimum if minimum else measured.maximum


def _print_whole(renderable) -> None:
    """Print a table complete: on a terminal narrower than the table its cells wrap (never cut
    to '…'); piped or redirected (a CI log, `> out.txt`) it is printed at its natural width,
    one line per row, whatever COLUMNS says."""
    if console.is_terminal:
        console.print(renderable)
        return
    from rich.console import Console

    # `console.print(width=...)` cannot exceed the console's own width, hence a wider twin.
    wide = Console(file=console.file, width=max(console.width, _natural_width(renderable)), markup=False)
    wide.print(renderable)


def main() -> None:
    app()


if __name__ == "__main__":
    main()

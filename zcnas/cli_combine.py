"""`zcnas combine`: fit a proxy ensemble on some architectures of a run, judge it on the rest.

A thin shell over `zcnas.combine.evaluate_combine`; mounted by the main app as
``app.command("combine")(combine_command)``.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table
from typer.core import TyperCommand

from zcnas.cli_common import check_seed, console, user_errors
from zcnas.files import check_writable


def _split_names(text: str | None) -> list[str]:
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def _expand_proxies(patterns: list[str], available: list[str]) -> list[str]:
    """Names or wildcards ('syn*') against the run's proxies, in the order given, no repeats."""
    from zcnas.combine import CombineError

    chosen: list[str] = []
    for pattern in patterns:
        matches = [name for name in available if fnmatch.fnmatchcase(name, pattern)] if any(c in pattern for c in "*?[") else [pattern]
        if not matches:
            raise CombineError(f"--proxies {pattern!r} matches no proxy of the run; it has {', '.join(available)}.")
        chosen += [m for m in matches if m not in chosen]
    return chosen


def _coerce(value: str, default):
    """A --param value, typed like the parameter's default (bool, int, float) or parsed as JSON."""
    text = value.strip()
    if isinstance(default, bool):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(text)
    if isinstance(default, int):
        return int(text)
    if isinstance(default, float):
        return float(text)
    if isinstance(default, str):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_params(method: str, items: list[str]) -> dict:
    """['epochs=50', 'loss=mse+diffkendall'] -> typed keyword arguments of the method."""
    import inspect

    from zcnas.combine import CombineError, get_method

    cls = get_method(method)
    defaults = {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items() if name != "self"}
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CombineError(f"--param takes KEY=VALUE, e.g. --param epochs=50; got {item!r}.")
        if key == "proxies":
            raise CombineError("Choose proxies with --proxies a,b, not --param proxies=....")
        if key not in defaults:
            raise CombineError(f"Method {method} has no parameter {key!r}; its parameters are {', '.join(k for k in defaults if k != 'proxies')}.")
        try:
            params[key] = _coerce(value, defaults[key])
        except ValueError:
            raise CombineError(f"--param {key} expects a {type(defaults[key]).__name__}; got {value!r}.") from None
        if key == "seed":  # a method's own seed (parzc, robot): the same range as every seed
            check_seed(params[key], "--param seed")
    return params


def _fmt(value, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _mean_std(entry: dict) -> str:
    if entry["mean"] is None:
        return "—"
    return f"{entry['mean']:.3f} ± {entry['std']:.3f}" if entry["n"] > 1 else f"{entry['mean']:.3f}"


def print_summary(summary: dict, model_path: Path, summary_path: Path) -> None:
    """The held-out table a person reads; the JSON file has every split."""
    from zcnas.report.metrics import metric_label

    splits = summary["splits"]
    seeds = [s["seed"] for s in splits]
    seed_text = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}..{seeds[-1]}"
    tested = sorted({s["n_evaluated"] for s in splits})
    table = Table(
        title=(
            f"{summary['method']} on {Path(summary['run']).name}: target {summary['target']}, "
            f"fitted on {summary['train_size']} of {summary['usable']} architectures, "
            f"held-out {'/'.join(map(str, tested))}, {len(splits)} split{'s' if len(splits) > 1 else ''} ({seed_text})"
        ),
        title_justify="left",
    )
    table.add_column("held-out metric")
    table.add_column(f"{summary['method']} mean ± std", justify="right")
    table.add_column("min..max", justify="right")
    confidence = int(round(100 * summary["confidence"]))
    show_interval = summary["resamples"] > 0
    if show_interval:
        table.add_column(f"{confidence}% CI, seed {seeds[0]}", justify="right")
    table.add_column("best single proxy", justify="right")
    for name in summary["metrics"]:
        entry = summary["summary"]["method"][name]
        row = [metric_label(name), _mean_std(entry), f"{_fmt(entry['min'])}..{_fmt(entry['max'])}"]
        if show_interval:
            low, high = splits[0]["intervals"].get(name, [None, None])
            row.append("—" if low is None else f"[{low:.3f}, {high:.3f}]")
        row.append(_mean_std(summary["summary"]["best_single"][name]))
        table.add_row(*row)
    console.print(table)
    inputs = "per-layer statistics of " if summary.get("needs_layers") else ""
    console.print(f"{summary['method']} learned from {inputs}{', '.join(summary['proxies'])}", highlight=False)

    chosen = [c for c in summary["summary"]["best_single_chosen"] if c]
    if chosen:
        counts = {name: chosen.count(name) for name in dict.fromkeys(chosen)}
        text = ", ".join(f"{name} ({n}/{len(splits)})" for name, n in counts.items())
        console.print(f"best single proxy = highest Kendall on each train split: {text}", highlight=False)

    singles = summary["summary"]["single_proxies"]
    ordered = sorted(singles, key=lambda p: -(singles[p]["kendall"]["mean"] if singles[p]["kendall"]["mean"] is not None else -9))
    proxies_table = Table(title="every single proxy on the same held-out sets", title_justify="left")
    proxies_table.add_column("proxy")
    proxies_table.add_column("Kendall τ", justify="right")
    proxies_table.add_column("Spearman ρ", justify="right")
    for name in ordered:
        proxies_table.add_row(name, _mean_std(singles[name]["kendall"]), _mean_std(singles[name]["spearman"]))
    console.print(proxies_table)
    console.print(f"model (fitted on split {seeds[0]}): {model_path}\nsummary: {summary_path}", highlight=False)


def method_help() -> str:
    """The --method help, from the combine registry (each method's `extra` says what it needs)."""
    from zcnas.combine import METHODS, list_methods

    names = [
        f"{name} (needs pip install 'zcnas[{METHODS[name].extra}]')" if METHODS[name].extra else name
        for name in list_methods()
    ]
    return "Combine method: " + ", ".join(names) + " (docs/combine.md)."


class CombineCommand(TyperCommand):
    """`zcnas combine` with its --method help filled from the registry when help is shown (the
    method modules import torch and scipy: only `--help` pays for that, not every zcnas call)."""

    def format_help(self, ctx, formatter):
        for param in self.params:
            if param.name == "method":
                param.help = method_help()
        return super().format_help(ctx, formatter)


@user_errors
def combine_command(
    run: Path = typer.Argument(..., help="Run file written by `zcnas score`.", show_default=False),
    method: str = typer.Option("ridge", "--method", "-m", help="Combine method (listed by zcnas combine --help)."),
    target: Optional[str] = typer.Option(None, "--target", "-t", help="Target to learn (default: the run's only target)."),
    train_size: int = typer.Option(100, "--train-size", "-k", help="Architectures to fit on; all the others are held out."),
    seed: int = typer.Option(0, "--seed", help="Seed of the first split (repeats use seed+1, seed+2, ...)."),
    repeats: int = typer.Option(5, "--repeats", "-r", help="Number of splits to fit and evaluate."),
    proxies: Optional[str] = typer.Option(
        None, "--proxies", "-p", help=(
            "Comma-separated proxies or wildcards (default: parzc those of grad_norm,snip,synflow the run has, "
            "else every proxy of the run with per-layer statistics; others every proxy of the run)."
        ),
    ),
    param: List[str] = typer.Option([], "--param", "-P", help="Method parameter KEY=VALUE (repeatable), e.g. -P epochs=50."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Model file to write (default: RUN.<method>.npz); the JSON summary goes next to it."),
    top_k: str = typer.Option("10,1", "--top-k", help="Top-k percents for the precision metrics."),
    resamples: int = typer.Option(1000, "--resamples", help="Bootstrap resamples for the intervals (0: none)."),
    augment_repeats: bool = typer.Option(
        False,
        "--augment-repeats",
        help="A run scored with `zcnas score --repeats R`: fit on every repeat of the training architectures "
        "(R rows each) instead of their mean; evaluated on the mean either way.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Write the files, print nothing."),
) -> None:
    """Fit a proxy ensemble on --train-size architectures and evaluate it on all the others.

    Example: zcnas combine runs/nb201-s0.h5 --method parzc --target test_acc --train-size 100 --repeats 5 --out parzc.npz
    """
    from zcnas.combine import CombineError, evaluate_combine, get_method, summary_path_for, write_summary
    from zcnas.report.metrics import parse_top_k
    from zcnas.run.store import RunStore

    get_method(method)  # an unknown method is refused before the run is read
    check_seed(seed)
    params = parse_params(method, param)
    percents = parse_top_k(top_k)
    if resamples < 0:
        raise CombineError(f"--resamples must be 0 or more; got {resamples}.")
    store = RunStore.open(run)
    if target is None:
        if len(store.targets) != 1:
            raise CombineError(f"Choose a target with --target; run {run} has {', '.join(sorted(store.targets)) or 'none'}.")
        target = next(iter(store.targets))
    chosen = _expand_proxies(_split_names(proxies), list(store.spec.proxies)) if proxies else None
    model_path = out if out is not None else run.with_name(f"{run.stem}.{method}.npz")
    summary_path = summary_path_for(model_path)
    if summary_path == model_path:
        raise CombineError(f"--out {model_path} would be overwritten by its own JSON summary; give the model another suffix, e.g. .npz.")
    check_writable(model_path, "--out", example=f"{run.stem}.{method}.npz")
    check_writable(summary_path, "the JSON summary")

    def fit_all(progress=None):
        return evaluate_combine(
            store, method, target, train_size, seed=seed, repeats=repeats, proxies=chosen, params=params,
            top_k=percents, resamples=resamples, progress=progress, augment_repeats=augment_repeats,
        )

    if quiet:
        result = fit_all()
    else:
        with console.status(f"fitting {method} on split 1 of {repeats}...") as status:

            def progress(done: int, total: int) -> None:
                if done < total:
                    status.update(f"fitting {method} on split {done + 1} of {total}...")

            result = fit_all(progress)
    first = result.summary["splits"][0]
    result.model.save(
        model_path,
        info={
            "run": str(run),
            "target": target,
            "train_size": train_size,
            "split_seed": first["seed"],
            "train_index": first["train_index"],
            "held_out": first["metrics"],
        },
    )
    result.summary["model"] = str(model_path)
    write_summary(result.summary, summary_path)
    if not quiet:
        print_summary(result.summary, model_path, summary_path)

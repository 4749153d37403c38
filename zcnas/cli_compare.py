"""`zcnas compare RUN_A RUN_B`: per-proxy rank agreement of two runs' scores.

A thin shell over `zcnas.report.compare.compare_runs`; mounted by the main app as
``app.command("compare")(compare_command)``.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from zcnas.cli_common import check_seed, console, user_errors


def _cell(entry: dict) -> str:
    if entry.get("value") is None:
        return "—"
    text = f"{entry['value']:.3f}"
    if entry.get("low") is not None and entry.get("high") is not None:
        text += f" [{entry['low']:.3f}, {entry['high']:.3f}]"
    return text


@user_errors
def compare_command(
    run_a: Path = typer.Argument(..., help="First run file (e.g. a zcnas score run).", show_default=False),
    run_b: Path = typer.Argument(..., help="Second run file (e.g. a reference run from `bench import naslib-zc`).", show_default=False),
    resamples: int = typer.Option(1000, "--bootstrap", help="Bootstrap resamples over the shared architectures (0: no intervals)."),
    bootstrap_seed: int = typer.Option(0, "--bootstrap-seed", help="Seed of the resamples (same seed, same intervals)."),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON instead of a table."),
) -> None:
    """Do two runs rank the architectures they share alike? Spearman and Kendall per shared proxy.

    Architectures are matched by canonical encoding, so the runs may hold different samples
    in different orders; each proxy is compared where both runs scored it.

    Example: zcnas compare runs/nb201-s0.h5 nb201-sz.suitezero.h5 --bootstrap 1000
    """
    from zcnas.report.compare import compare_runs
    from zcnas.run.store import RunStore

    check_seed(bootstrap_seed, "--bootstrap-seed")
    first, second = RunStore.open(run_a), RunStore.open(run_b)
    result = compare_runs(first, second, resamples=resamples, bootstrap_seed=bootstrap_seed)
    if as_json:
        typer.echo(json.dumps(result, indent=2, allow_nan=False))
        return
    confidence = int(round(100 * result["bootstrap"]["confidence"]))
    interval = f" [{confidence}% CI]" if result["bootstrap"]["resamples"] else ""
    table = Table(
        title=Text(
            f"A {run_a.name} vs B {run_b.name}: {result['search_space']}, "
            f"{result['common_architectures']:,} architectures in both"
        ),
        title_justify="left",
    )
    table.add_column("proxy", no_wrap=True)
    table.add_column("n", justify="right")
    table.add_column(f"Spearman ρ{interval}", justify="right")
    table.add_column(f"Kendall τ{interval}", justify="right")
    table.add_column("unusable A/B", justify="right")
    retests = [entry["reference_retest"] for entry in result["proxies"] if "reference_retest" in entry]
    sides = [side for side in "ab" if any(f"repeats_{side}" in entry for entry in result["proxies"])]
    for side in sides:
        name, other = ("A", "B") if side == "a" else ("B", "A")
        table.add_column(f"one repeat of {name} vs {other}: ρ", justify="right")
        table.add_column(f"{name} vs itself: ρ", justify="right")
    if retests:
        table.add_column("reference vs itself: ρ (pairs)", justify="right")
    reasons = []
    for entry in result["proxies"]:
        cells = [
            Text(entry["proxy"]),
            str(entry["n"]),
            _cell(entry["spearman"]),
            _cell(entry["kendall"]),
            f"{entry['unusable_a']}/{entry['unusable_b']}",
        ]
        for side in sides:
            repeats = entry.get(f"repeats_{side}")
            cells += [_cell(repeats["one_repeat"]["spearman"]), _cell(repeats["retest"]["spearman"])] if repeats else ["—", "—"]
        if retests:
            own = entry.get("reference_retest")
            cells.append(f"{_cell(own['spearman'])} ({own['n']})" if own else "—")
        table.add_row(*cells)
        if entry["spearman"].get("reason"):
            reasons.append(f"{entry['proxy']}: {entry['spearman']['reason']}")
    console.print(table)
    for line in reasons + result["notes"]:
        console.print(Text(line), highlight=False, soft_wrap=True)
    for side in sides:
        name, path = ("A", run_a.name) if side == "a" else ("B", run_b.name)
        console.print(
            Text(
                f"{name} ({path}) holds several scorings of each architecture (--repeats): 'one repeat of {name}' is one "
                "scoring against the other run's score (its mean, if it has repeats too), averaged over the repeats: like "
                f"against like where the other run scored once, as a reference did; '{name} vs itself' is the mean Spearman "
                "between two of its repeats. Both use the shared architectures whose every repeat is done."
            ),
            highlight=False,
            soft_wrap=True,
        )
    if retests:
        console.print(
            Text(
                f"reference vs itself: {Path(retests[0]['run']).name} scored some networks twice ({retests[0]['measured']}); "
                "their agreement is the reference's own run-to-run noise, about the best any other run can agree with it. "
                "Measured at import over those networks only (95% intervals, 1,000 resamples, seed 0), not over the "
                "shared architectures of this table."
            ),
            highlight=False,
            soft_wrap=True,
        )
    if result["bootstrap"]["resamples"]:
        b = result["bootstrap"]
        console.print(
            f"[low, high]: {confidence}% percentile bootstrap intervals over the shared architectures "
            f"({b['resamples']} resamples, seed {b['seed']}); unusable = failed or not scored in run A / B.",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )

"""How long a full report takes: a fake 15,625-architecture x 13-proxy run, 1000 bootstrap resamples.

    python examples/report_speed.py                      # NB201-sized, the default
    python examples/report_speed.py --archs 2000 --resamples 200

The run is fake (scores = a noisy function of a fake accuracy, some proxies with many ties as
params/flops have, one with failures; the target has 3 training seeds so the noise ceiling is
computed too) but has NB201's size, which is what the time depends on. Prints the time of the
whole `build_report` (every metric, interval and ceiling) and of writing JSON, Markdown, HTML.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

NASLIB_PROXIES = (
    "params", "flops", "grad_norm", "snip", "grasp", "fisher", "synflow",
    "jacob_cov", "nwot", "zen", "plain", "l2_norm", "epe_nas",
)


def fake_run(path: Path, n_archs: int = 15_625, n_proxies: int = 13, seed: int = 0):
    """A RunStore of `n_archs` finished architectures scored by `n_proxies` fake proxies."""
    from zcnas.run.store import OK, RunSpec, RunStore

    rng = np.random.default_rng(seed)
    names = [NASLIB_PROXIES[i] if i < len(NASLIB_PROXIES) else f"proxy{i}" for i in range(n_proxies)]
    quality = rng.normal(size=n_archs)
    seeds = 90 + 3 * quality[:, None] + rng.normal(0, 0.6, size=(n_archs, 3))
    spec = RunSpec(
        benchmark="fake.h5", benchmark_name="fake-nb201", search_space="nb201", dataset="cifar10",
        num_classes=10, proxies=tuple(names), seed=seed, sample=n_archs, batch_size=64,
    )
    store = RunStore.create(
        path, spec, encodings=[f"arch{i}" for i in range(n_archs)], index=np.arange(n_archs),
        arch_seeds=np.arange(n_archs), targets={"test_acc": seeds.mean(axis=1)}, target_seeds={"test_acc": seeds},
    )
    for j, name in enumerate(names):
        score = quality + rng.normal(0, 0.4 + 0.15 * j, n_archs)
        if name in ("params", "flops"):
            score = np.round(score, 1)  # a few hundred distinct values, like NB201's sizes
        status = np.full(n_archs, OK, dtype=np.int8)
        if name == "zen":
            status[rng.choice(n_archs, 40, replace=False)] = 2  # failures
            score[status != OK] = np.nan
        store.scores[name] = score
        store.status[name] = status
        store.seconds[name] = rng.uniform(0.01, 0.05, n_archs)
    return store


def time_report(n_archs: int = 15_625, n_proxies: int = 13, resamples: int = 1000, seed: int = 0) -> dict:
    from zcnas.report import build_report, write_report_files

    with tempfile.TemporaryDirectory() as tmp:
        store = fake_run(Path(tmp) / "fake.h5", n_archs, n_proxies, seed)
        wall, cpu = time.perf_counter(), time.process_time()
        report = build_report(store, resamples=resamples)
        build_wall, build_cpu = time.perf_counter() - wall, time.process_time() - cpu
        wall = time.perf_counter()
        write_report_files(report, Path(tmp) / "fake.h5")
        write_wall = time.perf_counter() - wall
    return {
        "architectures": n_archs,
        "proxies": n_proxies,
        "resamples": resamples,
        "report_seconds": build_wall,
        "report_cpu_seconds": build_cpu,
        "write_seconds": write_wall,
        "report": report,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=15_625)
    parser.add_argument("--proxies", type=int, default=13)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    result = time_report(args.archs, args.proxies, args.resamples)
    print(
        f"{result['architectures']} architectures x {result['proxies']} proxies, {result['resamples']} resamples: "
        f"report {result['report_seconds']:.1f} s wall ({result['report_cpu_seconds']:.1f} s CPU, all threads), "
        f"writing JSON+Markdown+HTML {result['write_seconds']:.2f} s"
    )


if __name__ == "__main__":
    main()

"""Where the time of a parallel `zcnas score` goes, and how it scales. Prints figures; asserts nothing.

    python tests/perf/bench_workers.py [--bench default|nb201] [--archs 40] [--proxies a,b,...]
                                       [--runs w1,w2,dask] [--workers 2] [--dask-profile on|off] [--no-phases]

`--bench default` is the embedded benchmark (small networks on 12x12 digits: per-task costs
show); `--bench nb201` writes a benchmark of NB201 at full width (C=16, N=5) with random
32x32 images, the networks the README scores. Figures in CPU seconds (user + system, of the
processes named), which a busy machine changes far less than wall seconds:

  import runner / report   a fresh `python -c "import zcnas.run.runner"` (what the CLI and
                           every worker process pay before their first architecture), and
                           with `zcnas.report` (scipy) as well
  open benchmark + probe   opening the benchmark and drawing the probe batch
  payload / task bytes     pickled size of what every task shares (probe batch, proxy list)
                           and of one task
  build, proxies           one network built from its seed; the proxies on it (mean per arch)
  worker start             W fresh workers importing what a scoring task imports (wall, CPU)
  pool per task            the pool's own cost per task (tasks that return at once, workers
                           started) with a payload of 0.1 to 30 MB, in the main process and
                           in the workers
  report                   `build_report` of the finished run (bootstrap intervals, ceiling)
  runs                     whole `zcnas score` processes (imports and the report included):
                           wall seconds, CPU of the zcnas process, of its loky workers, of the
                           Dask scheduler and of the Dask workers (nannies included), and the
                           speed-up in wall seconds over --workers 1

The Dask run starts a scheduler and W worker processes x 1 thread on this machine first (not
timed), as `dask scheduler` and `dask worker --nworkers W --nthreads 1` do. Wall seconds and
speed-ups need a quiet machine with at least W free cores; the CPU columns do not.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PROXIES = "synflow,nwot,grad_norm,snip,params,flops"


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def subprocess_cpu(command: list[str], **kwargs) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall, CPU of the process and everything it waited for, the result)."""
    before, start = children_cpu(), time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    return time.perf_counter() - start, children_cpu() - before, result


def make_nb201_benchmark(path: Path, n_archs: int) -> Path:
    """NB201 at the width the README scores (C=16, N=5), 32x32 random images."""
    from zcnas.bench import write_benchmark
    from zcnas.spaces import get_space

    rng = np.random.default_rng(0)
    archs = get_space("nb201").sample(n_archs, rng)
    return write_benchmark(
        path, name="nb201-full-random32", search_space="nb201", dataset="random32", num_classes=10,
        encodings=archs, targets={"acc": rng.normal(80, 5, len(archs))},
        probe_images=rng.integers(0, 256, size=(640, 32, 32, 3), dtype=np.uint8),
        probe_labels=np.arange(640) % 10, probe_mean=(0.49, 0.48, 0.45), probe_std=(0.25, 0.24, 0.26),
        source="tests/perf/bench_workers.py", extra_attrs={"space_options": '{"C": 16, "N": 5}'},
    )


def _return_row(task, payload):
    return task.row


def _children_cpu_now() -> float:
    """CPU of this process's live children (loky keeps its workers alive between jobs)."""
    import psutil

    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            times = child.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def phases(bench: Path, n_archs: int, proxies: list[str], batch_size: int, workers: int) -> dict:
    import torch

    from zcnas.bench import open_benchmark
    from zcnas.pools import execute
    from zcnas.proxies import compute_proxies
    from zcnas.run.runner import ArchTask, ScoringPayload, _space_options
    from zcnas.spaces import get_space

    figures: dict = {}
    for name, code in (("runner", "import zcnas.run.runner"), ("report", "import zcnas.run.runner, zcnas.report")):
        _, cpu, _ = subprocess_cpu([sys.executable, "-c", code])
        figures[f"import {name}"] = cpu
    start = self_cpu()
    benchmark = open_benchmark(bench)
    x, y = benchmark.probe_batch(batch_size, seed=0)
    figures["open benchmark + probe"] = self_cpu() - start
    options = _space_options(benchmark)
    payload = ScoringPayload(
        search_space=benchmark.search_space, space_options=options, num_classes=int(benchmark.num_classes),
        x=x.numpy(), y=y.numpy(), proxies=tuple(proxies),
    )
    tasks = [ArchTask(row, benchmark.encodings[row], row) for row in range(n_archs)]
    figures["payload bytes"] = len(pickle.dumps(payload))
    figures["task bytes"] = len(pickle.dumps(tasks[0]))

    space = get_space(benchmark.search_space)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    build = score = 0.0
    for task in tasks:
        start = self_cpu()
        torch.manual_seed(task.seed)
        model = space.build(task.encoding, num_classes=payload.num_classes, **options)
        middle = self_cpu()
        compute_proxies(model, x, y, proxies, num_classes=payload.num_classes, seed=task.seed)
        build += middle - start
        score += self_cpu() - middle
    torch.set_num_threads(threads)
    figures["build, per arch"] = build / len(tasks)
    figures["proxies, per arch"] = score / len(tasks)

    # Worker start: fresh processes, each importing what a scoring task imports (skipped with
    # a zcnas from before start_workers, for comparison runs).
    try:
        from zcnas.pools import _executor, start_workers
    except ImportError:
        pass
    else:
        _executor(workers).shutdown(wait=True, kill_workers=True)
        kids, wall = _children_cpu_now(), time.perf_counter()
        start_workers(workers)
        assert sorted(execute(_return_row, tasks[:workers], payload, workers=workers)) == list(range(workers))
        figures["worker start wall s"] = time.perf_counter() - wall
        figures["worker start, all workers"] = _children_cpu_now() - kids

    # The pool's own cost per task (tasks that return at once) as the payload grows, its workers
    # started beforehand.
    assert len(list(execute(_return_row, tasks[:1] * 2 * workers, payload, workers=workers))) == 2 * workers
    for megabytes in (0.1, 0.8, 3.0, 30.0):
        big = np.ones(int(megabytes * 1e6), dtype=np.uint8)
        parent, kids, wall = self_cpu(), _children_cpu_now(), time.perf_counter()
        count = 40
        assert len(list(execute(_return_row, tasks[:1] * count, big, workers=workers))) == count
        figures[f"pool per task, {megabytes:g} MB payload: main"] = (self_cpu() - parent) / count
        figures[f"pool per task, {megabytes:g} MB payload: workers"] = (_children_cpu_now() - kids) / count
    return figures


def report_cpu(run: Path) -> float:
    from zcnas.report import build_report
    from zcnas.run.store import RunStore

    store = RunStore.open(run)
    start = self_cpu()
    build_report(store)
    return self_cpu() - start


def dask_cluster(folder: Path, workers: int):
    """A scheduler and `workers` worker processes x 1 thread on this machine, as a user starts them."""
    scheduler_file = folder / "scheduler.json"
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--scheduler-file", str(scheduler_file), "--port", "0",
         "--dashboard-address", ":0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not scheduler_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    address = json.loads(scheduler_file.read_text())["address"]
    worker = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file", str(scheduler_file), "--nworkers",
         str(workers), "--nthreads", "1", "--dashboard-address", ":0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    from dask.distributed import Client

    with Client(address, timeout="60s") as client:
        client.wait_for_workers(workers, timeout=120)
    return address, [scheduler, worker]


def tree_cpu(processes) -> float:
    import psutil

    total = 0.0
    for process in processes:
        try:
            root = psutil.Process(process.pid)
            for member in [root, *root.children(recursive=True)]:
                times = member.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


PARENT_CPU = (
    "import atexit, resource, sys\n"
    "def _report():\n"
    "    u, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "    sys.stderr.write(f'\\nPARENT_CPU {u.ru_utime + u.ru_stime} {c.ru_utime + c.ru_stime}\\n')\n"
    "atexit.register(_report)\n"
    "sys.argv[0] = 'zcnas'\n"
    "from zcnas.cli import main\n"
    "main()\n"
)


def whole_run(bench: Path, out: Path, proxies: str, batch_size: int, n_archs: int, workers: int, scheduler: str | None):
    command = [
        sys.executable, "-c", PARENT_CPU, "score", str(bench), "--proxies", proxies, "--sample", str(n_archs),
        "--batch-size", str(batch_size), "--out", str(out), "--overwrite", "--quiet", "--workers", str(workers),
    ]
    if scheduler:
        command += ["--scheduler", scheduler]
    wall, cpu, result = subprocess_cpu(command)
    if result.returncode != 0:
        raise SystemExit(f"zcnas score failed: {result.stderr[-2000:]}")
    # At exit (loky's workers are joined before atexit runs): the zcnas process, its workers;
    # the rest of `cpu` is the interpreter's own teardown, counted with the zcnas process.
    parent, workers = (float(v) for v in result.stderr.rsplit("PARENT_CPU", 1)[1].split()[:2])
    return wall, cpu - workers, workers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", default="default", choices=["default", "nb201"])
    parser.add_argument("--archs", type=int, default=40)
    parser.add_argument("--proxies", default=DEFAULT_PROXIES)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", default="w1,w2,dask", help="whole runs to time: w1, w2 (--workers), dask")
    parser.add_argument("--phase-archs", type=int, default=None, help="architectures for the in-process phases (default --archs)")
    parser.add_argument("--no-phases", dest="phases", action="store_false", help="the whole runs only")
    parser.add_argument("--dask-profile", default="on", choices=["on", "off"], help="the Dask workers' statistical profiler")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="zcnas-bench-workers-"))
    try:
        if args.bench == "default":
            bench = ROOT / "zcnas" / "data" / "default.h5"
        else:
            bench = make_nb201_benchmark(folder / "nb201.h5", args.archs)
        proxies = [p.strip() for p in args.proxies.split(",") if p.strip()]
        print(f"benchmark {args.bench} ({bench.name}), {args.archs} architectures, proxies {args.proxies}, "
              f"batch {args.batch_size}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
        figures = phases(bench, args.phase_archs or args.archs, proxies, args.batch_size, args.workers) if args.phases else {}

        runs = [r.strip() for r in args.runs.split(",") if r.strip()]
        rows, base_wall = [], None
        for run in runs:
            out = folder / f"{run}.h5"
            if run == "dask":
                try:
                    import dask.distributed  # noqa: F401
                except ImportError:
                    print("dask run skipped: pip install 'zcnas[dask]'")
                    continue
                (folder / "dask").mkdir()
                if args.dask_profile == "off":
                    os.environ["DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED"] = "False"
                address, processes = dask_cluster(folder / "dask", args.workers)
                before = [tree_cpu([p]) for p in processes]
                try:
                    wall, parent, _ = whole_run(bench, out, args.proxies, args.batch_size, args.archs, 1, address)
                    scheduler_cpu, workers_cpu = (tree_cpu([p]) - b for p, b in zip(processes, before))
                finally:
                    for process in processes:
                        process.terminate()
                    for process in processes:
                        process.wait(timeout=60)
                    os.environ.pop("DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED", None)
                label = f"dask, {args.workers}x1 thread" + (", no profiler" if args.dask_profile == "off" else "")
                rows.append((label, wall, parent, workers_cpu, scheduler_cpu))
            else:
                workers = 1 if run == "w1" else args.workers
                wall, parent, kids = whole_run(bench, out, args.proxies, args.batch_size, args.archs, workers, None)
                rows.append((f"--workers {workers} (loky)" if workers > 1 else "--workers 1", wall, parent, kids, 0.0))
                if workers == 1:
                    base_wall = wall
                    figures["report (build_report of the run)"] = report_cpu(out)
        print(f"\n{'phase':<48} CPU s (bytes for sizes)")
        for key, value in figures.items():
            print(f"  {key:<46} {value:>12,d}" if "bytes" in key else f"  {key:<46} {value:>12.4f}")
        print("\nwhole `zcnas score` process        wall s   zcnas CPU s   workers CPU s   scheduler CPU s   speed-up")
        for label, wall, parent, kids, scheduler in rows:
            speed = f"{base_wall / wall:.2f}x" if base_wall else "—"
            print(f"  {label:<32} {wall:>6.1f}   {parent:>11.1f}   {kids:>13.1f}   {scheduler:>15.1f}   {speed:>8}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

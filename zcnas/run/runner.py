"""Run a scoring job: benchmark x architecture sample x proxies x seed, in worker pools.

Determinism: the sample and every architecture's seed derive from the job seed alone (the
architecture's seed from (job seed, its stable benchmark index)), every architecture is
scored by the same pure function `score_architecture` with torch limited to one thread, and
the probe batch is drawn once by the job seed. So the scores are bit-identical whatever the
number of workers, the backend (in-process, loky, Dask) or the order results come back in.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from zcnas.bench import open_benchmark
from zcnas.errors import RunError
from zcnas.pools import execute
from zcnas.proxies import ProxyOutcome, check_batch, compute_proxies, parse_proxy_list
from zcnas.proxies.passes import NTK_BATCH
from zcnas.run.store import RunSpec, RunStore
from zcnas.proxies import get_proxy
from zcnas.spaces import aggregate_slots, get_space

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class ArchTask:
    row: int
    encoding: str
    seed: int


@dataclass(frozen=True)
class ScoringPayload:
    """What every task of a job shares (sent once per worker batch, or scattered on Dask)."""

    search_space: str
    space_options: dict
    num_classes: int
    x: np.ndarray
    y: np.ndarray
    proxies: tuple[str, ...]
    share: bool = True
    device: str = "cpu"
    ntk_samples: int = NTK_BATCH
    space_plugin: str | None = None  # module:Factory of a plugin space, for fresh worker processes


def arch_seed(job_seed: int, index: int) -> int:
    """The seed of one architecture: from the job seed and its stable index, nothing else."""
    return int(np.random.SeedSequence([int(job_seed), int(index)]).generate_state(1, dtype=np.uint32)[0])


def sample_rows(n_archs: int, sample: int | None, seed: int) -> np.ndarray:
    """The rows of the benchmark a job scores: all of them, or `sample` drawn by the seed."""
    if sample is None or sample == n_archs:
        return np.arange(n_archs)
    if sample < 1:
        raise RunError(f"--sample must be at least 1; got {sample}.")
    if sample > n_archs:
        raise RunError(f"--sample {sample} is larger than the benchmark's {n_archs} architectures.")
    return np.sort(np.random.default_rng(seed).choice(n_archs, size=sample, replace=False))


def score_architecture(task: ArchTask, payload: ScoringPayload) -> tuple[int, dict[str, ProxyOutcome]]:
    """Build one architecture from its seed and score it: the unit of work of every backend."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(task.seed)
        device = torch.device(payload.device)
        space = get_space(payload.search_space, plugin=payload.space_plugin)
        model = space.build(task.encoding, num_classes=payload.num_classes, **payload.space_options).to(device)
        x = torch.from_numpy(payload.x).to(device)
        y = torch.from_numpy(payload.y).to(device)
        outcomes = compute_proxies(
            model,
            x,
            y,
            list(payload.proxies),
            num_classes=payload.num_classes,
            seed=task.seed,
            share=payload.share,
            ntk_samples=payload.ntk_samples,
        )
        outcomes = {name: _slotted(space, name, outcome) for name, outcome in outcomes.items()}
    except Exception as error:  # noqa: BLE001 - a failure to build is this architecture's failure
        message = f"{type(error).__name__}: {error}"[:500]
        outcomes = {name: ProxyOutcome(float("nan"), {}, 0.0, message) for name in payload.proxies}
    finally:
        torch.set_num_threads(threads)
    return task.row, outcomes


def _slotted(space, name: str, outcome: ProxyOutcome) -> ProxyOutcome:
    """Per-layer values keyed by the space's slots (docs/spaces.md): a space whose ops hold
    several conv layers (DARTS's separable convs) sums them into the op's slot."""
    if not outcome.layers or get_proxy(name).layer_keys != "conv_linear":
        return outcome
    layers = aggregate_slots(space, outcome.layers)
    if layers == outcome.layers:
        return outcome
    return ProxyOutcome(outcome.score, layers, outcome.seconds, outcome.error)


# -- the job -------------------------------------------------------------------------------
@dataclass
class JobOptions:
    proxies: str | Iterable[str]
    sample: int | None = None
    seed: int = 0
    batch_size: int = 64
    workers: int = 1
    share: bool = True
    device: str = "cpu"
    scheduler: str | None = None
    resume: bool = False
    overwrite: bool = False
    checkpoint_seconds: float = 30.0
    ntk_samples: int = NTK_BATCH  # probe samples of the NTK kernel (ntk_cond, ntk_trace, lga)
    derived: dict = field(default_factory=dict)  # column name -> combine model path


def _check_device(device: str) -> None:
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise RunError(f"Unknown device {device!r}; use cpu, cuda or cuda:N.") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise RunError(f"--device {device} was asked for, but this machine has no CUDA GPU; use --device cpu.")


def run_job(
    benchmark: str | os.PathLike,
    out: str | os.PathLike,
    options: JobOptions,
    on_progress: ProgressCallback | None = None,
) -> RunStore:
    """Score a benchmark and keep every result in the run file `out`; returns the finished store."""
    names = options.proxies if not isinstance(options.proxies, str) else parse_proxy_list(options.proxies)
    names = parse_proxy_list(",".join(names))
    _check_device(options.device)
    if options.workers < 1:
        raise RunError(f"--workers must be at least 1; got {options.workers}.")
    if options.ntk_samples < 2:
        raise RunError(f"--ntk-samples must be at least 2 (a 1x1 kernel says nothing); got {options.ntk_samples}.")
    bench = open_benchmark(benchmark)
    space = get_space(bench.search_space, plugin=bench.attrs.get("space_plugin"))
    if not getattr(space, "can_build", True):
        raise RunError(
            f"Benchmark {benchmark} is of the table-only space {space.name}: zcnas cannot build its networks, "
            "so it cannot score them; use `zcnas report`/`zcnas combine` on its reference run instead."
        )
    check_batch(names, options.batch_size)
    rows = sample_rows(len(bench.encodings), options.sample, options.seed)
    space_options = _space_options(bench)
    spec = RunSpec(
        benchmark=str(Path(benchmark).resolve()),
        benchmark_name=bench.name,
        search_space=bench.search_space,
        dataset=bench.dataset,
        num_classes=int(bench.num_classes),
        proxies=tuple(names),
        seed=int(options.seed),
        sample=len(rows),
        batch_size=int(options.batch_size),
        share=bool(options.share),
        ntk_samples=int(options.ntk_samples),
        space_options=space_options,
        derived={name: str(Path(path).resolve()) for name, path in options.derived.items()},
    )
    x, y = bench.probe_batch(options.batch_size, seed=options.seed)
    out = Path(out)
    store = _open_or_create(out, spec, bench, rows, options)
    payload = ScoringPayload(
        search_space=spec.search_space,
        space_options=space_options,
        num_classes=spec.num_classes,
        x=x.numpy(),
        y=y.numpy(),
        proxies=spec.proxies,
        share=spec.share,
        device=options.device,
        ntk_samples=spec.ntk_samples,
        space_plugin=bench.attrs.get("space_plugin") or None,
    )
    pending = store.pending_rows()
    tasks = [ArchTask(row, store.encodings[row], int(store.arch_seeds[row])) for row in pending]
    total, done = len(store), store.done_count()
    if on_progress:
        on_progress(done, total)
    last_checkpoint = time.monotonic()
    try:
        work = execute(score_architecture, tasks, payload, workers=options.workers, scheduler=options.scheduler)
        for row, outcomes in work:
            store.record(row, outcomes)
            done += 1
            if on_progress:
                on_progress(done, total)
            if time.monotonic() - last_checkpoint > options.checkpoint_seconds:
                store.checkpoint()
                last_checkpoint = time.monotonic()
    finally:
        store.checkpoint()
    return store


def _open_or_create(out: Path, spec: RunSpec, bench, rows: np.ndarray, options: JobOptions) -> RunStore:
    if out.exists() and options.resume:
        store = RunStore.open(out)
        if store.spec.reference:
            raise RunError(
                f"{out} is a reference run imported from {store.spec.reference.get('source_file', 'another tool')} "
                "(its scores were not computed by zcnas), so it cannot be resumed; score into a new --out "
                "and set the two side by side with `zcnas compare`."
            )
        differences = spec.differences(store.spec)
        if differences:
            raise RunError(
                f"{out} was started with other settings ({', '.join(differences)} differ); "
                "rerun with the same options to resume, or write to a new --out."
            )
        if list(store.encodings) != [bench.encodings[r] for r in rows]:
            raise RunError(f"{out} holds other architectures than this benchmark's sample; use a new --out.")
        return store
    if out.exists() and not options.overwrite:
        raise RunError(f"{out} already exists; pass --resume to finish it or --overwrite to start again.")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunError(f"Cannot create the folder of --out ({out.parent}): {error.strerror}.") from None
    index = np.asarray(bench.index)[rows]
    space = get_space(spec.search_space, plugin=bench.attrs.get("space_plugin"))
    slot_order = list(space.layer_slots(**_slot_options(space, spec.space_options)))
    return RunStore.create(
        out,
        spec,
        encodings=[bench.encodings[r] for r in rows],
        index=index,
        arch_seeds=np.array([arch_seed(spec.seed, i) for i in index], dtype=np.int64),
        targets={name: np.asarray(values)[rows] for name, values in bench.targets.items()},
        target_seeds={name: np.asarray(values)[rows] for name, values in bench.target_seeds.items()},
        slot_order=slot_order,
        primary_target=bench.primary_target,
    )


def _space_options(bench) -> dict:
    """Build options of the space (e.g. a narrow NB201: {"C": 8, "N": 1}) from the benchmark."""
    raw = bench.attrs.get("space_options")
    if raw is None or raw == "":
        return {}
    try:
        options = json.loads(raw) if isinstance(raw, (str, bytes)) else dict(raw)
    except (ValueError, TypeError):
        raise RunError(f"Benchmark {bench.path} has an unreadable space_options attribute: {raw!r}.") from None
    return {str(k): v for k, v in options.items()}


def _slot_options(space, space_options: dict) -> dict:
    """The build options that change the space's slot list (NB201: N, the cells per stage)."""
    if hasattr(space, "slot_options"):
        return space.slot_options(space_options)
    return {}

"""Run a scoring job: benchmark x architecture sample x proxies x seed, in worker pools.

Determinism: the sample and every architecture's seed derive from the job seed alone (the
architecture's seed from (job seed, its stable benchmark index)), every architecture is
scored by the same pure function `score_architecture` with torch limited to one thread, and
the probe batch is drawn once by the job seed. So the scores are bit-identical whatever the
number of workers, the backend (in-process, loky, Dask) or the order results come back in.

Repeats (`--repeats R --vary init|batch|both`): the unit of work is one (architecture, repeat).
Repeat r uses the initialisation `init_id` and the probe batch `batch_id` of
`repeat_design(r, vary)`; init 0 is the architecture's seed above and batch 0 the job seed's
batch, so repeat 0 is exactly the single-repeat run. Other inits derive from (job seed, stable
index, init id) (`init_seed`), other batches from (job seed, batch id) (`batch_seed`), or under
the suite-zero protocol from (job seed, stable index, batch id): still nothing else.
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
from zcnas.bench.probe import SUITE_ZERO_BATCH
from zcnas.errors import RunError, ZcnasError
from zcnas.pools import execute
from zcnas.proxies import ProxyOutcome, check_batch, compute_proxies, parse_proxy_list
from zcnas.proxies.passes import NTK_BATCH
from zcnas.run.store import LEGACY_PROTOCOL, PROTOCOLS, VARY, RunSpec, RunStore, repeat_design
from zcnas.proxies import get_proxy
from zcnas.spaces import aggregate_slots, get_space

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class ArchTask:
    row: int
    encoding: str
    seed: int
    repeat: int = 0
    batch: int = 0  # which of the payload's batches (0: x, y; b: extra_batches[b - 1])
    batch_seed: int | None = None  # suite-zero: this task's own augmented batch from the pool


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
    # Token benchmarks: x holds token ids (N, L), y the probe's labels (None without labels),
    # and these the attention mask of each probe batch, in batch id order, for `net(ids, mask)`.
    attention_masks: tuple = ()
    extra_batches: tuple = ()  # (x, y) of batch ids 1, 2, ... (repeats that vary the batch)
    pool: tuple | None = None  # suite-zero: (uint8 images, labels, mean, std, batch size)

    def batch_for(self, task: "ArchTask") -> tuple[np.ndarray, np.ndarray]:
        """The probe batch of one task: its own augmented draw (suite-zero), else a shared one."""
        if task.batch_seed is not None and self.pool is not None:
            from zcnas.bench.probe import augmented_batch

            images, labels, mean, std, size = self.pool
            return augmented_batch(images, labels, mean, std, size, task.batch_seed)
        if task.batch == 0:
            return self.x, self.y
        return self.extra_batches[task.batch - 1]


def arch_seed(job_seed: int, index: int) -> int:
    """The seed of one architecture: from the job seed and its stable index, nothing else."""
    return int(np.random.SeedSequence([int(job_seed), int(index)]).generate_state(1, dtype=np.uint32)[0])


def init_seed(job_seed: int, index: int, init_id: int) -> int:
    """The initialisation seed of one architecture in init `init_id`: `arch_seed` for init 0
    (so repeat 0 is the single-repeat run), else from (job seed, stable index, init id)."""
    if init_id == 0:
        return arch_seed(job_seed, index)
    state = np.random.SeedSequence([int(job_seed), int(index), int(init_id)]).generate_state(1, dtype=np.uint32)
    return int(state[0])


def batch_seed(job_seed: int, batch_id: int, index: int | None = None) -> int:
    """The seed of a probe batch. zcnas protocol (`index` None): batch 0 is the job seed's own
    batch, batch b the draw of a seed from (job seed, b), shared by every architecture.
    suite-zero protocol: each architecture's own batch, from (job seed, stable index, b)."""
    if index is None:
        if batch_id == 0:
            return int(job_seed)
        entropy, purpose = [int(job_seed), int(batch_id)], 1
    else:
        entropy, purpose = [int(job_seed), int(index), int(batch_id)], 2
    state = np.random.SeedSequence(entropy, spawn_key=(purpose,)).generate_state(1, dtype=np.uint32)
    return int(state[0])


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
        batch_x, batch_y = payload.batch_for(task)
        x = torch.from_numpy(batch_x).to(device)
        y = torch.from_numpy(batch_y).to(device) if batch_y is not None else None
        masks = payload.attention_masks
        mask = torch.from_numpy(masks[task.batch]).to(device) if masks else None
        outcomes = compute_proxies(
            model,
            x,
            y,
            list(payload.proxies),
            num_classes=payload.num_classes,
            seed=task.seed,
            share=payload.share,
            ntk_samples=payload.ntk_samples,
            attention_mask=mask,
        )
        outcomes = {name: _slotted(space, name, outcome) for name, outcome in outcomes.items()}
    except Exception as error:  # noqa: BLE001 - a failure to build is this architecture's failure
        message = f"{type(error).__name__}: {error}"[:500]
        outcomes = {name: ProxyOutcome(float("nan"), {}, 0.0, message) for name in payload.proxies}
    finally:
        torch.set_num_threads(threads)
    return task.row, outcomes


def score_task(task: ArchTask, payload: ScoringPayload) -> tuple[int, int, dict[str, ProxyOutcome]]:
    """`score_architecture` of one (architecture, repeat): (row, repeat, outcomes)."""
    row, outcomes = score_architecture(task, payload)
    return row, task.repeat, outcomes


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
    batch_size: int | None = None  # None: 64, or 32 under the suite-zero protocol
    workers: int = 1
    share: bool = True
    device: str = "cpu"
    scheduler: str | None = None
    resume: bool = False
    overwrite: bool = False
    checkpoint_seconds: float = 30.0
    ntk_samples: int = NTK_BATCH  # probe samples of the NTK kernel (ntk_cond, ntk_trace, lga)
    derived: dict = field(default_factory=dict)  # column name -> combine model path
    repeats: int = 1  # scorings per architecture
    vary: str = "both"  # what changes between repeats: init, batch or both
    protocol: str | None = None  # None: "zcnas", or on --resume the protocol the run has


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
    if options.repeats < 1:
        raise RunError(f"--repeats must be at least 1; got {options.repeats}.")
    if options.vary not in VARY:
        raise RunError(f"--vary takes {', '.join(VARY)}; got {options.vary!r}.")
    out = Path(out)
    protocol = options.protocol or (_stored_protocol(out) if options.resume else None) or "zcnas"
    if protocol not in PROTOCOLS:
        raise RunError(
            f"--protocol takes zcnas or suite-zero (or {LEGACY_PROTOCOL}, the uniform draw of runs made "
            f"before the class-balanced one); got {protocol!r}."
        )
    batch_size = options.batch_size or (SUITE_ZERO_BATCH if protocol == "suite-zero" else 64)
    if protocol == "suite-zero" and (bench.probe_images is None or np.ndim(bench.probe_images) != 4):
        raise RunError(
            f"--protocol suite-zero crops and flips probe images, and benchmark {benchmark} has none; "
            "use the default protocol."
        )
    check_batch(
        names,
        batch_size,
        has_labels=bench.probe_tokens is None or bench.probe_tokens.labels is not None,
        input_kind=getattr(space, "input_kind", "image"),
        space_name=space.name,
    )
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
        batch_size=int(batch_size),
        share=bool(options.share),
        ntk_samples=int(options.ntk_samples),
        space_options=space_options,
        derived={name: str(Path(path).resolve()) for name, path in options.derived.items()},
        repeats=int(options.repeats),
        vary=options.vary,
        protocol=protocol,
    )
    draw = "random" if protocol == LEGACY_PROTOCOL else "balanced"
    # Shared batches 0..max (suite-zero draws each task's own in the worker: batch 0 only).
    last = 0 if protocol == "suite-zero" else max(repeat_design(r, spec.vary)[1] for r in range(spec.repeats))
    batches = [bench.probe_batch(batch_size, seed=batch_seed(spec.seed, b), draw=draw) for b in range(last + 1)]
    masks: tuple = ()
    if bench.probe_tokens is not None:
        # A token probe's batch is (ids, attention mask); the labels of the same rows come apart.
        masks = tuple(mask.numpy() for _, mask in batches)
        batches = [
            (ids, bench.probe_batch_labels(batch_size, seed=batch_seed(spec.seed, b))) for b, (ids, _) in enumerate(batches)
        ]
    x, y = batches[0]
    store = _open_or_create(out, spec, bench, rows, options)
    payload = ScoringPayload(
        search_space=spec.search_space,
        space_options=space_options,
        num_classes=spec.num_classes,
        x=x.numpy(),
        y=y.numpy() if y is not None else None,
        proxies=spec.proxies,
        share=spec.share,
        device=options.device,
        ntk_samples=spec.ntk_samples,
        space_plugin=bench.attrs.get("space_plugin") or None,
        attention_masks=masks,
        extra_batches=tuple((bx.numpy(), by.numpy() if by is not None else None) for bx, by in batches[1:]),
        pool=(
            (bench.probe_images, bench.probe_labels, tuple(bench.probe_mean), tuple(bench.probe_std), batch_size)
            if protocol == "suite-zero"
            else None
        ),
    )
    pending = store.pending_tasks()
    tasks = [_task(store, row, repeat) for row, repeat in pending]
    total = len(store) * store.repeats
    done = total - len(pending)
    if on_progress:
        on_progress(done, total)
    last_checkpoint = time.monotonic()
    try:
        work = execute(score_task, tasks, payload, workers=options.workers, scheduler=options.scheduler)
        for row, repeat, outcomes in work:
            store.record(row, outcomes, repeat)
            done += 1
            if on_progress:
                on_progress(done, total)
            if time.monotonic() - last_checkpoint > options.checkpoint_seconds:
                store.checkpoint()
                last_checkpoint = time.monotonic()
    finally:
        store.checkpoint()
    return store


def _task(store: RunStore, row: int, repeat: int) -> ArchTask:
    """One (architecture, repeat) of the run, its seeds from `repeat_design`."""
    spec, index = store.spec, int(store.index[row])
    init_id, batch_id = repeat_design(repeat, spec.vary)
    seed = int(store.arch_seeds[row]) if init_id == 0 else init_seed(spec.seed, index, init_id)
    if spec.protocol == "suite-zero":
        return ArchTask(row, store.encodings[row], seed, repeat, 0, batch_seed(spec.seed, batch_id, index))
    return ArchTask(row, store.encodings[row], seed, repeat, batch_id)


def _stored_protocol(out: Path) -> str | None:
    """The protocol of the run at `out`, which --resume keeps unless --protocol says otherwise
    (runs from before the balanced draw go on with theirs); None without a readable run."""
    try:
        return RunStore.open(out).spec.protocol if out.exists() else None
    except ZcnasError:
        return None


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

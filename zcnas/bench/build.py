"""Build a benchmark by training: a sample of a search space, several seeds each, on a real dataset.

`build_benchmark` samples architectures, trains every (architecture, seed) pair with one fixed,
documented recipe (`TrainingRecipe`, docs/bench-build.md) and writes a benchmark file whose
target is the held-out test accuracy averaged over the seeds, with the per-seed accuracies
kept (`targets/test_acc_seeds`) for the noise ceiling.

How it runs, following `zcnas score`:

* Workers: the same backends as scoring (`zcnas.pools.execute`: in-process, joblib loky
  processes, Dask), with torch limited to one thread per training run.
* Determinism: a pair's initialisation and batch order derive from (build seed, the
  architecture's stable index, the seed's column) alone, and `train_architecture` is a pure
  function of them, so the accuracies are identical whatever the number of workers, the
  backend or the order results come back in.
* Resume: each finished pair is appended to ``OUT.journal`` as one JSON line and fsynced before
  the next is counted (the journal of `zcnas.run.store.RunStore`, one line per unit). A killed
  build rerun with ``resume=True`` replays the journal and trains only what is missing; a last
  line cut by the kill is ignored (that pair is trained again). The benchmark file is written
  once, at the end, atomically (`write_benchmark`), and then the journal is removed. A build
  holds a lock on its journal, so two builds of one file cannot run at once.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from zcnas import __version__
from zcnas.bench.datasets import ImageDataset, get_dataset_info, load_dataset, locate_data_file
from zcnas.bench.format import Benchmark, open_benchmark, write_benchmark
from zcnas.bench.importers import file_sha256
from zcnas.bench.probe import balanced_subset, channel_statistics
from zcnas.pools import execute
from zcnas.errors import ArchError, BenchmarkError
from zcnas.spaces import get_space

ProgressCallback = Callable[[int, int], None]

JOURNAL_KIND = "zcnas-bench-build"
TARGET = "test_acc"
# The embedded default benchmark's network: a narrow, shallow NB201 that trains in seconds.
DEFAULT_SPACE_OPTIONS = {"C": 8, "N": 2}


@dataclass(frozen=True)
class TrainingRecipe:
    """How every architecture is trained: one fixed recipe, stored in the benchmark's attributes.

    The defaults are the recipe of the embedded default benchmark (docs/bench-build.md says how
    they were chosen). The learning rate follows a cosine from `lr` to 0 over all steps, updated
    every step; the last incomplete batch of an epoch is dropped (a batch of one would break
    batch normalisation).
    """

    epochs: int = 2
    batch_size: int = 64
    optimizer: str = "sgd"  # SGD with (Nesterov) momentum, the NAS-Bench-201 optimiser
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    grad_clip: float = 5.0  # max gradient norm; keeps a high learning rate from diverging
    label_smoothing: float = 0.0
    augmentation: str = "none"  # digits are not flip-invariant; no augmentation
    test_fraction: float = 0.5  # held out per class (stratified), fixed by split_seed
    split_seed: int = 0
    image_size: int | None = None  # None: the dataset's default_image_size (resolved before training)
    max_train: int | None = None  # class-balanced cap on the training split (tests, quick tries)
    max_test: int | None = None

    def check(self) -> None:
        problems = []
        if not (isinstance(self.epochs, int) and self.epochs >= 1):
            problems.append(f"epochs must be a positive integer (got {self.epochs!r})")
        if not (isinstance(self.batch_size, int) and self.batch_size >= 2):
            problems.append(f"batch size must be an integer of at least 2 (got {self.batch_size!r})")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            problems.append(f"the learning rate must be positive (got {self.lr!r})")
        if not 0 < self.test_fraction < 1:
            problems.append(f"the test fraction must lie between 0 and 1 (got {self.test_fraction!r})")
        if self.optimizer != "sgd" or self.schedule != "cosine" or self.augmentation != "none":
            problems.append("only optimizer 'sgd', schedule 'cosine' and augmentation 'none' are implemented")
        for label, value in (("max_train", self.max_train), ("max_test", self.max_test)):
            if value is not None and not (isinstance(value, int) and value >= 2):
                problems.append(f"{label} must be an integer of at least 2 (got {value!r})")
        if problems:
            raise BenchmarkError(f"Bad training recipe: {'; '.join(problems)}.")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        """One line a person reads in `bench info` or a paper's appendix."""
        momentum = f"{'Nesterov ' if self.nesterov else ''}momentum {self.momentum}"
        return (
            f"SGD ({momentum}, weight decay {self.weight_decay}), lr {self.lr} with a per-step cosine "
            f"decay to 0, {self.epochs} epochs, batch {self.batch_size} (last partial batch dropped), "
            f"gradient norm clipped at {self.grad_clip}, cross-entropy"
            f"{f' with label smoothing {self.label_smoothing}' if self.label_smoothing else ''}, "
            f"augmentation: {self.augmentation}; stratified split with {self.test_fraction:.0%} of each "
            f"class held out for testing (split seed {self.split_seed}); inputs normalised per channel "
            f"with the training split's mean and std; test accuracy in eval mode (BN running statistics)"
        )


@dataclass(frozen=True)
class BuildSpec:
    """Everything that decides a build's numbers; a resumed build must match it exactly."""

    search_space: str
    space_options: dict
    dataset: str
    dataset_sha256: str
    archs: int
    seeds: int
    seed: int
    recipe: dict

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    def differences(self, other: dict) -> list[str]:
        mine = json.loads(self.to_json())
        return [key for key in mine if mine[key] != other.get(key)]


@dataclass(frozen=True)
class TrainingTask:
    """One unit of work: one architecture trained with one seed."""

    row: int
    column: int  # which seed of the architecture (0 .. seeds-1)
    encoding: str
    unit_seed: int


@dataclass(frozen=True)
class TrainingPayload:
    """What every training run shares: the network settings, the data split and the recipe."""

    search_space: str
    space_options: dict
    num_classes: int
    train_images: np.ndarray  # uint8 (N, H, W, C)
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    mean: tuple[float, ...]
    std: tuple[float, ...]
    recipe: TrainingRecipe


@dataclass
class TrainingOutcome:
    row: int
    column: int
    test_acc: float  # percent; NaN when the run failed
    train_loss: float  # mean loss of the last epoch
    seconds: float
    diverged: bool = False  # the loss became non-finite; training stopped there
    error: str | None = None


@dataclass
class BuildResult:
    """What a build returns: the benchmark written and how the build went."""

    benchmark: Benchmark
    path: Path
    trained: int  # (architecture, seed) pairs trained in this call
    resumed: int  # pairs taken from the journal of an interrupted build
    wall_seconds: float  # of this call
    noise_ceiling: float | None
    failed: int
    diverged: int
    up_to_date: bool = False  # `out` already held this very build (a --resume of a finished one)


# --------------------------------------------------------------------------- one unit


def unit_seed(build_seed: int, index: int, column: int) -> int:
    """The seed of one training run: from the build seed, the arch's stable index and the seed column."""
    state = np.random.SeedSequence([int(build_seed), int(index), int(column)]).generate_state(1, dtype=np.uint32)
    return int(state[0])


def _normalise(images: np.ndarray, mean, std):
    import torch

    x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).to(torch.float32) / 255.0
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (x - mean_t) / std_t


def train_architecture(task: TrainingTask, payload: TrainingPayload) -> TrainingOutcome:
    """Train one architecture with one seed and measure its test accuracy: the unit of every backend.

    A pure function of (task, payload) with torch on one thread: same inputs, same accuracy,
    in any process. An exception (e.g. out of memory) becomes this pair's recorded failure.
    """
    import torch
    import torch.nn.functional as F

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    start = time.perf_counter()
    recipe = payload.recipe
    try:
        torch.manual_seed(task.unit_seed)
        model = get_space(payload.search_space).build(
            task.encoding, num_classes=payload.num_classes, **payload.space_options
        )
        x_train = _normalise(payload.train_images, payload.mean, payload.std)
        y_train = torch.from_numpy(payload.train_labels.astype(np.int64))
        x_test = _normalise(payload.test_images, payload.mean, payload.std)
        y_test = torch.from_numpy(payload.test_labels.astype(np.int64))

        count = len(y_train)
        batch = min(recipe.batch_size, count)
        steps_per_epoch = max(1, count // batch)
        total_steps = recipe.epochs * steps_per_epoch
        optimizer = torch.optim.SGD(
            model.parameters(),
            lr=recipe.lr,
            momentum=recipe.momentum,
            nesterov=recipe.nesterov,
            weight_decay=recipe.weight_decay,
        )
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))
        )
        order = torch.Generator().manual_seed(task.unit_seed)
        diverged = False
        epoch_loss = float("nan")
        model.train()
        for _ in range(recipe.epochs):
            permutation = torch.randperm(count, generator=order)
            losses = []
            for step in range(steps_per_epoch):
                chosen = permutation[step * batch : (step + 1) * batch]
                loss = F.cross_entropy(model(x_train[chosen]), y_train[chosen], label_smoothing=recipe.label_smoothing)
                if not torch.isfinite(loss):
                    diverged = True
                    break
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if recipe.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
                optimizer.step()
                schedule.step()
                losses.append(float(loss.detach()))
            if losses:
                epoch_loss = float(np.mean(losses))
            if diverged:
                break

        model.eval()
        correct = 0
        with torch.no_grad():
            for begin in range(0, len(y_test), 1024):
                logits = model(x_test[begin : begin + 1024])
                # A network with non-finite outputs predicts nothing: those count as wrong.
                finite = torch.isfinite(logits).all(dim=1)
                hits = (logits.argmax(dim=1) == y_test[begin : begin + 1024]) & finite
                correct += int(hits.sum())
        accuracy = 100.0 * correct / len(y_test)
        return TrainingOutcome(task.row, task.column, accuracy, epoch_loss, time.perf_counter() - start, diverged)
    except Exception as error:  # noqa: BLE001 - one pair failing is recorded, the build goes on
        message = f"{type(error).__name__}: {error}"[:500]
        return TrainingOutcome(task.row, task.column, float("nan"), float("nan"), time.perf_counter() - start, error=message)
    finally:
        torch.set_num_threads(threads)


# --------------------------------------------------------------------------- the journal


def journal_path(out: Path) -> Path:
    """Where an unfinished build keeps its finished units (named like a run's journal)."""
    return out.with_name(out.name + ".journal")


def _append_line(path: Path, entry: dict) -> None:
    with open(path, "a", encoding="utf-8") as journal:
        journal.write(json.dumps(entry) + "\n")
        journal.flush()
        os.fsync(journal.fileno())


def _lock(journal: Path):
    """Hold an exclusive lock on the journal for the whole build, or say another build has it.

    Two builds of one --out at once would interleave their journal lines; the lock (POSIX
    `flock`, released when the process ends, however it ends) refuses the second one.
    """
    handle = open(journal, "a", encoding="utf-8")
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks, run one build per file
        return handle
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise BenchmarkError(
            f"Another build is writing {journal}; wait for it to finish or stop it before building this file."
        ) from None
    return handle


def _read_journal(path: Path) -> tuple[dict | None, dict[tuple[int, int], TrainingOutcome]]:
    """The journal's header and every complete unit line; a line cut by a kill is skipped."""
    header = None
    done: dict[tuple[int, int], TrainingOutcome] = {}
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines):
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if number == 0:
                header = entry if isinstance(entry, dict) and entry.get("kind") == JOURNAL_KIND else None
                if header is None:
                    break
                continue
            try:
                outcome = TrainingOutcome(**entry)
            except TypeError:
                continue
            done[(outcome.row, outcome.column)] = outcome
    return header, done


# --------------------------------------------------------------------------- the build


def split_dataset(labels: np.ndarray, recipe: TrainingRecipe) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, test rows): a stratified split by `recipe.split_seed`, optionally capped."""
    rng = np.random.default_rng(recipe.split_seed)
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        held_out = int(round(recipe.test_fraction * len(members)))
        test.append(members[:held_out])
        train.append(members[held_out:])
    train_rows, test_rows = np.sort(np.concatenate(train)), np.sort(np.concatenate(test))
    if recipe.max_train is not None and recipe.max_train < len(train_rows):
        train_rows = np.sort(train_rows[balanced_subset(labels[train_rows], recipe.max_train, recipe.split_seed)])
    if recipe.max_test is not None and recipe.max_test < len(test_rows):
        test_rows = np.sort(test_rows[balanced_subset(labels[test_rows], recipe.max_test, recipe.split_seed)])
    return train_rows, test_rows


def seed_agreement(seed_values: np.ndarray) -> float | None:
    """Mean Spearman rho between every two seed columns (the noise ceiling); None if undefined."""
    from scipy import stats

    values = np.asarray(seed_values, dtype=float)
    rhos = []
    for a in range(values.shape[1]):
        for b in range(a + 1, values.shape[1]):
            keep = np.isfinite(values[:, a]) & np.isfinite(values[:, b])
            x, y = values[keep, a], values[keep, b]
            if len(x) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0:
                rhos.append(float(stats.spearmanr(x, y).statistic))
    return float(np.mean(rhos)) if rhos else None


def build_command(out: Path, spec: BuildSpec, name: str, probe_size: int | None) -> str:
    """The `zcnas bench build` command that reproduces this build (recipe fields the CLI lacks noted)."""
    recipe = spec.recipe
    parts = [
        "zcnas bench build",
        f"--space {spec.search_space}",
        f"--dataset {spec.dataset}",
        f"--archs {spec.archs}",
        f"--seeds {spec.seeds}",
        f"--seed {spec.seed}",
        f"--epochs {recipe['epochs']}",
        f"--batch-size {recipe['batch_size']}",
        f"--lr {recipe['lr']}",
    ]
    parts += [
        f"--{key} {value}" if key in ("C", "N") else f"-O {key}={json.dumps(value)}"
        for key, value in sorted(spec.space_options.items())
    ]
    if recipe["image_size"] is not None:
        parts.append(f"--image-size {recipe['image_size']}")
    parts.append(f"--name {name}")
    if probe_size is not None:
        parts.append(f"--probe-size {probe_size}")
    parts.append(f"--out {out}")
    command = " ".join(parts)
    cli_fields = {"epochs", "batch_size", "lr", "image_size"}
    defaults = TrainingRecipe().as_dict()
    other = {k: v for k, v in recipe.items() if k not in cli_fields and v != defaults[k]}
    if other:
        command += f"  (Python API only: recipe overrides {json.dumps(other, sort_keys=True)})"
    return command


def _check_fits(space, space_options: dict, images: np.ndarray, num_classes: int) -> None:
    """Fail before any training if the images cannot go through the space's networks."""
    import torch

    shape = (2, images.shape[3], images.shape[1], images.shape[2])
    model = space.build(space.sample(1, np.random.default_rng(0))[0], num_classes=num_classes, **space_options)
    try:
        space.check_input_shape(shape)
        with torch.no_grad():
            model.eval()(torch.zeros(shape))
    except (BenchmarkError, RuntimeError) as error:
        reason = str(error).splitlines()[0].rstrip(".")
        raise BenchmarkError(
            f"Images of {images.shape[1]}x{images.shape[2]} do not fit the {space.name} network ({reason}); "
            "choose another --image-size (for nb201 a multiple of 4, at least 8)."
        ) from None


def build_benchmark(
    out: str | os.PathLike,
    *,
    search_space: str = "nb201",
    dataset: str = "mnist5k",
    archs: int = 300,
    seeds: int = 2,
    seed: int = 0,
    space_options: dict | None = None,
    recipe: TrainingRecipe | None = None,
    name: str | None = None,
    probe_size: int | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    on_progress: ProgressCallback | None = None,
) -> BuildResult:
    """Train `archs` sampled architectures with `seeds` seeds each on `dataset`; write benchmark `out`.

    The sample is drawn by `seed` (`space.sample`); each architecture's stable index is its
    ordinal in the space. Raises `BenchmarkError`/`ArchError` (one sentence) on bad input.
    """

    out = Path(out)
    recipe = recipe or TrainingRecipe()
    recipe.check()
    space_options = dict(DEFAULT_SPACE_OPTIONS if space_options is None else space_options)
    space = get_space(search_space)
    info = get_dataset_info(dataset)
    size = getattr(space, "NUM_ARCHS", None)
    if not isinstance(archs, int) or archs < 1 or (size is not None and archs > size):
        limit = f"has {size:,} architectures; ask for 1 to {size:,}" if size else "needs at least 1"
        raise BenchmarkError(f"--archs {archs} is not possible: the {search_space} space {limit}.")
    if not isinstance(seeds, int) or seeds < 2:
        raise BenchmarkError(
            f"--seeds {seeds} is too few: a benchmark needs at least 2 training seeds per architecture "
            "(their agreement is the noise ceiling)."
        )
    if workers < 1:
        raise BenchmarkError(f"--workers must be at least 1; got {workers}.")
    if probe_size is not None and probe_size < 1:
        raise BenchmarkError(f"--probe-size must be at least 1; got {probe_size}.")
    if out.suffix.lower() not in (".h5", ".hdf5"):
        raise BenchmarkError(f"Output file {out} should end in .h5 (it is an HDF5 file).")
    if out.is_dir():
        raise BenchmarkError(f"Output file {out} is a directory.")
    if resume and overwrite:
        raise BenchmarkError("Pass either --resume or --overwrite, not both.")
    journal = journal_path(out)
    if not resume and not overwrite:
        if journal.exists():
            raise BenchmarkError(
                f"An interrupted build of {out} exists ({journal.name}); pass --resume to finish it "
                "or --overwrite to start again."
            )
        if out.exists():
            raise BenchmarkError(f"{out} already exists; pass --overwrite to build it again.")
    try:  # the space knows its options: an unknown or bad one is its one-sentence ArchError
        space.build(space.example, num_classes=2, **space_options)
    except ArchError as error:
        raise BenchmarkError(f"Space options {json.dumps(space_options, sort_keys=True)} do not fit the {space.name} space: {str(error).rstrip('.')}.") from None

    data_file, _ = locate_data_file(info)
    if recipe.image_size is None:  # resolved here, so the stored recipe says what was trained
        recipe = dataclasses.replace(recipe, image_size=info.default_image_size)
    data = load_dataset(dataset, image_size=recipe.image_size)
    _check_fits(space, space_options, data.images, data.num_classes)
    train_rows, test_rows = split_dataset(data.labels, recipe)

    spec = BuildSpec(
        search_space=search_space,
        space_options=space_options,
        dataset=dataset,
        dataset_sha256=file_sha256(data_file),
        archs=archs,
        seeds=seeds,
        seed=int(seed),
        recipe=recipe.as_dict(),
    )
    encodings = space.sample(archs, np.random.default_rng(seed))
    index = np.array([space.ordinal(e) for e in encodings] if hasattr(space, "ordinal") else range(archs), dtype=np.int64)
    name = name or f"{search_space}-{dataset}"

    if resume and not journal.exists() and out.exists():
        finished = _finished_build(out, spec)
        if finished is not None:
            return finished  # nothing left to do
    # Held from here to the end: refuses a second build of the same file running at once.
    lock = _lock(journal) if journal.exists() else None
    try:
        done: dict[tuple[int, int], TrainingOutcome] = {}
        if resume and lock is not None:
            header, done = _read_journal(journal)
            _check_resumable(journal, header, spec, encodings)
        else:
            if lock is not None:
                lock.close()
            out.parent.mkdir(parents=True, exist_ok=True)
            journal.unlink(missing_ok=True)
            lock = _lock(journal)
            _append_line(
                journal,
                {
                    "kind": JOURNAL_KIND,
                    "spec": json.loads(spec.to_json()),
                    "encodings": encodings,
                    "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                },
            )

        train_mean, train_std = channel_statistics(data.images[train_rows])
        payload = TrainingPayload(
            search_space=search_space,
            space_options=space_options,
            num_classes=data.num_classes,
            train_images=data.images[train_rows],
            train_labels=data.labels[train_rows],
            test_images=data.images[test_rows],
            test_labels=data.labels[test_rows],
            mean=train_mean,
            std=train_std,
            recipe=recipe,
        )
        tasks = [
            TrainingTask(row, column, encodings[row], unit_seed(seed, index[row], column))
            for row in range(archs)
            for column in range(seeds)
            if (row, column) not in done
        ]
        total, resumed = archs * seeds, len(done)
        started = time.monotonic()
        if on_progress:
            on_progress(len(done), total)
        for outcome in execute(train_architecture, tasks, payload, workers=workers, scheduler=scheduler):
            _append_line(journal, dataclasses.asdict(outcome))
            done[(outcome.row, outcome.column)] = outcome
            if on_progress:
                on_progress(len(done), total)
        wall = time.monotonic() - started

        result = _write(out, spec, name, probe_size, data, payload, train_rows, test_rows, encodings, index, done)
        journal.unlink(missing_ok=True)
    finally:
        lock.close()
    result.trained, result.resumed, result.wall_seconds = len(tasks), resumed, wall
    return result


def _check_resumable(journal: Path, header: dict | None, spec: BuildSpec, encodings: list[str]) -> None:
    if header is None:
        raise BenchmarkError(f"{journal} is not a zcnas build journal; remove it or pass --overwrite.")
    differences = spec.differences(header.get("spec", {}))
    if differences:
        raise BenchmarkError(
            f"{journal} was started with other settings ({', '.join(differences)} differ); rerun with the "
            "same options to resume, or pass --overwrite to start again."
        )
    if header.get("encodings") != encodings:
        raise BenchmarkError(f"{journal} holds another architecture sample; pass --overwrite to start again.")


def _finished_build(out: Path, spec: BuildSpec) -> BuildResult | None:
    """A build already written to `out` with this very spec, or an error if it was another."""
    benchmark = open_benchmark(out)
    stored = benchmark.attrs.get("build_spec")
    if stored is None or spec.differences(json.loads(stored)):
        raise BenchmarkError(
            f"{out} exists and was not built with these settings; pass --overwrite to build it again."
        )
    seeds = benchmark.target_seeds.get(TARGET)
    return BuildResult(
        benchmark=benchmark,
        path=out,
        trained=0,
        resumed=0 if seeds is None else seeds.size,
        wall_seconds=0.0,
        noise_ceiling=benchmark.target_attrs.get(TARGET, {}).get("noise_ceiling_spearman"),
        failed=int(benchmark.attrs.get("failed_units", 0)),
        diverged=int(benchmark.attrs.get("diverged_units", 0)),
        up_to_date=True,
    )


def _write(out, spec, name, probe_size, data: ImageDataset, payload, train_rows, test_rows, encodings, index, done):
    import torch

    archs, seeds = spec.archs, spec.seeds
    accuracies = np.full((archs, seeds), np.nan)
    failures, diverged, train_seconds = [], 0, 0.0
    for (row, column), outcome in done.items():
        accuracies[row, column] = outcome.test_acc
        train_seconds += outcome.seconds
        diverged += bool(outcome.diverged)
        if outcome.error:
            failures.append(f"{encodings[row]} seed {column}: {outcome.error}")
    # Mean over the seeds that finished; NaN (not measured) only where every seed failed.
    counts = np.isfinite(accuracies).sum(axis=1)
    mean = np.where(counts > 0, np.nansum(accuracies, axis=1) / np.maximum(counts, 1), np.nan)
    ceiling = seed_agreement(accuracies)

    probe_rows = train_rows[balanced_subset(data.labels[train_rows], min(probe_size or 1024, len(train_rows)), spec.seed)]
    recipe = TrainingRecipe(**spec.recipe)
    command = build_command(out, spec, name, probe_size)
    packages = {
        "zcnas": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        data.package: data.package_version,
    }
    target_attrs = {
        TARGET: {
            "description": (
                f"top-1 accuracy (%) on the held-out test split ({len(test_rows)} images) after training "
                f"with the recipe in the root attribute 'recipe', mean over {seeds} seeds"
            ),
            "unit": "percent",
            "epochs": recipe.epochs,
            "seeds": seeds,
            "train_images": len(train_rows),
            "test_images": len(test_rows),
            "noise_ceiling_spearman": ceiling,
        }
    }
    write_benchmark(
        out,
        name=name,
        search_space=spec.search_space,
        dataset=spec.dataset,
        num_classes=data.num_classes,
        encodings=encodings,
        index=index,
        targets={TARGET: mean},
        target_seeds={TARGET: accuracies},
        target_attrs=target_attrs,
        probe_images=data.images[probe_rows],
        probe_labels=data.labels[probe_rows],
        probe_mean=payload.mean,
        probe_std=payload.std,
        source=(
            f"zcnas {__version__} bench build: {len(encodings)} {spec.search_space} architectures "
            f"{json.dumps(spec.space_options, sort_keys=True)} x {seeds} seeds trained on {data.provenance} "
            f"(sha256 {spec.dataset_sha256[:16]}); probe: {len(probe_rows)} class-balanced images of the training split"
        ),
        extra_attrs={
            "space_options": json.dumps(spec.space_options, sort_keys=True),
            "index_meaning": f"zcnas {spec.search_space} ordinal (e.g. NB201.ordinal), not a NAS-Bench-201 index",
            "build_command": command,
            "build_spec": spec.to_json(),
            "recipe": json.dumps(recipe.as_dict(), sort_keys=True),
            "recipe_description": recipe.describe(),
            "packages": json.dumps(packages, sort_keys=True),
            "dataset_provenance": data.provenance,
            "dataset_license": data.license,
            "dataset_sha256": spec.dataset_sha256,
            "train_images": len(train_rows),
            "test_images": len(test_rows),
            "train_seconds": round(train_seconds, 1),
            "failed_units": len(failures),
            "failures": "\n".join(failures[:50]),
            "diverged_units": diverged,
        },
    )
    return BuildResult(
        benchmark=open_benchmark(out),
        path=out,
        trained=0,
        resumed=0,
        wall_seconds=0.0,
        noise_ceiling=ceiling,
        failed=len(failures),
        diverged=diverged,
    )

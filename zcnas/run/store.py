"""The results file of a run: one HDF5 file, never left unreadable, never losing finished work.

Two files on disk while a run is going:

- ``RUN.h5``: the results file proper. It is only ever replaced whole and atomically (written
  to ``RUN.h5.tmp``, fsynced, then ``os.replace``d), so a crash at any instant leaves either
  the old or the new complete file.
- ``RUN.h5.journal``: one JSON line per finished architecture, appended and fsynced as each
  result arrives. Opening a run replays it on top of the .h5 (a last line cut by a kill is
  ignored: that architecture is simply computed again). A checkpoint folds the journal into
  the .h5 and then empties it; replaying a line twice is harmless.

Layout of the results file (format_version 1; see docs/run-format.md):

    attrs: format_version, kind="zcnas-run", spec (JSON of RunSpec), created, zcnas_version,
           primary_target (optional: the target reports lead with)
    archs/encoding, archs/index, archs/seed          the sampled architectures, in sample order
    targets/<metric>, targets/<metric>_seeds         copied from the benchmark for these rows
    proxies/<name>/score     float64 (NaN until done or when failed)
    proxies/<name>/status    int8: 0 pending, 1 ok, 2 failed
    proxies/<name>/error     utf-8 message for failures ("" otherwise)
    proxies/<name>/seconds   float64 seconds spent on this architecture
    proxies/<name>/layers    float64 (n_archs, n_slots) per-layer statistics, NaN where a slot
                             is absent; attrs["slots"] names the columns (aligned across the
                             architectures of the space, e.g. NB201's 98 conv/linear slots)

A run with R > 1 repeats (`zcnas score --repeats R`) scores every architecture R times and
keeps each: proxies/<name>/repeats (n_archs, R) and repeat_status, repeat_error,
repeat_seconds, repeat_layers (n_archs, R, n_slots) beside them. `score`/`status`/`layers`
then hold the aggregate (`aggregate_repeats`): the mean over the repeats that succeeded, once
every repeat of the architecture is done. A file without them is a run of R = 1.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np

from zcnas import __version__
from zcnas.errors import RunError, ZcnasError
from zcnas.files import identify, wrong_kind
from zcnas.proxies.compute import ProxyOutcome

FORMAT_VERSION = 1
PENDING, OK, FAILED = 0, 1, 2

# How a run draws its probe batches and initialisations (docs/run-format.md). "zcnas": one
# class-balanced batch per repeat shared by every architecture; "suite-zero": a fresh randomly
# cropped and flipped batch of the probe pool per architecture and repeat, as
# NAS-Bench-Suite-Zero scored; "zcnas-random": one uniformly random batch, what zcnas did
# before the balanced draw (runs written then read as it, so they still resume).
PROTOCOLS = ("zcnas", "suite-zero", "zcnas-random")
LEGACY_PROTOCOL = "zcnas-random"
# What changes from one repeat to the next.
VARY = ("both", "init", "batch")


@dataclass(frozen=True)
class RunSpec:
    """Everything that decides a run's numbers; a resumed run must match it exactly."""

    benchmark: str
    benchmark_name: str
    search_space: str
    dataset: str
    num_classes: int
    proxies: tuple[str, ...]
    seed: int
    sample: int
    batch_size: int
    share: bool = True
    # Probe samples of the NTK kernel; 16 for runs written before the option existed.
    ntk_samples: int = 16
    space_options: dict = field(default_factory=dict)
    # Derived columns: name -> saved combine model; filled from the other proxies once the
    # run is complete (`zcnas score --proxies combined:MODEL`), never computed per architecture.
    derived: dict = field(default_factory=dict)
    # A reference run: scores imported from elsewhere (e.g. NAS-Bench-Suite-Zero by `zcnas bench
    # import naslib-zc`), not computed by zcnas: its origin, source file and proxy mapping.
    # Empty for runs zcnas scored; such a run cannot be resumed.
    reference: dict = field(default_factory=dict)
    # Scorings per architecture, what varies between them (VARY) and how the probe batches
    # are drawn (PROTOCOLS); files written before these existed read as 1, "both" and
    # LEGACY_PROTOCOL.
    repeats: int = 1
    vary: str = "both"
    protocol: str = "zcnas"

    @property
    def columns(self) -> tuple[str, ...]:
        """Every score column of the run: computed proxies, then derived ones."""
        return self.proxies + tuple(self.derived)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "RunSpec":
        data = json.loads(text)
        data["proxies"] = tuple(data["proxies"])
        data.setdefault("derived", {})
        data.setdefault("protocol", LEGACY_PROTOCOL)
        return cls(**data)

    def differences(self, other: "RunSpec") -> list[str]:
        mine, theirs = dataclasses.asdict(self), dataclasses.asdict(other)
        # The benchmark may have moved; its name and contents (checked by the sample) decide.
        # With one repeat nothing varies, so what --vary says does not matter.
        ignore = {"benchmark"} | ({"vary"} if self.repeats == other.repeats == 1 else set())
        return [k for k in mine if k not in ignore and mine[k] != theirs[k]]


@dataclass
class RunStore:
    path: Path
    spec: RunSpec
    encodings: list[str]
    index: np.ndarray
    arch_seeds: np.ndarray
    targets: dict[str, np.ndarray]
    target_seeds: dict[str, np.ndarray]
    created: str
    slot_order: list[str] = field(default_factory=list)
    # The target reports lead with (the benchmark's `primary_target`, else its first target);
    # None in runs written before zcnas recorded it.
    primary_target: str | None = None
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    status: dict[str, np.ndarray] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    seconds: dict[str, np.ndarray] = field(default_factory=dict)
    layers: dict[str, dict[int, dict[str, float]]] = field(default_factory=dict)
    # Every repeat of every computed proxy, (n, R); the fields above hold their aggregate.
    repeat_scores: dict[str, np.ndarray] = field(default_factory=dict)
    repeat_status: dict[str, np.ndarray] = field(default_factory=dict)
    repeat_errors: dict[str, list[list[str]]] = field(default_factory=dict)
    repeat_seconds: dict[str, np.ndarray] = field(default_factory=dict)
    repeat_layers: dict[str, dict[tuple[int, int], dict[str, float]]] = field(default_factory=dict)

    # -- creation and opening --------------------------------------------------------------
    @classmethod
    def create_reference(
        cls,
        path: str | os.PathLike,
        spec: RunSpec,
        benchmark,
        *,
        scores: dict[str, np.ndarray],
        status: dict[str, np.ndarray],
        errors: dict[str, list[str]],
        seconds: dict[str, np.ndarray] | None = None,
    ) -> "RunStore":
        """A finished run of scores imported from elsewhere (`spec.reference` says whence), one
        row per architecture of `benchmark`, written at once; `ZcnasError` if it cannot be."""
        path = Path(path)
        n = len(benchmark.encodings)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            store = cls.create(
                path,
                spec,
                encodings=list(benchmark.encodings),
                index=benchmark.index,
                arch_seeds=np.zeros(n, dtype=np.int64),
                targets=dict(benchmark.targets),
                primary_target=benchmark.primary_target,
            )
        except OSError as error:
            raise ZcnasError(f"Cannot write the reference run {path}: {error.strerror or error}.") from None
        for name in scores:
            store.scores[name] = scores[name]
            store.status[name] = status[name]
            store.errors[name] = errors[name]
            store.seconds[name] = seconds[name] if seconds is not None else np.full(n, np.nan)
        store.checkpoint()
        return store

    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        spec: RunSpec,
        *,
        encodings: list[str],
        index: np.ndarray,
        arch_seeds: np.ndarray,
        targets: dict[str, np.ndarray],
        target_seeds: dict[str, np.ndarray] | None = None,
        slot_order: list[str] | None = None,
        primary_target: str | None = None,
    ) -> "RunStore":
        path = Path(path)
        n = len(encodings)
        store = cls(
            path=path,
            spec=spec,
            encodings=list(encodings),
            index=np.asarray(index, dtype=np.int64),
            arch_seeds=np.asarray(arch_seeds, dtype=np.int64),
            targets={k: np.asarray(v, dtype=np.float64) for k, v in targets.items()},
            target_seeds={k: np.asarray(v, dtype=np.float64) for k, v in (target_seeds or {}).items()},
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            slot_order=list(slot_order or []),
            primary_target=primary_target if primary_target in targets else None,
        )
        for name in spec.columns:
            store.scores[name] = np.full(n, np.nan)
            store.status[name] = np.zeros(n, dtype=np.int8)
            store.errors[name] = [""] * n
            store.seconds[name] = np.full(n, np.nan)
            store.layers[name] = {}
        for name in spec.proxies:
            store._empty_repeats(name)
        _journal_path(path).unlink(missing_ok=True)
        store.checkpoint()
        return store

    @classmethod
    def open(cls, path: str | os.PathLike) -> "RunStore":
        path = Path(path)
        if not path.exists():
            raise RunError(f"Run file {path} does not exist.")
        if path.is_dir():
            raise RunError(f"Run file {path} is a directory, not a run file.")
        found = identify(path)
        if found is not None and found.name != "run":
            raise RunError(wrong_kind(path, found, "a zcnas run file"))
        try:
            with h5py.File(path, "r") as f:
                store = cls._read(path, f)
        except RunError:
            raise
        except (OSError, KeyError, ValueError, TypeError) as error:
            raise RunError(f"{path} is not a readable zcnas run file ({_short(error)}).") from None
        store._replay_journal()
        return store

    @classmethod
    def _read(cls, path: Path, f: h5py.File) -> "RunStore":
        if f.attrs.get("kind") != "zcnas-run":
            raise RunError(f"{path} is not a zcnas run file (no kind='zcnas-run' attribute).")
        version = int(f.attrs.get("format_version", -1))
        if version != FORMAT_VERSION:
            raise RunError(
                f"{path} has run format_version {version}; this zcnas reads version {FORMAT_VERSION}."
            )
        spec = RunSpec.from_json(f.attrs["spec"])
        store = cls(
            path=path,
            spec=spec,
            encodings=[s.decode() if isinstance(s, bytes) else s for s in f["archs/encoding"][()]],
            index=f["archs/index"][()],
            arch_seeds=f["archs/seed"][()],
            targets={},
            target_seeds={},
            created=str(f.attrs.get("created", "")),
            slot_order=[str(s) for s in f.attrs.get("slot_order", [])],
            primary_target=_text(f.attrs["primary_target"]) if "primary_target" in f.attrs else None,
        )
        for name, data in f["targets"].items():
            if name.endswith("_seeds"):
                store.target_seeds[name[: -len("_seeds")]] = data[()]
            else:
                store.targets[name] = data[()]
        for name in spec.columns:
            group = f[f"proxies/{name}"]
            store.scores[name] = group["score"][()]
            store.status[name] = group["status"][()]
            store.errors[name] = [e.decode() if isinstance(e, bytes) else e for e in group["error"][()]]
            store.seconds[name] = group["seconds"][()]
            store.layers[name] = {}
            if "layers" in group:
                slots = [str(s) for s in group["layers"].attrs["slots"]]
                matrix = group["layers"][()]
                for row in np.flatnonzero(store.status[name] == OK):
                    values = matrix[row]
                    store.layers[name][int(row)] = {
                        slot: float(v) for slot, v in zip(slots, values) if not np.isnan(v)
                    }
            if name in spec.proxies:
                store._read_repeats(name, group)
        return store

    def _empty_repeats(self, name: str) -> None:
        n, repeats = len(self), max(1, int(self.spec.repeats))
        self.repeat_scores[name] = np.full((n, repeats), np.nan)
        self.repeat_status[name] = np.zeros((n, repeats), dtype=np.int8)
        self.repeat_errors[name] = [[""] * repeats for _ in range(n)]
        self.repeat_seconds[name] = np.full((n, repeats), np.nan)
        self.repeat_layers[name] = {}

    def _read_repeats(self, name: str, group) -> None:
        """The repeats of one proxy; a file without them is a run of one repeat, its only
        repeat being the aggregate itself."""
        if "repeats" not in group:
            self.repeat_scores[name] = self.scores[name][:, None].copy()
            self.repeat_status[name] = self.status[name][:, None].copy()
            self.repeat_errors[name] = [[error] for error in self.errors[name]]
            self.repeat_seconds[name] = self.seconds[name][:, None].copy()
            self.repeat_layers[name] = {(row, 0): dict(values) for row, values in self.layers[name].items()}
            return
        self.repeat_scores[name] = group["repeats"][()]
        self.repeat_status[name] = group["repeat_status"][()]
        self.repeat_errors[name] = [[_text(e) for e in row] for row in group["repeat_error"][()]]
        self.repeat_seconds[name] = group["repeat_seconds"][()]
        self.repeat_layers[name] = {}
        if "repeat_layers" in group:
            slots = [str(s) for s in group["repeat_layers"].attrs["slots"]]
            cube = group["repeat_layers"][()]
            for row, repeat in zip(*np.nonzero(self.repeat_status[name] == OK)):
                values = cube[row, repeat]
                self.repeat_layers[name][(int(row), int(repeat))] = {
                    slot: float(v) for slot, v in zip(slots, values) if not np.isnan(v)
                }

    # -- recording -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.encodings)

    @property
    def repeats(self) -> int:
        return max(1, int(self.spec.repeats))

    def pending_tasks(self) -> list[tuple[int, int]]:
        """(row, repeat) pairs some proxy has not finished, row by row (a row whose score was
        set whole, as an imported reference run's, is finished)."""
        pending = np.zeros((len(self), self.repeats), dtype=bool)
        for name in self.spec.proxies:
            pending |= (self.repeat_status[name] == PENDING) & (self.status[name] == PENDING)[:, None]
        return [(int(row), int(repeat)) for row, repeat in zip(*np.nonzero(pending))]

    def pending_rows(self) -> list[int]:
        """Rows with a repeat that some proxy has not finished."""
        return sorted({row for row, _ in self.pending_tasks()})

    def done_count(self) -> int:
        return len(self) - len(self.pending_rows())

    def record(self, row: int, outcomes: dict[str, ProxyOutcome], repeat: int = 0) -> None:
        """Keep one architecture's results (of one repeat), durably (journal line fsynced
        before returning)."""
        self._apply(row, outcomes, repeat)
        entry = {"row": row, "outcomes": {k: dataclasses.asdict(v) for k, v in outcomes.items()}}
        if repeat:
            entry["repeat"] = int(repeat)
        line = json.dumps(entry)
        with open(_journal_path(self.path), "a", encoding="utf-8") as journal:
            journal.write(line + "\n")
            journal.flush()
            os.fsync(journal.fileno())

    def _apply(self, row: int, outcomes: dict[str, ProxyOutcome], repeat: int = 0) -> None:
        for name, outcome in outcomes.items():
            if name not in self.repeat_scores or not 0 <= repeat < self.repeats:
                continue
            self.repeat_scores[name][row, repeat] = outcome.score
            self.repeat_status[name][row, repeat] = OK if outcome.error is None else FAILED
            self.repeat_errors[name][row][repeat] = outcome.error or ""
            self.repeat_seconds[name][row, repeat] = outcome.seconds
            if outcome.error is None and outcome.layers:
                self.repeat_layers[name][(row, repeat)] = dict(outcome.layers)
            self._aggregate(name, row)

    def _aggregate(self, name: str, row: int) -> None:
        """The architecture's score from its repeats, once every repeat is done: the mean of
        those that succeeded (failed only when all failed). One repeat is kept bit for bit."""
        status = self.repeat_status[name][row]
        if np.any(status == PENDING):
            return
        ok = [int(r) for r in np.flatnonzero(status == OK)]
        self.seconds[name][row] = float(sum(float(s) for s in self.repeat_seconds[name][row]))
        if not ok:
            self.scores[name][row] = np.nan
            self.status[name][row] = FAILED
            self.errors[name][row] = next((e for e in self.repeat_errors[name][row] if e), "failed")
            self.layers[name].pop(row, None)
            return
        self.scores[name][row] = aggregate_repeats([float(self.repeat_scores[name][row, r]) for r in ok])
        self.status[name][row] = OK
        self.errors[name][row] = ""
        per_repeat = [self.repeat_layers[name].get((row, r)) for r in ok]
        per_repeat = [values for values in per_repeat if values]
        if per_repeat:
            slots = list(dict.fromkeys(slot for values in per_repeat for slot in values))
            self.layers[name][row] = {
                slot: aggregate_repeats([values[slot] for values in per_repeat if slot in values]) for slot in slots
            }
        else:
            self.layers[name].pop(row, None)

    def set_derived(self, name: str, scores: np.ndarray, error: str) -> None:
        """Fill a derived column (e.g. a combine model's score); `error` for rows left NaN."""
        scores = np.asarray(scores, dtype=np.float64)
        ok = np.isfinite(scores)
        self.scores[name] = np.where(ok, scores, np.nan)
        self.status[name] = np.where(ok, OK, FAILED).astype(np.int8)
        self.errors[name] = ["" if good else error for good in ok]
        self.seconds[name] = np.zeros(len(self))

    def _replay_journal(self) -> None:
        journal = _journal_path(self.path)
        if not journal.exists():
            return
        with open(journal, encoding="utf-8") as lines:
            for line in lines:
                try:
                    entry = json.loads(line)
                    outcomes = {k: ProxyOutcome(**v) for k, v in entry["outcomes"].items()}
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # a line cut short by a kill: that architecture is computed again
                self._apply(int(entry["row"]), outcomes, int(entry.get("repeat", 0)))

    # -- writing ---------------------------------------------------------------------------
    def layer_matrix(self, name: str) -> tuple[list[str], np.ndarray]:
        """Per-layer statistics of proxy `name` as (slots, n_archs x n_slots), NaN where absent."""
        per_row = self.layers.get(name, {})
        seen = {slot for values in per_row.values() for slot in values}
        slots = [s for s in self.slot_order if s in seen] + sorted(seen - set(self.slot_order))
        matrix = np.full((len(self), len(slots)), np.nan)
        column = {slot: j for j, slot in enumerate(slots)}
        for row, values in per_row.items():
            for slot, value in values.items():
                matrix[row, column[slot]] = value
        return slots, matrix

    def repeat_layer_cube(self, name: str) -> tuple[list[str], np.ndarray]:
        """Per-layer statistics of every repeat of proxy `name`: (slots, n x R x n_slots)."""
        per_task = self.repeat_layers.get(name, {})
        seen = {slot for values in per_task.values() for slot in values}
        slots = [s for s in self.slot_order if s in seen] + sorted(seen - set(self.slot_order))
        cube = np.full((len(self), self.repeats, len(slots)), np.nan)
        column = {slot: j for j, slot in enumerate(slots)}
        for (row, repeat), values in per_task.items():
            for slot, value in values.items():
                cube[row, repeat, column[slot]] = value
        return slots, cube

    def checkpoint(self) -> None:
        """Write the whole results file atomically, then empty the journal it now contains."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self._write_file(tmp)
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)  # a failed checkpoint leaves no stray file
            raise
        _fsync_dir(self.path.parent)
        _journal_path(self.path).unlink(missing_ok=True)

    def _write_file(self, tmp: Path) -> None:
        strings = h5py.string_dtype("utf-8")
        with h5py.File(tmp, "w") as f:
            f.attrs["kind"] = "zcnas-run"
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["spec"] = self.spec.to_json()
            f.attrs["created"] = self.created
            f.attrs["zcnas_version"] = __version__
            f.attrs.create("slot_order", data=np.array(self.slot_order, dtype=object), dtype=strings)
            if self.primary_target is not None:
                f.attrs["primary_target"] = self.primary_target
            f.create_dataset("archs/encoding", data=np.array(self.encodings, dtype=object), dtype=strings)
            f.create_dataset("archs/index", data=self.index)
            f.create_dataset("archs/seed", data=self.arch_seeds)
            targets = f.create_group("targets")
            for name, values in self.targets.items():
                targets.create_dataset(name, data=values)
            for name, values in self.target_seeds.items():
                targets.create_dataset(f"{name}_seeds", data=values)
            for name in self.spec.columns:
                group = f.create_group(f"proxies/{name}")
                group.create_dataset("score", data=self.scores[name])
                group.create_dataset("status", data=self.status[name])
                group.create_dataset("error", data=np.array(self.errors[name], dtype=object), dtype=strings)
                group.create_dataset("seconds", data=self.seconds[name])
                slots, matrix = self.layer_matrix(name)
                if slots:
                    data = group.create_dataset("layers", data=matrix, compression="gzip", compression_opts=4)
                    data.attrs.create("slots", data=np.array(slots, dtype=object), dtype=strings)
                if self.repeats > 1 and name in self.repeat_scores:
                    group.create_dataset("repeats", data=self.repeat_scores[name])
                    group.create_dataset("repeat_status", data=self.repeat_status[name])
                    errors = np.array(self.repeat_errors[name], dtype=object).reshape(len(self), self.repeats)
                    group.create_dataset("repeat_error", data=errors, dtype=strings)
                    group.create_dataset("repeat_seconds", data=self.repeat_seconds[name])
                    slots, cube = self.repeat_layer_cube(name)
                    if slots:
                        data = group.create_dataset("repeat_layers", data=cube, compression="gzip", compression_opts=4)
                        data.attrs.create("slots", data=np.array(slots, dtype=object), dtype=strings)
            f.flush()
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())


def repeat_design(repeat: int, vary: str) -> tuple[int, int]:
    """(init id, batch id) of repeat `repeat`. `init`: (r, 0); `batch`: (0, r); `both`: the
    repeats fill an init x batch grid, diagonal first: (0,0) (1,1) (0,1) (1,0) (2,2) (0,2) (2,0)
    (1,2) (2,1) (3,3) ... So two repeats differ in both from R = 2 on, and from R = 3 on some
    pairs differ only in the init and some only in the batch: the noise splits by source."""
    if vary == "init":
        return repeat, 0
    if vary == "batch":
        return 0, repeat
    if vary != "both":
        raise RunError(f"--vary takes {', '.join(VARY)}; got {vary!r}.")
    if repeat == 0:
        return 0, 0
    k = math.isqrt(repeat)  # repeats k*k .. (k+1)^2 - 1 add the cells of init or batch k
    if k * k == repeat:
        return k, k
    step = repeat - k * k - 1  # 0 .. 2k-1: (0,k) (k,0) (1,k) (k,1) ...
    j = step // 2
    return (j, k) if step % 2 == 0 else (k, j)


def aggregate_repeats(values: list[float]) -> float:
    """A proxy's score from its repeats: the mean of the values (docs/run-format.md says why
    values and not ranks). Summed in repeat order, so one repeat is returned unchanged."""
    total = sum(values)
    if not math.isfinite(total) and all(math.isfinite(v) for v in values):
        return float(sum(v / len(values) for v in values))  # a sum of huge scores overflows
    return float(total / len(values))


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _journal_path(path: Path) -> Path:
    return path.with_name(path.name + ".journal")


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _short(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__

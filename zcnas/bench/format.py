"""The benchmark file: one HDF5 file per benchmark, written atomically, validated on open.

The layout is documented in docs/benchmark-format.md; this module is its one source of
truth. `open_benchmark` reads the whole file into a `Benchmark` (a benchmark is small:
tens of thousands of strings and floats plus a probe set of about a thousand images) and
rejects anything a run could trip over later, with one sentence naming the file and the
problem, so a broken file fails in a second instead of halfway through a run.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

import h5py
import numpy as np

from zcnas.bench.tokens import PROBE_KINDS, TokenProbe, token_batch, token_labels, validate_token_probe
from zcnas.errors import ArchError, BenchmarkError
from zcnas.files import BENCHMARK, identify, wrong_kind

# Version 2 (token probes): the probe group says what it holds (`kind`: images or tokens) and a
# token probe is probe/ids + probe/attention_mask (+ optional probe/y); version-1 files, whose
# probe is always images, are still read.
FORMAT_VERSION = 2
SUPPORTED_VERSIONS = (1, 2)

# Root attributes every file carries; `source` and `created` are written always but only
# required on read from version 2 on (hand-made version-1 files may lack them).
REQUIRED_ROOT_ATTRS = ("format_version", "name", "search_space", "dataset", "num_classes")
RESERVED_ROOT_ATTRS = REQUIRED_ROOT_ATTRS + ("source", "created", "space_plugin", "primary_target")
REQUIRED_DATASETS = ("archs/encoding", "archs/index")
# The probe group is required for every space zcnas can build; a table-only benchmark (a
# space without a builder here, e.g. an imported NAS-Bench-Suite-Zero table) may omit it.
PROBE_DATASETS = ("probe/x", "probe/y")

# An auxiliary dataset in targets/ says what it is with a `role` attribute and names its
# metric with `target`; writers also name it <metric>_seeds / <metric>_std.
ROLE_SEEDS = "seeds"
ROLE_STD = "std"


@dataclass
class Benchmark:
    """Everything in one benchmark file, in memory."""

    path: Path
    name: str
    search_space: str
    dataset: str
    num_classes: int
    source: str
    created: str
    encodings: list[str]
    index: np.ndarray
    targets: dict[str, np.ndarray]
    probe_images: np.ndarray | None  # uint8 (N, H, W, C); None: a benchmark without probe data
    probe_labels: np.ndarray | None  # int64 (N,)
    probe_mean: tuple[float, ...]
    probe_std: tuple[float, ...]
    target_seeds: dict[str, np.ndarray] = field(default_factory=dict)
    target_std: dict[str, np.ndarray] = field(default_factory=dict)
    target_attrs: dict[str, dict[str, Any]] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)
    # A token probe (format version 2) instead of probe images; None for an image probe.
    probe_tokens: TokenProbe | None = None

    @property
    def probe_kind(self) -> str | None:
        """"tokens", "images", or None for a benchmark without probe data."""
        if self.probe_tokens is not None:
            return "tokens"
        return "images" if self.probe_images is not None else None

    def probe_batch_labels(self, size: int, seed: int | None = None):
        """The labels of a token probe batch (the rows `probe_batch(size, seed)` draws), or None
        when the token probe has none. Image probes return their labels from `probe_batch`."""
        if self.probe_tokens is None:
            raise BenchmarkError(f"Benchmark {self.path} has no token probe; probe_batch returns image labels.")
        return token_labels(self.probe_tokens, size, seed, self.path)

    @property
    def primary_target(self) -> str | None:
        """The target reports lead with: the `primary_target` root attribute, else the first
        target in the file's (the writer's) order."""
        return self.attrs.get("primary_target") or next(iter(self.targets), None)

    @property
    def n_archs(self) -> int:
        return len(self.encodings)

    def target(self, name: str) -> np.ndarray:
        """The target array `name` (float64, aligned with `encodings`; NaN = not measured)."""
        try:
            return self.targets[name]
        except KeyError:
            available = ", ".join(sorted(self.targets)) or "none"
            raise BenchmarkError(
                f"Benchmark {self.path} has no target {name!r}; available targets: {available}."
            ) from None

    def probe_batch(self, size: int, seed: int | None = None, draw: str = "balanced"):
        """`size` probe images as a normalised float32 NCHW tensor, and their int64 labels.

        With `seed=None` the first `size` images (the importers store them class-interleaved,
        so any prefix is balanced). With a seed, a deterministic draw without replacement:
        `draw="balanced"` (what `zcnas score` uses) takes every class in turn, each shuffled
        by the seed (`zcnas.bench.probe.balanced_subset`), so a batch's class mix never
        depends on the seed; `draw="random"` draws uniformly (`numpy.random.default_rng(seed)
        .choice`), as zcnas did before, kept to resume and reproduce runs made then.
        """
        import torch  # only the probe batch needs torch; reading and validating do not

        if self.probe_tokens is not None:
            # Tokens: (ids, attention_mask), int64 (size, L); the first `size` sequences or a
            # uniform draw by the seed (labels, where a token probe has them: probe_batch_labels).
            return token_batch(self.probe_tokens, size, seed, self.path)
        if self.probe_labels is None:
            raise BenchmarkError(
                f"Benchmark {self.path} holds no probe data, so its architectures cannot be scored; "
                "re-import it with --probe IMAGES to add a probe batch."
            )
        total = len(self.probe_labels)
        if not 1 <= size <= total:
            raise BenchmarkError(
                f"Cannot take a probe batch of {size} images from benchmark {self.path}, "
                f"which holds {total} probe images; ask for 1 to {total}."
            )
        if seed is None:
            chosen = np.arange(size)
        elif draw == "balanced":
            from zcnas.bench.probe import balanced_subset

            chosen = balanced_subset(self.probe_labels, size, seed, self.path)
        elif draw == "random":
            chosen = np.random.default_rng(seed).choice(total, size=size, replace=False)
        else:
            raise BenchmarkError(f"Unknown probe draw {draw!r}; use balanced or random.")
        images = self.probe_images[chosen].astype(np.float32) / np.float32(255.0)
        mean = np.asarray(self.probe_mean, dtype=np.float32)
        std = np.asarray(self.probe_std, dtype=np.float32)
        images = (images - mean) / std
        x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
        y = torch.from_numpy(self.probe_labels[chosen].astype(np.int64))
        return x, y

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description (NaN statistics become None)."""
        targets = {}
        for name, values in self.targets.items():
            finite = values[~np.isnan(values)]
            seeds = self.target_seeds.get(name)
            targets[name] = {
                "min": _json_float(finite.min()) if finite.size else None,
                "max": _json_float(finite.max()) if finite.size else None,
                "mean": _json_float(finite.mean()) if finite.size else None,
                "nan": int(values.size - finite.size),
                "seeds": int(seeds.shape[1]) if seeds is not None else 0,
                "has_std": name in self.target_std,
                "attrs": self.target_attrs.get(name, {}),
            }
        return {
            "path": str(self.path),
            "name": self.name,
            "format_version": int(self.attrs.get("format_version", FORMAT_VERSION)),
            "search_space": self.search_space,
            "dataset": self.dataset,
            "num_classes": self.num_classes,
            "n_archs": self.n_archs,
            "targets": targets,
            "primary_target": self.primary_target,
            "probe_kind": self.probe_kind,
            "probe_shape": (
                list(self.probe_tokens.ids.shape)
                if self.probe_tokens is not None
                else list(self.probe_images.shape) if self.probe_images is not None else None
            ),
            "probe_vocab_size": self.probe_tokens.vocab_size if self.probe_tokens is not None else None,
            "probe_tokenizer": self.probe_tokens.attrs.get("tokenizer") if self.probe_tokens is not None else None,
            "space_plugin": self.attrs.get("space_plugin"),
            "probe_mean": list(self.probe_mean),
            "probe_std": list(self.probe_std),
            "source": self.source,
            "created": self.created,
        }


def _json_float(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


# --------------------------------------------------------------------------- writing


def write_benchmark(
    path: str | os.PathLike,
    *,
    name: str,
    search_space: str,
    dataset: str,
    num_classes: int,
    encodings: Sequence[str],
    targets: Mapping[str, np.ndarray],
    probe_images: np.ndarray | None = None,
    probe_labels: np.ndarray | None = None,
    probe_mean: Sequence[float] = (),
    probe_std: Sequence[float] = (),
    source: str,
    index: np.ndarray | Sequence[int] | None = None,
    target_attrs: Mapping[str, Mapping[str, Any]] | None = None,
    target_seeds: Mapping[str, np.ndarray] | None = None,
    target_std: Mapping[str, np.ndarray] | None = None,
    extra_attrs: Mapping[str, Any] | None = None,
    primary_target: str | None = None,
    probe_tokens: TokenProbe | None = None,
) -> Path:
    """Validate, then write a benchmark file atomically (temp file + rename); return its path.

    The probe is images (`probe_images`, `probe_labels`, `probe_mean`, `probe_std`) or tokens
    (`probe_tokens`, for a space whose networks take token ids), or neither (table-only).
    `primary_target` names the target reports lead with (default: the first of `targets`).
    Encodings are stored in the space's canonical form. The same checks as
    `open_benchmark` run before anything touches the disk, so no invalid file is written.
    """
    path = Path(path)
    where = f"Benchmark {path} (not written)"
    encodings = [str(e) for e in encodings]
    index = np.arange(len(encodings)) if index is None else np.asarray(index)
    extra_attrs = dict(extra_attrs or {})
    clash = sorted(set(extra_attrs) & set(RESERVED_ROOT_ATTRS))
    if clash:
        raise BenchmarkError(f"{where}: extra_attrs may not set the reserved attribute(s) {', '.join(clash)}.")
    for metric in targets:
        if not metric or "/" in metric:
            raise BenchmarkError(f"{where}: target name {metric!r} must be non-empty and contain no '/'.")
    for label, aux in (("target_seeds", target_seeds), ("target_std", target_std)):
        unknown = sorted(set(aux or {}) - set(targets))
        if unknown:
            raise BenchmarkError(f"{where}: {label} names {', '.join(unknown)}, which are not targets.")
    if primary_target is not None:
        extra_attrs["primary_target"] = primary_target
    if probe_tokens is not None and (probe_images is not None or probe_labels is not None):
        raise BenchmarkError(f"{where}: give probe images or probe tokens, not both (labels go in the TokenProbe).")

    space = _space_or_error(search_space, where)
    from zcnas.spaces import plugin_reference

    plugin = plugin_reference(space)
    if plugin:
        extra_attrs["space_plugin"] = plugin
    canonical = []
    for row, encoding in enumerate(encodings):
        try:
            canonical.append(space.canonical(encoding))
        except ArchError as error:
            raise BenchmarkError(
                f"{where} has an architecture at row {row} that does not parse ({encoding!r}): {_clause(error)}."
            ) from None
    benchmark = Benchmark(
        path=path,
        name=str(name),
        search_space=str(space.name),
        dataset=str(dataset),
        num_classes=int(num_classes),
        source=str(source),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        encodings=canonical,
        index=index,
        targets={k: _as_float_array(v, f"{where}: target {k!r}") for k, v in targets.items()},
        target_seeds={k: _as_float_array(v, f"{where}: target seeds {k!r}") for k, v in (target_seeds or {}).items()},
        target_std={k: _as_float_array(v, f"{where}: target std {k!r}") for k, v in (target_std or {}).items()},
        target_attrs={k: dict(v) for k, v in (target_attrs or {}).items()},
        probe_images=None if probe_images is None else np.asarray(probe_images),
        probe_labels=None if probe_labels is None else np.asarray(probe_labels),
        probe_mean=tuple(float(m) for m in np.ravel(probe_mean)),
        probe_std=tuple(float(s) for s in np.ravel(probe_std)),
        attrs=extra_attrs,
        probe_tokens=probe_tokens,
    )
    _validate(benchmark, where, space)

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        with h5py.File(temp_name, "w") as file:
            _write(file, benchmark)
        with open(temp_name, "rb+") as written:
            os.fsync(written.fileno())
        # mkstemp makes the file owner-only; give it the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp_name, 0o666 & ~umask)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return path


def _write(file: h5py.File, b: Benchmark) -> None:
    file.attrs["format_version"] = FORMAT_VERSION
    file.attrs["name"] = b.name
    file.attrs["search_space"] = b.search_space
    file.attrs["dataset"] = b.dataset
    file.attrs["num_classes"] = b.num_classes
    file.attrs["source"] = b.source
    file.attrs["created"] = b.created
    for key, value in b.attrs.items():
        if value is not None:
            file.attrs[key] = value

    archs = file.create_group("archs")
    archs.create_dataset("encoding", data=b.encodings, dtype=h5py.string_dtype("utf-8"))
    archs.create_dataset("index", data=b.index.astype(np.int64))

    targets = file.create_group("targets", track_order=True)  # keep the writer's order
    for metric, values in b.targets.items():
        dataset = targets.create_dataset(metric, data=values)
        for key, value in b.target_attrs.get(metric, {}).items():
            if value is not None:
                dataset.attrs[key] = value
    for role, arrays in ((ROLE_SEEDS, b.target_seeds), (ROLE_STD, b.target_std)):
        for metric, values in arrays.items():
            dataset = targets.create_dataset(f"{metric}_{role}", data=values)
            dataset.attrs["role"] = role
            dataset.attrs["target"] = metric

    if b.probe_tokens is not None:
        _write_tokens(file.create_group("probe"), b.probe_tokens)
        return
    if b.probe_images is None:
        return
    probe = file.create_group("probe")
    probe.attrs["kind"] = "images"
    x = probe.create_dataset("x", data=b.probe_images.astype(np.uint8), compression="gzip", compression_opts=4)
    x.attrs["mean"] = np.asarray(b.probe_mean, dtype=np.float64)
    x.attrs["std"] = np.asarray(b.probe_std, dtype=np.float64)
    x.attrs["layout"] = "NHWC"
    probe.create_dataset("y", data=b.probe_labels.astype(np.int64))


# --------------------------------------------------------------------------- reading


def open_benchmark(path: str | os.PathLike) -> Benchmark:
    """Read and validate a benchmark file; raise `BenchmarkError` (one sentence) if unusable."""
    path = Path(path)
    where = f"Benchmark file {path}"
    if not path.exists():
        raise BenchmarkError(f"{where} does not exist.")
    if path.is_dir():
        raise BenchmarkError(f"{where} is a directory, not an HDF5 file.")
    found = identify(path)
    if found is not None and found is not BENCHMARK:
        raise BenchmarkError(wrong_kind(path, found, "a benchmark"))
    try:
        with h5py.File(path, "r") as file:
            benchmark = _read(file, path, where)
    except BenchmarkError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as error:
        # h5py raises OSError for a file that is not HDF5 or is truncated, and KeyError or
        # OSError for damaged objects inside one.
        if not h5py.is_hdf5(path):
            problem = "is not an HDF5 file (it has no HDF5 signature)"
        else:
            problem = f"is a truncated or damaged HDF5 file ({_clause(error)})"
        raise BenchmarkError(f"{where} {problem}; re-create it with `zcnas bench import`.") from None
    _validate(benchmark, where, _space_or_error(benchmark.search_space, where, benchmark.attrs.get("space_plugin")))
    return benchmark


def _read(file: h5py.File, path: Path, where: str) -> Benchmark:
    attrs = {key: _plain(value) for key, value in file.attrs.items()}
    if "format_version" not in attrs:
        raise BenchmarkError(
            f"{where} has no format_version attribute, so it is not a zcnas benchmark "
            f"(this zcnas reads {_versions()})."
        )
    version = attrs["format_version"]
    if not isinstance(version, (int, np.integer)) or int(version) not in SUPPORTED_VERSIONS:
        raise BenchmarkError(
            f"{where} has format_version {version!r}, but this zcnas reads only "
            f"{_versions()}; upgrade zcnas or re-import the benchmark."
        )
    for key in REQUIRED_ROOT_ATTRS + (("source", "created") if int(version) >= 2 else ()):
        if key not in attrs:
            raise BenchmarkError(f"{where} lacks the root attribute {key!r}.")
    has_probe = "probe" in file
    tokens = None
    if has_probe and isinstance(file["probe"], h5py.Group) and int(version) >= 2:
        kind = _plain(file["probe"].attrs.get("kind"))
        if kind not in PROBE_KINDS:
            raise BenchmarkError(
                f"{where} has a probe group whose kind attribute is {kind!r}; format version {int(version)} "
                f"needs 'images' or 'tokens'."
            )
        if kind == "tokens":
            has_probe = False  # not images; read below
            tokens = _read_tokens(file["probe"], where)
    for name in REQUIRED_DATASETS + (PROBE_DATASETS if has_probe else ()):
        if not isinstance(file.get(name), h5py.Dataset):
            raise BenchmarkError(f"{where} has no dataset {name!r} (see docs/benchmark-format.md).")
    if not isinstance(file.get("targets"), h5py.Group):
        raise BenchmarkError(f"{where} has no group 'targets' (see docs/benchmark-format.md).")

    encoding_data = file["archs/encoding"]
    if encoding_data.dtype.kind not in "OSU":
        raise BenchmarkError(f"{where} stores archs/encoding as {encoding_data.dtype}, not as strings.")
    if encoding_data.ndim != 1:
        raise BenchmarkError(f"{where} has a {encoding_data.ndim}-D archs/encoding; it must be 1-D.")
    encodings = [str(e) for e in encoding_data.asstr()[()]] if encoding_data.size else []
    index = file["archs/index"][()]
    if index.dtype.kind not in "iu" or index.ndim != 1:
        raise BenchmarkError(f"{where} has archs/index of type {index.dtype} and shape {index.shape}; it must be 1-D integers.")

    targets: dict[str, np.ndarray] = {}
    target_attrs: dict[str, dict[str, Any]] = {}
    auxiliary: list[tuple[str, str, str, np.ndarray]] = []  # role, dataset name, metric, values
    for metric, dataset in file["targets"].items():
        if not isinstance(dataset, h5py.Dataset):
            raise BenchmarkError(f"{where} has a group targets/{metric}; targets must be datasets.")
        values = _as_float_array(dataset[()], f"{where}: target {metric!r}")
        info = {key: _plain(value) for key, value in dataset.attrs.items()}
        role = info.get("role")
        if role is None and values.ndim == 2 and metric.endswith("_seeds"):
            role, info["target"] = ROLE_SEEDS, metric[: -len("_seeds")]
        if role in (ROLE_SEEDS, ROLE_STD):
            auxiliary.append((str(role), metric, str(info.get("target", "")), values))
        elif role is not None:
            raise BenchmarkError(f"{where} has targets/{metric} with unknown role {role!r}; known roles: seeds, std.")
        elif values.ndim != 1:
            raise BenchmarkError(f"{where} has a {values.ndim}-D target {metric!r}; targets must be 1-D (seeds: N x S).")
        else:
            targets[metric] = values
            target_attrs[metric] = info

    target_seeds: dict[str, np.ndarray] = {}
    target_std: dict[str, np.ndarray] = {}
    for role, dataset_name, metric, values in auxiliary:
        if metric not in targets:
            raise BenchmarkError(
                f"{where} has targets/{dataset_name} ({role}) for target {metric!r}, which does not exist."
            )
        (target_seeds if role == ROLE_SEEDS else target_std)[metric] = values

    if not has_probe:
        mean = std = ()
    else:
        x = file["probe/x"]
        mean = x.attrs.get("mean")
        std = x.attrs.get("std")
    if has_probe and (mean is None or std is None):
        raise BenchmarkError(f"{where} lacks the probe/x attribute {'mean' if mean is None else 'std'!r} (per-channel normalisation).")
    return Benchmark(
        path=path,
        name=str(attrs["name"]),
        search_space=str(attrs["search_space"]),
        dataset=str(attrs["dataset"]),
        num_classes=_as_int(attrs["num_classes"], f"{where} has a non-integer num_classes"),
        source=str(attrs.get("source", "")),
        created=str(attrs.get("created", "")),
        encodings=encodings,
        index=index.astype(np.int64),
        targets=targets,
        target_seeds=target_seeds,
        target_std=target_std,
        target_attrs=target_attrs,
        probe_images=x[()] if has_probe else None,
        probe_labels=file["probe/y"][()] if has_probe else None,
        probe_mean=tuple(float(m) for m in np.ravel(mean)),
        probe_std=tuple(float(s) for s in np.ravel(std)),
        attrs=attrs,
        probe_tokens=tokens,
    )


def _write_tokens(probe: h5py.Group, tokens: TokenProbe) -> None:
    probe.attrs["kind"] = "tokens"
    ids_dtype = np.int32 if int(tokens.vocab_size) <= np.iinfo(np.int32).max else np.int64
    ids = probe.create_dataset("ids", data=tokens.ids.astype(ids_dtype), compression="gzip", compression_opts=4)
    ids.attrs["vocab_size"] = int(tokens.vocab_size)
    for key, value in tokens.attrs.items():
        if value is not None and key != "vocab_size":
            ids.attrs[key] = value
    probe.create_dataset("attention_mask", data=tokens.attention_mask.astype(np.uint8), compression="gzip")
    if tokens.labels is not None:
        y = probe.create_dataset("y", data=tokens.labels.astype(np.int64))
        for key, value in tokens.label_attrs.items():
            if value is not None:
                y.attrs[key] = value


def _read_tokens(probe: h5py.Group, where: str) -> TokenProbe:
    for name in ("ids", "attention_mask"):
        if not isinstance(probe.get(name), h5py.Dataset):
            raise BenchmarkError(f"{where} has a token probe without the dataset 'probe/{name}' (see docs/benchmark-format.md).")
    ids = probe["ids"]
    if "vocab_size" not in ids.attrs:
        raise BenchmarkError(f"{where} lacks the probe/ids attribute 'vocab_size' (the tokenizer's vocabulary).")
    attrs = {key: _plain(value) for key, value in ids.attrs.items() if key != "vocab_size"}
    labels = probe.get("y")
    return TokenProbe(
        ids=ids[()],
        attention_mask=probe["attention_mask"][()],
        vocab_size=_plain(ids.attrs["vocab_size"]),
        labels=labels[()] if isinstance(labels, h5py.Dataset) else None,
        attrs=attrs,
        label_attrs={key: _plain(value) for key, value in labels.attrs.items()} if labels is not None else {},
    )


# --------------------------------------------------------------------------- validation


def _validate(b: Benchmark, where: str, space) -> None:
    """The rules of docs/benchmark-format.md ("Validation"); `where` starts each message."""
    n = len(b.encodings)
    if n == 0:
        raise BenchmarkError(f"{where} holds no architectures (archs/encoding is empty).")
    if b.num_classes < 1:
        raise BenchmarkError(f"{where} has num_classes {b.num_classes}; it must be at least 1.")

    seen: dict[str, int] = {}
    for row, encoding in enumerate(b.encodings):
        try:
            key = space.canonical(encoding)
        except ArchError as error:
            raise BenchmarkError(
                f"{where} has an architecture at row {row} that does not parse ({encoding!r}): {_clause(error)}."
            ) from None
        if key in seen:
            raise BenchmarkError(
                f"{where} has duplicate architectures: rows {seen[key]} and {row} are both {encoding!r}."
            )
        seen[key] = row

    if b.index.shape != (n,):
        raise BenchmarkError(f"{where} has {b.index.size} entries in archs/index for {n} architectures.")
    if b.index.dtype.kind not in "iu":
        raise BenchmarkError(f"{where} has archs/index of type {b.index.dtype}; it must be integers.")
    unique, counts = np.unique(b.index, return_counts=True)
    if unique.size != n:
        raise BenchmarkError(f"{where} has duplicate ids in archs/index (e.g. {int(unique[counts > 1][0])}).")

    for metric, values in b.targets.items():
        if values.shape != (n,):
            raise BenchmarkError(
                f"{where} has target {metric!r} of length {values.size} for its {n} architectures."
            )
    primary = b.attrs.get("primary_target")
    if primary is not None and (not isinstance(primary, str) or primary not in b.targets):
        raise BenchmarkError(
            f"{where} names the primary target {primary!r}, which is not one of its targets "
            f"({', '.join(b.targets) or 'none'})."
        )
    for label, arrays in (("target seeds", b.target_seeds), ("target std", b.target_std)):
        for metric, values in arrays.items():
            expected = "(n_archs, n_seeds)" if label == "target seeds" else "(n_archs,)"
            good = values.ndim == 2 if label == "target seeds" else values.ndim == 1
            if not good or values.shape[0] != n:
                raise BenchmarkError(
                    f"{where} has {label} for {metric!r} of shape {values.shape}, but {n} architectures "
                    f"need shape {expected}."
                )

    if b.probe_tokens is not None:
        validate_token_probe(b.probe_tokens, where, space, b.num_classes, _options_of(b, where))
        return
    images, labels = b.probe_images, b.probe_labels
    if images is None or labels is None:
        if getattr(space, "can_build", True) and images is not labels:
            raise BenchmarkError(f"{where} has probe images without labels or labels without images.")
        return
    if images.dtype != np.uint8 or images.ndim != 4:
        raise BenchmarkError(
            f"{where} has probe images of type {images.dtype} and shape {images.shape}; "
            f"they must be uint8 (N, H, W, C)."
        )
    count, height, width, channels = images.shape
    if count == 0:
        raise BenchmarkError(f"{where} holds no probe images.")
    try:
        space.check_input_shape((count, channels, height, width))
    except BenchmarkError as error:
        raise BenchmarkError(
            f"{where} has probe images of shape {images.shape} (NHWC) that do not fit the "
            f"{b.search_space} space: {_clause(error)}."
        ) from None
    for label, stats in (("mean", b.probe_mean), ("std", b.probe_std)):
        if len(stats) != channels or not all(math.isfinite(s) for s in stats):
            raise BenchmarkError(
                f"{where} has probe {label} {list(stats)}; it needs {channels} finite values, one per channel."
            )
    if any(s <= 0 for s in b.probe_std):
        raise BenchmarkError(f"{where} has probe std {list(b.probe_std)}; every value must be positive.")
    if labels.ndim != 1 or labels.shape[0] != count:
        raise BenchmarkError(
            f"{where} has {labels.size} probe labels for {count} probe images."
        )
    if labels.dtype.kind not in "iu":
        raise BenchmarkError(f"{where} has probe labels of type {labels.dtype}; they must be integers.")
    outside = (labels < 0) | (labels >= b.num_classes)
    if outside.any():
        first = int(np.flatnonzero(outside)[0])
        raise BenchmarkError(
            f"{where} has probe label {int(labels[first])} at position {first}, outside "
            f"[0, {b.num_classes}) for num_classes={b.num_classes}."
        )


# --------------------------------------------------------------------------- helpers


def _options_of(b: Benchmark, where: str) -> dict:
    """The benchmark's network build options (root attribute `space_options`, JSON)."""
    import json

    raw = b.attrs.get("space_options")
    if raw in (None, ""):
        return {}
    try:
        options = json.loads(raw) if isinstance(raw, (str, bytes)) else dict(raw)
    except (ValueError, TypeError):
        raise BenchmarkError(f"{where} has an unreadable space_options attribute: {raw!r}.") from None
    return options if isinstance(options, dict) else {}


def _space_or_error(name: str, where: str, plugin: str | None = None):
    """The space a benchmark names (`plugin`: the reference a plugin space was loaded from),
    or one sentence saying which space or package is missing."""
    from zcnas.spaces import space_for_benchmark

    return space_for_benchmark(name, plugin, where)


def _as_float_array(values, what: str) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind not in "fiub":
        raise BenchmarkError(f"{what} holds {array.dtype} values, not numbers.")
    return array.astype(np.float64)


def _as_int(value, message: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return int(value)
        raise BenchmarkError(f"{message} ({value!r}).")
    return int(value)


def _plain(value):
    """An HDF5 attribute as a plain Python value (str, int, float, list)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()] if value.dtype.kind == "O" else value.tolist()
    return value


def _clause(error: BaseException) -> str:
    """An error's message as a clause to embed in a longer sentence."""
    text = (str(error).strip() or type(error).__name__).rstrip(".")
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        text = text[0].lower() + text[1:]
    return text


def _versions() -> str:
    """'format version 1' or 'format versions 1 and 2'."""
    numbers = [str(v) for v in SUPPORTED_VERSIONS]
    if len(numbers) == 1:
        return f"format version {numbers[0]}"
    return f"format versions {', '.join(numbers[:-1])} and {numbers[-1]}"

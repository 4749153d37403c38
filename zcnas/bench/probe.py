"""Probe images: the small labelled image set proxies are computed on, stored in each benchmark.

Two sources are read: an ``.npz`` with ``images`` (uint8 N,H,W,C) and ``labels``, and the
CIFAR-10/100 "python version" pickles. A probe keeps a class-balanced, deterministic subset,
ordered class by class in turn (round-robin) so that any prefix of it is as balanced as
possible: `Benchmark.probe_batch(64)` then sees every class.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from zcnas.errors import BenchmarkError

DEFAULT_PROBE_SIZE = 1024

# Per-channel statistics (0..1 scale) of the full CIFAR training sets, the constants used
# across the NAS literature (e.g. NAS-Bench-201's and NASLib's data loaders).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)
KNOWN_STATS = {
    "cifar10": (CIFAR10_MEAN, CIFAR10_STD),
    "cifar100": (CIFAR100_MEAN, CIFAR100_STD),
}


@dataclass
class Probe:
    """A probe set ready to be written into a benchmark."""

    images: np.ndarray  # uint8 (N, H, W, C)
    labels: np.ndarray  # int64 (N,)
    mean: tuple[float, ...]  # per channel, 0..1 scale
    std: tuple[float, ...]
    source: str  # where it came from, for the benchmark's provenance

    def __iter__(self):
        # Lets `images, labels, mean, std = load_probe_npz(...)` work as well.
        return iter((self.images, self.labels, self.mean, self.std))


def load_probe(
    path,
    size: int | None = None,
    seed: int = 0,
    mean: Sequence[float] | str | None = None,
    std: Sequence[float] | None = None,
) -> Probe:
    """Either kind of probe source, chosen by the path: ``*.npz`` or a CIFAR pickle/dir."""
    path = Path(path)
    if path.suffix.lower() == ".npz":
        return load_probe_npz(path, size=size, seed=seed, mean=mean, std=std)
    return load_probe_cifar(path, size=size, seed=seed, mean=mean, std=std)


def load_probe_npz(
    path,
    size: int | None = None,
    seed: int = 0,
    mean: Sequence[float] | str | None = None,
    std: Sequence[float] | None = None,
    images_key: str = "images",
    labels_key: str = "labels",
) -> Probe:
    """A probe from an ``.npz`` holding uint8 ``images`` (N, H, W, C) and integer ``labels``.

    `size` images are kept (default: at most 1024), class-balanced and fixed by `seed`.
    `mean`/`std` default to the statistics of all the file's images; `mean` may also be
    ``"cifar10"``/``"cifar100"`` for the standard constants.
    """
    path = Path(path)
    if not path.is_file():
        raise BenchmarkError(f"Probe file {path} does not exist.")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [key for key in (images_key, labels_key) if key not in data.files]
            if missing:
                raise BenchmarkError(
                    f"Probe file {path} has no array {missing[0]!r} (it holds {', '.join(data.files) or 'nothing'})."
                )
            images, labels = data[images_key], data[labels_key]
    except BenchmarkError:
        raise
    except (OSError, ValueError, EOFError) as error:
        raise BenchmarkError(f"Probe file {path} is not a readable .npz file ({str(error).rstrip('.')}).") from None
    return _make_probe(images, labels, size, seed, mean, std, f"npz:{path.name}", path)


def load_probe_cifar(
    path,
    size: int | None = None,
    seed: int = 0,
    mean: Sequence[float] | str | None = None,
    std: Sequence[float] | None = None,
    split: str = "train",
) -> Probe:
    """A probe from the CIFAR-10/100 python pickles.

    `path` is one batch file (``data_batch_1``, ``test_batch``, CIFAR-100's ``train``/``test``)
    or the extracted directory (``cifar-10-batches-py``/``cifar-100-python``), from which the
    `split` ("train" or "test") is read. CIFAR-100 uses its fine labels.
    """
    path = Path(path)
    if not path.exists():
        raise BenchmarkError(f"CIFAR probe path {path} does not exist.")
    if split not in ("train", "test"):
        raise BenchmarkError(f"CIFAR split {split!r} is not one of train, test.")
    files = _cifar_batch_files(path, split) if path.is_dir() else [path]
    images, labels = [], []
    for file in files:
        batch_images, batch_labels = _read_cifar_batch(file)
        images.append(batch_images)
        labels.append(batch_labels)
    images_all = np.concatenate(images)
    labels_all = np.concatenate(labels)
    return _make_probe(images_all, labels_all, size, seed, mean, std, f"cifar:{path.name}", path)


def _cifar_batch_files(directory: Path, split: str) -> list[Path]:
    if split == "train":
        candidates = sorted(directory.glob("data_batch_*")) or [directory / "train"]
    else:
        candidates = [directory / "test_batch", directory / "test"]
    files = [file for file in candidates if file.is_file()]
    if not files:
        raise BenchmarkError(
            f"CIFAR directory {directory} holds no {split} batches "
            f"(expected {'data_batch_1..5 or train' if split == 'train' else 'test_batch or test'})."
        )
    return files


class _CifarUnpickler(pickle.Unpickler):
    """Reads CIFAR batches without running arbitrary code: a pickle can name any callable.

    Allowed are the few names numpy's array pickling uses and plain builtin containers.
    """

    _BUILTINS = {"dict", "list", "tuple", "set", "frozenset", "bytes", "bytearray", "str", "int", "float", "complex"}
    _NUMPY_MODULES = {
        "numpy",
        "numpy.core.multiarray",
        "numpy._core.multiarray",
        "numpy.core.numeric",
        "numpy._core.numeric",
    }

    def find_class(self, module, name):
        if module in ("builtins", "__builtin__") and name in self._BUILTINS:
            return getattr(__import__("builtins"), name)
        if (module, name) == ("_codecs", "encode"):
            return _latin1_encode  # how protocol-2 pickles written by Python 3 store bytes
        if module in self._NUMPY_MODULES:
            target = _numpy_pickle_globals().get(name)
            if target is not None:
                return target
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refusing to encode with {encoding!r}")
    return text.encode("latin1")


def _numpy_pickle_globals() -> dict:
    # Taken from live objects so that pickles naming numpy.core (NumPy 1) and numpy._core
    # (NumPy 2) both resolve without importing the deprecated module path.
    names = {
        "ndarray": np.ndarray,
        "dtype": np.dtype,
        "_reconstruct": np.empty(0).__reduce__()[0],
        "scalar": np.float64(0).__reduce__()[0],
    }
    from_buffer = np.arange(2).__reduce_ex__(5)[0]
    names[getattr(from_buffer, "__name__", "_frombuffer")] = from_buffer
    return names


def _read_cifar_batch(file: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(file, "rb") as handle:
            batch = _CifarUnpickler(handle, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError) as error:
        raise BenchmarkError(
            f"CIFAR batch {file} is not a CIFAR python pickle ({str(error).rstrip('.') or type(error).__name__})."
        ) from None
    except OSError as error:
        raise BenchmarkError(f"CIFAR batch {file} cannot be read ({error.strerror or error}).") from None
    if not isinstance(batch, dict):
        raise BenchmarkError(f"CIFAR batch {file} holds a {type(batch).__name__}, not the batch dictionary.")
    batch = {key.decode("latin-1") if isinstance(key, bytes) else key: value for key, value in batch.items()}
    data = batch.get("data")
    labels = batch.get("labels", batch.get("fine_labels"))
    if data is None or labels is None:
        raise BenchmarkError(f"CIFAR batch {file} lacks 'data' or 'labels'/'fine_labels'.")
    data = np.asarray(data)
    labels = np.asarray(labels)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise BenchmarkError(
            f"CIFAR batch {file} has data of type {data.dtype} and shape {data.shape} with {len(labels)} labels; "
            f"expected uint8 (N, 3072) and N labels."
        )
    # Rows are channel-major (1024 red, 1024 green, 1024 blue, each row-major 32x32).
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.int64)


def _make_probe(images, labels, size, seed, mean, std, source: str, path: Path) -> Probe:
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise BenchmarkError(
            f"Probe {path} has images of type {images.dtype} and shape {images.shape}; expected uint8 (N, H, W, C)."
        )
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) != len(images):
        raise BenchmarkError(
            f"Probe {path} has labels of type {labels.dtype} and shape {labels.shape} for {len(images)} images; "
            f"expected one integer label per image."
        )
    if len(images) == 0:
        raise BenchmarkError(f"Probe {path} holds no images.")
    probe_mean, probe_std = _statistics(images, mean, std, path)
    keep = balanced_subset(labels, size, seed, path)
    return Probe(
        images=np.ascontiguousarray(images[keep]),
        labels=labels[keep].astype(np.int64),
        mean=probe_mean,
        std=probe_std,
        source=f"{source} ({len(keep)} of {len(images)} images, class-balanced, seed {seed})",
    )


def balanced_subset(labels: np.ndarray, size: int | None, seed: int, path="probe") -> np.ndarray:
    """Indices of `size` items, class-balanced, in round-robin class order, fixed by `seed`.

    Each class is shuffled with `numpy.random.default_rng(seed)`; then the first item of every
    class (classes in ascending order), the second of every class, and so on.
    """
    total = len(labels)
    if size is None:
        size = min(DEFAULT_PROBE_SIZE, total)
    if not 1 <= size <= total:
        raise BenchmarkError(f"Probe size {size} is not possible with {path}, which holds {total} images; use 1 to {total}.")
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    order = []
    for rank in range(max(len(members) for members in per_class)):
        order.extend(int(members[rank]) for members in per_class if rank < len(members))
        if len(order) >= size:
            break
    return np.asarray(order[:size], dtype=np.int64)


def _statistics(images: np.ndarray, mean, std, path: Path) -> tuple[tuple[float, ...], tuple[float, ...]]:
    channels = images.shape[-1]
    if isinstance(mean, str):
        if mean not in KNOWN_STATS:
            raise BenchmarkError(f"Unknown probe statistics {mean!r}; use images, {', '.join(KNOWN_STATS)} or numbers.")
        mean, std = KNOWN_STATS[mean]
    if mean is None or std is None:
        computed_mean, computed_std = channel_statistics(images)
        mean = computed_mean if mean is None else mean
        std = computed_std if std is None else std
    mean = tuple(float(m) for m in mean)
    std = tuple(float(s) for s in std)
    if len(mean) != channels or len(std) != channels:
        raise BenchmarkError(
            f"Probe {path} has {channels} channels but mean {list(mean)} and std {list(std)}; give one value per channel."
        )
    if any(not s > 0 for s in std):
        raise BenchmarkError(f"Probe {path} would get std {list(std)}; every value must be positive.")
    return mean, std


def channel_statistics(images: np.ndarray, chunk: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std on the 0..1 scale, in chunks (50,000 CIFAR images as
    float64 at once would take 1.2 GB)."""
    channels = images.shape[-1]
    total = np.zeros(channels)
    squares = np.zeros(channels)
    count = 0
    for start in range(0, len(images), chunk):
        block = images[start : start + chunk].reshape(-1, channels).astype(np.float64) / 255.0
        total += block.sum(axis=0)
        squares += (block * block).sum(axis=0)
        count += block.shape[0]
    mean = total / count
    variance = np.maximum(squares / count - mean * mean, 0.0)
    return tuple(mean.tolist()), tuple(np.sqrt(variance).tolist())


# NAS-Bench-Suite-Zero's probe batch (NASLib, naslib/utils/dataset.py `_data_transforms_cifar10`
# with naslib/runners/zc/zc_config.yaml): RandomCrop(32, padding=4), RandomHorizontalFlip(),
# ToTensor(), Normalize(mean, std), batch 32, a fresh shuffled batch for every architecture.
SUITE_ZERO_BATCH = 32
SUITE_ZERO_PADDING = 4


def augmented_batch(
    images: np.ndarray,
    labels: np.ndarray,
    mean: Sequence[float],
    std: Sequence[float],
    size: int,
    seed: int,
    padding: int = SUITE_ZERO_PADDING,
) -> tuple[np.ndarray, np.ndarray]:
    """`size` images drawn uniformly without replacement from a probe pool (uint8 N,H,W,C),
    each randomly cropped and flipped as torchvision's ``RandomCrop(H, padding)`` (zero
    padding, a uniform offset in 0..2*padding each way) and ``RandomHorizontalFlip()`` (p 0.5)
    do, then normalised: (float32 N,C,H,W, int64 labels). Fixed by `seed` (numpy's generator,
    so the same distribution as torchvision's, not its random stream)."""
    total, height, width = images.shape[0], images.shape[1], images.shape[2]
    if not 1 <= size <= total:
        raise BenchmarkError(f"Cannot draw a probe batch of {size} images from a pool of {total}; ask for 1 to {total}.")
    rng = np.random.default_rng(seed)
    chosen = rng.choice(total, size=size, replace=False)
    offsets = rng.integers(0, 2 * padding + 1, size=(size, 2))
    flips = rng.random(size) < 0.5
    padded = np.pad(images[chosen], ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    batch = np.empty((size, height, width, images.shape[3]), dtype=np.uint8)
    for i, (top, left) in enumerate(offsets):
        crop = padded[i, top : top + height, left : left + width]
        batch[i] = crop[:, ::-1] if flips[i] else crop
    x = batch.astype(np.float32) / np.float32(255.0)
    x = (x - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)), labels[chosen].astype(np.int64)

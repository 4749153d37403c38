"""Benchmark files: the HDF5 format (read, write, validate), probe images, importers and builds."""

from zcnas.bench.format import FORMAT_VERSION, Benchmark, open_benchmark, write_benchmark
from zcnas.bench.importers import import_analognas, import_csv
from zcnas.bench.probe import Probe, load_probe, load_probe_cifar, load_probe_npz
from zcnas.bench.build import BuildResult, TrainingRecipe, build_benchmark
from zcnas.bench.datasets import DATASETS, ImageDataset, load_dataset

__all__ = [
    "FORMAT_VERSION",
    "Benchmark",
    "BuildResult",
    "DATASETS",
    "ImageDataset",
    "Probe",
    "TrainingRecipe",
    "build_benchmark",
    "import_analognas",
    "import_csv",
    "load_dataset",
    "load_probe",
    "load_probe_cifar",
    "load_probe_npz",
    "open_benchmark",
    "write_benchmark",
]

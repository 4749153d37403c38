"""Benchmark files: the HDF5 format (read, write, validate), probe images and importers."""

from zcnas.bench.format import FORMAT_VERSION, Benchmark, open_benchmark, write_benchmark
from zcnas.bench.importers import import_analognas, import_csv
from zcnas.bench.probe import Probe, load_probe, load_probe_cifar, load_probe_npz

__all__ = [
    "FORMAT_VERSION",
    "Benchmark",
    "Probe",
    "import_analognas",
    "import_csv",
    "load_probe",
    "load_probe_cifar",
    "load_probe_npz",
    "open_benchmark",
    "write_benchmark",
]

"""Shared fixtures: where the real data lives, and tiny benchmarks built on the fly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_file(name: str) -> Path:
    """A file of ../shared/data, or skip the test saying why (users' machines lack it)."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"real data {name} not found in {SHARED_DATA} (only CI and developers have ../shared/data)")
    return path


TINY_ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    "|nor_conv_1x1~0|+|none~0|nor_conv_3x3~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|",
    "|skip_connect~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_1x1~0|nor_conv_1x1~1|none~2|",
    "|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|nor_conv_3x3~0|skip_connect~1|avg_pool_3x3~2|",
    "|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|nor_conv_1x1~0|nor_conv_1x1~1|nor_conv_1x1~2|",
    "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
]


def make_tiny_benchmark(path: Path, n_archs: int = 8, *, probe_size: int = 16, seed: int = 0, **extra) -> Path:
    """A real benchmark file of a narrow NB201 (C=4, N=1) with random images: fast to score."""
    from zcnas.bench import write_benchmark
    from zcnas.spaces import get_space

    rng = np.random.default_rng(seed)
    space = get_space("nb201")
    archs = list(TINY_ARCHS)
    if n_archs > len(archs):
        extra_archs = [a for a in space.sample(n_archs + len(archs), rng) if a not in archs]
        archs += extra_archs[: n_archs - len(archs)]
    archs = archs[:n_archs]
    # A target that some proxies can rank: more convolutions, higher "accuracy".
    convs = np.array([a.count("conv") for a in archs], dtype=float)
    targets = {"acc": 80 + 2 * convs + rng.normal(0, 0.5, len(archs))}
    targets.update(extra.pop("targets", {}))
    return write_benchmark(
        path,
        name="tiny",
        search_space="nb201",
        dataset="random16",
        num_classes=10,
        encodings=archs,
        targets=targets,
        probe_images=rng.integers(0, 256, size=(probe_size, 16, 16, 3), dtype=np.uint8),
        probe_labels=np.arange(probe_size) % 10,
        probe_mean=(0.5, 0.5, 0.5),
        probe_std=(0.25, 0.25, 0.25),
        source="tests/conftest.py make_tiny_benchmark",
        extra_attrs={"space_options": '{"C": 4, "N": 1}', **extra.pop("extra_attrs", {})},
        **extra,
    )


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny networks gain nothing from intra-op threads, and on a busy machine spinning
    OpenMP workers slow them down a hundredfold; restore the setting for other modules.
    A module opts in with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_bench(tmp_path) -> Path:
    return make_tiny_benchmark(tmp_path / "tiny.h5")

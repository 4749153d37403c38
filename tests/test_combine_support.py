"""Synthetic runs for the combine tests (no tests here; imported by tests/test_combine_*.py).

A synthetic run is a real `RunStore` file whose target is a noisy monotone function of one
proxy (synflow), with per-layer statistics that carry the same signal, some layers absent and
some proxies failed — everything a combine method must cope with, at a size that fits in
milliseconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zcnas.proxies.compute import ProxyOutcome
from zcnas.run.store import RunSpec, RunStore

PROXIES = ("grad_norm", "snip", "synflow", "noise")
SLOTS = [f"cells.{i}.conv" for i in range(10)] + ["stem.conv", "classifier"]


def make_synthetic_run(
    path: Path,
    n: int = 120,
    *,
    seed: int = 0,
    proxies: tuple[str, ...] = PROXIES,
    layers: bool = True,
    fail_rate: float = 0.03,
    extra_targets: dict[str, np.ndarray] | None = None,
) -> RunStore:
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=n)
    # The target: a noisy monotone function of synflow's (log) score.
    accuracy = 80 + 6 * np.tanh(latent) + rng.normal(0, 0.6, n)
    values = {
        "synflow": np.exp(20 + 4 * latent),  # heavy-tailed, like the real one
        "grad_norm": 0.4 * latent + rng.normal(0, 1.0, n),
        "snip": rng.lognormal(0, 1, n),
        "noise": rng.normal(size=n),
    }
    slot_weight = {name: rng.dirichlet(np.ones(len(SLOTS))) for name in proxies}
    spec = RunSpec(
        benchmark="synthetic.h5", benchmark_name="synthetic", search_space="synthetic", dataset="none",
        num_classes=10, proxies=tuple(proxies), seed=seed, sample=n, batch_size=8,
    )
    targets = {"acc": accuracy, "half_nan": np.where(np.arange(n) % 2 == 0, accuracy, np.nan), "all_nan": np.full(n, np.nan)}
    targets.update(extra_targets or {})
    store = RunStore.create(
        path, spec, encodings=[f"arch{i}" for i in range(n)], index=np.arange(1000, 1000 + n),
        arch_seeds=np.arange(n), targets=targets, slot_order=SLOTS,
    )
    for row in range(n):
        outcomes = {}
        present = rng.random(len(SLOTS)) > 0.15  # some architectures lack some layers
        present[-1] = True
        for name in proxies:
            base = values.get(name, rng.normal(size=n))[row]
            if rng.random() < fail_rate:
                outcomes[name] = ProxyOutcome(float("nan"), {}, 0.0, "RuntimeError: synthetic failure")
                continue
            per_layer = {}
            if layers:
                share = slot_weight[name] * rng.lognormal(0, 0.1, len(SLOTS))
                per_layer = {slot: float(base * w) for slot, w, keep in zip(SLOTS, share, present) if keep}
            outcomes[name] = ProxyOutcome(float(base), per_layer, 0.001)
        store.record(row, outcomes)
    store.checkpoint()
    return RunStore.open(path)

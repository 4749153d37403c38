"""A report: every proxy of a run against every target, as plain data (then rendered)."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np

from zcnas import __version__
from zcnas.report.metrics import METRICS, correlations, paired_finite
from zcnas.run.store import FAILED, OK, RunStore

REPORT_SCHEMA_VERSION = 1


def build_report(store: RunStore, targets: list[str] | None = None) -> dict:
    """Correlations of each proxy with each target, failures and time, as a JSON-ready dict."""
    targets = targets or sorted(store.targets)
    proxies = []
    for name in store.spec.proxies:
        ok = store.status[name] == OK
        seconds = store.seconds[name][ok]
        entry = {
            "proxy": name,
            "scored": int(ok.sum()),
            "failed": int((store.status[name] == FAILED).sum()),
            "pending": int((store.status[name] == 0).sum()),
            "median_seconds": float(np.median(seconds)) if len(seconds) else None,
            "first_errors": sorted({e for e in store.errors[name] if e})[:3],
            "targets": {},
        }
        score = np.where(ok, store.scores[name], np.nan)
        for target in targets:
            pairs = len(paired_finite(score, store.targets[target])[0])
            entry["targets"][target] = {"n": pairs, **correlations(score, store.targets[target])}
        proxies.append(entry)
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "kind": "zcnas-report",
        "zcnas_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run": str(store.path),
        "benchmark": store.spec.benchmark_name,
        "search_space": store.spec.search_space,
        "dataset": store.spec.dataset,
        "seed": store.spec.seed,
        "batch_size": store.spec.batch_size,
        "architectures": len(store),
        "metrics": list(METRICS),
        "targets": targets,
        "proxies": proxies,
    }

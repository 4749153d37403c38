"""Held-out evaluation of a combine method on a run: fit on K architectures, judge on the rest.

For each repeat r = 0..R-1 the split seed is ``seed + r``: K architectures are drawn (without
replacement, by ``numpy.random.default_rng(seed + r)``) among the *usable* rows — those whose
target is finite — the model is fitted on them, and every other usable row is the held-out
set. On it the model gets the report's metrics (`zcnas.report.metrics.point_metrics`:
Spearman, Kendall, Pearson, top-k% precision, Kendall within the true top k%) with percentile
bootstrap intervals (`zcnas.report.bootstrap`, resamples seeded by the split seed). A held-out
row the model cannot score (every input proxy missing) is left out of the metrics, and counted.

For comparison on the same splits, every single proxy of the run gets its held-out Kendall and
Spearman, and "the best single proxy" is the one with the highest Kendall **on the train
split** (chosen as honestly as the model is fitted; the per-proxy held-out numbers are kept
too, so the oracle choice is visible).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from zcnas.combine.base import Combiner, create_method, get_method
from zcnas.combine.features import CombineError, Features, no_layers_message, proxies_with_layers
from zcnas.report.bootstrap import DEFAULT_RESAMPLES, DEFAULT_CONFIDENCE, bootstrap_metrics, percentile_interval, resample_counts
from zcnas.report.build import run_provenance
from zcnas.report.metrics import DEFAULT_TOP_K, correlations, metric_names, point_metrics

SUMMARY_KIND = "zcnas-combine-summary"
SUMMARY_SCHEMA_VERSION = 1


@dataclass
class CombineResult:
    """What `evaluate_combine` gives back: the JSON-ready summary and the first split's model."""

    summary: dict[str, Any]
    model: Combiner


def usable_rows(store, target: str) -> np.ndarray:
    """Rows whose target is finite; refuses an unknown or NaN-only target with one sentence."""
    available = sorted(store.targets)
    if target not in store.targets:
        raise CombineError(f"Unknown target {target!r}; run {store.path} has targets {', '.join(available) or '(none)'}.")
    rows = np.flatnonzero(np.isfinite(store.targets[target]))
    if len(rows) == 0:
        others = [t for t in available if t != target]
        raise CombineError(
            f"Target {target!r} has no finite value in run {store.path}; "
            f"choose another target ({', '.join(others) or 'none available'})."
        )
    return rows


def split_rows(usable: np.ndarray, train_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) rows: `train_size` of `usable` drawn by `seed`, and all the others."""
    usable = np.asarray(usable, dtype=np.int64)
    rng = np.random.default_rng(int(seed))
    train = np.sort(rng.choice(usable, size=int(train_size), replace=False))
    test = np.setdiff1d(usable, train)
    return train, test


def resolve_proxies(store, method: str, proxies: Sequence[str] | None) -> list[str]:
    """The proxies a method will use on this run: those asked, else its default, else all.

    A method on per-layer statistics (parzc) defaults to those of its default proxies that the
    run holds per-layer statistics for, else to every proxy of the run that has them (a run of
    synflow and nwot: synflow alone; nwot has none by definition), and refuses a run with none.
    """
    if proxies:
        return list(proxies)
    cls = get_method(method)
    if cls.needs_layers:
        layered = proxies_with_layers(store)
        if not layered:
            raise CombineError(no_layers_message(store, list(store.spec.proxies), method))
        preferred = [name for name in cls.default_proxies or () if name in layered]
        return preferred or layered
    default = cls.default_proxies
    return list(default) if default is not None else list(store.spec.proxies)


def _spread(values: list[float | None]) -> dict[str, float | None]:
    finite = np.array([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if len(finite) == 0:
        return {"mean": None, "std": None, "min": None, "max": None, "n": 0}
    return {
        "mean": float(finite.mean()),
        "std": float(finite.std(ddof=1)) if len(finite) > 1 else 0.0,
        "min": float(finite.min()),
        "max": float(finite.max()),
        "n": int(len(finite)),
    }


def _clean(value):
    return None if value is None or not np.isfinite(value) else float(value)


def evaluate_combine(
    store,
    method: str,
    target: str,
    train_size: int,
    *,
    seed: int = 0,
    repeats: int = 1,
    proxies: Sequence[str] | None = None,
    params: dict[str, Any] | None = None,
    top_k: Sequence[float] = DEFAULT_TOP_K,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    progress: Callable[[int, int], None] | None = None,
    augment_repeats: bool = False,
) -> CombineResult:
    """Fit `method` on `train_size` architectures of the run and evaluate it on all the others,
    over `repeats` split seeds (seed, seed+1, ...). See the module docstring.

    `params` go to the method's constructor; a method with a ``seed`` parameter that is not
    given there gets the split seed.

    A run scored with `zcnas score --repeats R` is fitted on its scores, the aggregate of the
    repeats. With `augment_repeats`, the model is fitted on every repeat of the training
    architectures instead (R rows each, one per repeat, the same target), so it sees how the
    proxies vary with the init and batch; it is still evaluated on the aggregate.
    """
    cls = get_method(method)
    params = dict(params or {})
    if int(repeats) < 1:
        raise CombineError(f"--repeats must be at least 1; got {repeats}.")
    usable = usable_rows(store, target)
    if int(train_size) < 2:
        raise CombineError(f"--train-size must be at least 2; got {train_size}.")
    if int(train_size) >= len(usable):
        raise CombineError(
            f"--train-size {train_size} leaves nothing to evaluate on: target {target!r} is finite for only "
            f"{len(usable)} architectures of the run; use at most {len(usable) - 1}."
        )
    if augment_repeats and store.repeats < 2:
        raise CombineError(
            f"--augment-repeats needs a run scored with --repeats 2 or more; {store.path} has one repeat "
            "(score it with `zcnas score --repeats 3`)."
        )
    chosen = resolve_proxies(store, method, proxies)
    features = Features.from_run(store, proxies=chosen, layers=cls.needs_layers, who=method)
    per_repeat = (
        [Features.from_run(store, proxies=chosen, layers=cls.needs_layers, who=method, repeat=r) for r in range(store.repeats)]
        if augment_repeats
        else []
    )
    singles = list(store.spec.proxies)
    single_scores = Features.from_run(store, proxies=singles)
    y = np.asarray(store.targets[target], dtype=float)
    top_k = tuple(float(p) for p in top_k)
    names = metric_names(top_k)

    splits, first_model = [], None
    for r in range(int(repeats)):
        split_seed = int(seed) + r
        train, test = split_rows(usable, int(train_size), split_seed)
        model_params = {"proxies": chosen, **params}
        if "seed" in cls.param_names() and "seed" not in params:
            model_params["seed"] = split_seed
        model = create_method(method, **model_params)
        start = time.perf_counter()
        if augment_repeats:
            model.fit(Features.stacked([part.take(train) for part in per_repeat]), np.tile(y[train], len(per_repeat)))
        else:
            model.fit(features.take(train), y[train])
        fit_seconds = time.perf_counter() - start
        prediction = model.predict(features.take(test))
        y_test = y[test]
        evaluated = np.isfinite(prediction)
        metrics = {k: _clean(v) for k, v in point_metrics(prediction, y_test, top_k).items()}
        intervals: dict[str, list[float | None]] = {}
        if resamples > 0:
            counts = resample_counts(len(test), int(resamples), split_seed)
            replicates = bootstrap_metrics(prediction, y_test, counts, top_k)
            # no interval around an undefined value (e.g. a top-k set of fewer than 10 architectures)
            intervals = {
                k: list(percentile_interval(replicates[k], confidence)) if metrics[k] is not None else [None, None]
                for k in names
            }

        per_proxy, train_kendall = {}, {}
        for j, name in enumerate(singles):
            column = single_scores.scalar[:, j]
            held_out = correlations(column[test], y_test)
            per_proxy[name] = {"kendall": _clean(held_out["kendall"]), "spearman": _clean(held_out["spearman"])}
            train_kendall[name] = _clean(correlations(column[train], y[train])["kendall"])
        ranked = [p for p in singles if train_kendall[p] is not None]
        best = max(ranked, key=lambda p: train_kendall[p]) if ranked else None
        best_entry = None
        if best is not None:
            column = single_scores.scalar[:, singles.index(best)]
            best_entry = {
                "proxy": best,
                "train_kendall": train_kendall[best],
                "metrics": {k: _clean(v) for k, v in point_metrics(column[test], y_test, top_k).items()},
            }
        splits.append({
            "seed": split_seed,
            "train_index": [int(i) for i in np.asarray(store.index)[train]],
            "n_train": int(len(train)),
            "n_test": int(len(test)),
            "n_evaluated": int(evaluated.sum()),
            "fit_seconds": fit_seconds,
            "metrics": metrics,
            "intervals": intervals,
            "best_single": best_entry,
            "single_proxies": per_proxy,
        })
        if first_model is None:
            first_model = model
        if progress is not None:
            progress(r + 1, int(repeats))

    summary = {
        "kind": SUMMARY_KIND,
        "schema_version": SUMMARY_SCHEMA_VERSION,
        **run_provenance(store),
        "method": method,
        "reference": cls.reference,
        "params": first_model.get_params(),
        "proxies": chosen,
        "needs_layers": cls.needs_layers,
        "target": target,
        "train_size": int(train_size),
        "usable": int(len(usable)),
        "seed": int(seed),
        "repeats": int(repeats),
        "run_repeats": int(store.repeats),  # scorings per architecture in the run (zcnas score --repeats)
        "augment_repeats": bool(augment_repeats),
        "top_k": list(top_k),
        "metrics": names,
        "resamples": int(resamples),
        "confidence": float(confidence),
        "splits": splits,
        "summary": {
            "method": {k: _spread([s["metrics"][k] for s in splits]) for k in names},
            "best_single": {
                k: _spread([s["best_single"]["metrics"][k] if s["best_single"] else None for s in splits]) for k in names
            },
            "best_single_chosen": [s["best_single"]["proxy"] if s["best_single"] else None for s in splits],
            "single_proxies": {
                p: {m: _spread([s["single_proxies"][p][m] for s in splits]) for m in ("kendall", "spearman")}
                for p in singles
            },
        },
    }
    return CombineResult(summary=summary, model=first_model)


def summary_path_for(model_path: str | os.PathLike) -> Path:
    """The JSON summary written next to a model: MODEL with the suffix .json."""
    path = Path(model_path)
    return path.with_name(path.stem + ".json") if path.suffix else path.with_name(path.name + ".json")


def write_summary(summary: dict[str, Any], path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path

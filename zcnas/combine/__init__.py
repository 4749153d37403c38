"""combine: learn one score from several proxies, and judge it on architectures it never saw.

Every method obeys one small interface (scikit-learn style, see `base.Combiner`):

    model = create_method("ridge", proxies=["synflow", "nwot"])   # parameters in __init__ only
    model.fit(Features.from_run(store, rows=train), y[train])
    scores = model.predict(Features.from_run(store))             # higher = predicted better
    model.save("ridge.npz"); model = load_model("ridge.npz")      # one file, no pickle

Methods (`METHODS`, see `list_methods`): rank_average, az_nas, ridge, robot (needs the ``robot``
extra), parzc.
`evaluate_combine` is what `zcnas combine` runs; `apply_model` scores a run with a saved model
(what ``zcnas score --proxies combined:MODEL`` uses). See docs/combine.md.
"""

from __future__ import annotations

import os

import numpy as np

from zcnas.combine.base import METHODS, Combiner, create_method, get_method, load_model, read_model_file
from zcnas.combine.features import CombineError, Features

# Importing the method modules registers them (one module per method).
from zcnas.combine import rank_average as _rank_average  # noqa: E402,F401
from zcnas.combine import az_nas as _az_nas  # noqa: E402,F401
from zcnas.combine import ridge as _ridge  # noqa: E402,F401
from zcnas.combine import robot as _robot  # noqa: E402,F401
from zcnas.combine import parzc as _parzc  # noqa: E402,F401
from zcnas.combine.evaluate import CombineResult, evaluate_combine, split_rows, summary_path_for, write_summary  # noqa: E402


def list_methods() -> list[str]:
    return sorted(METHODS)


def required_inputs(model_path: str | os.PathLike) -> tuple[list[str], bool]:
    """(proxy names, needs per-layer statistics) a saved model reads from a run."""
    meta, _ = read_model_file(model_path, arrays=False)
    return list(meta["required_proxies"]), bool(meta["needs_layers"])


def apply_model(model_path: str | os.PathLike, store, *, strict: bool = True) -> np.ndarray:
    """The saved model's score for every row of a run store (float64[n], higher = better).

    With `strict` (the default), a row lacking any required input proxy (failed or pending)
    gets NaN, and the model is applied to the complete rows together: for a
    population-relative model (rank_average) their ranks are among the complete rows, so score
    a finished run, not a part of it. Without `strict`, rows missing some inputs are imputed as
    the method documents (the held-out evaluation of `zcnas combine` does that).
    """
    model = load_model(model_path)
    features = Features.from_run(store, proxies=model.required_proxies, layers=model.needs_layers)
    out = np.full(features.n_rows, np.nan)
    if not strict:
        return model.predict(features)
    complete = np.flatnonzero(~features.missing_any(model.required_proxies))
    if len(complete):
        out[complete] = model.predict(features.take(complete))
    return out


COMBINED_PREFIX = "combined:"


def split_combined(proxies: str) -> tuple[list[str], dict[str, str]]:
    """Split a --proxies list into computed proxies and `combined:MODEL` derived columns.

    Returns (proxy items to compute, including every input the models need, {column name:
    model path}); a column is named `combined:<model file stem>`.
    """
    computed: list[str] = []
    derived: dict[str, str] = {}
    for item in (part.strip() for part in proxies.split(",")):
        if not item.startswith(COMBINED_PREFIX):
            if item:
                computed.append(item)
            continue
        path = item[len(COMBINED_PREFIX) :]
        if not path or not os.path.isfile(path):
            raise CombineError(f"{item!r}: no saved combine model at {path!r} (write one with `zcnas combine ... --out MODEL`).")
        name = COMBINED_PREFIX + os.path.splitext(os.path.basename(path))[0]
        derived[name] = path
        inputs, _ = required_inputs(path)
        computed.extend(p for p in inputs if p not in computed)
    return computed, derived


def fill_derived(store) -> None:
    """Compute every `combined:` column of a finished run from its other proxies, and save."""
    for name, path in store.spec.derived.items():
        store.set_derived(name, apply_model(path, store), "an input proxy of the model failed on this architecture")
    if store.spec.derived:
        store.checkpoint()


__all__ = [
    "COMBINED_PREFIX",
    "fill_derived",
    "split_combined",
    "METHODS",
    "CombineError",
    "CombineResult",
    "Combiner",
    "Features",
    "apply_model",
    "create_method",
    "evaluate_combine",
    "get_method",
    "list_methods",
    "load_model",
    "required_inputs",
    "split_rows",
    "summary_path_for",
    "write_summary",
]

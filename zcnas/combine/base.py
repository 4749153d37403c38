"""The one interface every combine method obeys, its registry, and the model file.

scikit-learn style: parameters in ``__init__`` only (stored under the same names, never
changed by `fit`); `fit(features, y)` learns attributes whose names end in ``_``;
`predict(features)` returns one float per architecture, higher = predicted better.

A model file is a single ``.npz`` read with ``allow_pickle=False``, so loading one never runs
code: a ``meta`` entry (a JSON string: method, parameters, required proxies, per-layer
slots, fitted scalars, provenance) and the fitted arrays (for torch models their state dict,
tensor by tensor). The file extension is the user's choice; the content decides.
"""

from __future__ import annotations

import inspect
import json
import os
import warnings
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from zcnas import __version__
from zcnas.combine.features import CombineError, Features
from zcnas.files import identify, wrong_kind

MODEL_KIND = "zcnas-combine-model"
MODEL_FORMAT_VERSION = 1

METHODS: dict[str, type["Combiner"]] = {}


def register(cls: type["Combiner"]) -> type["Combiner"]:
    """Class decorator: make a method available under its `name` (CLI, tests, model files)."""
    if cls.name in METHODS:
        raise ValueError(f"combine method {cls.name!r} registered twice")
    METHODS[cls.name] = cls
    return cls


def get_method(name: str) -> type["Combiner"]:
    """The class registered under `name`, or a one-sentence error listing the known ones."""
    try:
        return METHODS[name]
    except KeyError:
        raise CombineError(f"Unknown combine method {name!r}; choose one of {', '.join(sorted(METHODS))}.") from None


def create_method(name: str, **params: Any) -> "Combiner":
    """An unfitted estimator of method `name` with these parameters (unknown ones refused)."""
    cls = get_method(name)
    known = cls.param_names()
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise CombineError(
            f"Method {name} has no parameter {', '.join(unknown)}; its parameters are {', '.join(known)}."
        )
    return cls(**params)


def signed_log1p(values: np.ndarray) -> np.ndarray:
    """sign(x) log(1 + |x|): tames scores spanning 1e-5..1e60 (synflow) and keeps the order."""
    return np.sign(values) * np.log1p(np.abs(values))


def quantile_ranks(values: np.ndarray) -> np.ndarray:
    """Midranks scaled to (0, 1], NaN kept as NaN (ranks among the finite values only)."""
    from scipy.stats import rankdata

    values = np.asarray(values, dtype=float)
    out = np.full(values.shape, np.nan)
    finite = np.isfinite(values)
    if finite.any():
        out[finite] = rankdata(values[finite]) / finite.sum()
    return out


class Combiner:
    """Base class: the shared plumbing (parameters, checks, save/load). Subclasses implement
    `_fit`, `_predict`, and (for arrays) `_fitted_arrays` / `_restore`.

    Class attributes a method declares:

    * ``name``: the registry key (`zcnas combine --method NAME`).
    * ``needs_layers``: whether it learns from per-layer statistics.
    * ``default_proxies``: the proxies it uses when ``proxies`` is None (None: every proxy of
      the features it is fitted on).
    * ``population_relative``: whether a prediction depends on the other architectures
      predicted together with it (rank averaging): score a whole run at once.
    * ``extra``: the zcnas extra it needs installed (``pip install 'zcnas[EXTRA]'``), if any.
    """

    name: ClassVar[str] = ""
    needs_layers: ClassVar[bool] = False
    default_proxies: ClassVar[tuple[str, ...] | None] = None
    population_relative: ClassVar[bool] = False
    reference: ClassVar[str] = ""
    extra: ClassVar[str | None] = None

    proxies: Sequence[str] | None

    # -- parameters ------------------------------------------------------------------------
    @classmethod
    def param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [p for p in signature.parameters if p != "self"]

    def get_params(self) -> dict[str, Any]:
        params = {name: getattr(self, name) for name in self.param_names()}
        if params.get("proxies") is not None:
            params["proxies"] = list(params["proxies"])
        return params

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- what it needs ---------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "proxies_")

    @property
    def required_proxies(self) -> list[str]:
        """The proxies this model reads: after `fit`, exactly the ones it was fitted on;
        before, the ones asked for (empty: every proxy of the training features)."""
        if self.is_fitted:
            return list(self.proxies_)
        chosen = self.proxies if self.proxies is not None else self.default_proxies
        return list(chosen or [])

    def _resolve_proxies(self, features: Features) -> list[str]:
        chosen = self.required_proxies or list(features.proxies)
        if not chosen:
            raise CombineError(f"The {self.name} model has no proxy to learn from; pass at least one.")
        return chosen

    # -- the interface ---------------------------------------------------------------------
    def fit(self, features: Features, y: np.ndarray) -> "Combiner":
        """Learn from the architectures of `features` (train split) and their targets `y`.

        Rows whose target is not finite are ignored; at least two must remain.
        """
        proxies = self._resolve_proxies(features)
        features.require(proxies, layers=self.needs_layers, who=self.name)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if len(y) != features.n_rows:
            raise CombineError(f"fit got {features.n_rows} architectures but {len(y)} targets.")
        keep = np.isfinite(y)
        if keep.sum() < 2:
            raise CombineError(f"The {self.name} model needs at least 2 architectures with a finite target to fit; got {int(keep.sum())}.")
        self._forget_fit()
        try:
            self._fit(features.take(np.flatnonzero(keep)), y[keep], proxies)
        except BaseException:
            self._forget_fit()  # never leave a half-fitted model that claims to be fitted
            raise
        self.proxies_ = list(proxies)
        self.layer_slots_ = (
            {name: list(features.layer_slots[name]) for name in proxies} if self.needs_layers else {}
        )
        return self

    def predict(self, features: Features) -> np.ndarray:
        """One score per architecture of `features`, higher = predicted better.

        A row where every required proxy is missing gets NaN; a row missing only some of them
        is predicted from the others as the method documents (imputation).
        """
        self._check_fitted()
        features.require(self.proxies_, layers=self.needs_layers, who=self.name)
        out = np.asarray(self._predict(features), dtype=np.float64).reshape(-1)
        out[features.missing_all(self.proxies_)] = np.nan
        return out

    def _forget_fit(self) -> None:
        for attribute in [a for a in vars(self) if a.endswith("_")]:
            delattr(self, attribute)

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise CombineError(f"This {self.name} model is not fitted yet; call fit(features, y) first.")

    # -- what subclasses implement -----------------------------------------------------------
    def _fit(self, features: Features, y: np.ndarray, proxies: list[str]) -> None:
        raise NotImplementedError

    def _predict(self, features: Features) -> np.ndarray:
        raise NotImplementedError

    def _fitted_meta(self) -> dict[str, Any]:
        """JSON-able fitted state besides proxies and slots (small things)."""
        return {}

    def _fitted_arrays(self) -> dict[str, np.ndarray]:
        """Fitted arrays (numbers only: they are read back without pickle)."""
        return {}

    def _restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Set the fitted attributes back from `_fitted_meta` and `_fitted_arrays`."""

    # -- persistence -------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, *, info: dict[str, Any] | None = None) -> Path:
        """Write the fitted model to one file, atomically; `info` is provenance kept as is."""
        self._check_fitted()
        path = Path(path)
        meta = {
            "kind": MODEL_KIND,
            "format_version": MODEL_FORMAT_VERSION,
            "method": self.name,
            "params": self.get_params(),
            "required_proxies": list(self.proxies_),
            "needs_layers": bool(self.needs_layers),
            "population_relative": bool(self.population_relative),
            "layer_slots": self.layer_slots_,
            "fitted": self._fitted_meta(),
            "info": info or {},
            "zcnas_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        arrays = {f"fitted/{k}": np.ascontiguousarray(v) for k, v in self._fitted_arrays().items()}
        for key, value in arrays.items():
            if value.dtype == object:
                raise TypeError(f"fitted array {key} has dtype object; model files hold numbers only")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        try:
            with open(tmp, "wb") as handle:
                np.savez(handle, meta=np.array(json.dumps(meta, sort_keys=True, default=_plain)), **arrays)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)  # a failed save leaves no stray file
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Combiner":
        """Read a model file written by `save` (any method when called on `Combiner`)."""
        meta, arrays = read_model_file(path)
        method = get_method(meta["method"])
        if cls is not Combiner and method is not cls:
            raise CombineError(f"{path} holds a {meta['method']} model, not a {cls.name} one.")
        params = dict(meta["params"])
        model = method(**params)
        model.proxies_ = list(meta["required_proxies"])
        slots = meta.get("layer_slots", {})  # JSON keys are sorted: the proxies' order is the model's
        model.layer_slots_ = {name: list(slots[name]) for name in model.proxies_ if name in slots}
        model._restore(meta.get("fitted", {}), arrays)
        model.info_ = meta.get("info", {})
        return model



class RankAggregation(Combiner):
    """Base of the rank aggregations (rank_average, az_nas): nothing is learned from the
    target, `fit` only fixes the proxies. Each proxy's scores become `quantile_ranks` among
    the architectures predicted together (NaN where the proxy is missing), and `_aggregate`
    turns each row of ranks into the prediction; an all-NaN row gives NaN."""

    population_relative = True

    def __init__(self, proxies: Sequence[str] | None = None):
        self.proxies = proxies

    def _fit(self, features: Features, y: np.ndarray, proxies: list[str]) -> None:
        pass

    def _predict(self, features: Features) -> np.ndarray:
        matrix = features.matrix(self.proxies_)
        ranks = np.column_stack([quantile_ranks(matrix[:, j]) for j in range(matrix.shape[1])])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN row: NaN by design
            return self._aggregate(ranks)

    def _aggregate(self, ranks: np.ndarray) -> np.ndarray:
        """(rows, proxies) ranks in (0, 1], NaN where missing -> one score per row."""
        raise NotImplementedError

def _plain(value):
    """JSON for numpy scalars and arrays that reach the parameters (e.g. np.int64 epochs)."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def read_model_file(path: str | os.PathLike, *, arrays: bool = True) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The meta dict and (unless `arrays` is False) the fitted arrays of a model file, checked;
    never unpickles."""
    path = Path(path)
    if not path.exists():
        raise CombineError(f"Model file {path} does not exist; fit one with `zcnas combine RUN --out {path}`.")
    if path.is_dir():
        raise CombineError(f"{path} is a directory, not a zcnas combine model.")
    found = identify(path)
    if found is not None and found.name != "combine-model":
        raise CombineError(wrong_kind(path, found, "a combine model"))
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"][()]))
            fitted = {k[len("fitted/"):]: data[k] for k in data.files if arrays and k.startswith("fitted/")}
    except (zipfile.BadZipFile, EOFError):  # cut short: a copy interrupted, a full disk
        raise CombineError(
            f"{path} is a truncated or damaged combine model; write it again with `zcnas combine RUN --out {path}`."
        ) from None
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as error:
        raise CombineError(f"{path} is not a readable zcnas combine model ({type(error).__name__}).") from None
    if not isinstance(meta, dict) or meta.get("kind") != MODEL_KIND:
        raise CombineError(f"{path} is not a zcnas combine model (no kind={MODEL_KIND!r}).")
    if meta.get("format_version") != MODEL_FORMAT_VERSION:
        raise CombineError(
            f"{path} has combine model format_version {meta.get('format_version')}; "
            f"this zcnas reads version {MODEL_FORMAT_VERSION}."
        )
    return meta, fitted


def load_model(path: str | os.PathLike) -> Combiner:
    """Any saved combine model."""
    return Combiner.load(path)

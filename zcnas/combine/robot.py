"""RoBoT-style weighting: proxy weights in [-1, 1] found by Bayesian optimisation.

Reference: He, Shu, Dai, Low, "Robustifying and Boosting Training-Free Neural Architecture
Search", ICLR 2024; code hzf1174/RoBoT, `search_nb201.py`. As there:

* each proxy is min-max normalised to [0, 1]; the score of an architecture is
  Σ_j w_j x_j over its proxies, a missing (NaN) value contributing nothing;
* one weight per proxy in [-1, 1], searched with the `bayesian-optimization` package
  (``bayes_opt.BayesianOptimization``, a Gaussian process with a Matérn kernel, UCB
  acquisition, ``random_state`` = our ``seed``, ``init_points=0``);
* the objective of a weight vector is the target of the **top-1 architecture** under the
  weighted score (RoBoT: its validation accuracy); the best weights found are kept.

Departures, on purpose:

* The objective is evaluated on the train split only (RoBoT queries the benchmark for any
  architecture of the whole pool; here the held-out architectures must stay unseen), and the
  min-max constants are the train split's (stored, so a new architecture gets the same
  function; values outside [0, 1] are fine for a linear score).
* The objective is ``q(top-1) + tie_break · Kendall τ(score, target)`` on the train split,
  where q is the top-1's target min-max scaled over the train split (the same argmax as
  RoBoT's raw accuracy, on a scale the GP likes). With a few hundred architectures many
  weight vectors share the top-1; the Kendall term orders those ties (with the default 0.1
  it moves the objective by at most 0.1 of the target's train range, so it can trade a
  slightly worse top-1 for a much better ranking — what the held-out Kendall/Spearman
  measure). ``tie_break=0`` is RoBoT's objective exactly.
* ``transform="signed_log1p"`` before the min-max step (RoBoT normalises raw values, where
  synflow's 1e60-scale outliers squash everyone else to ~0); ``"none"`` is RoBoT's.
* ``probe_single=True`` first probes each proxy alone (weight +1, others 0), so the search
  starts from the single proxies it should beat; RoBoT starts from one random point.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import stats

from zcnas.combine.base import Combiner, register
from zcnas.combine.features import CombineError, Features
from zcnas.combine.ridge import transform_scores

MISSING_BAYES_OPT = (
    "The robot method needs the bayesian-optimization package; install it with "
    "`pip install 'zcnas[robot]'` (or `pip install bayesian-optimization`)."
)


def _import_bayes_opt():
    try:
        from bayes_opt import BayesianOptimization, acquisition
    except ImportError:
        raise CombineError(MISSING_BAYES_OPT) from None
    return BayesianOptimization, acquisition


def _upper_confidence_bound(acquisition, kappa: float, restarts: int, seed: int):
    """bayes_opt's UCB with fewer local (L-BFGS-B) optimisations of the acquisition per step.

    The library starts 10 of them after 10,000 random candidates; on a few weights 3 find the
    same maximum and make a step about 3x faster. The keyword is `n_smart` in bayes_opt 3
    (`n_l_bfgs_b` in 2).
    """
    import inspect

    parent = acquisition.UpperConfidenceBound
    accepted = inspect.signature(parent.suggest).parameters
    keyword = "n_smart" if "n_smart" in accepted else "n_l_bfgs_b" if "n_l_bfgs_b" in accepted else None

    class FewerRestarts(parent):
        def suggest(self, gp, target_space, *args, **kwargs):
            if keyword is not None and not args:
                kwargs[keyword] = restarts
            return super().suggest(gp, target_space, *args, **kwargs)

    # bayes_opt 3 hands the optimiser's random state to `suggest` (and deprecates one given
    # here); bayes_opt 2 needs it here for a reproducible search.
    return FewerRestarts(kappa=kappa) if "random_state" in accepted else FewerRestarts(kappa=kappa, random_state=seed)


@register
class Robot(Combiner):
    name = "robot"
    extra = "robot"  # bayesian-optimization
    reference = "He et al., ICLR 2024 (RoBoT), hzf1174/RoBoT search_nb201.py"

    def __init__(
        self,
        proxies: Sequence[str] | None = None,
        n_iter: int = 30,
        kappa: float = 2.576,
        acquisition_restarts: int = 3,
        tie_break: float = 0.1,
        transform: str = "signed_log1p",
        probe_single: bool = True,
        seed: int = 0,
    ):
        self.proxies = proxies
        self.n_iter = n_iter
        self.kappa = kappa
        self.acquisition_restarts = acquisition_restarts
        self.tie_break = tie_break
        self.transform = transform
        self.probe_single = probe_single
        self.seed = seed

    def _normalised(self, matrix: np.ndarray) -> np.ndarray:
        x = (transform_scores(matrix, self.transform) - self.low_) / self.span_
        return np.where(np.isfinite(x), x, 0.0)  # RoBoT skips NaN terms of the weighted sum

    def _fit(self, features: Features, y: np.ndarray, proxies: list[str]) -> None:
        BayesianOptimization, acquisition = _import_bayes_opt()
        if int(self.n_iter) < 1:
            raise CombineError(f"n_iter must be at least 1; got {self.n_iter}.")
        raw = transform_scores(features.matrix(proxies), self.transform)
        with np.errstate(all="ignore"):
            low = np.nanmin(np.where(np.isfinite(raw), raw, np.inf), axis=0)
            high = np.nanmax(np.where(np.isfinite(raw), raw, -np.inf), axis=0)
        empty = ~np.isfinite(low)
        low[empty], high[empty] = 0.0, 1.0
        span = high - low
        span[span <= 0] = 1.0  # a constant proxy: as RoBoT, its values are kept as they are
        self.low_, self.span_ = low, span
        x = self._normalised(features.matrix(proxies))
        y_spread = np.ptp(y)
        quality = (y - y.min()) / (y_spread if y_spread > 0 else 1.0)
        keys = [f"w{j:03d}" for j in range(len(proxies))]  # bayes_opt sorts keys: keep the order

        def objective(**weights: float) -> float:
            w = np.array([weights[k] for k in keys])
            score = x @ w
            value = float(quality[int(np.argmax(score))])
            if self.tie_break:
                tau = stats.kendalltau(score, y).statistic if np.ptp(score) > 0 else 0.0
                value += float(self.tie_break) * float(np.nan_to_num(tau))
            return value

        optimizer = BayesianOptimization(
            f=objective,
            pbounds={k: (-1.0, 1.0) for k in keys},
            acquisition_function=_upper_confidence_bound(
                acquisition, float(self.kappa), int(self.acquisition_restarts), int(self.seed)
            ),
            random_state=int(self.seed),
            verbose=0,
            allow_duplicate_points=True,
        )
        if self.probe_single:
            for j in range(len(keys)):
                optimizer.probe({k: float(i == j) for i, k in enumerate(keys)}, lazy=True)
        optimizer.maximize(init_points=0, n_iter=int(self.n_iter))
        best = optimizer.max
        self.weights_ = np.array([best["params"][k] for k in keys])
        self.objective_ = float(best["target"])
        self.evaluations_ = len(optimizer.space)

    def _predict(self, features: Features) -> np.ndarray:
        return self._normalised(features.matrix(self.proxies_)) @ self.weights_

    def _fitted_meta(self) -> dict:
        return {"objective": self.objective_, "evaluations": self.evaluations_}

    def _fitted_arrays(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights_, "low": self.low_, "span": self.span_}

    def _restore(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        self.objective_ = float(meta["objective"])
        self.evaluations_ = int(meta["evaluations"])
        self.weights_, self.low_, self.span_ = arrays["weights"], arrays["low"], arrays["span"]

"""Ridge regression on normalised proxies: the linear combination baseline.

A linear model is the plain way to mix proxies (e.g. the linear/ridge baselines of
NAS-Bench-Suite-Zero, White et al. 2022); here in closed form with numpy:

1. each proxy: signed log1p (``transform="signed_log1p"``; synflow alone spans 1e-5..1e60,
   and a linear model on raw values would see only its largest few), then standardised with
   the train split's mean and standard deviation (a constant column gets scale 1);
2. a missing value (failed proxy) becomes 0 after standardisation, i.e. the train mean;
3. the target: its quantile ranks on the train split (``target="rank"``, the default: the
   task is ranking, and NB201's tail of 10%-accuracy architectures would otherwise dominate
   the squared loss) or its standardised value (``target="value"``);
4. w = (ZᵀZ + alpha·I)⁻¹ Zᵀ(y − ȳ), prediction Z w + ȳ.

Not population-relative: the normalisation constants are the train split's, stored.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from zcnas.combine.base import Combiner, quantile_ranks, register, signed_log1p
from zcnas.combine.features import CombineError, Features

TRANSFORMS = ("signed_log1p", "none")
TARGETS = ("rank", "value")


def transform_scores(matrix: np.ndarray, transform: str) -> np.ndarray:
    if transform == "signed_log1p":
        return signed_log1p(matrix)
    if transform == "none":
        return matrix
    raise CombineError(f"transform must be one of {', '.join(TRANSFORMS)}; got {transform!r}.")


def column_centre_scale(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and standard deviation over the finite values (0 and 1 when undefined)."""
    centre = np.zeros(matrix.shape[1])
    scale = np.ones(matrix.shape[1])
    for j in range(matrix.shape[1]):
        finite = matrix[np.isfinite(matrix[:, j]), j]
        if len(finite):
            centre[j] = finite.mean()
            spread = finite.std()
            scale[j] = spread if spread > 0 else 1.0
    return centre, scale


@register
class Ridge(Combiner):
    name = "ridge"
    reference = "closed-form ridge regression (linear baselines of NAS-Bench-Suite-Zero, White et al. 2022)"

    def __init__(
        self,
        proxies: Sequence[str] | None = None,
        alpha: float = 1.0,
        transform: str = "signed_log1p",
        target: str = "rank",
    ):
        self.proxies = proxies
        self.alpha = alpha
        self.transform = transform
        self.target = target

    def _standardised(self, features: Features) -> np.ndarray:
        z = (transform_scores(features.matrix(self.proxies_), self.transform) - self.centre_) / self.scale_
        return np.where(np.isfinite(z), z, 0.0)

    def _fit(self, features: Features, y: np.ndarray, proxies: list[str]) -> None:
        if self.target not in TARGETS:
            raise CombineError(f"target must be one of {', '.join(TARGETS)}; got {self.target!r}.")
        if not self.alpha >= 0:
            raise CombineError(f"alpha must be >= 0; got {self.alpha}.")
        raw = transform_scores(features.matrix(proxies), self.transform)
        self.proxies_ = list(proxies)
        self.centre_, self.scale_ = column_centre_scale(raw)
        z = self._standardised(features)
        if self.target == "rank":
            t = quantile_ranks(y)
        else:
            spread = y.std()
            t = (y - y.mean()) / (spread if spread > 0 else 1.0)
        self.intercept_ = float(t.mean())
        gram = z.T @ z + float(self.alpha) * np.eye(z.shape[1])
        self.coef_ = np.linalg.lstsq(gram, z.T @ (t - self.intercept_), rcond=None)[0]

    def _predict(self, features: Features) -> np.ndarray:
        return self._standardised(features) @ self.coef_ + self.intercept_

    def _fitted_meta(self) -> dict:
        return {"intercept": self.intercept_}

    def _fitted_arrays(self) -> dict[str, np.ndarray]:
        return {"coef": self.coef_, "centre": self.centre_, "scale": self.scale_}

    def _restore(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        self.intercept_ = float(meta["intercept"])
        self.coef_, self.centre_, self.scale_ = arrays["coef"], arrays["centre"], arrays["scale"]

"""Rank averaging: the mean of the proxies' population-relative ranks.

The simplest ensemble of the zero-cost literature (e.g. the "vote" of Abdelfattah et al.,
ICLR 2021, and the rank aggregation baselines of NAS-Bench-Suite-Zero): each proxy's scores
become ranks among the architectures predicted together (scaled to (0, 1]), and the
prediction is their mean. Nothing is learned from the target; `fit` only fixes the proxies.

Population-relative: an architecture's prediction depends on the others predicted with it,
so score a whole run at once (`apply_model` does). A missing proxy value is left out of that
row's mean (the row is ranked by its other proxies).
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

from zcnas.combine.base import Combiner, quantile_ranks, register
from zcnas.combine.features import Features


@register
class RankAverage(Combiner):
    name = "rank_average"
    population_relative = True
    reference = "mean of population ranks (Abdelfattah et al. 2021 vote; NAS-Bench-Suite-Zero baselines)"

    def __init__(self, proxies: Sequence[str] | None = None):
        self.proxies = proxies

    def _fit(self, features: Features, y: np.ndarray, proxies: list[str]) -> None:
        pass

    def _predict(self, features: Features) -> np.ndarray:
        matrix = features.matrix(self.proxies_)
        ranks = np.column_stack([quantile_ranks(matrix[:, j]) for j in range(matrix.shape[1])])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN row: NaN by design
            return np.nanmean(ranks, axis=1)

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

import numpy as np

from zcnas.combine.base import RankAggregation, register


@register
class RankAverage(RankAggregation):
    name = "rank_average"
    reference = "mean of population ranks (Abdelfattah et al. 2021 vote; NAS-Bench-Suite-Zero baselines)"

    def _aggregate(self, ranks: np.ndarray) -> np.ndarray:
        return np.nanmean(ranks, axis=1)

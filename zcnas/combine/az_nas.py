"""AZ-NAS rank aggregation: Σ over the proxies of log(rank / N), ranks within the population.

Lee & Ham, CVPR 2024 (AZ-NAS), `cvlab-yonsei/AZ-NAS NB201/tss_general.ipynb`: each component
(expressivity, progressivity, trainability and complexity = FLOPs) is ranked among the N
architectures scored together (`scipy.stats.rankdata`, ties averaged, higher value = higher
rank), and the prediction is Σ_m log(rank_m / N). The best architecture on every component
scores 0; one poor rank pulls a sum of logs down far more than a mean of ranks would. Nothing
is learned from the target; `fit` only fixes the proxies.

The AZ-NAS components are the proxies `AZ_NAS_PROXIES`; score a run with them and combine:

    zcnas combine RUN --method az_nas --proxies az_expressivity,az_progressivity,az_trainability,flops

`default_proxies` is None, as for rank_average (every proxy of the run, or the ones asked
for), so that the method applies to any proxy set; pass `AZ_NAS_PROXIES` for AZ-NAS itself.

Population-relative: an architecture's prediction depends on the others predicted with it,
so score a whole run at once (`apply_model` does). Departure, for missing values (the
reference has none: its failed scores are −inf and rank last): a proxy that failed on an
architecture is left out of that proxy's ranking (N is then the number of architectures it
scored), and the row's missing terms are imputed by the mean of its other log-ranks (the
sum is the mean over the available components times their total number), so a complete row
gets exactly the reference's sum.
"""

from __future__ import annotations

import numpy as np

from zcnas.combine.base import RankAggregation, register

AZ_NAS_PROXIES = ("az_expressivity", "az_progressivity", "az_trainability", "flops")


@register
class AZNASRank(RankAggregation):
    name = "az_nas"
    reference = "Σ log(rank/N) over components (Lee & Ham, CVPR 2024, AZ-NAS; NB201/tss_general.ipynb)"

    def _aggregate(self, ranks: np.ndarray) -> np.ndarray:
        # quantile_ranks: rankdata midranks / (number of finite values), NaN kept.
        log_ranks = np.log(ranks)
        return np.nanmean(log_ranks, axis=1) * log_ranks.shape[1]

"""ParZC-style model: a Bayesian MLP-Mixer on per-layer proxy statistics, trained to rank.

Reference: Dong et al., "ParZC: Parametric Zero-Cost Proxies for Efficient NAS", AAAI 2025
(arXiv 2402.02105); code pprp/PicoNAS: `piconas/predictor/pinat/pinat_model.py`
(`BayesianLinear`, `BaysianMLPMixer`), `piconas/core/losses/diffkd.py` (`diffkendall`),
`exps/nds/runner.py` (the mixer used alone, as here).

What is the same:

* Inputs: the per-layer ("node-wise") statistics of grad_norm, snip and synflow by default,
  concatenated slot by slot (NB201: 98 slots x 3 = 294 numbers); an absent layer is 0.
* `BayesianLinear`: weight = mu + softplus(rho) * eps, eps ~ N(0, 1) drawn afresh on every
  forward pass, rho initialised to -5 (sigma ~ 0.007), no bias, no KL term (none in the
  reference's loss either).
* The mixer: a linear projection to ``sequence_length`` (256), cut into patches of
  ``patch_size`` (16 x 16), a Bayesian patch embedding to ``dim``, ``depth`` pre-LayerNorm
  residual mixer blocks (expansions 4 and 0.5, GELU), LayerNorm, mean over patches, a
  Bayesian head, then Linear(dim, dim/2) -> Linear(dim/2, 1).
* Loss: DiffKendall with alpha = 0.5 over every ordered pair of a batch,
  -Σ tanh(alpha Δp/2) tanh(alpha Δt/2) / (B(B-1)/2) (σ(a) - σ(-a) = tanh(a/2)), optionally
  plus MSE and a pairwise logistic loss (``loss="mse+pairwise+diffkendall"``); Adam with
  weight decay 1e-3, a cosine learning-rate schedule, a fixed seed.
* Uncertainty: the mean and standard deviation of the prediction over ``mc_samples``
  stochastic forward passes (`predict_with_uncertainty`).

Departures, on purpose:

* Smaller defaults so that fitting runs on a CPU in seconds: dim 64 (reference 512 / 1600),
  depth 2 (4 / 5), batch 32 (10 / 35), lr 1e-3 (1e-4 / 2e-3), 150 epochs (300 / 296), no
  dropout (0.1 / 0.18). All are parameters; the reference's values can be passed.
* Real token mixing: the reference's two residual MLPs of a block both act on the channels;
  here the first mixes across the patches (as in MLP-Mixer, Tolstikhin et al. 2021), which
  is what lets layers of different depth interact.
* Input normalisation (the reference feeds raw values): signed log1p, then each of the
  concatenated columns standardised with the train split's mean and standard deviation.
* The target is standardised on the train split (DiffKendall's alpha then acts on
  differences in standard deviations, whatever the target's unit).
* No graph encoder (ParZCBMM adds this embedding to a GAT + transformer on the cell's DAG);
  the space-independent mixer alone is the NDS variant of the reference.
* `predict` uses the mean weights (eps = 0): one deterministic pass, ``mc_samples`` times
  cheaper than averaging stochastic passes, and with sigma ~ 0.007 the same ranking to a
  few ties. `predict_with_uncertainty` draws its noise from a generator seeded by ``seed``,
  so it is deterministic too.
"""

from __future__ import annotations

import contextlib
import math
from typing import Sequence

import numpy as np

from zcnas.combine.base import Combiner, register, signed_log1p
from zcnas.combine.features import CombineError, Features
from zcnas.combine.ridge import column_centre_scale

LOSS_TERMS = ("mse", "pairwise", "diffkendall")
PREDICT_CHUNK = 2048


def _torch():
    import torch

    return torch


@contextlib.contextmanager
def _torch_threads(count: int):
    """Run torch on `count` intra-op threads, then restore. The mixer's matrices are tiny: one
    thread is faster than several (no spin-waiting, which costs 50x on a busy machine) and
    leaves the other cores to the worker pools."""
    torch = _torch()
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def build_network(input_dim: int, *, sequence_length: int, patch_size: int, dim: int, depth: int, dropout: float):
    """The Bayesian MLP-Mixer, as a torch module (built lazily: torch is imported here)."""
    torch = _torch()
    nn = torch.nn
    functional = torch.nn.functional

    class BayesianLinear(nn.Module):
        """weight = mu + softplus(rho) * eps, eps resampled on every forward pass; no bias."""

        def __init__(self, in_features: int, out_features: int):
            super().__init__()
            self.mu = nn.Parameter(torch.empty(out_features, in_features))
            self.rho = nn.Parameter(torch.full((out_features, in_features), -5.0))
            nn.init.kaiming_uniform_(self.mu, a=math.sqrt(5))
            self.generator = None  # set while predicting, so the noise is reproducible
            self.noise = True  # False: the mean weights mu (`predict`)

        def forward(self, x):
            if not self.noise:
                return functional.linear(x, self.mu)
            eps = torch.randn(self.mu.shape, generator=self.generator, dtype=self.mu.dtype)
            return functional.linear(x, self.mu + functional.softplus(self.rho) * eps)

    class PreNormResidual(nn.Module):
        def __init__(self, width: int, inner: nn.Module):
            super().__init__()
            self.norm = nn.LayerNorm(width)
            self.inner = inner

        def forward(self, x):
            return self.inner(self.norm(x)) + x

    def feed_forward(width: int, expansion: float) -> nn.Module:
        hidden = max(1, int(width * expansion))
        return nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, width), nn.Dropout(dropout))

    class TokenMixing(nn.Module):
        """An MLP across the patches (applied to each channel)."""

        def __init__(self, patches: int, expansion: float):
            super().__init__()
            self.mlp = feed_forward(patches, expansion)

        def forward(self, x):  # (batch, patches, dim)
            return self.mlp(x.transpose(1, 2)).transpose(1, 2)

    class BayesianMixer(nn.Module):
        def __init__(self):
            super().__init__()
            if sequence_length % patch_size:
                raise CombineError(f"sequence_length ({sequence_length}) must be a multiple of patch_size ({patch_size}).")
            patches = sequence_length // patch_size
            self.patch_size = patch_size
            self.project = nn.Linear(input_dim, sequence_length)
            self.embed = BayesianLinear(patch_size, dim)
            self.blocks = nn.Sequential(*[
                nn.Sequential(PreNormResidual(dim, TokenMixing(patches, 4.0)), PreNormResidual(dim, feed_forward(dim, 0.5)))
                for _ in range(depth)
            ])
            self.norm = nn.LayerNorm(dim)
            self.head = BayesianLinear(dim, dim)
            self.regressor = nn.Sequential(
                nn.Linear(dim, max(1, dim // 2), bias=False), nn.Dropout(dropout), nn.Linear(max(1, dim // 2), 1, bias=False)
            )

        def bayesian_layers(self):
            return [m for m in self.modules() if isinstance(m, BayesianLinear)]

        def forward(self, x):
            x = self.project(x)
            x = x.reshape(x.shape[0], -1, self.patch_size)
            x = self.blocks(self.embed(x))
            x = self.norm(x).mean(dim=1)
            return self.regressor(self.head(x)).squeeze(-1)

    return BayesianMixer()


def diffkendall_loss(pred, target, alpha: float = 0.5):
    """Negative differentiable Kendall τ over the ordered pairs of a batch (PicoNAS diffkd.py).

    Lies in [-2, 2]; -2 when the batch is perfectly ordered with large margins.
    """
    torch = _torch()
    n = pred.shape[0]
    if n < 2:
        return pred.sum() * 0.0
    dp = pred[:, None] - pred[None, :]
    dt = target[:, None] - target[None, :]
    return -torch.sum(torch.tanh(alpha * dp / 2) * torch.tanh(alpha * dt / 2)) / (n * (n - 1) / 2)


def pairwise_logistic_loss(pred, target):
    """Mean of log(1 + exp(-(p_i - p_j))) over the pairs with t_i > t_j."""
    torch = _torch()
    better = (target[:, None] - target[None, :]) > 0
    if not bool(better.any()):
        return pred.sum() * 0.0
    return torch.nn.functional.softplus(-(pred[:, None] - pred[None, :])[better]).mean()


def parse_loss(text: str) -> tuple[str, ...]:
    terms = tuple(t.strip() for t in str(text).split("+") if t.strip())
    unknown = [t for t in terms if t not in LOSS_TERMS]
    if not terms or unknown:
        raise CombineError(
            f"loss must be terms of {', '.join(LOSS_TERMS)} joined by '+', e.g. mse+diffkendall; got {text!r}."
        )
    return terms


@register
class ParZC(Combiner):
    name = "parzc"
    needs_layers = True
    default_proxies = ("grad_norm", "snip", "synflow")
    reference = "Dong et al., AAAI 2025 (ParZC), pprp/PicoNAS piconas/predictor/pinat/pinat_model.py"

    def __init__(
        self,
        proxies: Sequence[str] | None = None,
        epochs: int = 60,
        batch_size: int = 32,
        lr: float = 1e-3,
        weight_decay: float = 1e-3,
        loss: str = "diffkendall",
        alpha: float = 0.5,
        dim: int = 64,
        depth: int = 2,
        sequence_length: int = 256,
        patch_size: int = 16,
        dropout: float = 0.0,
        mc_samples: int = 10,
        seed: int = 0,
    ):
        self.proxies = proxies
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.loss = loss
        self.alpha = alpha
        self.dim = dim
        self.depth = depth
        self.sequence_length = sequence_length
        self.patch_size = patch_size
        self.dropout = dropout
        self.mc_samples = mc_samples
        self.seed = seed

    # -- inputs ------------------------------------------------------------------------------
    def _inputs(self, features: Features) -> np.ndarray:
        x = signed_log1p(features.layer_block(self.layer_slots_))
        return ((x - self.x_centre_) / self.x_scale_).astype(np.float32)

    def _network(self, input_dim: int):
        return build_network(
            input_dim,
            sequence_length=int(self.sequence_length),
            patch_size=int(self.patch_size),
            dim=int(self.dim),
            depth=int(self.depth),
            dropout=float(self.dropout),
        )

    # -- fitting -----------------------------------------------------------------------------
    def _fit(self, features: Features, y: np.ndarray, proxies: list[str]) -> None:
        torch = _torch()
        terms = parse_loss(self.loss)
        if int(self.epochs) < 1 or int(self.batch_size) < 2 or int(self.mc_samples) < 1:
            raise CombineError("parzc needs epochs >= 1, batch_size >= 2 and mc_samples >= 1.")
        self.layer_slots_ = {name: list(features.layer_slots[name]) for name in proxies}
        raw = signed_log1p(features.layer_block(self.layer_slots_))
        self.x_centre_, self.x_scale_ = column_centre_scale(raw)
        x = torch.from_numpy(self._inputs(features))
        spread = float(y.std())
        self.y_centre_, self.y_scale_ = float(y.mean()), (spread if spread > 0 else 1.0)
        t = torch.from_numpy(((y - self.y_centre_) / self.y_scale_).astype(np.float32))

        n = x.shape[0]
        batch = min(int(self.batch_size), n)
        steps_per_epoch = max(1, n // batch)  # the last partial batch is dropped (too few pairs)
        total_steps = int(self.epochs) * steps_per_epoch
        order_rng = np.random.default_rng(int(self.seed))
        with torch.random.fork_rng(devices=[]), _torch_threads(1):
            torch.manual_seed(int(self.seed))
            network = self._network(x.shape[1])
            optimizer = torch.optim.Adam(network.parameters(), lr=float(self.lr), weight_decay=float(self.weight_decay))
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
            network.train()
            history = []
            for _ in range(int(self.epochs)):
                order = torch.from_numpy(order_rng.permutation(n))
                epoch_loss = 0.0
                for step in range(steps_per_epoch):
                    rows = order[step * batch : (step + 1) * batch]
                    pred, target = network(x[rows]), t[rows]
                    value = pred.sum() * 0.0
                    if "mse" in terms:
                        value = value + torch.mean((pred - target) ** 2)
                    if "pairwise" in terms:
                        value = value + pairwise_logistic_loss(pred, target)
                    if "diffkendall" in terms:
                        value = value + diffkendall_loss(pred, target, float(self.alpha))
                    optimizer.zero_grad()
                    value.backward()
                    optimizer.step()
                    schedule.step()
                    epoch_loss += float(value.detach())
                history.append(epoch_loss / steps_per_epoch)
        network.eval()
        self.network_ = network
        self.loss_history_ = np.array(history)

    # -- predicting --------------------------------------------------------------------------
    def _samples(self, features: Features, samples: int, noise: bool = True) -> np.ndarray:
        """(samples, n) predictions in target units: stochastic (reproducible for `seed`), or
        with `noise` off the one prediction of the mean weights."""
        torch = _torch()
        x = torch.from_numpy(self._inputs(features))
        generator = torch.Generator().manual_seed(int(self.seed) + 1)
        layers = self.network_.bayesian_layers()
        out = np.empty((samples, x.shape[0]))
        self.network_.eval()
        try:
            for layer in layers:
                layer.generator = generator
                layer.noise = noise
            with torch.no_grad(), _torch_threads(1):
                for s in range(samples):
                    for start in range(0, x.shape[0], PREDICT_CHUNK):
                        chunk = self.network_(x[start : start + PREDICT_CHUNK])
                        out[s, start : start + PREDICT_CHUNK] = chunk.double().numpy()
        finally:
            for layer in layers:
                layer.generator = None
                layer.noise = True
        return out * self.y_scale_ + self.y_centre_

    def _predict(self, features: Features) -> np.ndarray:
        return self._samples(features, 1, noise=False)[0]

    def predict_with_uncertainty(self, features: Features, samples: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) over `samples` (default ``mc_samples``) stochastic forward passes.

        The spread comes from the Bayesian layers' weight noise alone (softplus(rho) starts at
        ~0.007 and is learned), so it is an epistemic signal, small by construction; compare
        it between architectures rather than reading it as an error bar in accuracy points.
        """
        self._check_fitted()
        features.require(self.proxies_, layers=True, who=self.name)
        draws = self._samples(features, int(samples or self.mc_samples))
        mean, std = draws.mean(axis=0), draws.std(axis=0)
        missing = features.missing_all(self.proxies_)
        mean[missing] = np.nan
        std[missing] = np.nan
        return mean, std

    # -- persistence -------------------------------------------------------------------------
    def _fitted_meta(self) -> dict:
        return {"y_centre": self.y_centre_, "y_scale": self.y_scale_, "input_dim": int(len(self.x_centre_))}

    def _fitted_arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            "x_centre": self.x_centre_,
            "x_scale": self.x_scale_,
            "loss_history": self.loss_history_,
        }
        for key, tensor in self.network_.state_dict().items():
            arrays[f"state/{key}"] = tensor.detach().cpu().numpy()
        return arrays

    def _restore(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        torch = _torch()
        self.y_centre_, self.y_scale_ = float(meta["y_centre"]), float(meta["y_scale"])
        self.x_centre_, self.x_scale_ = arrays["x_centre"], arrays["x_scale"]
        self.loss_history_ = arrays.get("loss_history", np.zeros(0))
        network = self._network(int(meta["input_dim"]))
        state = {k[len("state/"):]: torch.from_numpy(np.array(v)) for k, v in arrays.items() if k.startswith("state/")}
        try:
            network.load_state_dict(state)
        except RuntimeError as error:
            raise CombineError(f"The parzc model file does not match its parameters ({str(error).splitlines()[0]}).") from None
        network.eval()
        self.network_ = network

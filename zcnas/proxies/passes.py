"""Shared passes: what several proxies need from one architecture, computed once.

Proxies declare the passes they need by name. A `ProbeContext` is made for one architecture
and the set of proxies asked for on it; the first proxy that needs a pass triggers it, and
the products are cached for every other proxy; the pass's seconds are then split evenly
among the proxies that read it (`compute.compute_proxies`). With sharing off (`--no-share`),
the runner makes one context per proxy, so each proxy pays for its own passes, as the
reference code does.

Passes (the names proxies declare):

- ``weights``             no computation: the initial weights of conv/linear layers.
- ``shape``               one forward of a zero input of batch 1 in eval mode: the input and
                          output shape of every leaf module (sizes, FLOPs).
- ``loss_gradient``       forward of the probe batch in train mode (BN batch statistics, as
                          the references do on a freshly built net), cross-entropy, gradient of
                          the loss w.r.t. each conv/linear weight.
- ``activation_gradient`` the same pass also returns each conv/linear output and the loss
                          gradient w.r.t. it (Fisher).
- ``hessian_gradient``    the same pass, with the graph kept, also returns H·g (GraSP).
- ``input_jacobian``      the same forward also gives d(sum of logits)/d(input) (jacob_cov,
                          epe_nas).
- ``relu_codes``          the same forward also accumulates the NASWOT Hamming kernel.
- ``synflow``             a float64 copy with |weights|, BatchNorm removed, an all-ones input
                          of batch 1, gradient of the output sum (SynFlow).
- ``zen``                 a copy re-initialised from N(0, 1), two no-grad train-mode forwards
                          of Gaussian inputs to the pre-pooling features (Zen-score).
- ``per_sample_gradient`` each sample of the probe batch forwarded alone in train mode (BN
                          over its spatial positions), cross-entropy, gradient w.r.t. each
                          conv/linear weight: one gradient per sample (GradSign), by
                          torch.func vmap: one vectorised forward (`persample.py`).
- ``half_batch_gradient`` the first and the second half of the probe batch, each forwarded on
                          its own in train mode, cross-entropy, fresh gradient w.r.t. each
                          conv/linear weight (ZiCo's two batches).
- ``ntk_gradient``        the first min(N, ntk_samples) samples (default 16) forwarded
                          together in train mode, the gradient of each sample's sum of
                          logits w.r.t. every parameter named
                          "weight", and their Gram matrix, the empirical NTK, in float64
                          (TE-NAS; ntk_cond, ntk_trace, lga).
- ``relu_patterns``       a Kaiming-fan_in re-initialised copy, three no-grad train-mode
                          forwards of 1000 random 3x3 patches of the probe images, and the
                          number of distinct ReLU on/off patterns (TE-NAS linear regions);
                          or, asked with inputs="gaussian", one Gaussian batch of the probe's
                          shape through the network as it is (AZ-NAS's rerun of TE-NAS).

The five train-mode products come from one forward of the probe batch and at most two
gradient computations; each product is computed the same way whether or not the others are
asked for, so a proxy's value does not depend on which other proxies share its pass.

Every pass works on its own deep copy of the network and on a detached clone of the batch, so
the caller's network (weights, mode, `.grad`) and probe tensors are never touched.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
import zlib
from dataclasses import dataclass
from typing import Callable, Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F

from zcnas.errors import ProxyError
from zcnas.proxies.persample import half_batch_loss_gradients, logit_sum_gradients, per_sample_loss_gradients

TRAIN_PASS = frozenset(
    {"loss_gradient", "activation_gradient", "hessian_gradient", "input_jacobian", "relu_codes"}
)
OTHER_PASSES = frozenset({"weights", "shape", "synflow", "zen"})
# Passes that forward samples, halves, a sub-batch or patches apart from the train pass.
SAMPLE_PASSES = frozenset({"per_sample_gradient", "half_batch_gradient", "ntk_gradient", "relu_patterns"})
# Passes of the spectral family, computed in zcnas/proxies/spectral.py (first probe image's
# feature maps; a curve of inputs; AZ-NAS's re-initialised cell features; SWAP's codes).
SPECTRAL_PASSES = frozenset({"first_sample_features", "input_curve", "az_features", "swap_codes"})
# The pass of Serianni & Kalita's transformer metrics, computed in zcnas/proxies/transformer.py:
# ones back-propagated from the encoder's last hidden state, with hooks on its layers.
TRANSFORMER_PASSES = frozenset({"hidden_ones_backward"})
KNOWN_PASSES = TRAIN_PASS | OTHER_PASSES | SAMPLE_PASSES | SPECTRAL_PASSES | TRANSFORMER_PASSES

# Conv1d: the separable convolutions of NAS-Bench-BERT's dynamic-convolution layers.
WEIGHTED_LAYERS = (nn.Conv2d, nn.Conv1d, nn.Linear)

# Zen-score's perturbation size (ZenNAS `mixup_gamma`, NASLib's default).
ZEN_MIXUP_GAMMA = 1e-2

# TE-NAS: the NTK batch (prune_tenas.py `--batch_size` default) and the linear-region inputs
# (`Linear_Region_Collector(input_size=(1000, 1, 3, 3), sample_batch=3)`).
NTK_BATCH = 16
LINEAR_REGION_SAMPLES = 1000
LINEAR_REGION_BATCHES = 3
LINEAR_REGION_PATCH = 3


def weighted_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The conv and linear layers, by module path: the layers zero-cost proxies score."""
    return [(name, module) for name, module in model.named_modules() if isinstance(module, WEIGHTED_LAYERS)]


@dataclass
class TrainPass:
    """Products of one forward/backward of the probe batch through a train-mode copy.

    Products that no declared pass asked for are None (or empty for `grads`).
    """

    logits: torch.Tensor
    weights: dict[str, torch.Tensor]
    grads: dict[str, torch.Tensor]
    activations: dict[str, torch.Tensor] | None = None
    activation_grads: dict[str, torch.Tensor] | None = None
    hessian_grads: dict[str, torch.Tensor] | None = None
    input_jacobian: torch.Tensor | None = None
    relu_kernel: torch.Tensor | None = None


@dataclass
class ZenPass:
    """Zen-score's ingredients: log of the feature change and each BN's log-sqrt running var."""

    log_delta: float
    bn_log_scales: dict[str, float]


@dataclass
class NtkPass:
    """The empirical NTK of the first samples of the probe batch, and their labels (or None)."""

    kernel: torch.Tensor
    labels: torch.Tensor | None


@contextlib.contextmanager
def forward_hooks(hooks: Iterable[tuple[nn.Module, Callable]]):
    """Forward hooks on (module, hook) pairs for the length of a `with` block, removed when it
    ends however it ends (a hook left behind would fire in every later forward of the net)."""
    handles = []
    try:
        for module, hook in hooks:
            handles.append(module.register_forward_hook(hook))
        yield
    finally:
        for handle in handles:
            handle.remove()


def relu_feature_patterns(net: nn.Module, x: torch.Tensor, keep) -> list[torch.Tensor]:
    """`keep(on)` of the on/off pattern `on` (output > 0, booleans) of every nn.ReLU that acts
    on a 4-D feature map, in call order, from one no-grad forward of `x`; the hooks are
    removed afterwards. Serves TE-NAS's region count and SWAP (which packs each pattern)."""
    kept: list[torch.Tensor] = []

    def record(module, inputs, output):
        if inputs and isinstance(inputs[0], torch.Tensor) and inputs[0].dim() == 4:
            kept.append(keep(output.detach() > 0))

    with forward_hooks((m, record) for m in net.modules() if isinstance(m, nn.ReLU)), torch.no_grad():
        net(x)
    return kept


def feature_relu_codes(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The on/off pattern of every ReLU that acts on a feature map (TE-NAS counts only
    those), from one no-grad forward of `x`: (N, units) booleans, the ReLUs side by side.
    The linear-region count is the number of distinct rows."""
    codes = relu_feature_patterns(net, x, lambda on: on.flatten(1))
    if not codes:
        raise ValueError("linear_regions: the network has no ReLU on a feature map to read")
    return torch.cat(codes, dim=1)


class ProbeContext:
    """One architecture, one probe batch, and the passes its proxies share."""

    def __init__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor | None,
        *,
        num_classes: int,
        passes: Iterable[str],
        seed: int = 0,
        ntk_samples: int = NTK_BATCH,
        attention_mask: torch.Tensor | None = None,
    ):
        # Images: a float (N, C, H, W) batch. Tokens: integer ids (N, L) and, optionally, an
        # attention mask of the same shape, handed to the network as `net(ids, mask)`.
        self.input_kind = "image" if x.is_floating_point() else "tokens"
        if self.input_kind == "image" and x.dim() != 4:
            raise ProxyError(f"The probe batch must have shape (N, C, H, W); got {tuple(x.shape)}.")
        if self.input_kind == "tokens" and x.dim() != 2:
            raise ProxyError(f"A probe batch of token ids must have shape (N, L); got {tuple(x.shape)}.")
        if attention_mask is not None and (self.input_kind != "tokens" or attention_mask.shape != x.shape):
            raise ProxyError(
                f"The attention mask (shape {tuple(attention_mask.shape)}) must match a batch of token ids "
                f"(shape {tuple(x.shape)})."
            )
        self.attention_mask = attention_mask
        if y is not None and (y.dim() != 1 or y.shape[0] != x.shape[0]):
            raise ProxyError(
                f"The probe labels must be a vector of {x.shape[0]} labels; got shape {tuple(y.shape)}."
            )
        unknown = set(passes) - KNOWN_PASSES
        if unknown:
            raise ValueError(f"unknown passes {sorted(unknown)}")
        self.model = model
        self.x = x
        self.y = y
        self.num_classes = num_classes
        self.seed = seed
        if ntk_samples < 2:
            raise ProxyError(f"The NTK needs at least 2 samples; got ntk_samples={ntk_samples}.")
        self.ntk_samples = int(ntk_samples)
        self.passes = frozenset(passes)
        self._cache: dict[str, object] = {}
        # Time accounting, so that a shared pass's cost can be split among the proxies that
        # read it (`compute.compute_proxies`): each pass's own seconds (a pass computed inside
        # another is not counted twice), which passes each proxy read, and the seconds of the
        # passes computed since `take_pass_seconds` was last called.
        self.pass_seconds: dict[str, float] = {}
        self.readers: dict[str, set[str]] = {}
        self.reader: str | None = None
        self._computed_seconds = 0.0
        self._open_passes: list[float] = []

    @property
    def batch_size(self) -> int:
        return int(self.x.shape[0])

    def generator(self, purpose: str) -> torch.Generator:
        """A torch generator seeded from the architecture's seed and `purpose` alone."""
        generator = torch.Generator(device=self.x.device)
        generator.manual_seed((self.seed * 1_000_003 + zlib.crc32(purpose.encode())) % (2**63))
        return generator

    def fresh_copy(self) -> nn.Module:
        """A private copy of the network, for proxies that must change it (re-init, hooks)."""
        return copy.deepcopy(self.model)

    def forward(self, net: nn.Module, x: torch.Tensor, rows: slice | None = None) -> torch.Tensor:
        """`net` on `x` (the probe batch or `rows` of it), with the probe's attention mask for a
        token network (`net(ids, mask)`), as every pass calls it."""
        mask = self.attention_mask
        if mask is None:
            return net(x)
        return net(x, mask if rows is None else mask[rows])

    def _cached(self, key, compute):
        """Compute pass `key` once per context (the one place passes are cached, counted and timed).

        The global torch RNG is forked and seeded from (seed, key) around the computation, so a
        network with dropout (a transformer in train mode) draws the same masks in a pass
        whatever ran before it: sharing passes or not changes no score. Passes that draw their
        own numbers use `generator` and consume nothing from the global RNG.
        """
        if self.reader is not None:
            self.readers.setdefault(key, set()).add(self.reader)
        if key not in self._cache:
            self._open_passes.append(0.0)  # seconds of the passes computed inside this one
            start = time.perf_counter()
            devices = [self.x.device.index or 0] if self.x.device.type == "cuda" else []
            try:
                with torch.random.fork_rng(devices=devices):
                    torch.manual_seed(int(self.generator("pass:" + key).initial_seed()))
                    self._cache[key] = compute()
            finally:
                elapsed = time.perf_counter() - start
                inner = self._open_passes.pop()
                self.pass_seconds[key] = self.pass_seconds.get(key, 0.0) + elapsed - inner
                if self._open_passes:
                    self._open_passes[-1] += elapsed
                else:
                    self._computed_seconds += elapsed
        return self._cache[key]

    def take_pass_seconds(self) -> float:
        """Seconds spent computing passes since the last call (outermost passes only)."""
        seconds, self._computed_seconds = self._computed_seconds, 0.0
        return seconds

    def _float_dtype(self) -> torch.dtype:
        return self.x.dtype if self.x.is_floating_point() else torch.float32

    # -- passes ---------------------------------------------------------------------------
    def weights(self) -> dict[str, torch.Tensor]:
        return {name: module.weight.detach() for name, module in weighted_layers(self.model)}

    def shape_pass(self) -> dict[str, dict]:
        return self._cached("shape", self._shape_pass)

    def train_pass(self) -> TrainPass:
        return self._cached("train", self._train_pass)

    def synflow_pass(self) -> dict[str, torch.Tensor]:
        return self._cached("synflow", self._synflow_pass)

    def zen_pass(self) -> ZenPass:
        return self._cached("zen", self._zen_pass)

    def per_sample_pass(self) -> dict[str, torch.Tensor]:
        return self._cached("per_sample_gradient", self._per_sample_pass)

    def half_batch_pass(self) -> dict[str, torch.Tensor]:
        return self._cached("half_batch_gradient", self._half_batch_pass)

    def ntk_pass(self) -> NtkPass:
        return self._cached("ntk_gradient", self._ntk_pass)

    def relu_pattern_pass(self, inputs: str = "patches") -> int:
        """TE-NAS's region count on "patches" (the default) or on a "gaussian" batch (AZ-NAS's rerun)."""
        if inputs == "patches":
            return self._cached("relu_patterns", self._relu_pattern_pass)
        if inputs == "gaussian":
            return self._cached("relu_patterns:gaussian", self._gaussian_relu_pattern_pass)
        raise ProxyError(f"linear_regions inputs must be 'patches' or 'gaussian'; got {inputs!r}.")

    def _shape_pass(self) -> dict[str, dict]:
        """module path -> {"input", "output"} shapes of every leaf module the forward calls.

        Leaf modules only, and a module called twice keeps its last call, as tensorwatch's
        model statistics (which NASLib's flops/params use) do.
        """
        net = copy.deepcopy(self.model).eval()
        sizes: dict[str, dict] = {}

        def record(name):
            def hook(module, inputs, output):
                first_in = next((t for t in _flat_tensors(inputs)), None)
                first_out = next((t for t in _flat_tensors(output)), None)
                if first_in is not None and first_out is not None:
                    sizes[name] = {"input": tuple(first_in.shape), "output": tuple(first_out.shape)}

            return hook

        leaves = [(name, m) for name, m in net.named_modules() if next(m.children(), None) is None]
        dtype = self._float_dtype() if self.input_kind == "image" else self.x.dtype
        with forward_hooks((module, record(name)) for name, module in leaves), torch.no_grad():
            net(torch.zeros((1, *self.x.shape[1:]), dtype=dtype, device=self.x.device))
        return sizes

    def _train_pass(self) -> TrainPass:
        wanted = self.passes & TRAIN_PASS
        loss_passes = wanted & {"loss_gradient", "activation_gradient", "hessian_gradient"}
        if loss_passes and self.y is None:
            raise ProxyError("This proxy needs labels, but the probe batch has none.")
        net = copy.deepcopy(self.model).train()
        layers = weighted_layers(net)
        x = self.x.detach().clone()
        tokens = self.input_kind == "tokens"
        if "input_jacobian" in wanted and not tokens:
            x.requires_grad_(True)

        hooks: list[tuple[nn.Module, Callable]] = []
        embedded: list[torch.Tensor] = []
        if "input_jacobian" in wanted and tokens:
            # Token ids have no gradient: the Jacobian is taken w.r.t. the input embeddings
            # (the word-embedding lookup's output, HF's get_input_embeddings()), the network's
            # first continuous input.
            embeddings = network_method(net, "get_input_embeddings", "jacob_cov", "the word-embedding module")()
            hooks.append((embeddings, lambda module, inputs, output: embedded.append(output)))
        activations: dict[str, torch.Tensor] = {}
        if "activation_gradient" in wanted:

            def keep_output(name):
                def hook(module, inputs, output):
                    activations[name] = output

                return hook

            hooks += [(module, keep_output(name)) for name, module in layers]

        relu_kernel = None
        if "relu_codes" in wanted:
            n = x.shape[0]
            relu_kernel = torch.zeros((n, n), dtype=torch.float64, device=x.device)

            def accumulate_codes(module, inputs, output):
                # NASWOT: binary code of each unit's pre-activation; K counts agreements.
                codes = (inputs[0].detach().reshape(n, -1) > 0).to(torch.float64)
                relu_kernel.add_(codes @ codes.t()).add_((1.0 - codes) @ (1.0 - codes).t())

            # Token networks (transformers) have GELUs where CNNs have ReLUs: the code is the
            # same sign of the pre-activation.
            coded = (nn.ReLU, nn.GELU) if tokens else (nn.ReLU,)
            hooks += [(m, accumulate_codes) for m in net.modules() if isinstance(m, coded)]

        with forward_hooks(hooks):
            logits = self.forward(net, x)

        result = TrainPass(logits=logits.detach(), weights={}, grads={}, relu_kernel=relu_kernel)
        result.weights = {name: module.weight.detach() for name, module in layers}
        if "input_jacobian" in wanted:
            # jacob_cov/epe_nas: backward of ones_like(logits), i.e. d(sum of logits)/dx.
            (jacobian,) = torch.autograd.grad(logits.sum(), embedded[0] if tokens else x, retain_graph=bool(loss_passes))
            result.input_jacobian = jacobian.detach()
        if loss_passes:
            self._loss_gradients(result, logits, layers, activations, hessian="hessian_gradient" in wanted)
        return result

    def _loss_gradients(self, result: TrainPass, logits, layers, activations, *, hessian: bool) -> None:
        loss = F.cross_entropy(logits, self.y)
        weights = [module.weight for _, module in layers]
        act_names = list(activations)
        inputs = weights + [activations[name] for name in act_names]
        grads = torch.autograd.grad(loss, inputs, create_graph=hessian, allow_unused=True)
        weight_grads = [g if g is not None else torch.zeros_like(w) for g, w in zip(grads[: len(weights)], weights)]
        result.grads = {name: g.detach() for (name, _), g in zip(layers, weight_grads)}
        if act_names:
            result.activations = {name: activations[name].detach() for name in act_names}
            result.activation_grads = {
                name: (g.detach() if g is not None else torch.zeros_like(activations[name]))
                for name, g in zip(act_names, grads[len(weights) :])
            }
        if hessian:
            # GraSP: z = <g (constant), g(θ)>; dz/dθ = H·g.
            z = sum((g.detach() * g).sum() for g in weight_grads if g.requires_grad)
            if isinstance(z, torch.Tensor) and z.requires_grad:
                hg = torch.autograd.grad(z, weights, allow_unused=True)
            else:
                hg = [None] * len(weights)
            result.hessian_grads = {
                name: (h.detach() if h is not None else torch.zeros_like(w))
                for (name, _), h, w in zip(layers, hg, weights)
            }

    def _synflow_pass(self) -> dict[str, torch.Tensor]:
        # Eval mode: SynFlow is a deterministic path norm, so a transformer's dropout stays off
        # whatever mode the caller's network is in (CNNs lose their BatchNorms just below).
        net = copy.deepcopy(self.model).double().eval()
        _remove_batchnorm(net)
        with torch.no_grad():
            for tensor in net.state_dict().values():
                if tensor.is_floating_point():
                    tensor.abs_()
        layers = weighted_layers(net)
        # Token networks: every id 1 (the all-ones input of token ids), no mask.
        dtype = torch.float64 if self.input_kind == "image" else self.x.dtype
        ones = torch.ones((1, *self.x.shape[1:]), dtype=dtype, device=self.x.device)
        output = net(ones)
        weights = [module.weight for _, module in layers]
        grads = torch.autograd.grad(output.sum(), weights, allow_unused=True)
        return {
            name: (w * g).abs().detach() if g is not None else torch.zeros_like(w)
            for (name, _), w, g in zip(layers, weights, grads)
        }

    def _zen_pass(self) -> ZenPass:
        net = self.fresh_copy()
        features = network_method(net, "forward_pre_gap", "zen", "the features before global pooling")
        generator = self.generator("zen")
        dtype = self._float_dtype()
        # Draw order (fixed, so a test can replay it): weights in module order, then x, then ε.
        gaussian_init(net, generator)
        net.train()
        with torch.no_grad():
            x = torch.randn(self.x.shape, generator=generator, dtype=dtype, device=self.x.device)
            noise = torch.randn(self.x.shape, generator=generator, dtype=dtype, device=self.x.device)
            output = features(x)
            mixed = features(x + ZEN_MIXUP_GAMMA * noise)
            delta = (output - mixed).abs().sum(dim=tuple(range(1, output.dim()))).mean()
            bn_log_scales = {
                name: float(torch.log(torch.sqrt(torch.mean(m.running_var))))
                for name, m in net.named_modules()
                if isinstance(m, nn.BatchNorm2d) and m.running_var is not None
            }
        return ZenPass(log_delta=float(torch.log(delta)), bn_log_scales=bn_log_scales)

    def _per_sample_pass(self) -> dict[str, torch.Tensor]:
        """conv/linear layer -> (N, *weight shape): each sample's own loss gradient."""
        net, layer_params = self._labelled_copy()
        grads = per_sample_loss_gradients(
            net, self.x.detach(), self.y, sorted(set(layer_params.values())), attention_mask=self.attention_mask
        )
        return {layer: grads[param] for layer, param in layer_params.items()}

    def _half_batch_pass(self) -> dict[str, torch.Tensor]:
        """conv/linear layer -> (2, *weight shape): the loss gradient of each half batch."""
        if self.batch_size < 2:
            raise ProxyError("Two half batches need a probe batch of at least 2 images.")
        net, layer_params = self._labelled_copy()
        grads = half_batch_loss_gradients(
            net, self.x.detach(), self.y, sorted(set(layer_params.values())), attention_mask=self.attention_mask
        )
        return {layer: grads[param] for layer, param in layer_params.items()}

    def _labelled_copy(self) -> tuple[nn.Module, dict[str, str]]:
        """A private train-mode copy and, per conv/linear layer, its weight's parameter name."""
        if self.y is None:
            raise ProxyError("This proxy needs labels, but the probe batch has none.")
        net = copy.deepcopy(self.model).train()
        names = {id(p): name for name, p in net.named_parameters()}  # shared weights: one name
        return net, {layer: names[id(module.weight)] for layer, module in weighted_layers(net)}

    def _ntk_pass(self) -> NtkPass:
        n = min(self.batch_size, self.ntk_samples)
        net = copy.deepcopy(self.model).train()
        # TE-NAS get_ntk_n: every parameter whose name contains "weight" (BN scales included).
        names = [name for name, p in net.named_parameters() if "weight" in name and p.requires_grad]
        mask = self.attention_mask[:n] if self.attention_mask is not None else None
        rows = logit_sum_gradients(net, self.x[:n].detach(), names, attention_mask=mask).to(torch.float64)
        labels = self.y[:n].detach() if self.y is not None else None
        return NtkPass(kernel=rows @ rows.t(), labels=labels)

    def _relu_pattern_pass(self) -> int:
        _, channels, height, width = self.x.shape
        k = LINEAR_REGION_PATCH
        if height < k or width < k:
            raise ProxyError(f"linear_regions needs probe images of at least {k}x{k} pixels.")
        net = self.fresh_copy()
        generator = self.generator("linear_regions")
        # Draw order (fixed, so a test can replay it): weights in module order, then for each
        # batch the image indices, the top rows and the left columns of the patches.
        kaiming_fan_in_init(net, generator)
        net.train()
        offsets = torch.arange(k, device=self.x.device)
        patterns = []
        for _ in range(LINEAR_REGION_BATCHES):
            shape = (LINEAR_REGION_SAMPLES,)
            image = torch.randint(0, self.batch_size, shape, generator=generator, device=self.x.device)
            top = torch.randint(0, height - k + 1, shape, generator=generator, device=self.x.device)
            left = torch.randint(0, width - k + 1, shape, generator=generator, device=self.x.device)
            rows = (top[:, None] + offsets)[:, None, :, None]
            cols = (left[:, None] + offsets)[:, None, None, :]
            chans = torch.arange(channels, device=self.x.device)[None, :, None, None]
            patches = self.x.detach()[image[:, None, None, None], chans, rows, cols]
            try:
                patterns.append(feature_relu_codes(net, patches.to(self._float_dtype())))
            except RuntimeError as error:
                if isinstance(error, torch.OutOfMemoryError):
                    raise
                # The network runs on full-size inputs (its other passes did) but not on a 3x3
                # patch: NB101's 2x2 max-pools between stacks shrink it to nothing ("Output size
                # is too small"); in DARTS cells a reduction's strided ops and its factorized
                # reduce disagree on the size of a 2x2 map ("Sizes of tensors must match").
                # This network's failure, not the job's (ProxyError would stop the run).
                raise ValueError(
                    f"linear_regions: TE-NAS's {k}x{k} patches are too small for this network (its "
                    f"downsampling cannot take them: {error}); inputs='gaussian' (Python API) "
                    "counts regions on full-size inputs instead."
                ) from None
        return int(torch.unique(torch.cat(patterns), dim=0).shape[0])

    def _gaussian_relu_pattern_pass(self) -> int:
        # AZ-NAS's rerun of TE-NAS: a Gaussian batch of the probe's shape through the network
        # at its own initialisation (no re-init), train mode, one no-grad forward.
        net = self.fresh_copy().train()
        generator = self.generator("linear_regions")
        x = torch.randn(self.x.shape, generator=generator, dtype=self._float_dtype(), device=self.x.device)
        return int(torch.unique(feature_relu_codes(net, x), dim=0).shape[0])


def _flat_tensors(value):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _flat_tensors(item)


def network_method(net: nn.Module, method: str, who: str, what: str) -> Callable:
    """`net.<method>`, a method a proxy needs beyond `forward` (`what` it returns), or a
    ProxyError naming the proxy (`who`) and the network's class."""
    found = getattr(net, method, None)
    if found is None:
        raise ProxyError(f"{who} needs a network with {method}(x) ({what}); {type(net).__name__} has none.")
    return found


def _reinit(net: nn.Module, init_weight: Callable[[torch.Tensor], object], norms: tuple[type, ...]) -> None:
    """Re-initialise in module order: each conv/linear weight by `init_weight`, its bias 0;
    each affine norm layer of the types `norms` γ=1, β=0."""
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, WEIGHTED_LAYERS):
                init_weight(module.weight)
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, norms) and module.weight is not None:
                module.weight.fill_(1.0)
                module.bias.zero_()


def gaussian_init(net: nn.Module, generator: torch.Generator) -> None:
    """ZenNAS `network_weight_gaussian_init`: conv/linear N(0, 1) and bias 0; norm γ=1, β=0.
    Drawn in module order from `generator` (zen, swap)."""
    _reinit(net, lambda weight: weight.normal_(0.0, 1.0, generator=generator), (nn.BatchNorm2d, nn.GroupNorm))


def kaiming_fan_in_init(
    net: nn.Module, generator: torch.Generator, norms: tuple[type, ...] = (nn.BatchNorm2d,)
) -> None:
    """`kaiming_normal_fanin_init`: conv/linear Kaiming-normal (fan_in, ReLU gain) and bias 0;
    affine norm layers of the types `norms` γ=1, β=0. Drawn in module order from `generator`.
    TE-NAS's version (linear regions) resets BatchNorm2d only, the default; AZ-NAS's resets
    BatchNorm2d and GroupNorm."""
    _reinit(
        net,
        lambda weight: nn.init.kaiming_normal_(weight, mode="fan_in", nonlinearity="relu", generator=generator),
        norms,
    )


def _remove_batchnorm(net: nn.Module) -> None:
    """Replace every BatchNorm by identity (zero-cost-NAS `bn=False` copies)."""
    for name, module in list(net.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                setattr(module, child_name, nn.Identity())


def tensorwatch_flops(module: nn.Module, input_shape: tuple, output_shape: tuple) -> int:
    """FLOPs of one leaf module as tensorwatch's torchstat `compute_flops` counts them.

    NAS-Bench-Suite-Zero's `flops` is tensorwatch's model total, so its conventions are kept
    on purpose: a conv counts k·k·C_in·C_out/groups per output position plus one add per
    output for a bias; BatchNorm counts each input element once, twice when affine; ReLU one
    per element; (Avg|Max)Pool2d k·k per output; AdaptiveAvgPool2d (h+1)·(w+1) per output
    window (tensorwatch's off-by-one, kept); Linear in·out (its bias is not counted); every
    other module (identity, zero, flatten, additions between branches) counts nothing.
    """
    if isinstance(module, nn.Conv2d):
        batch, out_c, out_h, out_w = output_shape
        in_c = input_shape[1]
        per_position = math.prod(module.kernel_size) * in_c * (out_c // module.groups)
        positions = batch * out_h * out_w
        return per_position * positions + (out_c * positions if module.bias is not None else 0)
    if isinstance(module, nn.BatchNorm2d):
        return math.prod(input_shape) * (2 if module.affine else 1)
    if isinstance(module, (nn.AvgPool2d, nn.MaxPool2d)):
        batch, channels, height, width = input_shape
        kernel, stride, padding = (_pair(v) for v in (module.kernel_size, module.stride, module.padding))
        # tensorwatch's own output-size formula (first stride for both axes), kept as is.
        out_w = math.floor((width + 2 * padding[0] - kernel[0]) / float(stride[0]) + 1)
        out_h = math.floor((height + 2 * padding[1] - kernel[1]) / float(stride[0]) + 1)
        return batch * channels * out_w * out_h * kernel[0] * kernel[1]
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        batch, channels, height, width = input_shape
        out_h, out_w = output_shape[2], output_shape[3]
        total = 0
        for i in range(out_h):
            rows = math.ceil((i + 1) * height / out_h) - math.floor(i * height / out_h) + 1
            for j in range(out_w):
                cols = math.ceil((j + 1) * width / out_w) - math.floor(j * width / out_w) + 1
                total += batch * channels * rows * cols
        return total
    if isinstance(module, (nn.ReLU, nn.ReLU6, nn.PReLU, nn.ELU, nn.LeakyReLU)):
        return math.prod(input_shape)
    if isinstance(module, nn.Linear):
        return math.prod(input_shape) * output_shape[-1]
    return 0


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)

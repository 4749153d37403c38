"""Serianni & Kalita's training-free metrics for transformers (family "transformer").

Serianni & Kalita, "Training-free Neural Architecture Search for RNNs and Transformers", ACL
2023; reference implementation: github aaronserianni/training-free-nas, `BERT_metrics.ipynb`
(one function per metric, named in each docstring below) on the ELECTRA-style encoders of
`modeling_electra.py`, which zcnas's `nasbert` space rebuilds (zcnas/spaces/nasbert.py).

All of them read one pass, as the notebook's scoring loop does: a private copy of the network
in train mode (dropout 0.1 active), the probe's token ids through the encoder alone (no
classification head: the authors scored ``ElectraModel``), and ones back-propagated from its
last hidden state, ``out.backward(ones_like(out))`` — no loss and no labels. Hooks record what
the activation and attention metrics need during that forward. The notebook seeds numpy and
torch with 0 before building each network; zcnas builds from the architecture's seed and
seeds the pass's dropout from it (`ProbeContext._cached`).

Module names: the notebook's ``layer.operation.operation`` (the token-mixing module) is our
``layers.{i}.operation``; ``layer.operation.output.dense`` (the dense map after SA/DSC) is
``layers.{i}.operation_output``; ``layer.intermediate`` is ``layers.{i}.feed_forward``;
``layer.output.dense`` is ``layers.{i}.feed_forward_output``; ``intermediate_act_fn`` is
``layers.{i}.activation``; WMA's extra query map ``weight`` is ``weighted_query``.

Departures that hold for every metric:

* The attention mask is not passed, as in the notebook (its ``ElectraModel`` accepts a mask
  but never hands it to a layer): padding, where the probe has any, is attended to. zcnas's
  token probes are packed text or random ids without padding, where this changes nothing.
* The probe is whatever the benchmark holds (`zcnas bench import nasbert`: 128 tokens of public-
  domain text per sequence by default, or random ids), not 128 OpenWebText documents padded to
  512 ELECTRA WordPiece tokens.

"Normalized" variants are registered as separate proxies (``<name>_normalized``): the sum
divided by the number of terms summed, as the notebook's ``*_normalized`` functions do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from zcnas.errors import ProxyError
from zcnas.proxies.passes import ProbeContext, forward_hooks, network_method
from zcnas.proxies.registry import ProxyResult, proxy

REFERENCE = (
    "Serianni & Kalita, ACL 2023 (Training-free NAS for RNNs and Transformers); "
    "aaronserianni/training-free-nas BERT_metrics.ipynb "
)
NOT_FOR = "it reads an ELECTRA-style encoder's layers (token mixing, feed-forward stack, position embeddings)"
# head_importance's fixed width threshold: ``sublayer.weight.shape[0] >= 128`` in the notebook.
HEAD_IMPORTANCE_MIN_OUTPUTS = 128
# The regulariser of the notebook's `covariance` (k).
JACOBIAN_K = 1e-5
# The exponent of the notebook's `cosine`: |cos|^(1/20).
COSINE_POWER = 1.0 / 20.0
# The modules of a token-mixing operation whose outputs the notebook's head hook records.
HEAD_MODULES = ("query", "key", "value", "input", "weighted_query")


@dataclass
class TransformerPass:
    """What the metrics read from one ones-backward pass of the encoder.

    `weights`/`grads`: every linear map of the encoder layers, by module path. `position_grad`:
    the gradient of the position-embedding table, rows of the positions the probe covers.
    `activation_terms`, `head_terms`, `softmax_terms`: (slot, value) per hooked call, in the
    order the hooks fired.
    """

    weights: dict[str, torch.Tensor] = field(default_factory=dict)
    grads: dict[str, torch.Tensor] = field(default_factory=dict)
    position_grad: torch.Tensor | None = None
    activation_terms: list[tuple[str, float]] = field(default_factory=list)
    head_terms: list[tuple[str, float]] = field(default_factory=list)
    softmax_terms: list[tuple[str, float]] = field(default_factory=list)


def _encoder_layers(net: nn.Module) -> list[nn.Module]:
    layers = getattr(net, "layers", None)
    needed = ("operation", "feed_forward", "feed_forward_output", "activation")
    if layers is None or not all(all(hasattr(layer, a) for a in needed) for layer in layers):
        raise ProxyError(
            f"The transformer metrics need an ELECTRA-style encoder (layers with operation, feed_forward, "
            f"feed_forward_output and activation, as the nasbert space builds); {type(net).__name__} is not one."
        )
    return list(layers)


def activation_distance_term(output: torch.Tensor) -> float:
    """Σ of the entries of K = x xᵀ + (1 − x)(1 − x)ᵀ, x = 1[output of the first sequence > 0].

    The notebook's `activation_distance` builds K (L × L) for ``output[0]`` (L positions × I
    units). Its entries sum to Σ_j c_j² + (L − c_j)², c_j the number of positions where unit j is
    active (Σ_ab x_aj x_bj = c_j²), which this computes in O(L·I) and exactly (float64 integers).
    """
    codes = (output[0].reshape(output.shape[1], -1) > 0).to(torch.float64)
    active = codes.sum(dim=0)
    length = codes.shape[0]
    return float((active.pow(2) + (length - active).pow(2)).sum())


def confidence_term(output: torch.Tensor) -> float:
    """mean(max over dimension 1): the notebook's `attention_condfidence` per hooked output.

    Dimension 1 is the sequence for a linear map's output (N, L, C) and the heads for a softmax
    output (N, heads, L, ·), as the notebook takes it for both.
    """
    return float(torch.max(output.detach(), 1)[0].mean())


def transformer_pass(ctx: ProbeContext) -> TransformerPass:
    """The notebook's scoring pass, cached on the context (pass "hidden_ones_backward")."""

    def compute() -> TransformerPass:
        if ctx.input_kind != "tokens":
            raise ProxyError("The transformer metrics need a batch of token ids (N, L).")
        net = ctx.fresh_copy().train()
        encode = network_method(net, "encode", "The transformer metrics", "the encoder's last hidden state")
        layers = _encoder_layers(net)
        result = TransformerPass()
        hooks: list[tuple[nn.Module, Callable]] = []

        def on_activation(slot_prefix: str):
            calls = [0]

            def hook(module, inputs, output):
                # One call per stacked feed-forward map: call j follows map feed_forward.j.
                result.activation_terms.append((f"{slot_prefix}.feed_forward.{calls[0]}", activation_distance_term(output)))
                calls[0] += 1

            return hook

        def on_output(target: list, slot: str):
            def hook(module, inputs, output):
                target.append((slot, confidence_term(output)))

            return hook

        linear: dict[str, nn.Linear] = {}
        for i, layer in enumerate(layers):
            prefix = f"layers.{i}"
            hooks.append((layer.activation, on_activation(prefix)))
            operation = layer.operation
            for name in HEAD_MODULES:
                module = getattr(operation, name, None)
                if isinstance(module, nn.Module):
                    hooks.append((module, on_output(result.head_terms, f"{prefix}.operation")))
            softmax = getattr(operation, "softmax", None)
            if isinstance(softmax, nn.Module):
                hooks.append((softmax, on_output(result.softmax_terms, f"{prefix}.operation")))
            for path, module in layer.named_modules(prefix=prefix):
                if isinstance(module, nn.Linear):
                    linear[path] = module
        positions = getattr(getattr(net, "embeddings", None), "position_embeddings", None)
        if not isinstance(positions, nn.Embedding):
            raise ProxyError("The transformer metrics need the encoder's embeddings.position_embeddings table.")
        ids = ctx.x.detach()
        with forward_hooks(hooks):
            hidden = encode(ids)  # no attention mask: the notebook's ElectraModel never applied it
        tensors = [module.weight for module in linear.values()] + [positions.weight]
        grads = torch.autograd.grad(hidden, tensors, torch.ones_like(hidden), allow_unused=True)
        for (path, module), grad in zip(linear.items(), grads):
            if grad is not None:  # the notebook skips a weight without a gradient
                result.weights[path] = module.weight.detach()
                result.grads[path] = grad.detach()
        position_grad = grads[-1] if grads[-1] is not None else torch.zeros_like(positions.weight)
        result.position_grad = position_grad.detach()[: ids.shape[1]]
        return result

    return ctx._cached("hidden_ones_backward", compute)


def _summed(per_layer: dict[str, float], normalized: bool, count: int | None = None) -> ProxyResult:
    """Σ of the terms; normalized: divided by how many terms were summed (per-layer values too)."""
    if normalized:
        count = count if count is not None else len(per_layer)
        if count == 0:
            raise ValueError("nothing to average: the network has no term of this metric")
        per_layer = {key: value / count for key, value in per_layer.items()}
    return ProxyResult(float(sum(per_layer.values())), per_layer)


def _by_slot(terms: list[tuple[str, float]]) -> dict[str, float]:
    summed: dict[str, float] = {}
    for slot, value in terms:
        summed[slot] = summed.get(slot, 0.0) + value
    return summed


def _is_operation_map(path: str) -> bool:
    """A linear map of a layer's token mixing or of the dense map after it (notebook:
    ``layer.operation.modules()``, i.e. ``operation.operation`` and ``operation.output``)."""
    parts = path.split(".")
    return len(parts) >= 3 and parts[2] in ("operation", "operation_output")


def _is_feed_forward_map(path: str) -> bool:
    """A linear map of the feed-forward stack or its output map (notebook: ``layer.intermediate``
    and ``layer.output``)."""
    parts = path.split(".")
    return len(parts) >= 3 and parts[2] in ("feed_forward", "feed_forward_output")


def _synaptic_diversity(ctx: ProbeContext, normalized: bool) -> ProxyResult:
    p = transformer_pass(ctx)
    per_layer = {
        path: float(
            torch.abs(torch.linalg.matrix_norm(p.weights[path], "nuc") * torch.linalg.matrix_norm(g, "nuc"))
        )
        for path, g in p.grads.items()
        if _is_operation_map(path)
    }
    return _summed(per_layer, normalized)


def _synaptic_saliency(ctx: ProbeContext, normalized: bool) -> ProxyResult:
    p = transformer_pass(ctx)
    per_layer = {
        path: float((p.weights[path] * g).abs().sum()) for path, g in p.grads.items() if _is_feed_forward_map(path)
    }
    return _summed(per_layer, normalized)


def _head_importance(ctx: ProbeContext, normalized: bool) -> ProxyResult:
    p = transformer_pass(ctx)
    per_layer = {
        path: float((p.weights[path] * g).abs().sum())
        for path, g in p.grads.items()
        if path.split(".")[2:3] == ["operation"] and g.shape[0] >= HEAD_IMPORTANCE_MIN_OUTPUTS
    }
    return _summed(per_layer, normalized)


def _terms_metric(terms: list[tuple[str, float]], normalized: bool) -> ProxyResult:
    return _summed(_by_slot(terms), normalized, count=len(terms))


COMMON = dict(passes=("hidden_ones_backward",), needs_labels=False, needs_data=True, applies_to=("tokens",), not_for=NOT_FOR)
NO_LAYERS = dict(aggregation="none", layer_keys="none")


@proxy("synaptic_diversity", family="transformer", reference=REFERENCE + "synaptic_diversity", **COMMON)
def synaptic_diversity(ctx: ProbeContext) -> ProxyResult:
    """Σ |‖W‖_* · ‖∂R/∂W‖_*| over the linear maps of each layer's token mixing and the dense map after it.

    ‖·‖_* is the nuclear norm, R the sum of the last hidden state (the ones-backward pass). As
    the notebook's `synaptic_diversity`: every ``nn.Linear`` under ``layer.operation`` (SA:
    query, key, value [, WMA's weight] and the dense map after; LT: its input map; DSC: query,
    key, value, kernel generator, convolution output map and the dense map after; DSC's separable
    convolution is a Conv1d, not counted). Per-layer: one value per map (summed into the space's
    slots by the runner).
    """
    return _synaptic_diversity(ctx, normalized=False)


@proxy(
    "synaptic_diversity_normalized", family="transformer", reference=REFERENCE + "synaptic_diversity_normalized",
    **COMMON,
)
def synaptic_diversity_normalized(ctx: ProbeContext) -> ProxyResult:
    """synaptic_diversity divided by the number of linear maps summed (notebook: `synaptic_diversity_normalized`)."""
    return _synaptic_diversity(ctx, normalized=True)


@proxy("synaptic_saliency", family="transformer", reference=REFERENCE + "synaptic_saliency", **COMMON)
def synaptic_saliency(ctx: ProbeContext) -> ProxyResult:
    """Σ |W ⊙ ∂R/∂W| over the feed-forward maps of every layer (the stack and its output map).

    As the notebook's `synaptic_saliency` (``layer.intermediate`` and ``layer.output``'s linear
    maps), R the sum of the last hidden state. Per-layer: one value per map.
    """
    return _synaptic_saliency(ctx, normalized=False)


@proxy(
    "synaptic_saliency_normalized", family="transformer", reference=REFERENCE + "synaptic_saliency_normalized",
    **COMMON,
)
def synaptic_saliency_normalized(ctx: ProbeContext) -> ProxyResult:
    """synaptic_saliency divided by the number of feed-forward maps summed (notebook: `synaptic_saliency_normalized`)."""
    return _synaptic_saliency(ctx, normalized=True)


@proxy("activation_distance", family="transformer", reference=REFERENCE + "activation_distance", **COMMON)
def activation_distance(ctx: ProbeContext) -> ProxyResult:
    """Σ over feed-forward activations of the entries of K = x xᵀ + (1 − x)(1 − x)ᵀ (NASWOT's kernel over positions).

    x = 1[GELU output > 0] for the first sequence of the batch (L positions × units), one K per
    call of each layer's activation (one call per stacked feed-forward map), as the notebook's
    `activation_distance` with its hook on ``intermediate_act_fn``; K's entries summed in closed
    form (`activation_distance_term`). Per-layer: one value per call, keyed by the feed-forward
    map it follows (``layers.{i}.feed_forward.{j}``).

    A bug of the reference, not reproduced: HuggingFace's ``ACT2FN`` (of the transformers
    version the authors used) hands every layer of every model one shared GELU instance, and the
    notebook registered new hooks on it for each model without removing the old ones, so each
    call was recorded once per hook registered so far. Their "Activation Distance" column is
    this value times the number of hooks: for ids 0-364, 26 (left from an earlier run) + the
    layers of the models scored up to and including it; from id 365 (a restarted kernel) the
    layers since id 365. The ratio of their column to its normalized twin, divided by the calls
    per model, is exactly that count for all 500 ids (examples/validate_nasbert.py). The
    normalized column, where the count cancels, is clean (`activation_distance_normalized`).
    """
    p = transformer_pass(ctx)
    return _terms_metric(p.activation_terms, normalized=False)


@proxy(
    "activation_distance_normalized", family="transformer", reference=REFERENCE + "activation_distance_normalized",
    **COMMON,
)
def activation_distance_normalized(ctx: ProbeContext) -> ProxyResult:
    """activation_distance divided by the number of activation calls (notebook: `activation_distance_normalized`)."""
    return _terms_metric(transformer_pass(ctx).activation_terms, normalized=True)


def _position_rows(ctx: ProbeContext, proxy_name: str) -> torch.Tensor:
    """The position-embedding gradient as the notebook's `covariance`/`cosine` read it:
    transposed to (embedding size × positions), float64."""
    grad = transformer_pass(ctx).position_grad
    return grad.transpose(0, 1).reshape(grad.shape[1], -1).to(torch.float64)


@proxy("jacobian_score", family="transformer", reference=REFERENCE + "jacobian_score (covariance)", **COMMON, **NO_LAYERS)
def jacobian_score(ctx: ProbeContext) -> ProxyResult:
    """−Σ_i [log(λ_i + k) + 1/(λ_i + k)], λ the eigenvalues of the correlation between the rows of ∂R/∂P.

    P is the position-embedding table (positions × embedding size), its gradient transposed so
    that each of the embedding's dimensions is a row over the positions, as the notebook's
    `jacobian_score` → `covariance` (k = 1e-5, jacob_cov's formula). Departures: only the
    positions the probe covers (its length L; the notebook's batch was padded to 512 so its
    gradient covered all 512 rows, and rows of unused positions are zero, which would enter
    the correlations); `torch.linalg.eigvalsh` on the symmetric matrix where the notebook calls
    `np.linalg.eig`; a constant row fails the proxy with a message instead of a silent NaN.
    """
    rows = _position_rows(ctx, "jacobian_score")
    corr = torch.corrcoef(rows)
    if not bool(torch.isfinite(corr).all()):
        raise FloatingPointError("jacobian_score: a row of the position-embedding gradient is constant")
    shifted = torch.linalg.eigvalsh(corr) + JACOBIAN_K
    return ProxyResult(float(-(torch.log(shifted) + 1.0 / shifted).sum()), {})


@proxy("jacobian_cosine", family="transformer", reference=REFERENCE + "jacobian_score_cosine (cosine)", **COMMON, **NO_LAYERS)
def jacobian_cosine(ctx: ProbeContext) -> ProxyResult:
    """1 − Σ_{a≠b} |cos(g_a, g_b)|^(1/20) / (2 (n² − n)), g_a the n rows of the position-embedding gradient.

    The notebook's `jacobian_score_cosine` → `cosine` on the same rows as jacobian_score; its
    CSV column "Jacobian Score Normalized" holds this value (it is not jacobian_score divided by
    anything). The halving of the sum is the notebook's. Departures: the probe's positions only
    (as jacobian_score); a zero row fails the proxy instead of a NaN.
    """
    rows = _position_rows(ctx, "jacobian_cosine")
    norms = rows.norm(dim=1)
    if not bool((norms > 0).all()):
        raise FloatingPointError("jacobian_cosine: a row of the position-embedding gradient is zero")
    normed = rows / norms[:, None]
    n = normed.shape[0]
    # The diagonal exactly 0, as sklearn's cosine distances make it: |1 − 1 ± 1e-16|^(1/20)
    # would add about 0.16 per row.
    cosines = (normed @ normed.T).fill_diagonal_(0.0)
    summed = cosines.abs().pow(COSINE_POWER).sum() / 2
    return ProxyResult(float(1 - summed / (n * n - n)), {})


@proxy(
    "num_parameters",
    family="transformer",
    passes=("weights",),
    needs_labels=False,
    needs_data=False,
    aggregation="none",
    layer_keys="none",
    applies_to=("tokens",),
    not_for="it counts an encoder without its classification head, which image networks do not separate",
    reference=REFERENCE + "num_parameters",
)
def num_parameters(ctx: ProbeContext) -> ProxyResult:
    """Number of parameters of the encoder (embeddings and layers, no classification head).

    The notebook's `num_parameters` counts ``ElectraModel.parameters()``, the bare encoder; zcnas's
    networks add a classification head, left out here (`NASBERTNetwork.num_encoder_parameters`).
    The raw count, not in millions (zcnas's params counts everything, in millions). No
    per-layer statistics.
    """
    count = network_method(ctx.model, "num_encoder_parameters", "num_parameters", "the encoder's parameter count")
    return ProxyResult(float(count()), {})


@proxy("head_importance", family="transformer", reference=REFERENCE + "head_importance", **COMMON)
def head_importance(ctx: ProbeContext) -> ProxyResult:
    """Σ |W ⊙ ∂R/∂W| over the token-mixing linear maps with at least 128 outputs.

    As the notebook's `head_importance` (``layer.operation.operation``'s linear maps with
    ``weight.shape[0] >= 128``): on the networks the authors scored (hidden 256) that is SA's
    query, key, value [and WMA's weight], LT's input map and DSC's query, key, value and
    convolution output map (128 wide), leaving out DSC's kernel generator (heads × kernel
    outputs). The threshold is the notebook's constant, not the hidden size: on a hidden-128
    network DSC's maps (64 wide) fall below it. The dense map after the operation is not
    counted. Per-layer: one value per map.
    """
    return _head_importance(ctx, normalized=False)


@proxy(
    "head_importance_normalized", family="transformer", reference=REFERENCE + "head_importance_normalized",
    **COMMON,
)
def head_importance_normalized(ctx: ProbeContext) -> ProxyResult:
    """head_importance divided by the number of maps summed (notebook: `head_importance_normalized`)."""
    return _head_importance(ctx, normalized=True)


@proxy("head_confidence", family="transformer", reference=REFERENCE + "attention_condfidence (head outputs)", **COMMON)
def head_confidence(ctx: ProbeContext) -> ProxyResult:
    """Σ over the query/key/value/input/weight maps of each token mixing of mean(max over the sequence of their output).

    The notebook's `attention_condfidence` on the outputs its ``head_hook`` records: forward
    hooks on the operation's ``query``, ``key``, ``value``, ``input`` and ``weight`` modules
    where it has them (SA: q, k, v [, WMA's weight]; LT: input; DSC: q, k, v), each output (N,
    L, C) maxed over dimension 1 (the sequence), averaged. Per-layer: summed per operation slot
    (``layers.{i}.operation``).
    """
    return _terms_metric(transformer_pass(ctx).head_terms, normalized=False)


@proxy(
    "head_confidence_normalized", family="transformer",
    reference=REFERENCE + "attention_condfidence_normalized (head outputs)", **COMMON,
)
def head_confidence_normalized(ctx: ProbeContext) -> ProxyResult:
    """head_confidence divided by the number of hooked outputs (notebook: `attention_condfidence_normalized`)."""
    return _terms_metric(transformer_pass(ctx).head_terms, normalized=True)


@proxy(
    "head_softmax_confidence", family="transformer",
    reference=REFERENCE + "attention_condfidence (softmax outputs)", **COMMON,
)
def head_softmax_confidence(ctx: ProbeContext) -> ProxyResult:
    """Σ over each layer's softmax of mean(max over the heads of its output).

    The notebook's `attention_condfidence` on the outputs of each operation's ``softmax``
    module: the attention probabilities of SA and DSC (N, heads, L, L), and for LT the softmax
    of the transform that the layer computes and discards (N, heads, L, head size). Dimension 1
    is the heads, as in the notebook; a DSC layer with one attention head (2 heads configured)
    thus contributes the mean attention probability, 1/L. Per-layer: per operation slot.
    """
    return _terms_metric(transformer_pass(ctx).softmax_terms, normalized=False)


@proxy(
    "head_softmax_confidence_normalized", family="transformer",
    reference=REFERENCE + "attention_condfidence_normalized (softmax outputs)", **COMMON,
)
def head_softmax_confidence_normalized(ctx: ProbeContext) -> ProxyResult:
    """head_softmax_confidence divided by the number of softmax outputs (notebook: `attention_condfidence_normalized`)."""
    return _terms_metric(transformer_pass(ctx).softmax_terms, normalized=True)

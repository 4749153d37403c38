"""The NAS-Bench-BERT search space (Serianni & Kalita, "Training-free Neural Architecture Search
for RNNs and Transformers", ACL 2023).

500 ELECTRA-style encoders, pre-trained (ELECTRA objective, 100k steps) and fine-tuned on GLUE.
An architecture is a hidden size (128 or 256) and 2 or 4 encoder layers; each layer has

* a token-mixing operation: self-attention ``SA`` (``SDP`` scaled dot-product or ``WMA``
  weighted multiplicative, i.e. the query passes through one more bias-free linear map), a
  linear transform ``LT`` (``DFT`` or ``DCT`` over sequence and head dimensions, FNet-like),
  or a dynamic separable convolution ``DSC`` (ConvBERT's span-based dynamic convolution,
  kernel ``5`` or ``9``);
* its number of heads (2 or 4);
* a feed-forward dimension (512 or 1024) and 1 or 3 stacked feed-forward linear maps.

That is 48 choices per layer and 2 x (48**2 + 48**4) = 10,621,440 architectures.

Encoding
--------
zcnas's canonical string is the hidden size, then one ``op:parameter:heads:dimxcount`` group
per layer, ``|``-separated, e.g. ::

    h256|SA:WMA:4:1024x3|LT:DCT:2:512x3|SA:SDP:4:512x3|SA:SDP:4:1024x1

(benchmark id 0). `NASBERT.parse` also takes the benchmark JSON's forms: a whole record of
``nas_bench_bert_benchmark.json`` (``hparams.model_hparam_overrides`` is read), or the
``{"hidden_size": ..., "nas_config": {"encoder_layers": [...]}}`` dict itself, as a dict or as
JSON text; `NASBERT.to_config` gives that dict back.  Nine configurations appear twice among
the benchmark's 500 ids (491 distinct architectures): their canonical strings coincide, as
they should.

Network
-------
`NASBERT.build` writes our own module following the authors' PyTorch model,
``modeling_electra.py`` of github aaronserianni/training-free-nas (a FlexiBERT-derived edit of
HuggingFace's ELECTRA), in its order of operations:

* embeddings: word (vocabulary 30522, size 128, padding id 0) + token type (always type 0) +
  absolute position (512) -> LayerNorm -> dropout, then a linear projection 128 -> hidden when
  the hidden size is not 128 (``embeddings_project``);
* each layer: the operation; for SA and DSC then a dense map, dropout and
  ``LayerNorm(dense + input)``; for LT *nothing*: the reference feeds the transform's output
  straight into the feed-forward part, with no projection, residual or LayerNorm around it;
  then the feed-forward stack (``hidden -> dim``, GELU, then ``dim -> dim``, GELU for each
  further map), a dense ``dim -> hidden``, dropout and ``LayerNorm(dense + operation output)``;
* DSC has ``max(1, heads // 2)`` attention heads of size ``hidden // heads`` plus as many
  dynamic-convolution heads, concatenated back to ``hidden`` (ConvBERT's head ratio 2), exactly
  as the reference sizes them;
* LT computes a softmax of the transform and discards it, as the reference does (that unused
  softmax is what the authors' "head softmax confidence" metric hooks on LT layers);
* ELECTRA initialisation: linear, embedding and convolution weights N(0, 0.02), biases 0,
  LayerNorm 1/0, the padding row 0; dropout 0.1 everywhere, GELU (erf), LayerNorm eps 1e-12.

Departures, on purpose:

* A classification head (HuggingFace's ELECTRA sequence-classification head: first token ->
  dropout -> dense -> GELU -> dropout -> ``num_classes`` logits) is added so the proxies get
  ``(N, num_classes)`` logits; the authors scored the bare encoder (``ElectraModel``) by
  back-propagating ones from its last hidden state, which `NASBERTNetwork.encode` returns.
  `NASBERTNetwork.num_encoder_parameters` counts what they counted as "Number of Parameters".
* ``attention_mask`` is applied to the attention scores of SA and DSC layers (adding -10000 at
  masked keys, as ELECTRA does). The reference accepts a mask but never passes it to a layer,
  so the authors' scores attended to padding: pass no mask to reproduce them. LT layers mix
  every position whatever the mask (FNet does too).
* By default the network is the one the configuration describes: its hidden size and each
  layer's feed-forward dimension.  The authors' scoring notebook (``BERT_metrics.ipynb``)
  built ``ElectraConfig(nas_config=..., num_hidden_layers=...)`` without passing the hidden
  size, and their ``ElectraIntermediate`` reads the global ``intermediate_size``, so every
  network they scored had hidden size 256 and feed-forward dimension 1024 in every layer.
  ``build(..., as_scored=True)`` rebuilds that network; its parameter count equals their
  "Number of Parameters" for all 500 ids, the default network's for the 38 whose
  configuration already is hidden 256 with 1024 everywhere.
* The DCT is computed as a product with the DCT-II matrix (unnormalised, ``2 * sum x cos``,
  SciPy's ``norm=None``) instead of the reference's FFT-based ``dct_2d``: same values up to
  rounding.

A caution about the GLUE scores: the networks were *trained* by another code path, the
TensorFlow ELECTRA in the same repository (``tensorflow-model/model/modeling.py``), whose
``attention_layer`` chooses the operation with ``operation_type is "SA"``-style identity tests
on strings read from JSON.  Those tests are false in CPython, so as we read that code every
trained layer was plain scaled-dot-product attention with the layer's head count (hidden size
as configured, first feed-forward map 4 x hidden, further maps of the configured dimension).
The data agree: a least-squares fit of GLUE on the architecture choices (n=500) gives the
fraction of SA layers t=1.2, of LT layers t=0.25, of WMA t=-0.5, of DFT t=-0.5, but 4 heads
t=4.4, hidden 256 t=16 and depth 4 t=33.  zcnas builds the operations as the configuration
names them (as the authors' scoring code does); the benchmark's ground truth may not depend
on them.

Slots
-----
Per-layer statistics are aligned on 27 slots, the same for every architecture, in forward
order: ``embeddings_project``; for each of 4 layer positions ``layers.{i}.operation`` (all
linear and convolution maps of the token-mixing operation, summed: q/k/v [+ weighted query]
for SA, the input map for LT, q/k/v, separable convolution, kernel generator and convolution
output map for DSC), ``layers.{i}.operation_output`` (the dense map after SA/DSC),
``layers.{i}.feed_forward.{j}`` for j = 0, 1, 2 (the j-th stacked feed-forward map),
``layers.{i}.feed_forward_output``; then ``classifier.dense`` and ``classifier.out_proj``.
The operation is one slot because its maps differ from op to op but play one role (mixing
tokens); the slot then compares "how much the mixing part of layer i matters" across SA, LT and
DSC.  Feed-forward maps keep their own slots because they are the same kind of map in every
architecture.  A 2-layer network fills layer positions 0 and 1 only, a one-map feed-forward
only ``feed_forward.0``, an LT layer no ``operation_output`` and a hidden-128 network no
``embeddings_project``, just as an NB201 cell with a pooling edge fills no conv slot there.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from zcnas.errors import ArchError, BenchmarkError
from zcnas.spaces.base import SearchSpace

_EXAMPLE = "h256|SA:WMA:4:1024x3|LT:DCT:2:512x3|SA:SDP:4:512x3|SA:SDP:4:1024x1"

HIDDEN_SIZES = (128, 256)
NUM_LAYERS = (2, 4)
OPERATIONS = ("SA", "LT", "DSC")
# The parameter each operation takes, as the benchmark JSON spells it (DSC's kernel is an int).
OPERATION_PARAMETERS = {"SA": ("SDP", "WMA"), "LT": ("DFT", "DCT"), "DSC": (5, 9)}
HEADS = (2, 4)
FEED_FORWARD_DIMS = (512, 1024)
NUM_FEED_FORWARD = (1, 3)

# ELECTRA-small settings of the reference (configuration_electra.py defaults).
EMBEDDING_SIZE = 128
VOCAB_SIZE = 30522
MAX_POSITIONS = 512
TYPE_VOCAB_SIZE = 2
PAD_TOKEN_ID = 0
LAYER_NORM_EPS = 1e-12
DROPOUT = 0.1
INIT_STD = 0.02
CONV_HEAD_RATIO = 2
# What BERT/ELECTRA add to the attention scores of masked keys.
MASK_SCORE = -10000.0
# The network the authors scored (see the module docstring): these widths in every layer.
SCORED_HIDDEN_SIZE = 256
SCORED_FEED_FORWARD_DIM = 1024

_CHOICES_PER_LAYER = 3 * 2 * 2 * 2 * 2
NUM_ARCHS = len(HIDDEN_SIZES) * sum(_CHOICES_PER_LAYER**n for n in NUM_LAYERS)
MAX_LAYERS = max(NUM_LAYERS)
MAX_FEED_FORWARD = max(NUM_FEED_FORWARD)


def _is_int(value) -> bool:
    """True for Python/NumPy integers but not bools."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


@dataclass(frozen=True)
class EncoderLayerConfig:
    """One encoder layer: operation, its parameter, heads, feed-forward dimension and count."""

    operation: str
    parameter: str | int
    heads: int
    feed_forward_dim: int
    num_feed_forward: int

    def to_string(self) -> str:
        return f"{self.operation}:{self.parameter}:{self.heads}:{self.feed_forward_dim}x{self.num_feed_forward}"

    def to_config(self) -> dict:
        return {
            "operation_type": self.operation,
            "operation_parameter": self.parameter,
            "num_operation_heads": self.heads,
            "feed_forward_dimension": self.feed_forward_dim,
            "num_feed_forward": self.num_feed_forward,
        }


@dataclass(frozen=True)
class NASBERTArch:
    """A parsed architecture: hidden size and the encoder layers in order."""

    hidden_size: int
    layers: tuple[EncoderLayerConfig, ...]

    def to_string(self) -> str:
        return "|".join([f"h{self.hidden_size}"] + [layer.to_string() for layer in self.layers])


# ---------------------------------------------------------------------- validation


def _shown(encoding) -> str:
    """The offending input as an error message quotes it: its repr, cut short for a whole
    benchmark record (a dict of a dozen fields)."""
    text = repr(encoding)
    return text if len(text) <= 90 else text[:80] + "...}"


def _check_layer(encoding, index: int, operation, parameter, heads, dim, count) -> EncoderLayerConfig:
    """Validate one layer's five values (already converted from text when text was given)."""
    where = f"Architecture {_shown(encoding)}: layer {index}"
    if operation not in OPERATIONS:
        raise ArchError(f"{where} has unknown operation {operation!r}; use SA, LT or DSC, like {_EXAMPLE}.")
    allowed = OPERATION_PARAMETERS[operation]
    if parameter not in allowed or (operation == "DSC" and not _is_int(parameter)):
        names = " or ".join(str(a) for a in allowed)
        raise ArchError(f"{where}: {parameter!r} is not a parameter of {operation}, which takes {names}.")
    if not _is_int(heads) or heads not in HEADS:
        raise ArchError(f"{where} has {heads!r} heads but the space allows 2 or 4.")
    if not _is_int(dim) or dim not in FEED_FORWARD_DIMS:
        raise ArchError(f"{where} has feed-forward dimension {dim!r} but the space allows 512 or 1024.")
    if not _is_int(count) or count not in NUM_FEED_FORWARD:
        raise ArchError(f"{where} has {count!r} stacked feed-forward maps but the space allows 1 or 3.")
    parameter = int(parameter) if operation == "DSC" else parameter
    return EncoderLayerConfig(operation, parameter, int(heads), int(dim), int(count))


def _check_arch(encoding, hidden, layers: list[EncoderLayerConfig]) -> NASBERTArch:
    if not _is_int(hidden) or hidden not in HIDDEN_SIZES:
        raise ArchError(
            f"Architecture {_shown(encoding)} has hidden size {hidden!r} but NAS-Bench-BERT's are 128 and 256, "
            f"like {_EXAMPLE}."
        )
    if len(layers) not in NUM_LAYERS:
        raise ArchError(
            f"Architecture {_shown(encoding)} has {len(layers)} encoder layer(s) but NAS-Bench-BERT networks have "
            f"2 or 4, like {_EXAMPLE}."
        )
    return NASBERTArch(int(hidden), tuple(layers))


def _int_or_text(text: str) -> int | str:
    """Digits -> int; anything else stays text for `_check_layer` to reject by name."""
    return int(text) if text.isdigit() else text


def _parse_string(encoding: str) -> NASBERTArch:
    groups = encoding.strip().split("|")
    head = groups[0]
    if not head.startswith("h") or not head[1:].isdigit():
        raise ArchError(
            f"Architecture {_shown(encoding)} must start with the hidden size, h128 or h256, then one "
            f"op:parameter:heads:dimxcount group per layer, like {_EXAMPLE}."
        )
    layers = []
    for index, group in enumerate(groups[1:]):
        fields = group.split(":")
        if len(fields) != 4 or fields[3].count("x") != 1:
            raise ArchError(
                f"Architecture {_shown(encoding)}: layer {index} {group!r} is not op:parameter:heads:dimxcount "
                f"(e.g. SA:SDP:4:1024x3)."
            )
        operation, parameter, heads = fields[0], fields[1], fields[2]
        dim, count = fields[3].split("x")
        if operation == "DSC":
            parameter = _int_or_text(parameter)
        layers.append(
            _check_layer(
                encoding, index, operation, parameter, _int_or_text(heads), _int_or_text(dim), _int_or_text(count)
            )
        )
    return _check_arch(encoding, int(head[1:]), layers)


_LAYER_KEYS = (
    "operation_type",
    "operation_parameter",
    "num_operation_heads",
    "feed_forward_dimension",
    "num_feed_forward",
)


def _parse_config(encoding, config: dict) -> NASBERTArch:
    """The benchmark JSON's forms: a record (``hparams.model_hparam_overrides``) or the overrides."""
    if "hparams" in config:
        hparams = config["hparams"]
        config = hparams.get("model_hparam_overrides") if isinstance(hparams, dict) else None
        if not isinstance(config, dict):
            raise ArchError(
                f"Benchmark record {_shown(encoding)} has no hparams.model_hparam_overrides dict to read the "
                "architecture from."
            )
    shape = (
        'a dict {"hidden_size": 128 or 256, "nas_config": {"encoder_layers": [...]}} as in '
        "nas_bench_bert_benchmark.json's hparams.model_hparam_overrides"
    )
    nas_config = config.get("nas_config")
    if set(config) != {"hidden_size", "nas_config"} or not isinstance(nas_config, dict):
        raise ArchError(f"Architecture {_shown(encoding)} is not {shape}.")
    layers_in = nas_config.get("encoder_layers")
    if set(nas_config) != {"encoder_layers"} or not isinstance(layers_in, list):
        raise ArchError(f"Architecture {_shown(encoding)} is not {shape}.")
    layers = []
    for index, layer in enumerate(layers_in):
        if not isinstance(layer, dict) or set(layer) != set(_LAYER_KEYS):
            raise ArchError(
                f"Architecture {_shown(encoding)}: encoder layer {index} must be a dict with exactly the keys "
                f"{', '.join(_LAYER_KEYS)}."
            )
        layers.append(_check_layer(encoding, index, *(layer[key] for key in _LAYER_KEYS)))
    return _check_arch(encoding, config["hidden_size"], layers)


# ---------------------------------------------------------------------- network


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(N, L, heads * d) -> (N, heads, L, d)."""
    n, length, width = x.shape
    return x.view(n, length, heads, width // heads).permute(0, 2, 1, 3)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(N, heads, L, d) -> (N, L, heads * d)."""
    n, heads, length, d = x.shape
    return x.permute(0, 2, 1, 3).reshape(n, length, heads * d)


def _dct_matrix(size: int, like: torch.Tensor) -> torch.Tensor:
    """Unnormalised DCT-II matrix: ``C[k, m] = 2 cos(pi k (2m + 1) / (2 size))``."""
    k = torch.arange(size, dtype=like.dtype, device=like.device)
    return 2.0 * torch.cos(math.pi * k[:, None] * (2.0 * k[None, :] + 1.0) / (2.0 * size))


def dct_2d(x: torch.Tensor) -> torch.Tensor:
    """DCT-II (SciPy ``norm=None``) over the last two dimensions, as the reference's ``dct_2d``."""
    rows, cols = x.shape[-2:]
    return _dct_matrix(rows, x) @ x @ _dct_matrix(cols, x).transpose(0, 1)


class SelfAttention(nn.Module):
    """SA: multi-head scaled dot-product attention; WMA passes the query through one more
    bias-free linear map first (reference ``ElectraWeightedMultiplcativeAttention``)."""

    def __init__(self, hidden: int, heads: int, weighted: bool):
        super().__init__()
        self.heads = heads
        self.head_size = hidden // heads
        self.query = nn.Linear(hidden, hidden)
        # Not called ``weight`` as in the reference: code that reads ``module.weight`` expects a tensor.
        self.weighted_query = nn.Linear(hidden, hidden, bias=False) if weighted else None
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.softmax = nn.Softmax(dim=-1)
        self.dropout = nn.Dropout(DROPOUT)

    def forward(self, x: torch.Tensor, mask_scores: torch.Tensor | None) -> torch.Tensor:
        query = self.query(x)
        if self.weighted_query is not None:
            query = self.weighted_query(query)
        key, value = self.key(x), self.value(x)
        scores = _split_heads(query, self.heads) @ _split_heads(key, self.heads).transpose(-1, -2)
        scores = scores / math.sqrt(self.head_size)
        if mask_scores is not None:
            scores = scores + mask_scores
        probs = self.dropout(self.softmax(scores))
        return _merge_heads(probs @ _split_heads(value, self.heads))


class LinearTransform(nn.Module):
    """LT: a linear map, split into heads, then the real part of the 2-D DFT or the 2-D DCT over
    (sequence, head dimension) of each head (reference ``ElectraDiscrete{Fourier,Cosine}Transform``)."""

    def __init__(self, hidden: int, heads: int, transform: str):
        super().__init__()
        self.heads = heads
        self.transform = transform
        self.input = nn.Linear(hidden, hidden)
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x: torch.Tensor, mask_scores: torch.Tensor | None) -> torch.Tensor:
        per_head = _split_heads(self.input(x), self.heads)
        if self.transform == "DFT":
            mixed = torch.fft.fft2(per_head).real
        else:
            mixed = dct_2d(per_head)
        # Computed and discarded as in the reference: the authors' head-softmax-confidence
        # metric reads this module's output through a hook.
        self.softmax(mixed)
        return _merge_heads(mixed)


class SeparableConv1d(nn.Module):
    """Depthwise (kernel k, 'same' padding) then pointwise 1-D convolution, bias-free, plus one
    bias per output channel (reference ``SeparableConv1D``, from ConvBERT)."""

    def __init__(self, channels_in: int, channels_out: int, kernel: int):
        super().__init__()
        self.depthwise = nn.Conv1d(
            channels_in, channels_in, kernel, groups=channels_in, padding=kernel // 2, bias=False
        )
        self.pointwise = nn.Conv1d(channels_in, channels_out, 1, bias=False)
        self.bias = nn.Parameter(torch.zeros(channels_out, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x)) + self.bias


class DynamicSeparableConv(nn.Module):
    """DSC: ConvBERT's mixed attention (reference ``ElectraConvSelfAttention``).

    ``max(1, heads // 2)`` self-attention heads of size ``hidden // heads`` next to as many
    span-based dynamic convolution heads: a separable convolution of the input times the query
    generates, per position and head, a softmax-normalised kernel that convolves a linear map of
    the input.  The two halves are concatenated back to ``hidden``.
    """

    def __init__(self, hidden: int, heads: int, kernel: int):
        super().__init__()
        self.kernel = kernel
        self.heads = max(1, heads // CONV_HEAD_RATIO)
        self.head_size = hidden // heads
        width = self.heads * self.head_size
        self.query = nn.Linear(hidden, width)
        self.key = nn.Linear(hidden, width)
        self.value = nn.Linear(hidden, width)
        self.key_conv = SeparableConv1d(hidden, width, kernel)
        self.conv_kernel = nn.Linear(width, self.heads * kernel)
        self.conv_out = nn.Linear(hidden, width)
        self.softmax = nn.Softmax(dim=-1)
        self.dropout = nn.Dropout(DROPOUT)

    def forward(self, x: torch.Tensor, mask_scores: torch.Tensor | None) -> torch.Tensor:
        n, length, _ = x.shape
        query, key, value = self.query(x), self.key(x), self.value(x)
        key_conv = self.key_conv(x.transpose(1, 2)).transpose(1, 2)
        kernels = self.conv_kernel(key_conv * query).reshape(n * length * self.heads, self.kernel, 1)
        kernels = torch.softmax(kernels, dim=1)
        pad = (self.kernel - 1) // 2
        # windows[b, l, c, j] = conv_out(x)[b, l + j - pad, c], zero outside the sequence.
        windows = F.pad(self.conv_out(x), (0, 0, pad, pad)).unfold(1, self.kernel, 1)
        conv = windows.reshape(n * length * self.heads, self.head_size, self.kernel) @ kernels
        conv = conv.reshape(n, length, self.heads, self.head_size)

        scores = _split_heads(query, self.heads) @ _split_heads(key, self.heads).transpose(-1, -2)
        scores = scores / math.sqrt(self.head_size)
        if mask_scores is not None:
            scores = scores + mask_scores
        probs = self.dropout(self.softmax(scores))
        attended = (probs @ _split_heads(value, self.heads)).permute(0, 2, 1, 3)
        return torch.cat([attended, conv], dim=2).reshape(n, length, 2 * self.heads * self.head_size)


class EncoderLayer(nn.Module):
    """Operation [-> dense, dropout, LayerNorm(+ input) for SA/DSC] -> feed-forward stack ->
    dense, dropout, LayerNorm(+ operation output) (reference ``ElectraLayer``)."""

    def __init__(self, config: EncoderLayerConfig, hidden: int):
        super().__init__()
        if config.operation == "SA":
            self.operation = SelfAttention(hidden, config.heads, weighted=config.parameter == "WMA")
        elif config.operation == "LT":
            self.operation = LinearTransform(hidden, config.heads, config.parameter)
        else:
            self.operation = DynamicSeparableConv(hidden, config.heads, config.parameter)
        has_output = config.operation != "LT"
        self.operation_output = nn.Linear(hidden, hidden) if has_output else None
        self.operation_norm = nn.LayerNorm(hidden, eps=LAYER_NORM_EPS) if has_output else None
        dim = config.feed_forward_dim
        self.feed_forward = nn.ModuleList(
            nn.Linear(hidden if j == 0 else dim, dim) for j in range(config.num_feed_forward)
        )
        # One GELU module for the whole stack, as the reference's ``intermediate_act_fn``: a hook
        # on it sees every feed-forward activation of the layer.
        self.activation = nn.GELU()
        self.feed_forward_output = nn.Linear(dim, hidden)
        self.output_norm = nn.LayerNorm(hidden, eps=LAYER_NORM_EPS)
        self.dropout = nn.Dropout(DROPOUT)

    def forward(self, x: torch.Tensor, mask_scores: torch.Tensor | None) -> torch.Tensor:
        mixed = self.operation(x, mask_scores)
        if self.operation_output is not None:
            mixed = self.operation_norm(self.dropout(self.operation_output(mixed)) + x)
        hidden = mixed
        for linear in self.feed_forward:
            hidden = self.activation(linear(hidden))
        return self.output_norm(self.dropout(self.feed_forward_output(hidden)) + mixed)


class Embeddings(nn.Module):
    """Word + token type (type 0) + absolute position embeddings -> LayerNorm -> dropout."""

    def __init__(self, vocab_size: int, max_positions: int):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, EMBEDDING_SIZE, padding_idx=PAD_TOKEN_ID)
        self.position_embeddings = nn.Embedding(max_positions, EMBEDDING_SIZE)
        self.token_type_embeddings = nn.Embedding(TYPE_VOCAB_SIZE, EMBEDDING_SIZE)
        self.norm = nn.LayerNorm(EMBEDDING_SIZE, eps=LAYER_NORM_EPS)
        self.dropout = nn.Dropout(DROPOUT)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        # Single-segment input: every token has type 0, as in the authors' tokenised batch.
        embedded = (
            self.word_embeddings(input_ids)
            + self.token_type_embeddings(torch.zeros_like(input_ids))
            + self.position_embeddings(positions)[None]
        )
        return self.dropout(self.norm(embedded))


class ClassificationHead(nn.Module):
    """HuggingFace's ELECTRA sequence-classification head on the first token."""

    def __init__(self, hidden: int, num_classes: int):
        super().__init__()
        self.dropout = nn.Dropout(DROPOUT)
        self.dense = nn.Linear(hidden, hidden)
        self.activation = nn.GELU()
        self.out_proj = nn.Linear(hidden, num_classes)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        x = self.dropout(hidden_states[:, 0])
        x = self.dropout(self.activation(self.dense(x)))
        return self.out_proj(x)


def _electra_init(module: nn.Module) -> None:
    """ELECTRA's initialisation (reference ``_init_weights`` and ``SeparableConv1D``)."""
    if isinstance(module, (nn.Linear, nn.Conv1d)):
        nn.init.normal_(module.weight, mean=0.0, std=INIT_STD)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, mean=0.0, std=INIT_STD)
        if module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, SeparableConv1d):
        nn.init.zeros_(module.bias)


class NASBERTNetwork(nn.Module):
    """One NAS-Bench-BERT encoder with a classification head; ``forward`` returns logits."""

    def __init__(self, arch: NASBERTArch, num_classes: int, vocab_size: int, max_positions: int):
        super().__init__()
        self.arch = arch
        self.vocab_size = vocab_size
        self.max_positions = max_positions
        self.embeddings = Embeddings(vocab_size, max_positions)
        hidden = arch.hidden_size
        self.embeddings_project = nn.Linear(EMBEDDING_SIZE, hidden) if hidden != EMBEDDING_SIZE else None
        self.layers = nn.ModuleList(EncoderLayer(layer, hidden) for layer in arch.layers)
        self.classifier = ClassificationHead(hidden, num_classes)
        self.apply(_electra_init)

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Last hidden state (N, L, hidden): what the authors' metrics back-propagated from."""
        hidden = self.embeddings(input_ids)
        if self.embeddings_project is not None:
            hidden = self.embeddings_project(hidden)
        mask_scores = None
        if attention_mask is not None:
            keep = attention_mask.to(hidden.dtype)[:, None, None, :]
            mask_scores = (1.0 - keep) * MASK_SCORE
        for layer in self.layers:
            hidden = layer(hidden, mask_scores)
        return hidden

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.classifier(self.encode(input_ids, attention_mask))

    def get_input_embeddings(self) -> nn.Embedding:
        """The word-embedding table (HuggingFace's name): proxies that need a continuous input
        (jacob_cov) differentiate w.r.t. its output."""
        return self.embeddings.word_embeddings

    def num_encoder_parameters(self) -> int:
        """Parameters without the classification head: the authors' "Number of Parameters"
        (``sum(p.numel() for p in ElectraModel.parameters())``)."""
        head = {id(p) for p in self.classifier.parameters()}
        return sum(p.numel() for p in self.parameters() if id(p) not in head)


# ---------------------------------------------------------------------- the space


class NASBERT(SearchSpace):
    """The NAS-Bench-BERT space: encodings, sampling, the network and its slots.

    Stateless; the registry holds one instance.  Every user-facing error is an `ArchError`
    (bad encoding or option) or `BenchmarkError` (probe batch the network cannot take).
    """

    name = "nasbert"
    description = (
        "NAS-Bench-BERT: ELECTRA-style encoders, 2 or 4 layers of attention, Fourier/cosine transform "
        "or dynamic convolution (GLUE)"
    )
    example = _EXAMPLE
    input_kind = "tokens"
    default_options = {"vocab_size": VOCAB_SIZE, "max_positions": MAX_POSITIONS, "as_scored": False}
    # The architecture fixes every width; a small vocabulary and position table are what make
    # the network cheap (the word embeddings are 3.9M of its 4.3M to 15.8M parameters).
    small_options = {"vocab_size": 1000, "max_positions": 64}
    NUM_ARCHS = NUM_ARCHS

    # ---------------------------------------------------------------- encodings

    def parse(self, encoding) -> NASBERTArch:
        """Canonical string, benchmark record / overrides dict, or that dict as JSON text ->
        `NASBERTArch`.  Strict: upper-case op names, no spaces inside the string."""
        if isinstance(encoding, dict):
            return _parse_config(encoding, encoding)
        if not isinstance(encoding, str):
            raise ArchError(
                f"Architecture {_shown(encoding)} is not a string or a config dict; give a NAS-Bench-BERT "
                f"encoding such as {_EXAMPLE}."
            )
        text = encoding.strip()
        if text.startswith("{"):
            try:
                config = json.loads(text)
            except json.JSONDecodeError:
                raise ArchError(
                    f"Architecture {_shown(encoding)} starts with '{{' but is not valid JSON; give a config dict "
                    f"or a string such as {_EXAMPLE}."
                ) from None
            return _parse_config(encoding, config)
        return _parse_string(encoding)

    def to_string(self, parsed: NASBERTArch) -> str:
        return parsed.to_string()

    def canonical(self, encoding) -> str:
        """The validated canonical string: the key stored in benchmark files."""
        return self.parse(encoding).to_string()

    def to_config(self, encoding) -> dict:
        """The benchmark JSON's ``model_hparam_overrides`` dict of an architecture."""
        arch = self.parse(encoding)
        return {
            "hidden_size": arch.hidden_size,
            "nas_config": {"encoder_layers": [layer.to_config() for layer in arch.layers]},
        }

    # ---------------------------------------------------------------- sampling

    def sample(self, n: int, rng: np.random.Generator) -> list[str]:
        """n distinct architectures, drawn as the authors drew the benchmark's 500
        (``space_maker.ipynb``): hidden size and depth uniformly, then each layer's five
        choices uniformly; a repeat is drawn again.  So half the draws have 2 layers (uniform
        over architectures would give 2-layer networks 1 chance in 2,305)."""
        if not _is_int(n) or not 1 <= int(n) <= NUM_ARCHS:
            raise ArchError(f"Cannot sample {n!r} architectures from NAS-Bench-BERT; ask for 1..{NUM_ARCHS}.")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, not {type(rng).__name__}")
        seen: set[str] = set()
        picks: list[str] = []
        while len(picks) < int(n):
            # Every candidate draws all 4 layers' choices, used or not, so the stream of draws
            # does not depend on the depths drawn before it.
            batch = max(16, int(n) - len(picks))
            hidden = rng.integers(len(HIDDEN_SIZES), size=batch)
            depth = rng.integers(len(NUM_LAYERS), size=batch)
            choices = rng.integers(2, size=(batch, MAX_LAYERS, 5))
            ops = rng.integers(len(OPERATIONS), size=(batch, MAX_LAYERS))
            for b in range(batch):
                layers = []
                for i in range(NUM_LAYERS[depth[b]]):
                    op = OPERATIONS[ops[b, i]]
                    c = choices[b, i]
                    layers.append(
                        EncoderLayerConfig(
                            op,
                            OPERATION_PARAMETERS[op][c[0]],
                            HEADS[c[1]],
                            FEED_FORWARD_DIMS[c[2]],
                            NUM_FEED_FORWARD[c[3]],
                        )
                    )
                text = NASBERTArch(HIDDEN_SIZES[hidden[b]], tuple(layers)).to_string()
                if text not in seen:
                    seen.add(text)
                    picks.append(text)
                    if len(picks) == int(n):
                        break
        return picks

    # ---------------------------------------------------------------- networks

    def check_input_shape(self, shape, max_positions: int = MAX_POSITIONS) -> None:
        """Reject a probe batch shape other than (N, L) token ids with 1 <= L <= max_positions
        (the network has that many position embeddings)."""
        shape = tuple(shape)
        if len(shape) != 2:
            raise BenchmarkError(
                f"Probe batch shape {shape} is not 2-D (N, L); NAS-Bench-BERT networks take batches of token ids."
            )
        n, length = shape
        if n < 1 or not 1 <= length <= max_positions:
            raise BenchmarkError(
                f"Probe batch shape {shape} needs at least one sequence of 1..{max_positions} tokens "
                f"(NAS-Bench-BERT networks have {max_positions} position embeddings)."
            )

    def check_vocabulary(self, probe_vocab_size: int, vocab_size: int = VOCAB_SIZE) -> None:
        """Reject a probe tokenised with a vocabulary larger than the network's embedding table
        (the authors used ELECTRA's 30522-token WordPiece vocabulary)."""
        if not _is_int(probe_vocab_size) or probe_vocab_size > vocab_size:
            raise BenchmarkError(
                f"The probe's tokenizer has a vocabulary of {probe_vocab_size!r} tokens but the network embeds "
                f"{vocab_size}; build it with vocab_size={probe_vocab_size} or use ELECTRA's tokenizer."
            )

    def check_token_ids(self, ids, vocab_size: int = VOCAB_SIZE, max_positions: int = MAX_POSITIONS) -> None:
        """Reject a probe batch of token ids the network cannot embed: wrong shape, not
        integers, or ids outside 0..vocab_size-1."""
        array = ids.detach().cpu().numpy() if isinstance(ids, torch.Tensor) else np.asarray(ids)
        self.check_input_shape(array.shape, max_positions=max_positions)
        if not np.issubdtype(array.dtype, np.integer):
            raise BenchmarkError(f"Probe token ids have dtype {array.dtype}; NAS-Bench-BERT networks need integer ids.")
        low, high = int(array.min()), int(array.max())
        if low < 0 or high >= vocab_size:
            raise BenchmarkError(
                f"Probe token ids span {low}..{high} but the network's vocabulary is 0..{vocab_size - 1}; "
                f"build it with a larger vocab_size or re-tokenise the probe."
            )

    def build(self, encoding, num_classes: int = 2, **options) -> NASBERTNetwork:
        """The encoder of one architecture plus a classification head, in training mode with
        ELECTRA's initialisation.

        Options: ``vocab_size`` (30522, ELECTRA's WordPiece vocabulary), ``max_positions``
        (512) and ``as_scored`` (False).  ``as_scored=True`` builds the network the authors
        computed their metrics on (hidden size 256 and feed-forward dimension 1024 in every
        layer, whatever the configuration says; see the module docstring); the default builds
        the configuration as written.
        """
        arch = self.parse(encoding)
        unknown = sorted(set(options) - set(self.default_options))
        if unknown:
            raise ArchError(
                f"Unknown NAS-Bench-BERT network option {unknown[0]!r}; the options are "
                f"{', '.join(self.default_options)}."
            )
        opts = {**self.default_options, **options}
        for label in ("num_classes", "vocab_size", "max_positions"):
            value = num_classes if label == "num_classes" else opts[label]
            if not _is_int(value) or value < 1:
                raise ArchError(f"NAS-Bench-BERT network setting {label}={value!r} must be a positive integer.")
        if not isinstance(opts["as_scored"], (bool, np.bool_)):
            raise ArchError(f"NAS-Bench-BERT network setting as_scored={opts['as_scored']!r} must be true or false.")
        if opts["as_scored"]:
            arch = NASBERTArch(
                SCORED_HIDDEN_SIZE,
                tuple(
                    EncoderLayerConfig(l.operation, l.parameter, l.heads, SCORED_FEED_FORWARD_DIM, l.num_feed_forward)
                    for l in arch.layers
                ),
            )
        return NASBERTNetwork(arch, int(num_classes), int(opts["vocab_size"]), int(opts["max_positions"]))

    # ---------------------------------------------------------------- slots

    def layer_slots(self) -> list[str]:
        """The 27 slots of every NAS-Bench-BERT network, in forward order (module docstring)."""
        slots = ["embeddings_project"]
        for i in range(MAX_LAYERS):
            slots += [f"layers.{i}.operation", f"layers.{i}.operation_output"]
            slots += [f"layers.{i}.feed_forward.{j}" for j in range(MAX_FEED_FORWARD)]
            slots.append(f"layers.{i}.feed_forward_output")
        return slots + ["classifier.dense", "classifier.out_proj"]

    def slot_of(self, module_path: str) -> str | None:
        """``layers.{i}.operation.<anything>`` -> ``layers.{i}.operation``; other linear maps
        are their own slot; anything else (embedding tables, norms) has none."""
        parts = module_path.split(".")
        if len(parts) > 3 and parts[0] == "layers" and parts[2] == "operation":
            return ".".join(parts[:3])
        return module_path if module_path in _SLOTS else None


_SLOTS = frozenset(NASBERT().layer_slots())

"""The one registry of training-free proxies.

A proxy is a plain function `proxy(ctx: ProbeContext) -> ProxyResult`, registered with its
metadata by the `@proxy(...)` decorator. The CLI (`zcnas proxies`), the runner, the reports
and the common tests all read this registry; nothing else lists proxies.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field
from typing import Callable

from zcnas.errors import ProxyError

# Aggregations: how a proxy's per-layer statistics relate to its score.
#   "sum":  score == sum of the per-layer values (the zero-cost-NAS `sum_arr` convention)
#   "none": the per-layer values describe the network layer by layer but do not add up to the
#           score (for example `params` counts BN parameters too), or there are none at all.
AGGREGATIONS = ("sum", "none")

# What a proxy's per-layer statistics are keyed by:
#   "conv_linear": module paths of conv/linear layers (the space's layer slots, e.g. NB201's 98)
#   "batchnorm":   module paths of BatchNorm layers, plus named extra terms (zen's "delta")
#   "none":        the proxy has no per-layer statistics
LAYER_KEYS = ("conv_linear", "batchnorm", "none")

# The kinds of network a proxy applies to, read against a space's `input_kind`: "image"
# (NCHW float batches) and "tokens" (token ids + attention mask). A proxy declares the kinds
# its definition covers and, for the others, why not (`not_for`): the run refuses it before it
# starts, in one sentence, instead of recording a NaN per architecture.
INPUT_KINDS = ("image", "tokens")
INPUT_NOUNS = {"image": "image networks", "tokens": "token networks"}


@dataclass(frozen=True)
class ProxyResult:
    """One proxy on one architecture: a scalar (higher = predicted better) and per-layer values."""

    score: float
    layers: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ProxyInfo:
    name: str
    family: str
    function: Callable
    passes: tuple[str, ...]
    needs_labels: bool
    needs_data: bool
    aggregation: str
    reference: str
    summary: str
    min_batch: int = 1
    layer_keys: str = "conv_linear"
    applies_to: tuple[str, ...] = ("image",)
    not_for: str = ""

    def applies(self, input_kind: str) -> bool:
        """Whether the proxy is defined on networks of this input kind (a space's `input_kind`)."""
        return input_kind in self.applies_to

    def __call__(self, ctx) -> ProxyResult:
        return self.function(ctx)


_REGISTRY: dict[str, ProxyInfo] = {}


def proxy(
    name: str,
    *,
    family: str,
    passes: tuple[str, ...],
    needs_labels: bool,
    needs_data: bool,
    reference: str,
    aggregation: str = "sum",
    min_batch: int = 1,
    layer_keys: str = "conv_linear",
    applies_to: tuple[str, ...] = ("image",),
    not_for: str = "",
):
    """Register a proxy function under a stable public name.

    `applies_to`: the input kinds its definition covers; `not_for`: a clause saying why it
    does not apply to the others (completes "Proxy X does not apply to token networks: ...").
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}")
    if layer_keys not in LAYER_KEYS:
        raise ValueError(f"layer_keys must be one of {LAYER_KEYS}")
    if not applies_to or set(applies_to) - set(INPUT_KINDS):
        raise ValueError(f"applies_to must name some of {INPUT_KINDS}")
    if set(applies_to) != set(INPUT_KINDS) and not not_for:
        raise ValueError(f"proxy {name!r} applies to {applies_to} only: say why in not_for")

    def register(function):
        if name in _REGISTRY:
            raise ValueError(f"proxy {name!r} registered twice")
        doc = (function.__doc__ or "").strip()
        _REGISTRY[name] = ProxyInfo(
            name=name,
            family=family,
            function=function,
            passes=tuple(passes),
            needs_labels=needs_labels,
            needs_data=needs_data,
            aggregation=aggregation,
            reference=reference,
            summary=doc.splitlines()[0] if doc else "",
            min_batch=min_batch,
            layer_keys=layer_keys,
            applies_to=tuple(applies_to),
            not_for=not_for,
        )
        return function

    return register


def _load_families() -> None:
    # Importing a family module registers its proxies; kept here so `get_proxy` always sees all.
    from zcnas.proxies import activation, gradient, gradsign, jacobian, ntk, size, spectral, transformer  # noqa: F401


def list_proxies(pattern: str = "*", input_kind: str | None = None) -> list[ProxyInfo]:
    """Every registered proxy whose name matches the wildcard `pattern` (timm's list_models);
    with `input_kind` ("image", "tokens"), only those that apply to such networks."""
    _load_families()
    return [
        info
        for name, info in sorted(_REGISTRY.items())
        if fnmatch.fnmatch(name, pattern) and (input_kind is None or info.applies(input_kind))
    ]


def check_applicable(names: list[str], input_kind: str, space_name: str | None = None) -> None:
    """Refuse, before any work, a proxy whose definition does not cover this kind of network."""
    for name in names:
        info = get_proxy(name)
        if not info.applies(input_kind):
            noun = INPUT_NOUNS.get(input_kind, f"{input_kind} networks")
            where = f" such as {space_name}'s" if space_name else ""
            listing = f"`zcnas proxies --space {space_name}`" if space_name else "`zcnas proxies`"
            raise ProxyError(
                f"Proxy {name} does not apply to {noun}{where}: {info.not_for}; {listing} lists those that do."
            )


def get_proxy(name: str) -> ProxyInfo:
    _load_families()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ProxyError(f"Unknown proxy {name!r}; known proxies: {known} (see `zcnas proxies`).") from None


def proxies_markdown(infos: list[ProxyInfo]) -> str:
    """The proxy reference page (docs/proxies.md), written from the registry alone."""
    import inspect

    lines = [
        "# Proxies",
        "",
        "Generated from the registry by `zcnas proxies --markdown > docs/proxies.md`; every score is",
        "oriented so that higher means predicted-better. `aggregation: sum` means the per-layer",
        "statistics add up to the score.",
        "",
        "| name | family | inputs | labels | data | passes | aggregation |",
        "|---|---|---|---|---|---|---|",
    ]
    for info in infos:
        lines.append(
            f"| [{info.name}](#{info.name}) | {info.family} | {', '.join(info.applies_to)} "
            f"| {'yes' if info.needs_labels else 'no'} "
            f"| {'yes' if info.needs_data else 'no'} | {', '.join(info.passes)} | {info.aggregation} |"
        )
    for info in infos:
        doc = inspect.cleandoc(info.function.__doc__ or "")
        lines += ["", f"## {info.name}", "", f"*Reference:* {info.reference}", ""]
        if info.min_batch > 1:
            lines += [f"*Needs a probe batch of at least {info.min_batch}.*", ""]
        for kind in INPUT_KINDS:
            if not info.applies(kind):
                lines += [f"*Not for {INPUT_NOUNS[kind]}:* {info.not_for}.", ""]
        lines.append(doc)
    return "\n".join(lines) + "\n"


def parse_proxy_list(text: str) -> list[str]:
    """'synflow, nwot' or 'grad_*' -> registered names, in the order given, without repeats."""
    names: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if any(ch in item for ch in "*?["):
            matched = [info.name for info in list_proxies(item)]
            if not matched:
                raise ProxyError(f"No proxy matches {item!r}; see `zcnas proxies`.")
        else:
            matched = [get_proxy(item).name]
        names.extend(name for name in matched if name not in names)
    if not names:
        raise ProxyError("No proxy given; pass e.g. --proxies synflow,nwot (see `zcnas proxies`).")
    return names


def check_finite(name: str, result: ProxyResult) -> ProxyResult:
    """A proxy that yields NaN or inf has failed for this architecture; say so, don't hide it."""
    if not isinstance(result.score, float) or not math.isfinite(result.score):
        raise FloatingPointError(f"{name} returned a non-finite score ({result.score})")
    return result

"""The one entry point that runs the proxies you ask for on one network."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from zcnas.errors import ProxyError
from zcnas.proxies.passes import NTK_BATCH, ProbeContext
from zcnas.proxies.registry import check_applicable, check_finite, get_proxy


@dataclass
class ProxyOutcome:
    """A proxy's result on one architecture, or the reason it failed there."""

    score: float
    layers: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def check_batch(
    names: list[str], batch_size: int, has_labels: bool = True, input_kind: str = "image", space_name: str | None = None
) -> None:
    """Refuse, before any work, a probe batch some proxy cannot use, or a proxy that does not
    apply to this kind of network ("image" or "tokens"; `space_name` for the message)."""
    check_applicable(names, input_kind, space_name)
    for name in names:
        info = get_proxy(name)
        if batch_size < info.min_batch:
            raise ProxyError(
                f"Proxy {name} needs a probe batch of at least {info.min_batch} "
                f"{'sequences' if input_kind == 'tokens' else 'images'}; "
                f"got {batch_size} (raise --batch-size)."
            )
        if info.needs_labels and not has_labels:
            raise ProxyError(f"Proxy {name} needs labels, but the probe batch has none.")


def compute_proxies(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None,
    names: list[str],
    *,
    num_classes: int,
    seed: int = 0,
    share: bool = True,
    ntk_samples: int = NTK_BATCH,
    attention_mask: torch.Tensor | None = None,
) -> dict[str, ProxyOutcome]:
    """Score `model` with each named proxy; one proxy failing does not stop the others.

    With `share`, passes needed by several proxies run once (see `passes.py`), and a pass's
    seconds are split evenly among the proxies that read it: a proxy's `seconds` is its own
    computation plus its share of every pass it used, and the proxies' seconds add up to the
    time spent. Without, every proxy runs and pays for its passes alone. `ntk_samples`: how
    many probe samples the NTK kernel uses (ntk_cond, ntk_trace, lga).

    `x` is a float image batch (N, C, H, W) or integer token ids (N, L) with an optional
    `attention_mask` (N, L); a proxy that does not apply to that kind of network is refused
    (ProxyError) before any work.
    """
    infos = [get_proxy(name) for name in names]
    input_kind = "image" if x.is_floating_point() else "tokens"
    check_batch(names, int(x.shape[0]), y is not None, input_kind)

    def context(for_infos):
        passes = {p for info in for_infos for p in info.passes}
        return ProbeContext(
            model, x, y, num_classes=num_classes, passes=passes, seed=seed, ntk_samples=ntk_samples,
            attention_mask=attention_mask,
        )

    contexts = [context(infos)] if share else []
    outcomes: dict[str, ProxyOutcome] = {}
    own_seconds: dict[str, float] = {}
    for info in infos:
        if not share:
            contexts.append(context([info]))
        ctx = contexts[-1]
        ctx.reader = info.name
        ctx.take_pass_seconds()
        start = time.perf_counter()
        try:
            result = check_finite(info.name, info(ctx))
            outcomes[info.name] = ProxyOutcome(result.score, dict(result.layers))
        except ProxyError:
            raise
        except Exception as error:  # noqa: BLE001 - one architecture failing must not stop a run
            message = f"{type(error).__name__}: {error}".strip()
            outcomes[info.name] = ProxyOutcome(float("nan"), {}, 0.0, message[:500])
        finally:
            ctx.reader = None
        own_seconds[info.name] = time.perf_counter() - start - ctx.take_pass_seconds()
    for ctx in contexts:
        for key, seconds in ctx.pass_seconds.items():
            readers = ctx.readers.get(key) or set()
            for name in readers:
                own_seconds[name] += seconds / len(readers)
    for name, outcome in outcomes.items():
        outcome.seconds = max(own_seconds[name], 0.0)
    return outcomes

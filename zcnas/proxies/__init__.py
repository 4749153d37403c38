"""Training-free proxies: a registry, shared passes, one module per family."""

from zcnas.proxies.compute import ProxyOutcome, check_batch, compute_proxies
from zcnas.proxies.passes import ProbeContext, weighted_layers
from zcnas.proxies.registry import (
    ProxyInfo,
    ProxyResult,
    check_finite,
    get_proxy,
    list_proxies,
    parse_proxy_list,
    proxies_markdown,
    proxy,
)

__all__ = [
    "ProxyOutcome",
    "check_batch",
    "compute_proxies",
    "ProbeContext",
    "ProxyInfo",
    "ProxyResult",
    "check_finite",
    "get_proxy",
    "list_proxies",
    "parse_proxy_list",
    "proxies_markdown",
    "proxy",
    "weighted_layers",
]

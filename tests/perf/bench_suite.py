"""How much do shared passes save? Prints figures; asserts nothing (machines are noisy).

    python tests/perf/bench_suite.py [--space nb201] [--archs 6] [--batch-size 64] [--proxies all|a,b,...]
                                     [--modes unit,shared,alone]

For a fixed sample of a space's architectures (its full-size network: NB201 C=16 N=5, NB101
C=128 3x3 cells, DARTS C=32 8 cells; CIFAR-sized input, one torch thread, CPU), it measures
per architecture:
  - one forward+backward of the network with cross-entropy (the unit of cost),
  - the whole suite with shared passes, and with every proxy alone (`--no-share`),
and prints seconds per architecture, the alone/shared ratio, the suite's cost in units of
one forward+backward, and the peak resident memory of a worker running each mode.
Each mode runs in its own fresh process so peak memory is that mode's alone.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


CLASSIC = "params,flops,grad_norm,snip,grasp,fisher,synflow,jacob_cov,nwot,zen,plain,l2_norm,epe_nas"


def _batch(batch_size: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, 3, 32, 32, generator=generator)
    y = torch.randint(0, 10, (batch_size,), generator=generator)
    return x, y


def _archs(space_name: str, n: int, seed: int) -> list[str]:
    from zcnas.spaces import get_space

    return get_space(space_name).sample(n, np.random.default_rng(seed))


def measure(space_name: str, mode: str, n_archs: int, batch_size: int, proxies: list[str], repeats: int) -> dict:
    from zcnas.proxies import compute_proxies
    from zcnas.spaces import get_space

    torch.set_num_threads(1)
    space = get_space(space_name)
    x, y = _batch(batch_size)
    seconds = []
    for i, arch in enumerate(_archs(space_name, n_archs, 0)):
        torch.manual_seed(i)
        model = space.build(arch, num_classes=10, **space.default_options)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            if mode == "unit":
                model.zero_grad(set_to_none=True)
                F.cross_entropy(model(x), y).backward()
            else:
                compute_proxies(model, x, y, proxies, num_classes=10, seed=i, share=(mode == "shared"))
            times.append(time.perf_counter() - start)
        seconds.append(min(times))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"mode": mode, "seconds": seconds, "peak_mib": peak_mib}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="nb201", help="search space (its full-size network)")
    parser.add_argument("--modes", default="unit,shared,alone", help="which of unit,shared,alone to measure")
    parser.add_argument("--archs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--proxies", default=CLASSIC, help="comma-separated names, or 'all' (default: the NAS-Bench-Suite-Zero 13)"
    )
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--_mode", help=argparse.SUPPRESS)
    args = parser.parse_args()

    from zcnas.proxies import list_proxies, parse_proxy_list

    proxies = [p.name for p in list_proxies()] if args.proxies == "all" else parse_proxy_list(args.proxies)
    if args._mode:
        print(json.dumps(measure(args.space, args._mode, args.archs, args.batch_size, proxies, args.repeats)))
        return

    from zcnas.spaces import get_space

    modes = [m for m in ("unit", "shared", "alone") if m in args.modes.split(",")]
    if "unit" not in modes or "shared" not in modes:
        parser.error("--modes needs at least unit,shared")
    results = {}
    for mode in modes:
        command = [sys.executable, __file__, "--_mode", mode, "--space", args.space, "--archs", str(args.archs),
                   "--batch-size", str(args.batch_size), "--proxies", ",".join(proxies), "--repeats", str(args.repeats)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        results[mode] = json.loads(done.stdout.strip().splitlines()[-1])

    unit = np.array(results["unit"]["seconds"])
    shared = np.array(results["shared"]["seconds"])
    options = ", ".join(f"{k}={v}" for k, v in get_space(args.space).default_options.items())
    print(f"{len(proxies)} proxies: {', '.join(proxies)}")
    print(f"{args.archs} {args.space} architectures ({options}), batch {args.batch_size}, CPU, 1 thread, best of {args.repeats}")
    print(f"  one forward+backward       {statistics.median(unit):8.3f} s/arch (median)")
    print(f"  suite, shared passes       {statistics.median(shared):8.3f} s/arch   peak RSS {results['shared']['peak_mib']:7.0f} MiB")
    print(f"  shared cost                {statistics.median(shared / unit):8.2f} forward+backward equivalents (goal <= 6)")
    if "alone" in results:
        alone = np.array(results["alone"]["seconds"])
        print(f"  suite, each proxy alone    {statistics.median(alone):8.3f} s/arch   peak RSS {results['alone']['peak_mib']:7.0f} MiB")
        print(f"  alone / shared             {statistics.median(alone / shared):8.2f} x   (goal >= 2.5)")
        print(f"  alone cost                 {statistics.median(alone / unit):8.2f} forward+backward equivalents")
    print(f"  (peak RSS of a bare forward+backward worker: {results['unit']['peak_mib']:.0f} MiB)")


if __name__ == "__main__":
    main()

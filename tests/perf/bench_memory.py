"""Does a worker's memory grow with the architectures it scores? Prints figures; asserts nothing.

    python tests/perf/bench_memory.py BENCH.h5 [--archs 40] [--every 5] [-O C=32] [--proxies a,b,...]

Scores the benchmark's first `--archs` architectures one after another in this process, as
one worker does (`zcnas.run.runner.score_architecture`, one torch thread, the benchmark's
class-balanced probe batch of `--batch-size`), keeps every result as the run does, and prints
the resident set size (current and peak) every `--every` architectures. A leak shows as a
current size that climbs with the count; a peak set by the largest network so far shows as
a size that stops moving once that network has been seen. `-O KEY=VALUE` overrides the
space's network options (NB101's `C=32` for a quick look; the benchmark's own by default).
"""

from __future__ import annotations

import argparse
import resource

CLASSIC = "params,flops,grad_norm,snip,grasp,fisher,synflow,jacob_cov,nwot,zen,plain,l2_norm,epe_nas"


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bench")
    parser.add_argument("--archs", type=int, default=40)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--proxies", default=CLASSIC)
    parser.add_argument("-O", dest="options", action="append", default=[], help="KEY=VALUE network option")
    args = parser.parse_args()

    from zcnas.bench.format import open_benchmark
    from zcnas.run.runner import ArchTask, ScoringPayload, _space_options, score_architecture

    bench = open_benchmark(args.bench)
    options = _space_options(bench)
    for option in args.options:
        key, _, value = option.partition("=")
        options[key] = int(value)
    x, y = (t.numpy() for t in bench.probe_batch(args.batch_size, seed=0, draw="balanced"))
    payload = ScoringPayload(bench.search_space, options, bench.num_classes, x, y, tuple(args.proxies.split(",")))
    kept = []
    print(f"{bench.search_space} {options or '(default network)'}: {args.archs} architectures, batch {args.batch_size}")
    for i in range(min(args.archs, bench.n_archs)):
        _, outcomes = score_architecture(ArchTask(i, bench.encodings[i], seed=i), payload)
        kept.append(outcomes)
        if (i + 1) % args.every == 0:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"{i + 1:5d} architectures: resident {rss_mb():7.0f} MB, peak {peak:7.0f} MB", flush=True)
    failed = sum(1 for outcomes in kept for o in outcomes.values() if o.error)
    print(f"failed proxy results: {failed}")


if __name__ == "__main__":
    main()

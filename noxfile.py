"""Sessions: `nox -s tests` (the README's test command), `slow`, `demo`, `bench`.

Every session installs torch==2.13.0 first: a plain `torch` requirement with nothing
installed would pull a multi-GB CUDA build, and 2.13.0 is the CPU build this project pins.
"""

import nox

nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests"]

TORCH = "torch==2.13.0"
# The proxies whose correlations CI guards on the embedded benchmark (cheap enough for CI).
REGRESSION_PROXIES = "params,flops,synflow,grad_norm,snip,nwot,jacob_cov,fisher,zen,l2_norm"


def install(session, extras="test"):
    session.install(TORCH)
    session.install("-e", f".[{extras}]")


@nox.session
def tests(session):
    """The fast test suite (what CI runs)."""
    install(session)
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *session.posargs)


@nox.session
def slow(session):
    """Only the tests marked slow (real-data checks that take minutes)."""
    install(session)
    session.run("python", "-m", "pytest", "-q", "-m", "slow", *session.posargs)


@nox.session
def demo(session):
    """The README's main job: score the embedded default benchmark and print the report."""
    install(session, extras="dask")
    session.run("zcnas", "score", "--overwrite", *session.posargs)


@nox.session
def bench(session):
    """Shared vs alone passes of the proxy suite on NB201 (seconds, ratio, forward+backward units,
    memory), the classic suite's cost per architecture on NB101 and DARTS (batch 32, Suite-Zero's),
    then vectorised vs loop per-sample gradients (gradsign's and the NTK's passes: the speed-up),
    then where a parallel `zcnas score` spends its time and how it scales with workers and on Dask
    (docs/performance.md). Arguments after `--` go to the NB201 bench_suite.py run."""
    install(session)
    session.run("python", "tests/perf/bench_suite.py", *session.posargs)
    for space in ("nb101", "darts"):
        session.run(
            "python", "tests/perf/bench_suite.py", "--space", space, "--archs", "3", "--batch-size", "32",
            "--modes", "unit,shared", "--repeats", "1",
        )
    session.run("python", "tests/perf/bench_persample.py")
    session.run("python", "tests/perf/bench_workers.py")


@nox.session
def regression(session):
    """CI's correlation regression: score the embedded benchmark, check it against the baseline."""
    install(session)
    session.run(
        "zcnas", "score", "zcnas/data/default.h5", "--proxies", REGRESSION_PROXIES, "--workers", "2",
        "--out", "runs/regression.h5", "--overwrite", "--quiet",
    )
    session.run(
        "zcnas", "check", "runs/regression.report.json", "--baseline", "zcnas/data/default.baseline.json",
    )

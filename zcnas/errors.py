"""User-facing errors.

A `ZcnasError` carries one sentence that says what is wrong and what to do; the CLI prints
it and exits with `exit_code` (2: unusable input), never with a traceback.
"""


class ZcnasError(Exception):
    exit_code = 2


class BenchmarkError(ZcnasError):
    """A benchmark file that cannot be used (not HDF5, wrong layout, bad values)."""


class ArchError(ZcnasError):
    """An architecture encoding that does not parse or does not belong to the space."""


class ProxyError(ZcnasError):
    """An unknown proxy, or a proxy that cannot run on the given input (e.g. batch shape)."""


class RunError(ZcnasError):
    """A run file that cannot be used, or a run that cannot start or resume."""

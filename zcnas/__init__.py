"""zcnas: which training-free proxy ranks your architectures the way training would."""

__version__ = "0.1.0"

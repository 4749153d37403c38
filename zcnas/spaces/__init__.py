"""Search spaces: the one registry of spaces zcnas knows.

A space parses and validates encodings, builds a `torch.nn.Module` for one, samples
encodings, and names the parameterised layer *slots* shared by every architecture of the
space (so per-layer proxy statistics line up across architectures).
"""

from __future__ import annotations

from zcnas.errors import ArchError
from zcnas.spaces.nb201 import NB201

SPACES = {space.name: space for space in (NB201(),)}


def get_space(name: str):
    try:
        return SPACES[name]
    except KeyError:
        known = ", ".join(sorted(SPACES))
        raise ArchError(f"Unknown search space {name!r}; known spaces: {known}.") from None

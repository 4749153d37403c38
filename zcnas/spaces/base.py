"""What a search space provides: the protocol every space obeys (docs/spaces.md says why).

A space is the one place that knows an encoding. It is a stateless object, one instance in
the registry (`zcnas.spaces`), and offers:

* ``name``, ``description``, ``example`` (a canonical encoding), ``input_kind``
  ("image", "tokens" or "table" for a table-only space), ``default_options`` (the build
  options that give the benchmark's real network) and ``small_options`` (a narrow, shallow
  variant for cheap benchmarks and tests);
* ``parse(encoding)`` / ``canonical(encoding)``: validate an encoding (one sentence in an
  `ArchError` for a bad one) and give the string every spelling of it maps to;
* ``build(encoding, num_classes, **options)``: a fresh ``torch.nn.Module`` returning logits;
* ``sample(n, rng)``: n distinct canonical encodings drawn by the numpy Generator;
* ``check_input_shape(shape)``: a `BenchmarkError` for a probe batch the network cannot take;
* ``layer_slots(**options)`` and ``slot_of(module_path)``: the fixed list of slots on which
  per-layer statistics line up across the space's architectures, and which slot a layer of a
  built network belongs to (several layers may share a slot; their values are summed).

Subclassing `SearchSpace` is optional (the registry checks the methods, not the type), but
it gives the defaults below: identity ``slot_of``, ``canonical`` through ``parse`` +
``to_string``, and a table-only ``build`` that refuses with one sentence.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from zcnas.errors import ArchError, BenchmarkError

INPUT_KINDS = ("image", "tokens", "table")

# What `get_space` checks a plugin's object has, so a broken plugin fails when it is loaded,
# with its name, not halfway through a run.
REQUIRED_ATTRIBUTES = ("name", "parse", "canonical", "build", "sample", "check_input_shape", "layer_slots")


class SearchSpace:
    """Defaults for the space protocol; a space overrides what it knows."""

    name: str = ""
    description: str = ""
    example: str = ""
    input_kind: str = "image"
    default_options: dict[str, Any] = {}
    # A narrow/shallow variant of the network (cheap CI benchmarks, the common space tests).
    small_options: dict[str, Any] = {}

    # ------------------------------------------------------------------ encodings
    def parse(self, encoding) -> Any:  # pragma: no cover - every space overrides it
        raise NotImplementedError

    def canonical(self, encoding) -> str:
        return self.to_string(self.parse(encoding))

    def to_string(self, parsed) -> str:  # pragma: no cover - used by the default canonical
        raise NotImplementedError

    # ------------------------------------------------------------------ networks
    @property
    def can_build(self) -> bool:
        """False for a table-only space (ground truth and reference scores, no builder)."""
        return self.input_kind != "table"

    def build(self, encoding, num_classes: int = 10, **options):
        raise ArchError(
            f"The {self.name} space is table-only: zcnas has no builder for its networks, so it "
            "cannot score them; report and combine work on its benchmarks and reference runs."
        )

    def check_input_shape(self, shape) -> None:
        if not self.can_build:
            raise BenchmarkError(f"The {self.name} space is table-only and takes no probe batch.")

    def sample(self, n: int, rng: np.random.Generator) -> list[str]:
        raise ArchError(f"The {self.name} space cannot sample architectures.")

    # ------------------------------------------------------------------ slots
    def layer_slots(self, **options) -> list[str]:
        return []

    def slot_of(self, module_path: str) -> str | None:
        """The slot a Conv2d/Linear layer of a built network belongs to (identity by default:
        spaces that name their modules structurally need nothing more)."""
        return module_path

    def slot_options(self, options: dict) -> dict:
        """The build options that change `layer_slots` (by default those it accepts)."""
        import inspect

        accepted = inspect.signature(self.layer_slots).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
            return dict(options)
        return {k: v for k, v in options.items() if k in accepted}


def check_rgb_batch(shape, networks: str, *, min_side: int, multiple: int = 1) -> tuple[int, int, int, int]:
    """The image-batch check CNN spaces share: (N, C, H, W) with 3 channels and H, W of at
    least `min_side` (and multiples of `multiple`); a `BenchmarkError` sentence naming the
    `networks` ("NAS-Bench-201 networks") otherwise. Returns the shape as a tuple."""
    shape = tuple(shape)
    if len(shape) != 4:
        raise BenchmarkError(f"Probe batch shape {shape} is not 4-D (N, C, H, W); {networks} need image batches.")
    _, c, h, w = shape
    if c != 3:
        raise BenchmarkError(f"Probe batch shape {shape} has {c} channels but {networks} take 3 (RGB) images.")
    if h < min_side or w < min_side:
        raise BenchmarkError(
            f"Probe batch shape {shape} has images of {h}x{w} but {networks} need at least {min_side}x{min_side}."
        )
    if h % multiple or w % multiple:
        raise BenchmarkError(
            f"Probe batch shape {shape} has images of {h}x{w} but {networks} need height and width that are "
            f"multiples of {multiple}, e.g. 32x32."
        )
    return shape


def aggregate_slots(space, layers: dict[str, float]) -> dict[str, float]:
    """Per-layer values keyed by module path -> keyed by the space's slots (summed within a
    slot; layers outside every slot dropped). Identity for spaces whose `slot_of` is."""
    slot_of = getattr(space, "slot_of", None)
    if slot_of is None:
        return dict(layers)
    slots: dict[str, float] = {}
    for path, value in layers.items():
        slot = slot_of(path)
        if slot is None:
            continue
        slots[slot] = slots.get(slot, 0.0) + float(value)
    return slots

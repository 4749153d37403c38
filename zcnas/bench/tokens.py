"""Token probes: the probe batch of a network that reads token ids (format version 2).

An image benchmark's probe is a set of images (`probe/x`, `probe/y`); a token benchmark's is a
set of token sequences: `probe/ids` (P, L) integer ids in [0, vocab_size), `probe/attention_mask`
(P, L) 0/1 (1 = a real token, 0 = padding) and, optionally, `probe/y` (P,) labels. The group's
`kind` attribute says which ("images" or "tokens"); docs/benchmark-format.md has the layout.
This module holds what is particular to tokens: the in-memory probe, its checks and the batch
the runner hands to the proxies; `format.py` reads and writes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zcnas.errors import BenchmarkError

PROBE_KINDS = ("images", "tokens")
# What each kind of probe feeds: the space's `input_kind` it belongs to.
SPACE_INPUT_KIND = {"images": "image", "tokens": "tokens"}


@dataclass
class TokenProbe:
    """P token sequences of length L, their attention mask, optional labels and provenance.

    `vocab_size` is the tokenizer's vocabulary (ids lie in [0, vocab_size)); `attrs` are kept
    on `probe/ids` (e.g. `tokenizer`, `text`, `text_sha256`); `label_attrs` on `probe/y` (e.g. a
    `description` saying the labels are a random surrogate).
    """

    ids: np.ndarray
    attention_mask: np.ndarray
    vocab_size: int
    labels: np.ndarray | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    label_attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return int(self.ids.shape[0])

    @property
    def length(self) -> int:
        return int(self.ids.shape[1])


def network_vocab_size(space, space_options: dict) -> int | None:
    """The embedding table size of the benchmark's networks: the `vocab_size` build option of
    the benchmark (`space_options`) or of the space's defaults; None if the space has none."""
    value = space_options.get("vocab_size", getattr(space, "default_options", {}).get("vocab_size"))
    return int(value) if isinstance(value, (int, np.integer)) else None


def validate_token_probe(probe: TokenProbe, where: str, space, num_classes: int, space_options: dict) -> None:
    """The token rules of docs/benchmark-format.md ("Validation"); `where` starts each message."""
    if getattr(space, "input_kind", "image") != "tokens":
        raise BenchmarkError(
            f"{where} has a token probe, but the {space.name} space's networks take "
            f"{getattr(space, 'input_kind', 'image')} input."
        )
    ids, mask = probe.ids, probe.attention_mask
    if ids.dtype.kind not in "iu" or ids.ndim != 2:
        raise BenchmarkError(
            f"{where} has probe ids of type {ids.dtype} and shape {ids.shape}; they must be integers (N, L)."
        )
    if ids.shape[0] == 0 or ids.shape[1] == 0:
        raise BenchmarkError(f"{where} holds no probe sequences (probe/ids has shape {ids.shape}).")
    try:
        space.check_input_shape(ids.shape, **_position_option(space, space_options))
    except BenchmarkError as error:
        raise BenchmarkError(
            f"{where} has probe ids of shape {ids.shape} that do not fit the {space.name} space: {_clause(error)}."
        ) from None
    vocab = probe.vocab_size
    if isinstance(vocab, (bool, np.bool_)) or not isinstance(vocab, (int, np.integer)) or vocab < 1:
        raise BenchmarkError(f"{where} has probe vocab_size {vocab!r}; it must be a positive integer.")
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= vocab:
        raise BenchmarkError(
            f"{where} has probe token ids from {low} to {high}, outside [0, {vocab}) for its vocab_size={vocab}."
        )
    embedded = network_vocab_size(space, space_options)
    if embedded is not None and vocab > embedded:
        raise BenchmarkError(
            f"{where} has a probe tokenised with a vocabulary of {vocab} tokens, but its networks embed "
            f"{embedded}; re-tokenise the probe or build the networks with vocab_size={vocab}."
        )
    if mask.shape != ids.shape:
        raise BenchmarkError(
            f"{where} has a probe attention_mask of shape {mask.shape} for probe ids of shape {ids.shape}."
        )
    if mask.dtype.kind not in "iub" or not np.isin(mask, (0, 1)).all():
        raise BenchmarkError(f"{where} has a probe attention_mask that is not all 0 and 1.")
    empty = np.flatnonzero(~np.asarray(mask, dtype=bool).any(axis=1))
    if empty.size:
        raise BenchmarkError(
            f"{where} has probe sequence {int(empty[0])} whose attention_mask is all 0 (no token to read)."
        )
    labels = probe.labels
    if labels is None:
        return
    if labels.dtype.kind not in "iu" or labels.ndim != 1 or labels.shape[0] != ids.shape[0]:
        raise BenchmarkError(
            f"{where} has probe labels of type {labels.dtype} and shape {labels.shape} for {ids.shape[0]} "
            "sequences; they must be one integer per sequence."
        )
    outside = (labels < 0) | (labels >= num_classes)
    if outside.any():
        first = int(np.flatnonzero(outside)[0])
        raise BenchmarkError(
            f"{where} has probe label {int(labels[first])} at position {first}, outside "
            f"[0, {num_classes}) for num_classes={num_classes}."
        )


def _position_option(space, space_options: dict) -> dict:
    """`max_positions` for `check_input_shape` when the space takes it (nasbert) and the
    benchmark builds its networks with another position table than the default."""
    import inspect

    try:
        accepted = inspect.signature(space.check_input_shape).parameters
    except (TypeError, ValueError):
        return {}
    if "max_positions" in accepted and "max_positions" in space_options:
        return {"max_positions": int(space_options["max_positions"])}
    return {}


def draw_rows(total: int, size: int, seed: int | None, path) -> np.ndarray:
    """The probe rows of a batch: the first `size`, or `size` drawn without replacement by `seed`."""
    if not 1 <= size <= total:
        raise BenchmarkError(
            f"Cannot take a probe batch of {size} sequences from benchmark {path}, which holds {total} "
            f"probe sequences; ask for 1 to {total}."
        )
    if seed is None:
        return np.arange(size)
    return np.sort(np.random.default_rng(seed).choice(total, size=size, replace=False))


def token_batch(probe: TokenProbe, size: int, seed: int | None, path):
    """(ids, attention_mask) as int64 tensors (size, L): `Benchmark.probe_batch` of a token probe."""
    import torch

    rows = draw_rows(probe.size, size, seed, path)
    ids = torch.from_numpy(probe.ids[rows].astype(np.int64))
    mask = torch.from_numpy(probe.attention_mask[rows].astype(np.int64))
    return ids, mask


def token_labels(probe: TokenProbe, size: int, seed: int | None, path):
    """The labels of the same rows as `token_batch`, int64 (size,), or None without labels."""
    import torch

    if probe.labels is None:
        return None
    rows = draw_rows(probe.size, size, seed, path)
    return torch.from_numpy(probe.labels[rows].astype(np.int64))


def _clause(error: BaseException) -> str:
    text = (str(error).strip() or type(error).__name__).rstrip(".")
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        text = text[0].lower() + text[1:]
    return text

"""What the combine estimators learn from: a run's proxy scores, and optionally per-layer statistics.

`Features` holds, for n architectures,

* ``scalar``: the (n x p) matrix of the proxies' scores, NaN where the proxy failed, is still
  pending or gave a non-finite value (a missing value, never a guess);
* ``layers`` (only when asked): for each proxy an (n x L) matrix of its per-layer statistics
  over the space's aligned slots, with ``layer_slots[proxy]`` naming the L columns. A slot the
  architecture does not have, and every slot of a row where the proxy failed, is **0**, as
  ParZC does (`piconas/datasets/predictor/nb201_dataset.py`: NaN -> 0, lists zero-padded); the
  row's scalar being NaN still tells a failed row from a real zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from zcnas.errors import ZcnasError


class CombineError(ZcnasError):
    """A combine model or its inputs cannot be used (missing proxy, no per-layer data, bad file)."""


def _names(items: Sequence[str]) -> str:
    return ", ".join(items) if items else "(none)"


def proxies_with_layers(store) -> list[str]:
    """The run's proxies that hold per-layer statistics for at least one architecture, in run order."""
    return [name for name in store.spec.proxies if any(store.layers.get(name, {}).values())]


def _has_layers_by_definition(name: str) -> bool | None:
    """Whether a registered proxy has per-layer statistics at all (None: not a registered proxy)."""
    from zcnas.proxies import get_proxy
    from zcnas.errors import ZcnasError

    try:
        return get_proxy(name).layer_keys != "none"
    except ZcnasError:
        return None


def no_layers_message(store, lacking: Sequence[str], who: str = "per-layer") -> str:
    """One true sentence on why `lacking` give a per-layer method nothing, and what to use instead."""
    by_definition = [name for name in lacking if _has_layers_by_definition(name) is False]
    not_recorded = [name for name in lacking if name not in by_definition]
    reasons = []
    if by_definition:
        verb = "has" if len(by_definition) == 1 else "have"
        reasons.append(f"{_names(by_definition)} {verb} no per-layer statistics by definition (one number for the whole network)")
    if not_recorded:
        noun = "proxy" if len(not_recorded) == 1 else "proxies"
        reasons.append(
            f"run {store.path} holds no per-layer statistics for {noun} {_names(not_recorded)} (zcnas records them "
            "when it scores; a run imported from a table of scores has none, nor has a proxy that failed on every architecture)"
        )
    layered = [name for name in proxies_with_layers(store) if name not in lacking]
    if layered:
        advice = f"the run's proxies with per-layer statistics are {_names(layered)}: pass --proxies {','.join(layered)}"
    else:
        advice = (
            f"none of the run's proxies ({_names(list(store.spec.proxies))}) has them here; score proxies that have "
            "them with zcnas, e.g. `zcnas score BENCH --proxies grad_norm,snip,synflow` (`zcnas proxies` lists the rest)"
        )
    return f"The {who} method cannot use {_names(list(lacking))}: {'; '.join(reasons)}; {advice}."


@dataclass
class Features:
    proxies: list[str]
    scalar: np.ndarray
    layer_slots: dict[str, list[str]] = field(default_factory=dict)
    layers: dict[str, np.ndarray] = field(default_factory=dict)
    index: np.ndarray | None = None
    source: str = "features"

    def __post_init__(self) -> None:
        self.proxies = list(self.proxies)
        self.scalar = np.asarray(self.scalar, dtype=np.float64).reshape(-1, len(self.proxies))
        self.scalar = np.where(np.isfinite(self.scalar), self.scalar, np.nan)
        for name, matrix in self.layers.items():
            matrix = np.asarray(matrix, dtype=np.float64)
            if matrix.shape != (self.n_rows, len(self.layer_slots[name])):
                raise ValueError(f"layers[{name!r}] has shape {matrix.shape}; expected ({self.n_rows}, {len(self.layer_slots[name])})")
            self.layers[name] = np.where(np.isfinite(matrix), matrix, 0.0)

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls,
        scalar: Mapping[str, np.ndarray],
        layers: Mapping[str, tuple[Sequence[str], np.ndarray]] | None = None,
        index: np.ndarray | None = None,
    ) -> "Features":
        """From plain arrays (a notebook, a test): proxy -> scores, and proxy -> (slots, n x L)."""
        names = list(scalar)
        matrix = np.column_stack([np.asarray(scalar[name], dtype=np.float64) for name in names]) if names else np.zeros((0, 0))
        layers = dict(layers or {})
        return cls(
            proxies=names,
            scalar=matrix,
            layer_slots={name: list(slots) for name, (slots, _) in layers.items()},
            layers={name: np.asarray(values, dtype=np.float64) for name, (_, values) in layers.items()},
            index=index,
        )

    @classmethod
    def from_run(
        cls,
        store,
        proxies: Sequence[str] | None = None,
        rows: Sequence[int] | np.ndarray | None = None,
        layers: bool = False,
        who: str = "per-layer",
        repeat: int | None = None,
    ) -> "Features":
        """The features of a `RunStore` (`RunStore.open(path)`), for `rows` (default: all).

        `proxies` defaults to every proxy of the run. With `layers`, each proxy's per-layer
        statistics are included, and a proxy the run has no per-layer statistics for is refused.
        The scores are the run's (the aggregate of its repeats); `repeat=r` takes repeat r's own
        scores and per-layer statistics instead (a run scored with `--repeats`).
        """
        from zcnas.run.store import OK

        available = list(store.spec.proxies)
        names = list(available if proxies is None else proxies)
        missing = [name for name in names if name not in available]
        if missing:
            raise CombineError(
                f"Run {store.path} has no proxy {_names(missing)}; it has {_names(available)} "
                "(score the missing proxies with `zcnas score --proxies ...`)."
            )
        picked = np.arange(len(store)) if rows is None else np.asarray(rows, dtype=np.int64)
        if repeat is not None and not 0 <= repeat < store.repeats:
            raise CombineError(f"Run {store.path} has {store.repeats} repeat(s); there is no repeat {repeat}.")
        columns = []
        for name in names:
            if repeat is None:
                ok, values = store.status[name] == OK, store.scores[name]
            else:
                ok, values = store.repeat_status[name][:, repeat] == OK, store.repeat_scores[name][:, repeat]
            columns.append(np.where(ok, values, np.nan)[picked])
        scalar = np.column_stack(columns) if columns else np.zeros((len(picked), 0))
        layer_slots, layer_values = {}, {}
        if layers:
            for name in names:
                if repeat is None:
                    slots, matrix = store.layer_matrix(name)
                    ok = (store.status[name] == OK)[:, None]
                else:
                    slots, cube = store.repeat_layer_cube(name)
                    matrix = cube[:, repeat, :]
                    ok = (store.repeat_status[name][:, repeat] == OK)[:, None]
                if not slots:
                    raise CombineError(no_layers_message(store, [name], who))
                layer_slots[name] = slots
                layer_values[name] = np.where(ok, matrix, np.nan)[picked]
        return cls(
            proxies=names,
            scalar=scalar,
            layer_slots=layer_slots,
            layers=layer_values,
            index=np.asarray(store.index)[picked],
            source=f"run {store.path}",
        )

    # -- access ----------------------------------------------------------------------------
    @property
    def n_rows(self) -> int:
        return int(self.scalar.shape[0])

    def __len__(self) -> int:
        return self.n_rows

    def has_layers(self, name: str) -> bool:
        return name in self.layers

    def require(self, proxies: Sequence[str], *, layers: bool, who: str) -> None:
        """Refuse features that lack a proxy (or its per-layer statistics) that `who` needs."""
        missing = [name for name in proxies if name not in self.proxies]
        if missing:
            raise CombineError(
                f"The {who} model needs proxy {_names(missing)}, which {self.source} lacks "
                f"(it has {_names(self.proxies)}); score it with `zcnas score --proxies ...`."
            )
        if layers:
            no_layers = [name for name in proxies if name not in self.layers]
            if no_layers:
                raise CombineError(
                    f"The {who} model needs per-layer statistics of {_names(no_layers)}, which "
                    f"{self.source} lacks; build the features with layers=True from a run that has them."
                )

    def matrix(self, proxies: Sequence[str]) -> np.ndarray:
        """The (n x len(proxies)) scalar columns, in the order asked."""
        position = {name: j for j, name in enumerate(self.proxies)}
        return self.scalar[:, [position[name] for name in proxies]]

    def missing_any(self, proxies: Sequence[str]) -> np.ndarray:
        """Rows where at least one of `proxies` has no score (failed, pending, non-finite)."""
        return np.any(np.isnan(self.matrix(proxies)), axis=1)

    def missing_all(self, proxies: Sequence[str]) -> np.ndarray:
        """Rows where none of `proxies` has a score."""
        return np.all(np.isnan(self.matrix(proxies)), axis=1) if len(proxies) else np.ones(self.n_rows, dtype=bool)

    def layer_block(self, slots: Mapping[str, Sequence[str]]) -> np.ndarray:
        """Per-layer statistics of several proxies side by side, aligned to the given slot names.

        A slot the model was trained with but these features lack is 0 (an absent layer, as in
        ParZC); a slot these features have but the model does not know is dropped.
        """
        blocks = []
        for name, wanted in slots.items():
            have = {slot: j for j, slot in enumerate(self.layer_slots[name])}
            block = np.zeros((self.n_rows, len(wanted)))
            for k, slot in enumerate(wanted):
                if slot in have:
                    block[:, k] = self.layers[name][:, have[slot]]
            blocks.append(block)
        return np.concatenate(blocks, axis=1) if blocks else np.zeros((self.n_rows, 0))

    @classmethod
    def stacked(cls, parts: Sequence["Features"]) -> "Features":
        """Several feature sets of the same proxies one under the other (e.g. every repeat of a
        run's training rows); per-layer slots are aligned by name, 0 where a part lacks one."""
        first = parts[0]
        slots = {name: list(first.layer_slots[name]) for name in first.layers}
        return cls(
            proxies=list(first.proxies),
            scalar=np.vstack([part.matrix(first.proxies) for part in parts]),
            layer_slots=slots,
            layers={name: np.vstack([part.layer_block({name: slots[name]}) for part in parts]) for name in slots},
            index=None if any(part.index is None for part in parts) else np.concatenate([np.asarray(part.index) for part in parts]),
            source=first.source,
        )

    def take(self, rows: Sequence[int] | np.ndarray) -> "Features":
        """The same features for a subset of the rows (e.g. a train split)."""
        rows = np.asarray(rows, dtype=np.int64)
        return Features(
            proxies=list(self.proxies),
            scalar=self.scalar[rows],
            layer_slots={k: list(v) for k, v in self.layer_slots.items()},
            layers={k: v[rows] for k, v in self.layers.items()},
            index=None if self.index is None else np.asarray(self.index)[rows],
            source=self.source,
        )

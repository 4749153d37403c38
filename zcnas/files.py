"""The files zcnas writes and reads, seen from the user's side.

* `check_writable`: refuse, in one sentence and before any work starts, an output location
  that cannot be written (an existing directory, a parent that is a file, a folder without
  write permission), so a mistake costs nothing and leaves no stray file.
* `identify`: recognise a zcnas file from its content (run, benchmark, report, baseline,
  combine model or summary), so a file passed where another kind was expected is named for
  what it is, with the command that takes it, instead of failing on a missing attribute.

Light on purpose (no torch, no zcnas module imports): every reader calls it on its error path.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from zcnas.errors import ZcnasError


# -- output locations ------------------------------------------------------------------------
def check_writable(path: str | os.PathLike, option: str, *, example: str | None = None) -> Path:
    """`path` if zcnas can create or replace it, else a one-sentence `ZcnasError` naming
    `option` (an option such as "--out", or what the file is: "the report file").

    Written files are replaced atomically (a temporary file in the same folder, then a
    rename), so what must be writable is the folder; a folder that does not exist yet must be
    creatable under its nearest existing ancestor. `example` is a file name to suggest when
    `path` is a directory.
    """
    path = Path(path)
    try:
        if path.is_dir():
            if example is None:
                raise ZcnasError(f"Cannot write {option} {path}: it is a directory.")
            raise ZcnasError(f"{option} {path} is a directory; name a file in it, e.g. {path / example}.")
        folder = path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir():
            raise ZcnasError(f"Cannot write {option} {path}: {folder} is a file, not a folder.")
    except OSError as error:  # e.g. a parent folder that may not be searched
        raise ZcnasError(f"Cannot write {option} {path} ({error.strerror or error}).") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ZcnasError(
            f"Cannot write {option} {path}: the folder {folder} is not writable; choose a location you can write to."
        )
    return path


# -- what a file is ----------------------------------------------------------------------------
@dataclass(frozen=True)
class FileKind:
    name: str  # run, benchmark, report, baseline, combine-model, combine-summary
    what: str  # "a zcnas run file (written by `zcnas score`)"
    taken_by: str  # "`zcnas report RUN` and `zcnas combine RUN` take it"


# The `kind` each writer stores (store.py, report/build.py, report/check.py, combine/base.py,
# combine/evaluate.py; tests/test_user_errors.py checks they agree). A benchmark has no kind
# attribute: its root attributes format_version and name mark it.
KINDS = {
    "zcnas-run": FileKind("run", "a zcnas run file (written by `zcnas score`)", "`zcnas report RUN` and `zcnas combine RUN` take it"),
    "zcnas-report": FileKind("report", "a zcnas report (JSON)", "`zcnas check REPORT --baseline BASE` takes it"),
    "zcnas-baseline": FileKind("baseline", "a zcnas baseline", "`zcnas check REPORT --baseline BASE` takes it"),
    "zcnas-combine-model": FileKind(
        "combine-model", "a zcnas combine model", "`zcnas score BENCH --proxies combined:MODEL` takes it"
    ),
    "zcnas-combine-summary": FileKind(
        "combine-summary",
        "the JSON summary of a zcnas combine",
        "the model file next to it is what `zcnas score BENCH --proxies combined:MODEL` takes",
    ),
}
BENCHMARK = FileKind("benchmark", "a zcnas benchmark", "`zcnas score BENCH` and `zcnas bench info BENCH` take it")

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_LARGEST_JSON = 64 * 1024 * 1024


def identify(path: str | os.PathLike) -> FileKind | None:
    """What kind of zcnas file `path` holds, from its content; None for anything else
    (including a damaged or unreadable file: the reader then says what is wrong with it)."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
        if head == _HDF5_SIGNATURE:
            return _identify_hdf5(path)
        if head.startswith(b"PK") and zipfile.is_zipfile(path):
            return _identify_npz(path)
        if path.stat().st_size <= _LARGEST_JSON:
            data = json.loads(path.read_text(encoding="utf-8"))
            return KINDS.get(data.get("kind")) if isinstance(data, dict) else None
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, EOFError):
        return None
    return None


def wrong_kind(path: str | os.PathLike, found: FileKind, expected: str) -> str:
    """The sentence for a zcnas file of another kind than `expected` ("a benchmark")."""
    return f"{path} is {found.what}, not {expected}; {found.taken_by}."


def _identify_hdf5(path: Path) -> FileKind | None:
    import h5py

    with h5py.File(path, "r") as file:
        kind = file.attrs.get("kind")
        if isinstance(kind, bytes):
            kind = kind.decode()
        if isinstance(kind, str):
            return KINDS.get(kind)
        if "format_version" in file.attrs and "name" in file.attrs:
            return BENCHMARK
    return None


def _identify_npz(path: Path) -> FileKind | None:
    import numpy as np

    with np.load(path, allow_pickle=False) as data:
        if "meta" not in data.files:
            return None
        meta = json.loads(str(data["meta"][()]))
    return KINDS.get(meta.get("kind")) if isinstance(meta, dict) else None

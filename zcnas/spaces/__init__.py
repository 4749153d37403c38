"""Search spaces: the one registry of spaces zcnas knows.

Three ways in, one lookup (`get_space`):

* the spaces zcnas ships (`BUILTIN`: name -> "module:attribute", imported on first use so
  that listing spaces costs nothing and one space's import error cannot break the others);
* third-party packages that declare an entry point in the ``zcnas.spaces`` group
  (``[project.entry-points."zcnas.spaces"] mlp = "my_pkg.space:MLPSpace"``);
* without packaging, a reference ``package.module:Factory`` given where a space name goes
  (``--space my_pkg.space:MLPSpace``).

The object at a reference may be a space instance, a class or a factory function (called
with no arguments). A benchmark file records the space's name and, for a space that does not
ship with zcnas, the reference it was loaded from (`plugin_reference`), so that the file can
be opened in a fresh process or on another machine, and a missing package is named in one
sentence. The protocol a space obeys is in `zcnas.spaces.base` and docs/spaces.md.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import re

from zcnas.errors import ArchError, BenchmarkError
from zcnas.spaces.base import REQUIRED_ATTRIBUTES, SearchSpace, aggregate_slots

__all__ = [
    "BUILTIN",
    "ENTRY_POINT_GROUP",
    "SearchSpace",
    "aggregate_slots",
    "get_space",
    "list_spaces",
    "plugin_reference",
    "space_names",
]

ENTRY_POINT_GROUP = "zcnas.spaces"

BUILTIN = {
    "nb201": "zcnas.spaces.nb201:NB201",
    "nb101": "zcnas.spaces.nb101:NB101",
    "darts": "zcnas.spaces.darts:DARTS",
    "nasbert": "zcnas.spaces.nasbert:NASBERT",
    "transbench101_micro": "zcnas.spaces.transnas:TransNASMicro",
    "transbench101_macro": "zcnas.spaces.transnas:TransNASMacro",
}

_REFERENCE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_loaded: dict[str, object] = {}  # name or reference -> instance
_origin: dict[int, str] = {}  # id(instance) -> the reference it was loaded from (plugins only)


class _Registry(dict):
    """`SPACES[name]`: a read-only view that loads spaces on first access (kept for callers
    that index the registry directly)."""

    def __missing__(self, name):
        return get_space(name)

    def __iter__(self):
        return iter(space_names())

    def __len__(self):
        return len(space_names())

    def __contains__(self, name):
        return name in space_names()


SPACES = _Registry()


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    return {ep.name: ep for ep in found}


def space_names() -> list[str]:
    """Names of every space available: shipped ones first, then installed plugins."""
    names = [n for n in BUILTIN if _builtin_available(n)]
    names += sorted(n for n in _entry_points() if n not in BUILTIN)
    return names


def _builtin_available(name: str) -> bool:
    module = BUILTIN[name].partition(":")[0]
    return importlib.util.find_spec(module) is not None


def _instantiate(obj, where: str):
    if isinstance(obj, type) or (callable(obj) and not hasattr(obj, "parse")):
        try:
            obj = obj()
        except Exception as error:  # noqa: BLE001 - a plugin's bug, named in one sentence
            raise ArchError(f"The search space factory {where} failed: {type(error).__name__}: {error}.") from None
    missing = [attr for attr in REQUIRED_ATTRIBUTES if not hasattr(obj, attr)]
    if missing:
        raise ArchError(
            f"{where} is not a zcnas search space: it lacks {', '.join(missing)} (see docs/spaces.md)."
        )
    if not isinstance(getattr(obj, "name", None), str) or not obj.name:
        raise ArchError(f"{where} is not a zcnas search space: its `name` must be a non-empty string.")
    return obj


def _import_reference(reference: str, purpose: str):
    module_name, _, attribute = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        package = (error.name or module_name).split(".")[0]
        raise ArchError(
            f"{purpose} needs the Python package {package!r}, which is not installed "
            f"(import of {module_name!r} failed); install it, or put it on PYTHONPATH."
        ) from None
    except Exception as error:  # noqa: BLE001 - a broken plugin module
        raise ArchError(f"Importing {module_name!r} for {purpose} failed: {type(error).__name__}: {error}.") from None
    obj = module
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ArchError(f"Module {module_name!r} has no {attribute!r}, named by {purpose}.") from None
    return obj


def get_space(name: str, plugin: str | None = None):
    """The space called `name`: a shipped space, an installed plugin's entry point, or a
    ``package.module:Factory`` reference. `plugin` is the reference a benchmark file
    recorded, tried when no space of that name is installed. `ArchError` (one sentence)
    when none is found or the plugin's package is missing."""
    if not isinstance(name, str) or not name:
        raise ArchError(f"Search space {name!r} must be a name such as nb201, or package.module:Factory.")
    if name in _loaded:
        return _loaded[name]
    if name in BUILTIN:
        space = _instantiate(_import_reference(BUILTIN[name], f"the {name} space"), BUILTIN[name])
    elif name in (points := _entry_points()):
        point = points[name]
        purpose = f"the {name} space (entry point {point.value})"
        space = _instantiate(_import_reference(point.value, purpose), point.value)
        _origin[id(space)] = point.value
    elif _REFERENCE.match(name):
        space = _instantiate(_import_reference(name, f"the search space {name}"), name)
        _origin[id(space)] = name
        _loaded[space.name] = space
    elif plugin:
        if not _REFERENCE.match(plugin):
            raise ArchError(f"Search space {name!r} names the plugin {plugin!r}, which is not package.module:Factory.")
        space = _instantiate(_import_reference(plugin, f"the search space {name!r} (plugin {plugin})"), plugin)
        if space.name != name:
            raise ArchError(f"Plugin {plugin} gives the space {space.name!r}, not {name!r}.")
        _origin[id(space)] = plugin
    else:
        known = ", ".join(space_names())
        raise ArchError(
            f"Unknown search space {name!r}; known spaces: {known} (or give a plugin as package.module:Factory)."
        )
    _loaded[name] = space
    return space


def plugin_reference(space) -> str | None:
    """The ``module:attribute`` a non-shipped space was loaded from (None for zcnas's own)."""
    return _origin.get(id(space))


def list_spaces() -> list[tuple[str, object | None, str | None]]:
    """(name, space or None, error or None) for every available space, for `zcnas spaces`."""
    rows = []
    for name in space_names():
        try:
            rows.append((name, get_space(name), None))
        except ArchError as error:
            rows.append((name, None, str(error)))
    return rows


def space_for_benchmark(name: str, plugin: str | None, where: str):
    """The space a benchmark file names, or a `BenchmarkError` naming what to install."""
    try:
        return get_space(name, plugin=plugin or None)
    except ArchError as error:
        if not plugin and name not in BUILTIN and name not in _entry_points() and not _REFERENCE.match(name):
            known = ", ".join(space_names())
            raise BenchmarkError(
                f"{where} names the unknown search space {name!r}; known spaces: {known} "
                "(a plugin space needs its package installed)."
            ) from None
        message = str(error).rstrip(".")
        message = message[0].lower() + message[1:] if message[:2].istitle() else message
        raise BenchmarkError(f"{where} uses the search space {name!r}, which cannot be loaded: {message}.") from None

"""`zcnas spaces`: the search spaces zcnas can use, each with an example encoding."""

from __future__ import annotations

import json
from typing import Optional

import typer
from rich.table import Table
from rich.text import Text

from zcnas.cli_common import console, user_errors


def space_rows(extra: Optional[str] = None) -> list[dict]:
    """One JSON-ready row per space (shipped, installed plugins, and `extra`: a
    package.module:Factory reference to load), for the table and for --json."""
    from zcnas.spaces import BUILTIN, get_space, list_spaces, plugin_reference

    listed = list_spaces()
    if extra:
        space = get_space(extra)
        if all(name != space.name for name, _, _ in listed):
            listed.append((space.name, space, None))
    rows = []
    for name, space, error in listed:
        if space is None:
            rows.append({"name": name, "error": error})
            continue
        rows.append(
            {
                "name": name,
                "input": space.input_kind,
                "can_score": bool(getattr(space, "can_build", True)),
                "slots": len(space.layer_slots(**space.slot_options(dict(space.default_options))))
                if hasattr(space, "slot_options") else len(space.layer_slots()),
                "example": space.example,
                "options": dict(getattr(space, "default_options", {})),
                "description": getattr(space, "description", ""),
                "origin": "zcnas" if name in BUILTIN else (plugin_reference(space) or "plugin"),
            }
        )
    return rows


@user_errors
def spaces_command(
    space: Optional[str] = typer.Option(
        None, "--space", help="Also load a plugin space given as package.module:Factory.", show_default=False
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the search spaces: shipped ones, installed plugins (entry point group zcnas.spaces),
    and --space package.module:Factory, each with an example encoding.

    Example: zcnas spaces --space zcnas_widths:WidthSpace
    """
    rows = space_rows(space)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"{len(rows)} search space{'s' if len(rows) != 1 else ''}", show_lines=True)
    table.add_column("space", no_wrap=True)
    table.add_column("input")
    table.add_column("slots", justify="right")
    table.add_column("what it is, and an example encoding", overflow="fold")
    for row in rows:
        if "error" in row:
            table.add_row(row["name"], "-", "-", Text.assemble(("cannot load:", "red"), f" {row['error']}"))
            continue
        kind = row["input"] + ("" if row["can_score"] else "\n(table-only)")
        # Text, not markup (the console has none): names and encodings print as they are.
        what = Text(row["description"])
        if row["origin"] != "zcnas":
            what.append(f" (plugin {row['origin']})")
        what.append("\ne.g.", style="dim")
        what.append(f" {row['example']}")
        table.add_row(row["name"], kind, str(row["slots"]), what)
    console.print(table)

"""``journeylens schemas``: export and check the topic JSON Schemas."""

from __future__ import annotations

from pathlib import Path

import click

from journeylens.contracts.schema_export import export_schemas, stale_schemas


@click.group("schemas")
def group() -> None:
    """The topic contracts other systems consume."""


@group.command("export")
@click.option(
    "--dir",
    "schemas_dir",
    type=click.Path(path_type=Path),
    default=Path("schemas"),
    show_default=True,
    help="The schemas/ directory of the repository.",
)
def export(schemas_dir: Path) -> None:
    """Write schemas/jsonschema/<topic>.vN.schema.json from the pydantic contracts."""
    changed = export_schemas(schemas_dir)
    for path in changed:
        click.echo(f"wrote {path}")
    click.echo(f"{len(changed)} schema file(s) changed")


@group.command("check")
@click.option("--dir", "schemas_dir", type=click.Path(path_type=Path), default=Path("schemas"))
def check(schemas_dir: Path) -> None:
    """Fail when an exported schema differs from its contract model."""
    stale = stale_schemas(schemas_dir)
    if stale:
        names = ", ".join(str(p) for p in stale)
        raise click.ClickException(f"stale schemas: {names}; run `journeylens schemas export`")
    click.echo("schemas are current")

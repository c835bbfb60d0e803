"""`irtool schema`: the JSON Schema of each file format, for editors and other tools."""

from __future__ import annotations

import json
from typing import Any

import click

from irtool.model.loader import MODELS, Kind

SCHEMA_BASE = "https://irtool.invalid/schema"


def json_schema(kind: Kind) -> dict[str, Any]:
    schema = MODELS[kind].model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_BASE}/{kind}.schema.json",
        **schema,
    }


@click.command()
@click.argument("kind", type=click.Choice([k.value for k in Kind]), default="runbook")
def schema(kind: str) -> None:
    """Print the JSON Schema of a runbook, contacts, inventory or fragment file."""
    click.echo(json.dumps(json_schema(Kind(kind)), indent=2, sort_keys=True))

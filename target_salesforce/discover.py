"""The ``target-salesforce-describe`` command: what the org offers to write to, with the target's own settings.

Without OBJECT it lists the objects (name, label, custom). With OBJECT it lists the object's fields and what the
target needs to know to map them: type, length, whether insert/update can write them, whether a create must set
them, whether they can identify a record (External ID, idLookup), picklist values and relationships.

Expected failures (bad config, refused login, unknown object) print one line to stderr and exit 1. Nothing printed
comes from the config, so no secret can appear.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from target_salesforce.client import SalesforceClient
from target_salesforce.describe import DISCOVERY_COMMAND, DescribeCache
from target_salesforce.errors import ConfigError, TargetError


def load_config(path: str) -> dict[str, Any]:
    try:
        config = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigError(f"config file {path} is not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"config file {path} must hold a JSON object")
    return config


def list_objects(client: SalesforceClient) -> list[dict[str, Any]]:
    answer = client.json("GET", "sobjects/")
    objects = [
        {"name": entry["name"], "label": entry.get("label") or entry["name"], "custom": bool(entry.get("custom"))}
        for entry in answer["sobjects"]
    ]
    return sorted(objects, key=lambda entry: entry["name"].lower())


def field_info(field: dict[str, Any]) -> dict[str, Any]:
    """What the target needs to know about one field, from its describe."""
    createable = bool(field.get("createable"))
    return {
        "name": field["name"],
        "label": field.get("label") or field["name"],
        "type": field.get("type"),
        "length": field.get("length") or 0,
        "createable": createable,
        "updateable": bool(field.get("updateable")),
        "required_on_create": createable and not field.get("nillable") and not field.get("defaultedOnCreate"),
        "external_id": bool(field.get("externalId")),
        "id_lookup": bool(field.get("idLookup")),
        "picklist_values": [p["value"] for p in field.get("picklistValues") or () if p.get("active", True)],
        "relationship_name": field.get("relationshipName"),
        "reference_to": list(field.get("referenceTo") or ()),
    }


def describe_object(cache: DescribeCache, sobject: str) -> dict[str, Any]:
    describe = cache.describe(sobject)
    return {
        "name": describe["name"],
        "label": describe.get("label") or describe["name"],
        "custom": bool(describe.get("custom")),
        "fields": [field_info(field) for field in describe.get("fields") or ()],
    }


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]
    lines = [headers, ["-" * w for w in widths], *rows]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines)


def _yes(flag: bool) -> str:
    return "yes" if flag else ""


def objects_table(objects: list[dict[str, Any]]) -> str:
    return _table(["NAME", "LABEL", "CUSTOM"], [[o["name"], o["label"], _yes(o["custom"])] for o in objects])


def fields_table(obj: dict[str, Any]) -> str:
    rows = []
    for f in obj["fields"]:
        reference = f"{f['relationship_name']} → {', '.join(f['reference_to'])}" if f["reference_to"] else ""
        rows.append(
            [
                f["name"],
                f["label"],
                f["type"] or "",
                str(f["length"] or ""),
                _yes(f["createable"]),
                _yes(f["updateable"]),
                _yes(f["required_on_create"]),
                _yes(f["external_id"]),
                _yes(f["id_lookup"]),
                reference,
                "; ".join(f["picklist_values"]),
            ]
        )
    headers = [
        "NAME",
        "LABEL",
        "TYPE",
        "LENGTH",
        "CREATEABLE",
        "UPDATEABLE",
        "REQUIRED",
        "EXTERNAL_ID",
        "ID_LOOKUP",
        "RELATIONSHIP",
        "PICKLIST",
    ]
    title = f"{obj['name']} ({obj['label']}{', custom' if obj['custom'] else ''}): {len(rows)} fields"
    return title + "\n" + _table(headers, rows)


@click.command(
    name=DISCOVERY_COMMAND,
    help="List the Salesforce objects the target can write to, or one OBJECT's fields, using the target's config "
    "file for authentication.",
)
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="The target's config JSON (authentication settings are read from it).",
)
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.argument("sobject", metavar="[OBJECT]", required=False)
def cli(config_path: str, output_format: str, sobject: str | None) -> None:
    config = load_config(config_path)
    client = SalesforceClient(config)
    if sobject is None:
        objects = list_objects(client)
        click.echo(json.dumps(objects, indent=2) if output_format == "json" else objects_table(objects))
    else:
        obj = describe_object(DescribeCache(client), sobject)
        click.echo(json.dumps(obj, indent=2, ensure_ascii=False) if output_format == "json" else fields_table(obj))


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except TargetError as exc:
        print(f"{DISCOVERY_COMMAND}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        sys.exit(1)
    except click.exceptions.Abort:
        print(f"{DISCOVERY_COMMAND}: aborted", file=sys.stderr)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)

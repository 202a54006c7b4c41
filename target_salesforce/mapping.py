"""The pre-flight check and the write plan: which source field goes to which object field, and how records match.

Everything is decided from the object's describe before the first record is sent, so that a mapping that cannot
work fails once, with every problem named, instead of once per record as Salesforce errors.

Decisions:
- With `field_mapping`, only mapped source fields are written, and a mapped field that cannot be written is an
  error (the user asked for it). Without it, source fields match object fields by name ignoring case, and a match
  that is not writable in this sync mode (CreatedDate, a formula, Id on insert) is skipped with the unmatched fields:
  a tap copying Salesforce-shaped tables would otherwise never pass the check.
- A relationship column ``Rel.Field`` may use any parent field Salesforce accepts for a reference: an External ID
  field or a standard idLookup field (Bulk API 2.0 "Relationship Fields in a Header Row"). Polymorphic
  relationships (Owner of Lead, Who/What) need the parent type in the reference, so they are refused here with
  the advice to map record ids to the lookup field instead.
- Required-on-create fields (createable, not nillable, not defaultedOnCreate) must be mapped for insert and
  upsert; a relationship column counts for its lookup field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from target_salesforce.convert import converter_for
from target_salesforce.errors import ConfigError
from target_salesforce.settings import DEFAULT_MATCH_FIELD, DELETE_MODES, StreamSettings

_MAX_LISTED = 8  # names listed in a hint before "…"
# The describe flags a field needs for each sync mode (upsert may create or update).
_WRITE_FLAGS = {
    "insert": ("createable",),
    "update": ("updateable",),
    "upsert": ("createable", "updateable"),
    "delete": (),
    "hard_delete": (),
}


@dataclass(frozen=True, slots=True)
class Column:
    """One source field written to one object field (``Email``) or through a relationship
    (``Account.External_Id__c``, whose ``field`` is the parent's field and ``lookup_field`` the reference field
    it sets, ``AccountId``). ``is_match`` marks the column holding the match value, which is never cleared."""

    source: str
    target: str
    field: dict
    convert: Callable[[Any], Any]
    lookup_field: str | None = None
    is_match: bool = False


@dataclass(frozen=True)
class WritePlan:
    """What the writers need for one stream: canonical names, how records match, and the columns to send."""

    object_name: str
    sync_mode: str
    match_field: str | None
    match_kind: str | None
    match_source: str | None
    columns: list[Column]
    unmatched_source_fields: list[str]


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + ", …" if len(names) > _MAX_LISTED else shown or "none"


def _match_kind(field: Mapping[str, Any]) -> str | None:
    if field.get("type") == "id":
        return "id"
    if field.get("externalId"):
        return "external_id"
    if field.get("idLookup"):
        return "id_lookup"
    return None


class _Planner:
    """Builds one plan, collecting every problem instead of stopping at the first."""

    def __init__(
        self,
        settings: StreamSettings,
        describe: Mapping[str, Any],
        parent_describe: Callable[[str], dict],
    ) -> None:
        self.settings = settings
        self.object = describe["name"]
        self.deletable = describe.get("deletable", True)
        self.fields: list[dict] = list(describe.get("fields") or ())
        self.by_lower = {f["name"].lower(): f for f in self.fields}
        self.relationships = {
            f["relationshipName"].lower(): f for f in self.fields if f.get("relationshipName") and f.get("referenceTo")
        }
        self.parent_describe = parent_describe
        self.mode = settings.sync_mode
        self.problems: list[str] = []
        self.match_field: dict | None = None

    def prefix(self) -> str:
        stream = f"Stream {self.settings.stream!r} → " if self.settings.stream else ""
        return f"{stream}{self.object}: "

    # --- checks ---

    def writable_problem(self, field: Mapping[str, Any]) -> str | None:
        """Why this field cannot be written in this sync mode, or None."""
        missing = [flag for flag in _WRITE_FLAGS[self.mode] if not field.get(flag)]
        if not missing:
            return None
        return f"{self.object}.{field['name']} is not {' or '.join(missing)}, so {self.mode} cannot write it"

    def check_deletes(self) -> None:
        """Deleting needs a deletable object and, on insert, a match field that is not Id (inserts carry no Id)."""
        deleting = self.mode in DELETE_MODES or self.settings.process_deletes
        if deleting and not self.deletable:
            self.problems.append(f"{self.object} is not deletable, so records cannot be deleted from it")
        match_field = (self.settings.match_field or "Id").lower()
        if self.mode == "insert" and self.settings.process_deletes and match_field == "id":
            self.problems.append(
                "process_deletes with sync_mode insert needs match_field set to an External ID or idLookup "
                "field to find the record to delete"
            )

    def resolve_match(self) -> None:
        if self.mode == "insert" and not (self.settings.process_deletes and self.settings.match_field):
            return
        name = self.settings.match_field or DEFAULT_MATCH_FIELD
        field = self.by_lower.get(name.lower())
        if field is None:
            self.problems.append(f"match_field {name!r}: {self.object} has no such field")
        elif _match_kind(field) is None:
            usable = [f["name"] for f in self.fields if _match_kind(f)]
            self.problems.append(
                f"match_field {field['name']} cannot identify {self.object} records (it is not Id, an External ID "
                f"or an idLookup field): use one of {_listing(usable)}"
            )
        else:
            self.match_field = field

    # --- columns ---

    def direct_column(self, source: str, target: str) -> Column | None:
        field = self.by_lower.get(target.lower())
        if field is None:
            self.problems.append(f"field_mapping {source!r} → {target!r}: {self.object} has no field {target!r}")
            return None
        is_match = field is self.match_field
        problem = None if is_match else self.writable_problem(field)
        if problem:
            self.problems.append(
                f"field_mapping {source!r} → {field['name']}: {problem} (remove it from field_mapping)"
            )
            return None
        return Column(source, field["name"], field, converter_for(field), is_match=is_match)

    def relationship_column(self, source: str, target: str) -> Column | None:
        relationship, _, parent_field_name = target.partition(".")
        where = f"field_mapping {source!r} → {target!r}"
        reference = self.relationships.get(relationship.lower())
        if reference is None:
            names = sorted(f["relationshipName"] for f in self.relationships.values())
            self.problems.append(
                f"{where}: {self.object} has no relationship {relationship!r} (has: {_listing(names)})"
            )
            return None
        parents = reference["referenceTo"]
        if len(parents) != 1:
            self.problems.append(
                f"{where}: {reference['relationshipName']} is polymorphic ({', '.join(parents)}): map record ids "
                f"to {reference['name']} instead"
            )
            return None
        problem = self.writable_problem(reference)
        if problem:
            self.problems.append(f"{where}: {problem}")
            return None
        try:
            parent = self.parent_describe(parents[0])
        except ConfigError as exc:
            self.problems.append(f"{where}: {exc}")
            return None
        parent_fields = {f["name"].lower(): f for f in parent.get("fields") or ()}
        parent_field = parent_fields.get(parent_field_name.lower())
        parent_name = parent.get("name", parents[0])
        if parent_field is None:
            self.problems.append(f"{where}: {parent_name} has no field {parent_field_name!r}")
            return None
        if not (parent_field.get("externalId") or parent_field.get("idLookup")):
            usable = [f["name"] for f in parent_fields.values() if f.get("externalId") or f.get("idLookup")]
            self.problems.append(
                f"{where}: {parent_name}.{parent_field['name']} is not an External ID or idLookup field, so it "
                f"cannot identify the parent: use one of {_listing(usable)}"
            )
            return None
        canonical = f"{reference['relationshipName']}.{parent_field['name']}"
        converter = converter_for({**parent_field, "name": canonical})
        return Column(source, canonical, parent_field, converter, lookup_field=reference["name"])

    def mapped_columns(self, mapping: Mapping[str, str], sources: list[str]) -> tuple[list[Column], list[str]]:
        exact = set(sources)
        by_lower: dict[str, str] = {}
        for source in sources:
            by_lower.setdefault(source.lower(), source)
        columns, used = [], set()
        for key, target in mapping.items():
            if key.startswith("_sdc_"):
                self.problems.append(f"field_mapping {key!r}: _sdc_ metadata fields are never sent (remove it)")
                continue
            source = key if key in exact else by_lower.get(key.lower())
            if source is None:
                self.problems.append(f"field_mapping {key!r}: the stream's schema has no such source field")
                continue
            used.add(source)
            column = self.relationship_column(source, target) if "." in target else self.direct_column(source, target)
            if column is not None:
                columns.append(column)
        return columns, [s for s in sources if s not in used]

    def matched_columns(self, sources: list[str]) -> tuple[list[Column], list[str]]:
        columns, unmatched = [], []
        for source in sources:
            field = self.by_lower.get(source.lower())
            is_match = field is not None and field is self.match_field
            if field is None or (not is_match and self.writable_problem(field)):
                unmatched.append(source)
                continue
            columns.append(Column(source, field["name"], field, converter_for(field), is_match=is_match))
        return columns, unmatched

    def check_columns(self, columns: list[Column]) -> None:
        """Two columns setting one field, a missing required field, an unmapped match field."""
        seen: dict[str, Column] = {}
        for column in columns:
            key = (column.lookup_field or column.target).lower()
            if key in seen:
                self.problems.append(
                    f"source fields {seen[key].source!r} and {column.source!r} both set "
                    f"{self.object}.{column.lookup_field or column.target} (map only one)"
                )
            seen.setdefault(key, column)
        if self.mode in ("insert", "upsert"):
            missing = [
                f["name"]
                for f in self.fields
                if f.get("createable")
                and not f.get("nillable")
                and not f.get("defaultedOnCreate")
                and f["name"].lower() not in seen
            ]
            if missing:
                self.problems.append(
                    f"{self.object} requires {', '.join(missing)} on create: map a source field to "
                    f"{'it' if len(missing) == 1 else 'each'} (or use sync_mode update)"
                )
        if self.match_field is not None and self.match_field["name"].lower() not in seen:
            self.problems.append(
                f"match_field {self.match_field['name']} is not mapped from any source field (add it to "
                "field_mapping or name a source field after it)"
            )

    def plan(self, source_properties: Mapping[str, Any]) -> WritePlan:
        if self.mode not in _WRITE_FLAGS:
            raise ConfigError(f"{self.prefix()}sync_mode is {self.mode!r}: use one of {', '.join(_WRITE_FLAGS)}.")
        self.check_deletes()
        self.resolve_match()
        sources = [s for s in source_properties if not s.startswith("_sdc_")]
        mapping = self.settings.field_mapping
        columns, unmatched = (
            self.mapped_columns(mapping, sources) if mapping is not None else self.matched_columns(sources)
        )
        self.check_columns(columns)
        if self.mode in DELETE_MODES:
            columns = [c for c in columns if c.is_match]  # a delete sends only the record's identity
        if self.problems:
            raise ConfigError(self.prefix() + "; ".join(self.problems) + ".")
        match = self.match_field
        match_column = next((c for c in columns if c.is_match), None)
        return WritePlan(
            object_name=self.object,
            sync_mode=self.mode,
            match_field=match["name"] if match else None,
            match_kind=_match_kind(match) if match else None,
            match_source=match_column.source if match_column else None,
            columns=columns,
            unmatched_source_fields=unmatched,
        )


def build_plan(
    settings: StreamSettings,
    object_describe: dict,
    source_properties: dict[str, dict],
    parent_describe: Callable[[str], dict],
) -> WritePlan:
    """Check a stream's mapping against the object's describe and return how to write it.

    Raises one ConfigError naming every problem. ``parent_describe(object_name)`` is only called for relationship
    columns; a ConfigError it raises (object not accessible) is reported with the others.
    """
    return _Planner(settings, object_describe, parent_describe).plan(source_properties)

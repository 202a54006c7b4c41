"""Object and field definitions of the emulated org, and their describe output.

Definitions are plain data so that a user can load their own org's describe JSON (``--objects FILE``)
and get the same behaviour as the built-in objects. Lookups are case-insensitive, as Salesforce's are.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# SOAP types Salesforce reports for each field type (describe's ``soapType``).
SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "int": "xsd:int",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "time": "xsd:time",
    "base64": "xsd:base64Binary",
    "address": "urn:address",
    "location": "urn:location",
    "anyType": "xsd:anyType",
}

# How each field type is held in SQLite (see store.py for the value encodings).
SQL_TYPES = {
    "boolean": "INTEGER",
    "int": "INTEGER",
    "double": "REAL",
    "currency": "REAL",
    "percent": "REAL",
}

# Compound fields are read-only views over their component fields and have no column of their own.
COMPOUND_TYPES = frozenset({"address", "location"})


@dataclass(frozen=True)
class FieldDef:
    """One field of an object, with the properties Salesforce's describe reports."""

    name: str
    type: str
    label: str = ""
    length: int = 0
    byte_length: int = 0
    precision: int = 0
    scale: int = 0
    digits: int = 0
    createable: bool = True
    updateable: bool = True
    nillable: bool = True
    defaulted_on_create: bool = False
    external_id: bool = False
    id_lookup: bool = False
    unique: bool = False
    case_sensitive: bool = False
    calculated: bool = False
    auto_number: bool = False
    custom: bool = False
    filterable: bool = True
    sortable: bool = True
    picklist_values: tuple[str, ...] = ()
    default_picklist_value: str | None = None
    restricted_picklist: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    # A reference field's delete rule: true, its records are deleted with the parent (Contact.AccountId); false,
    # the field is cleared, the default of a lookup ("Clear the value of this field"). See docs/emulator-design.md.
    cascade_delete: bool = False
    # The name the parent's describe gives this relationship in ``childRelationships`` (``Contacts``).
    child_relationship: str | None = None
    # Value set on create when the field is ``defaulted_on_create`` and the request leaves it out.
    default_value: Any = None
    # Component fields of a compound field (address/location), in describe order.
    components: tuple[str, ...] = ()

    @property
    def soap_type(self) -> str:
        return SOAP_TYPES.get(self.type, "xsd:string")

    @property
    def sql_type(self) -> str:
        return SQL_TYPES.get(self.type, "TEXT")

    @property
    def is_compound(self) -> bool:
        return self.type in COMPOUND_TYPES

    @property
    def required_on_create(self) -> bool:
        return self.createable and not self.nillable and not self.defaulted_on_create

    def component_key(self, component: str) -> str:
        """The key of one component in this compound field's JSON value: ``BillingPostalCode`` → ``postalCode``.

        Standard addresses prefix their components with the compound's stem (``Billing``, or nothing for Lead's
        ``Address``); a custom geolocation ``Loc__c`` names them ``Loc__Latitude__s`` → ``latitude``.
        """
        stem = self.name.removesuffix("Address") if self.type == "address" else self.name.removesuffix("c")
        key = component.removeprefix(stem).removesuffix("__s")
        return key[:1].lower() + key[1:]

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label or self.name,
            "type": self.type,
            "soapType": self.soap_type,
            "length": self.length,
            "byteLength": self.byte_length or self.length * 3,
            "precision": self.precision,
            "scale": self.scale,
            "digits": self.digits,
            "createable": self.createable,
            "updateable": self.updateable,
            "nillable": self.nillable,
            "defaultedOnCreate": self.defaulted_on_create,
            "externalId": self.external_id,
            "idLookup": self.id_lookup,
            "unique": self.unique,
            "caseSensitive": self.case_sensitive,
            "calculated": self.calculated,
            "autoNumber": self.auto_number,
            "custom": self.custom,
            "filterable": self.filterable,
            "sortable": self.sortable,
            "picklistValues": [
                {
                    "value": value,
                    "label": value,
                    "active": True,
                    "defaultValue": value == self.default_picklist_value,
                    "validFor": None,
                }
                for value in self.picklist_values
            ],
            "restrictedPicklist": self.restricted_picklist,
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship_name,
            "compoundFieldName": None,
            "defaultValue": self.default_value,
            "htmlFormatted": False,
            "nameField": self.name == "Name",
        }

    @classmethod
    def from_describe(cls, data: dict[str, Any]) -> FieldDef:
        """Build a field from one entry of a real describe's ``fields`` list."""
        picklist = data.get("picklistValues") or []
        default_pick = next((p["value"] for p in picklist if p.get("defaultValue")), None)
        return cls(
            name=data["name"],
            type=data["type"],
            label=data.get("label") or data["name"],
            length=int(data.get("length") or 0),
            byte_length=int(data.get("byteLength") or 0),
            precision=int(data.get("precision") or 0),
            scale=int(data.get("scale") or 0),
            digits=int(data.get("digits") or 0),
            createable=bool(data.get("createable", True)),
            updateable=bool(data.get("updateable", True)),
            nillable=bool(data.get("nillable", True)),
            defaulted_on_create=bool(data.get("defaultedOnCreate", False)),
            external_id=bool(data.get("externalId", False)),
            id_lookup=bool(data.get("idLookup", False)),
            unique=bool(data.get("unique", False)),
            case_sensitive=bool(data.get("caseSensitive", False)),
            calculated=bool(data.get("calculated", False)),
            auto_number=bool(data.get("autoNumber", False)),
            custom=bool(data.get("custom", data["name"].endswith("__c"))),
            filterable=bool(data.get("filterable", True)),
            sortable=bool(data.get("sortable", True)),
            picklist_values=tuple(p["value"] for p in picklist if p.get("active", True)),
            default_picklist_value=default_pick,
            restricted_picklist=bool(data.get("restrictedPicklist", False)),
            reference_to=tuple(data.get("referenceTo") or ()),
            relationship_name=data.get("relationshipName"),
            # A describe file's field may carry the flag; the parent's childRelationships is where describe shows it.
            cascade_delete=bool(data.get("cascadeDelete", False)),
            default_value=data.get("defaultValue"),
        )


@dataclass
class ObjectDef:
    """One sObject type: its fields (keyed case-insensitively) and its describe output."""

    name: str
    key_prefix: str
    fields: list[FieldDef]
    label: str = ""
    label_plural: str = ""
    custom: bool = False
    _by_lower: dict[str, FieldDef] = field(init=False, repr=False)
    _by_relationship: dict[str, FieldDef] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_lower = {f.name.lower(): f for f in self.fields}
        self._by_relationship = {
            f.relationship_name.lower(): f for f in self.fields if f.relationship_name and f.reference_to
        }

    def field(self, name: str) -> FieldDef | None:
        """The field called ``name`` in any letter case, or None."""
        return self._by_lower.get(name.lower())

    def relationship(self, name: str) -> FieldDef | None:
        """The reference field whose relationship is called ``name`` (``Account`` → ``AccountId``)."""
        return self._by_relationship.get(name.lower())

    def stored_fields(self) -> Iterator[FieldDef]:
        """Fields that have a column of their own (all but compound fields)."""
        return (f for f in self.fields if not f.is_compound)

    def global_entry(self, version: str) -> dict[str, Any]:
        base = f"/services/data/v{version}/sobjects/{self.name}"
        return {
            "name": self.name,
            "label": self.label or self.name,
            "labelPlural": self.label_plural or (self.label or self.name) + "s",
            "keyPrefix": self.key_prefix,
            "custom": self.custom,
            "customSetting": False,
            "createable": True,
            "updateable": True,
            "deletable": True,
            "undeletable": True,
            "queryable": True,
            "retrieveable": True,
            "searchable": True,
            "triggerable": True,
            "layoutable": True,
            "mergeable": False,
            "replicateable": True,
            "feedEnabled": False,
            "activateable": False,
            "deprecatedAndHidden": False,
            "urls": {
                "sobject": base,
                "describe": f"{base}/describe",
                "rowTemplate": f"{base}/{{ID}}",
            },
        }

    def describe(self, version: str, children: Iterable[tuple[ObjectDef, FieldDef]] = ()) -> dict[str, Any]:
        """Describe output; ``children`` are the reference fields of other objects pointing here."""
        out = self.global_entry(version)
        out["fields"] = [f.describe() for f in self.fields]
        out["childRelationships"] = [
            {
                "cascadeDelete": field.cascade_delete,
                "childSObject": child.name,
                "deprecatedAndHidden": False,
                "field": field.name,
                "junctionIdListNames": [],
                "junctionReferenceTo": [],
                "relationshipName": field.child_relationship,
                "restrictedDelete": False,
            }
            for child, field in children
        ]
        out["recordTypeInfos"] = []
        return out

    @classmethod
    def from_describe(cls, data: dict[str, Any]) -> ObjectDef:
        """Build an object from Salesforce's own describe JSON (``GET .../sobjects/X/describe``)."""
        return cls(
            name=data["name"],
            key_prefix=data.get("keyPrefix") or "a00",
            fields=[FieldDef.from_describe(f) for f in data["fields"]],
            label=data.get("label") or data["name"],
            label_plural=data.get("labelPlural") or "",
            custom=bool(data.get("custom", data["name"].endswith("__c"))),
        )


class Schema:
    """The set of objects the emulated org has, looked up case-insensitively by name or key prefix."""

    def __init__(self, objects: Iterable[ObjectDef] = ()) -> None:
        self._by_lower: dict[str, ObjectDef] = {}
        self._by_prefix: dict[str, ObjectDef] = {}
        for obj in objects:
            self.add(obj)

    def add(self, obj: ObjectDef) -> None:
        self._by_lower[obj.name.lower()] = obj
        self._by_prefix[obj.key_prefix] = obj

    def get(self, name: str) -> ObjectDef | None:
        return self._by_lower.get(name.lower())

    def by_prefix(self, prefix: str) -> ObjectDef | None:
        return self._by_prefix.get(prefix)

    def __iter__(self) -> Iterator[ObjectDef]:
        return iter(self._by_lower.values())

    def children(self, parent: ObjectDef) -> list[tuple[ObjectDef, FieldDef]]:
        """Every (object, reference field) that can point at a ``parent`` record, self-references included."""
        name = parent.name.lower()
        return [
            (obj, f)
            for obj in self
            for f in obj.fields
            if f.type == "reference" and any(target.lower() == name for target in f.reference_to)
        ]

    def load_file(self, path: str | Path) -> list[ObjectDef]:
        """Add the objects of a describe file: one describe object, a list of them, or ``{"sobjects": [...]}``."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        items = data.get("sobjects", [data]) if isinstance(data, dict) else data
        added = [ObjectDef.from_describe(item) for item in items]
        for obj in added:
            self.add(obj)
        return added

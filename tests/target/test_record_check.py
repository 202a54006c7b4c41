"""The compiled record check: it must agree with ``jsonschema`` on every record, and name the field it rejects.

Unit tests of pure logic compare ``RecordCheck`` with singer-sdk's own ``jsonschema`` validator over many generated
values and schemas; one CLI run shows a non-conforming record rejected with its field named while the others load.
"""

from __future__ import annotations

import itertools
import random
from decimal import Decimal
from typing import Any

import pytest
from singer_sdk.sinks.core import JSONSchemaValidator

from target_salesforce.record_check import RecordCheck
from tests.target.conftest import record_msg, schema_msg, write_calls

VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -7,
    2**70,
    1.5,
    float("nan"),
    Decimal("2.50"),
    Decimal("3"),
    "",
    "a",
    "x" * 12,
    "ü€😀",
    [],
    ["a", 1],
    [None, "b"],
    {},
    {"a": "b"},
    {"a": 1, "z": None},
]

SCHEMAS: list[dict[str, Any]] = [
    {"type": "string"},
    {"type": ["string", "null"]},
    {"type": "integer"},
    {"type": ["number", "null"]},
    {"type": "boolean"},
    {"type": ["array", "null"], "items": {"type": "string"}},
    {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False},
    {"type": "object", "required": ["a"]},
    {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]},
    {"type": ["string", "null"], "maxLength": 3, "minLength": 1},
    {"type": "number", "minimum": 0, "exclusiveMaximum": 2},
    {"maximum": 1},
    {"enum": ["a", None, 1]},
    {"title": "annotations only", "description": "no validation keyword"},
    {},
]

UNSUPPORTED: list[dict[str, Any]] = [
    {"type": "string", "pattern": "^a"},
    {"type": "integer", "multipleOf": 2},
    {"oneOf": [{"type": "string"}, {"type": "integer"}]},
    {"$ref": "#/$defs/s"},
]


def record_schema(field: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": {"f": field, "g": {"type": "string"}}, "$defs": {"s": {}}, **extra}


def check_for(schema: dict[str, Any]) -> tuple[RecordCheck, JSONSchemaValidator]:
    reference = JSONSchemaValidator(schema)
    return RecordCheck(schema, reference.validator), reference


def assert_agrees(schema: dict[str, Any], records: list[Any]) -> None:
    check, reference = check_for(schema)
    for record in records:
        expected_valid = reference.validator.is_valid(record)
        problem = check.problem(record)
        assert (problem is None) == expected_valid, (schema, record, problem)


@pytest.mark.parametrize("field", SCHEMAS, ids=[str(s) for s in SCHEMAS])
def test_compiled_check_agrees_with_jsonschema(field: dict[str, Any]) -> None:
    schema = record_schema(field)
    assert check_for(schema)[0].compiled
    records = [{"f": value, "g": "ok"} for value in VALUES] + [{"g": "ok"}, {"f": "a", "g": 1}, {"f": "a", "h": 2}]
    assert_agrees(schema, records)


@pytest.mark.parametrize("field", UNSUPPORTED, ids=[str(s) for s in UNSUPPORTED])
def test_unknown_keywords_leave_the_record_to_jsonschema(field: dict[str, Any]) -> None:
    schema = record_schema(field)
    assert not check_for(schema)[0].compiled
    assert_agrees(schema, [{"f": value, "g": "ok"} for value in VALUES])


def test_nested_and_closed_objects_agree_on_random_records() -> None:
    schema = record_schema(
        {
            "type": ["object", "null"],
            "properties": {"n": {"type": "integer"}, "tags": {"type": "array", "items": {"type": ["string", "null"]}}},
            "required": ["n"],
            "additionalProperties": {"type": "boolean"},
        },
        additionalProperties=False,
        required=["g"],
    )
    rng = random.Random(7)
    keys = ["n", "tags", "extra"]
    records = []
    for _ in range(500):
        inner = {k: rng.choice(VALUES) for k in rng.sample(keys, rng.randint(0, 3))}
        outer: dict[str, Any] = {"f": rng.choice([inner, None, "x"])}
        if rng.random() < 0.8:
            outer["g"] = rng.choice(["ok", 3])
        if rng.random() < 0.1:
            outer["other"] = 1
        records.append(outer)
    assert_agrees(schema, records)


def test_nullable_types_and_bounds_combined() -> None:
    for types, bound in itertools.product((["integer", "null"], "number"), ("minimum", "exclusiveMinimum")):
        assert_agrees(record_schema({"type": types, bound: 1}), [{"f": v} for v in VALUES])


class Text(str):
    pass


class Items(list):
    pass


class Fields(dict):
    pass


def test_subclasses_of_json_types_are_left_to_jsonschema() -> None:
    """No JSON decoder makes these, but a stream map might: jsonschema treats them as their base type."""
    values = (Text("long"), Text("x"), Items(["a"]), Items([1]), Fields(a="b"), Fields(a=1))
    for field in ({"maxLength": 1}, {"items": {"type": "integer"}}, {"properties": {"a": {"type": "integer"}}}):
        assert_agrees(record_schema(field), [{"f": value} for value in values])


def test_formats_checked_by_the_validator_leave_the_record_to_it() -> None:
    schema = record_schema({"type": "string", "format": "date"})
    reference = JSONSchemaValidator(schema, validate_formats=True)
    check = RecordCheck(schema, reference.validator)
    assert not check.compiled
    assert check.problem({"f": "2024-02-30"}) is not None
    assert check.problem({"f": "2024-02-29"}) is None
    assert check_for(schema)[0].compiled  # formats unchecked (singer-sdk's default): nothing to leave


def test_only_a_pass_of_a_types_only_schema_holds_for_the_records_shape() -> None:
    """A record path skips the check for later records of a shape that passed: that must never skip a failure."""
    types_only = {
        "type": "object",
        "properties": {"f": {"type": ["integer", "null"]}, "g": {"type": "string", "title": "annotations are fine"}},
        "required": ["g"],
        "additionalProperties": False,
    }
    check, reference = check_for(types_only)
    assert check.passes_by_shape({"f": 1, "g": "a"}) and check.passes_by_shape({"f": None, "g": "b"})
    assert not check.passes_by_shape({"f": "x", "g": "a"}) and not check.passes_by_shape({"g": "a", "h": 1})
    # jsonschema accepts 3.0 as an integer but not 2.5, both floats: its acquittal of one says nothing of the other
    assert reference.validator.is_valid({"f": 3.0, "g": "a"}) and check.problem({"f": 3.0, "g": "a"}) is None
    assert not check.passes_by_shape({"f": 3.0, "g": "a"})
    # a keyword about the value itself (length, enum, nested fields) makes the answer depend on more than the shape
    for field in ({"type": "string", "maxLength": 3}, {"enum": ["a"]}, {"type": "object", "properties": {}}):
        schema = {"type": "object", "properties": {"f": field}}
        value_check, _ = check_for(schema)
        assert (
            value_check.compiled and value_check.problem({"f": "a"} if "properties" not in field else {"f": {}}) is None
        )
        assert not value_check.passes_by_shape({"f": "a"}) and not value_check.passes_by_shape({"f": {}})
    date_schema = record_schema({"type": "string", "format": "date"})
    formats = RecordCheck(date_schema, JSONSchemaValidator(date_schema, validate_formats=True).validator)
    assert not formats.passes_by_shape({"f": "2024-02-29", "g": "a"})


def test_problem_names_the_field_and_stays_short() -> None:
    check, _ = check_for(record_schema({"type": "integer"}))
    assert check.problem({"f": "old"}) == "field 'f': 'old' is not of type 'integer'"
    long_problem = check.problem({"f": "y" * 100_000})
    assert long_problem is not None and long_problem.startswith("field 'f': ") and len(long_problem) <= 200
    nested, _ = check_for(record_schema({"type": "object", "properties": {"n": {"type": "integer"}}}))
    assert nested.problem({"f": {"n": "x"}}) == "field 'f/n': 'x' is not of type 'integer'"


def test_cli_rejects_bad_records_naming_the_field_and_loads_the_rest(sf, run_target, base_config) -> None:
    """A value of the wrong JSON type, and a date-like string that is no date, each cost their record only."""
    props = {
        "LastName": {"type": "string"},
        "Age": {"type": ["integer", "null"]},
        "Birthdate": {"type": ["string", "null"], "format": "date"},
    }
    records = [
        {"LastName": "Ng 0", "Age": 30, "Birthdate": "1990-05-17"},
        {"LastName": "Ng 1", "Age": "old", "Birthdate": "1990-05-17"},
        {"LastName": "Ng 2", "Age": None, "Birthdate": "17/05/1990"},
        {"LastName": "Ng 3", "Birthdate": "1991-02-03T23:30:00Z"},
    ]
    config = {
        **base_config,
        "object": "Contact",
        "sync_mode": "insert",
        "field_mapping": {"LastName": "LastName", "Birthdate": "Birthdate"},
    }
    result = run_target(config, [schema_msg("contacts", props), *(record_msg("contacts", r) for r in records)])
    result.assert_ok()
    rejects = {r["record"]["LastName"]: r for r in result.rejects}
    assert sorted(rejects) == ["Ng 1", "Ng 2"]
    assert rejects["Ng 1"]["error_code"] == "INVALID_RECORD" and "field 'Age'" in rejects["Ng 1"]["message"]
    assert rejects["Ng 1"]["record"] == records[1]
    assert rejects["Ng 2"]["fields"] == ["Birthdate"] and rejects["Ng 2"]["record"] == records[2]
    assert len(write_calls(result.calls)) == 1
    rows = sf.query("SELECT LastName, Birthdate FROM Contact")["records"]
    assert {row["LastName"]: row["Birthdate"] for row in rows} == {"Ng 0": "1990-05-17", "Ng 3": "1991-02-03"}

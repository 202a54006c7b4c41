"""singer-sdk's standard target tests, run for real against a dedicated emulator, each checked by reading back.

``get_target_test_class`` generates one test per standard case, fed from ``singer_sdk/testing/target_test_streams``.
Those tests only assert that nothing raises, so every case here is the SDK's own test class with a ``validate()``
that reads back through SOQL (simple-salesforce) what its input should have written. The subclasses keep the
SDK's names and ``test()`` bodies (the three that expect an exception still expect it); ``test_standard_cases_all_run``
checks that none of the standard cases is left out.

The emulator is started with ``--objects tests/target/standard_objects.json``: one object per stream of those
files, with a field per property. ``STREAMS`` maps each stream to its object: the key properties go to an External
ID ``Source_Id__c`` that keyed streams upsert on, objects and arrays to long text fields (the target sends them as
compact JSON). ``allow_rejects`` is false, so a record that does not land fails the run instead of passing quietly.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import io
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from singer_sdk.exceptions import MissingKeyPropertiesError, RecordsWithoutSchemaException
from singer_sdk.singerlib.exceptions import InvalidInputLine
from singer_sdk.testing import get_target_test_class, target_test_streams
from singer_sdk.testing import target_tests as sdk
from singer_sdk.testing.runners import TargetTestRunner
from singer_sdk.testing.suites import SingerTestSuite, target_tests
from singer_sdk.testing.templates import TargetTestTemplate

from target_salesforce.target import TargetSalesforce
from tests.conftest import EmulatorProcess, start_emulator
from tests.target.conftest import described_objects

OBJECTS_FILE = Path(__file__).with_name("standard_objects.json")


def _keyed(sobject: str, **mapping: str) -> dict[str, Any]:
    """A stream upserting on the External ID its key property is mapped to."""
    return {"object": sobject, "sync_mode": "upsert", "match_field": "Source_Id__c", "field_mapping": mapping}


def _inserted(sobject: str, **mapping: str) -> dict[str, Any]:
    return {"object": sobject, "sync_mode": "insert", "field_mapping": mapping}


STREAMS: dict[str, dict[str, Any]] = {
    "test_array_data": _keyed("Test_Array_Data__c", id="Source_Id__c", fruits="Fruits__c"),
    "TestCamelcase": _keyed("Test_Camelcase__c", Id="Source_Id__c", clientName="Client_Name__c"),
    # ForecastingTypeToCategory has no entry: the stream name is the object's name and its fields match by name.
    "test_duplicate_records": _keyed("Test_Duplicate_Records__c", id="Source_Id__c", metric="Metric__c"),
    "test_strings": _keyed("Test_Strings__c", id="Source_Id__c", info="Info__c"),
    "test_strings_in_objects": _keyed("Test_Strings_In_Objects__c", id="Source_Id__c", info="Info__c"),
    "test_strings_in_arrays": _keyed("Test_Strings_In_Arrays__c", id="Source_Id__c", strings="Strings__c"),
    "test_invalid_schema": {"object": "Test_Invalid_Schema__c", "sync_mode": "insert"},
    "test_no_pk": _inserted("Test_No_Pk__c", id="Source_Id__c", metric="Metric__c"),
    "test_optional_attributes": _keyed("Test_Optional_Attributes__c", id="Source_Id__c", optional="Optional__c"),
    "example_stream": _keyed("Example_Stream__c", id="Source_Id__c", name="Name__c", email="Email__c"),
    "test_record_before_schema": _keyed("Test_Record_Before_Schema__c", id="Source_Id__c", metric="Metric__c"),
    "test_record_missing_key_property": _keyed(
        "Test_Record_Missing_Key_Property__c", id="Source_Id__c", metric="Metric__c"
    ),
    "record_missing_fields": _keyed("Record_Missing_Fields__c", id="Source_Id__c", optional="Optional__c"),
    "test_object_schema_with_properties": _inserted(
        "Test_Object_Schema_With_Properties__c", object_store="Object_Store__c"
    ),
    "test_object_schema_no_properties": _inserted(
        "Test_Object_Schema_No_Properties__c", object_store="Object_Store__c"
    ),
    # A field_mapping may only name source fields of the stream's schema, and this stream's first SCHEMA has
    # only id, a1 and a2; its later fields (a3 to a6) cannot be mapped (see the report on field_mapping).
    "test_schema_updates": _keyed("Test_Schema_Updates__c", id="Source_Id__c", a1="A1__c", a2="A2__c"),
    "test:SpecialChars!in?attributes": _keyed("Test_Special_Chars__c", _id="Source_Id__c", d="D__c"),
}

# Filled by the ``resource`` fixture once the emulator is up; the generated ``runner`` fixture reads it per test.
CONFIG: dict[str, Any] = {}


class Org:
    """The ``resource`` of these tests: the dedicated emulator and SOQL read-back helpers."""

    def __init__(self, emulator: EmulatorProcess) -> None:
        self.emulator = emulator
        self.sf = emulator.salesforce()

    def rows(self, sobject: str, *fields: str) -> list[dict[str, Any]]:
        """Every record of ``sobject`` as {field: value}, ordered by Source_Id__c (numbers numerically)."""
        answer = self.sf.query_all(f"SELECT {', '.join(fields)} FROM {sobject}")
        rows = [{name: record[name] for name in fields} for record in answer["records"]]
        if "Source_Id__c" in fields:
            rows.sort(key=lambda row: (len(row["Source_Id__c"]), row["Source_Id__c"]))
        return rows

    def count(self, sobject: str) -> int:
        return self.sf.query(f"SELECT COUNT() FROM {sobject}")["totalSize"]

    def described(self, sobject: str) -> bool:
        """Whether the target asked for the object's describe since the last reset (its sink was set up)."""
        return sobject in described_objects(self.emulator.calls())


class ReadBack(TargetTestTemplate):
    """Empties the org before each case, so that ``validate`` sees only what the case wrote."""

    resource: Org

    def setup(self) -> None:
        self.resource.emulator.reset()


class ArrayData(ReadBack, sdk.TargetArrayData):
    def validate(self) -> None:
        rows = self.resource.rows("Test_Array_Data__c", "Source_Id__c", "Fruits__c")
        assert [(row["Source_Id__c"], json.loads(row["Fruits__c"])) for row in rows] == [
            ("1", ["apple", "orange", "pear"]),
            ("2", ["banana", "apple"]),
            ("3", ["pear"]),
            ("4", ["orange", "banana", "apple", "pear"]),
        ]


class CamelcaseComplexSchema(ReadBack, sdk.TargetCamelcaseComplexSchema):
    def validate(self) -> None:
        # Two SCHEMA messages and no record: each set up a sink against the object, and nothing was written.
        assert self.resource.described("ForecastingTypeToCategory")
        assert self.resource.count("ForecastingTypeToCategory") == 0


class Camelcase(ReadBack, sdk.TargetCamelcaseTest):
    def validate(self) -> None:
        assert self.resource.rows("Test_Camelcase__c", "Source_Id__c", "Client_Name__c") == [
            {"Source_Id__c": "1", "Client_Name__c": "Gitter Windows Desktop App"},
            {"Source_Id__c": "2", "Client_Name__c": "Gitter iOS App"},
        ]


class CliPrints(ReadBack, sdk.TargetCliPrintsTest):
    def validate(self) -> None:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            self.target.print_about(output_format="json")
        about = json.loads(out.getvalue())
        assert about["name"] == "target-salesforce"
        settings = about["settings"]["properties"]
        assert settings["client_secret"].get("secret") is True
        assert self.resource.emulator["client_secret"] not in out.getvalue()


class DuplicateRecords(ReadBack, sdk.TargetDuplicateRecords):
    def validate(self) -> None:
        # Records sharing a key are merged, the last one winning.
        assert self.resource.rows("Test_Duplicate_Records__c", "Source_Id__c", "Metric__c") == [
            {"Source_Id__c": "1", "Metric__c": 100},
            {"Source_Id__c": "2", "Metric__c": 20},
        ]


class EncodedStringData(ReadBack, sdk.TargetEncodedStringData):
    def validate(self) -> None:
        expected = _singer_records(self.singer_filepath)
        strings = self.resource.rows("Test_Strings__c", "Source_Id__c", "Info__c")
        assert [(int(row["Source_Id__c"]), row["Info__c"]) for row in strings] == [
            (record["id"], record["info"]) for record in expected["test_strings"]
        ]
        objects = self.resource.rows("Test_Strings_In_Objects__c", "Source_Id__c", "Info__c")
        assert [(int(row["Source_Id__c"]), json.loads(row["Info__c"])) for row in objects] == [
            (record["id"], record["info"]) for record in expected["test_strings_in_objects"]
        ]
        arrays = self.resource.rows("Test_Strings_In_Arrays__c", "Source_Id__c", "Strings__c")
        assert [(int(row["Source_Id__c"]), json.loads(row["Strings__c"])) for row in arrays] == [
            (record["id"], record["strings"]) for record in expected["test_strings_in_arrays"]
        ]


class InvalidSchema(ReadBack, sdk.TargetInvalidSchemaTest):
    def validate(self) -> None:
        assert self.resource.count("Test_Invalid_Schema__c") == 0


class NoPrimaryKeys(ReadBack, sdk.TargetNoPrimaryKeys):
    def validate(self) -> None:
        assert self.resource.rows("Test_No_Pk__c", "Source_Id__c", "Metric__c") == [
            {"Source_Id__c": "1", "Metric__c": 11},
            {"Source_Id__c": "2", "Metric__c": 22},
            {"Source_Id__c": "3", "Metric__c": 33},
        ]


class OptionalAttributes(ReadBack, sdk.TargetOptionalAttributes):
    def validate(self) -> None:
        assert self.resource.rows("Test_Optional_Attributes__c", "Source_Id__c", "Optional__c") == [
            {"Source_Id__c": "1", "Optional__c": "This is optional"},
            {"Source_Id__c": "2", "Optional__c": None},
            {"Source_Id__c": "3", "Optional__c": "Also optional"},
            {"Source_Id__c": "4", "Optional__c": None},
        ]


class PrimaryKeyUpdates(ReadBack, sdk.TargetPrimaryKeyUpdates):
    def validate(self) -> None:
        assert self.resource.rows("Example_Stream__c", "Source_Id__c", "Name__c", "Email__c") == [
            {"Source_Id__c": "1", "Name__c": "Alice", "Email__c": "alice@example.com"},
            {"Source_Id__c": "2", "Name__c": "Bob", "Email__c": "bob@example.com"},
        ]


class RecordBeforeSchema(ReadBack, sdk.TargetRecordBeforeSchemaTest):
    def validate(self) -> None:
        assert self.resource.count("Test_Record_Before_Schema__c") == 0


class RecordMissingKeyProperty(ReadBack, sdk.TargetRecordMissingKeyProperty):
    def validate(self) -> None:
        assert self.resource.count("Test_Record_Missing_Key_Property__c") == 0


class RecordMissingFields(ReadBack, sdk.TargetRecordMissingOptionalFields):
    def validate(self) -> None:
        assert self.resource.rows("Record_Missing_Fields__c", "Source_Id__c", "Optional__c") == [
            {"Source_Id__c": "1", "Optional__c": "now you see me"},
            {"Source_Id__c": "2", "Optional__c": None},
        ]


class SchemaNoProperties(ReadBack, sdk.TargetSchemaNoProperties):
    def validate(self) -> None:
        for sobject, metrics in (
            ("Test_Object_Schema_With_Properties__c", [187, 203]),
            ("Test_Object_Schema_No_Properties__c", [1, 2]),
        ):
            stores = sorted(
                (json.loads(row["Object_Store__c"]) for row in self.resource.rows(sobject, "Object_Store__c")),
                key=lambda store: store["id"],
            )
            assert stores == [{"id": 1, "metric": metrics[0]}, {"id": 2, "metric": metrics[1]}]


class SchemaUpdates(ReadBack, sdk.TargetSchemaUpdates):
    def validate(self) -> None:
        rows = self.resource.rows("Test_Schema_Updates__c", "Source_Id__c", "A1__c", "A2__c")
        assert rows == [{"Source_Id__c": str(n), "A1__c": 100.0 + n, "A2__c": f"string{n}"} for n in range(1, 7)]


class SpecialCharsInAttributes(ReadBack, sdk.TargetSpecialCharsInAttributes):
    def validate(self) -> None:
        rows = self.resource.rows("Test_Special_Chars__c", "Source_Id__c", "D__c")
        assert [(row["Source_Id__c"], json.loads(row["D__c"])) for row in rows] == [
            ("a2e98886", {"env": "prod", "agent:type": "desktop", "agent:os:version": "10.13.1"})
        ]


def _standard_file(name: str) -> Any:
    return importlib.resources.files(target_test_streams) / f"{name}.singer"


def _singer_records(path: Any) -> dict[str, list[dict]]:
    records: dict[str, list[dict]] = {}
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            message = json.loads(line)
            if message["type"] == "RECORD":
                records.setdefault(message["stream"], []).append(message["record"])
    return records


READ_BACK_SUITE = SingerTestSuite(
    kind="target",
    tests=[
        ArrayData,
        CamelcaseComplexSchema,
        Camelcase,
        CliPrints,
        DuplicateRecords,
        EncodedStringData,
        InvalidSchema,
        NoPrimaryKeys,
        OptionalAttributes,
        PrimaryKeyUpdates,
        RecordBeforeSchema,
        RecordMissingKeyProperty,
        RecordMissingFields,
        SchemaNoProperties,
        SchemaUpdates,
        SpecialCharsInAttributes,
    ],
)

StandardTargetTests = get_target_test_class(
    TargetSalesforce,
    config=CONFIG,
    custom_suites=[READ_BACK_SUITE],
    include_target_tests=False,  # the same cases, with read-back, under the same names
    parse_env_config=False,
)


class TestTargetSalesforceStandard(StandardTargetTests):
    @pytest.fixture(scope="class")
    @classmethod
    def resource(cls) -> Iterator[Org]:
        with tempfile.TemporaryDirectory(prefix="sdk-standard-") as tmp, pytest.MonkeyPatch.context() as patch:
            emulator = start_emulator(Path(tmp), "--objects", str(OBJECTS_FILE))
            try:
                # The target's requests session honours REQUESTS_CA_BUNDLE: trust this emulator's CA for the run.
                patch.setenv("REQUESTS_CA_BUNDLE", emulator["ca_bundle"])
                CONFIG.clear()
                CONFIG.update(
                    login_url=emulator["login_url"],
                    client_id=emulator["client_id"],
                    client_secret=emulator["client_secret"],
                    refresh_token=emulator["refresh_token"],
                    streams=STREAMS,
                    allow_rejects=False,
                    rejects_path=str(Path(tmp) / "rejects.jsonl"),
                    max_retries=0,
                )
                yield Org(emulator)
            finally:
                CONFIG.clear()
                emulator.stop()

    @pytest.mark.parametrize(
        ("case", "error", "message"),
        [
            ("invalid_schema", InvalidInputLine, "missing required properties"),
            ("record_before_schema", RecordsWithoutSchemaException, "test_record_before_schema"),
            ("record_missing_key_property", MissingKeyPropertiesError, "missing one or more key_properties"),
        ],
    )
    def test_expected_failures_are_the_sdk_checks(self, resource: Org, case: str, error: type, message: str) -> None:
        """The SDK's cases accept any exception; these fail for the reason the case is about, not, say, a login."""
        resource.emulator.reset()
        lines = io.StringIO(_standard_file(case).read_text(encoding="utf-8"))
        runner = TargetTestRunner(TargetSalesforce, config=CONFIG, input_io=lines)
        with pytest.raises(error, match=message):
            runner.sync_all()


def test_standard_cases_all_run() -> None:
    """Every standard target case singer-sdk ships is generated here, as a subclass of the SDK's own test."""
    standard = {case.name for case in target_tests.tests}
    assert len(standard) == 16
    for case in READ_BACK_SUITE.tests:
        assert issubclass(case, tuple(target_tests.tests))
    assert {case.name for case in READ_BACK_SUITE.tests} == standard
    assert {name for name in dir(TestTargetSalesforceStandard) if name.startswith("test_target_")} == {
        f"test_target_{name}" for name in standard
    }


def test_objects_file_defines_every_stream_object() -> None:
    names = {entry["name"] for entry in json.loads(OBJECTS_FILE.read_text(encoding="utf-8"))["sobjects"]}
    assert {entry["object"] for entry in STREAMS.values()} | {"ForecastingTypeToCategory"} <= names

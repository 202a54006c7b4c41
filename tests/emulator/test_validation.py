"""Record ids and per-field value conversion: stored forms, Salesforce's error codes and messages."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from target_salesforce.emulator.builtin_objects import builtin_schema
from target_salesforce.emulator.ids import checksum, key_prefix, new_id, new_ids, normalize_id, to_18
from target_salesforce.emulator.validation import (
    NotOfType,
    RecordError,
    RecordParser,
    converter,
    java_double,
    type_error,
)
from target_salesforce.emulator.wire import ApiError

SCHEMA = builtin_schema()


def convert(obj: str, field: str, value: Any) -> Any:
    found = SCHEMA.get(obj)
    assert found is not None
    definition = found.field(field)
    assert definition is not None
    return converter(definition, SCHEMA)(value)


def record_error(obj: str, field: str, value: Any) -> RecordError:
    with pytest.raises(RecordError) as caught:
        convert(obj, field, value)
    return caught.value


# ------------------------------------------------------------------------------------------------ ids
@pytest.mark.parametrize(
    ("id15", "id18"),
    [
        # Pairs published in Salesforce's documentation.
        ("003D000000QV9n2", "003D000000QV9n2IAD"),
        ("001D000000K0fXO", "001D000000K0fXOIAZ"),
        ("001000000000000", "001000000000000AAA"),
        ("ABCDEABCDEABCDE", "ABCDEABCDEABCDE555"),
    ],
)
def test_checksum_matches_salesforce(id15: str, id18: str) -> None:
    assert to_18(id15) == id18
    assert checksum(id15) == id18[15:]
    assert normalize_id(id15) == id18
    assert normalize_id(id18) == id18


def test_an_18_character_id_is_read_case_insensitively() -> None:
    assert normalize_id("003d000000qv9n2iad") == "003D000000QV9n2IAD"


@pytest.mark.parametrize(
    "value",
    [
        "001RM000003oLrB000",  # a suffix that cannot belong to these characters
        "001D000000K0fXOIA",  # 17 characters
        "001D000000K0fX",  # 14 characters
        "001D000000K0fX!",
        "",
        None,
        12345,
    ],
)
def test_malformed_ids_are_refused(value: Any) -> None:
    assert normalize_id(value) is None


def test_minted_ids_are_unique_valid_and_carry_their_prefix() -> None:
    minted = new_ids("001", 5000) + [new_id("001") for _ in range(100)]
    assert len(set(minted)) == len(minted)
    assert all(len(i) == 18 and key_prefix(i) == "001" and to_18(i[:15]) == i for i in minted)
    job, locator = new_id("750"), new_id("01g")
    assert (job[:3], locator[:3]) == ("750", "01g")
    assert normalize_id(job) == job


def test_minting_refuses_a_bad_prefix() -> None:
    with pytest.raises(ValueError, match="key prefix"):
        new_id("0a")


# ---------------------------------------------------------------------------------- accepted values
@pytest.mark.parametrize(
    ("field", "value", "stored"),
    [
        ("Short_Text__c", "hello", "hello"),
        ("Short_Text__c", 12, "12"),  # JSON scalars sent to text fields are read as text
        ("Short_Text__c", True, "true"),
        ("Notes__c", "line 1\nline 2", "line 1\nline 2"),
        ("Count__c", "42", 42),
        ("Count__c", 42, 42),
        ("Count__c", 4.0, 4),
        ("Count__c", "-7", -7),
        ("Score__c", "1.23456", 1.2346),
        ("Score__c", 99.5, 99.5),
        ("Score__c", "1e3", 1000.0),
        ("Price__c", "12.345", 12.35),  # half-up on the decimal text, not the binary float
        ("Price__c", 2.675, 2.68),
        ("Price__c", "-1.005", -1.01),
        ("Discount__c", "999.99", 999.99),
        ("Active__c", True, 1),
        ("Active__c", False, 0),
        ("Active__c", "TRUE", 1),
        ("Active__c", "false", 0),
        ("Active__c", "1", 1),
        ("Active__c", "0", 0),
        ("Launch_Date__c", "2024-02-29", "2024-02-29"),
        ("Launched_At__c", "2024-05-01T10:00:00Z", "2024-05-01T10:00:00.000+0000"),
        ("Launched_At__c", "2024-05-01T10:00:00.5Z", "2024-05-01T10:00:00.500+0000"),
        ("Launched_At__c", "2024-05-01T12:30:15.123+02:00", "2024-05-01T10:30:15.123+0000"),
        ("Launched_At__c", "2024-05-01T00:30:15.123-0130", "2024-05-01T02:00:15.123+0000"),
        ("Launched_At__c", "2024-05-01T10:00:00", "2024-05-01T10:00:00.000+0000"),  # no zone: UTC
        ("Launched_At__c", "2024-05-01T10:00:00.987654+00:00", "2024-05-01T10:00:00.987+0000"),  # cut, not rounded
        ("Opens_At__c", "10:15:30", "10:15:30.000Z"),
        ("Opens_At__c", "10:15:30.5Z", "10:15:30.500Z"),
        ("Contact_Email__c", "first.last+tag@example.co.uk", "first.last+tag@example.co.uk"),
        ("Support_Phone__c", "+1 (555) 010-0000", "+1 (555) 010-0000"),
        ("Homepage__c", "example.com/anything", "example.com/anything"),
        ("Color__c", "Purple", "Purple"),  # unrestricted picklists take any value
        ("Size__c", "Large", "Large"),
        ("Features__c", "Solar; Wireless;Solar", "Solar;Wireless"),
        ("Account__c", "001D000000K0fXO", "001D000000K0fXOIAZ"),
        ("Secret__c", "s" * 175, "s" * 175),
        ("Payload__c", "aGVsbG8=", "aGVsbG8="),
        ("Widget_Key__c", "K-1", "K-1"),
    ],
)
def test_accepted_values_take_their_stored_form(field: str, value: Any, stored: Any) -> None:
    assert convert("Widget__c", field, value) == stored


def test_numbers_are_rounded_and_range_checked_on_the_digits_sent() -> None:
    """JSON numbers arrive as Decimal (``Request.json``) and CSV cells as text: rounding and the range check see
    those digits, not their nearest float. 9999999999999999.99 is the largest value of a currency(18, 2) field, but
    its nearest float is 1e16, one past the range; the value stored is still a float (SQLite REAL)."""
    largest = "9999999999999999.99"
    for value in (Decimal(largest), largest):
        assert convert("Opportunity", "Amount", value) == 1e16
        assert record_error("Opportunity", "Amount", Decimal("1E+16")).status_code == "NUMBER_OUTSIDE_VALID_RANGE"
    assert record_error("Opportunity", "Amount", "9999999999999999.995").status_code == "NUMBER_OUTSIDE_VALID_RANGE"
    assert convert("Widget__c", "Price__c", Decimal("2.675")) == 2.68  # half-up on the digits: the float is 2.67499…
    assert convert("Widget__c", "Price__c", Decimal("99999999999999.99")) == 99999999999999.99
    assert convert("Widget__c", "Count__c", Decimal("4.0")) == 4
    assert convert("Widget__c", "Short_Text__c", Decimal("1.50")) == "1.50"


# --------------------------------------------------------------------------- values of the wrong type
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("Short_Text__c", {"a": 1}),
        ("Count__c", "abc"),
        ("Count__c", 4.5),
        ("Count__c", Decimal("4.5")),
        ("Count__c", True),
        ("Score__c", "NaN"),
        ("Score__c", "inf"),
        ("Score__c", "1_000"),
        ("Score__c", [1]),
        ("Active__c", "yes"),
        ("Active__c", 1),
        ("Launch_Date__c", "2023-02-29"),
        ("Launch_Date__c", "2024/01/01"),
        ("Launch_Date__c", "2024-01-01T00:00:00Z"),
        ("Launched_At__c", "2024-05-01"),
        ("Launched_At__c", "2024-13-01T00:00:00Z"),
        ("Launched_At__c", "2024-05-01T24:00:00Z"),
        ("Launched_At__c", "2024-05-01T10:00:00+24:00"),
        ("Launched_At__c", "2024-05-01 10:00:00"),
        ("Opens_At__c", "25:00:00"),
        ("Opens_At__c", "10:15"),
        ("Features__c", ["Solar", "Wireless"]),  # a JSON array is not a multi-select value
        ("Payload__c", "not base64!"),
        ("Account__c", 12),
    ],
)
def test_values_of_the_wrong_type_are_not_of_type(field: str, value: Any) -> None:
    with pytest.raises(NotOfType):
        convert("Widget__c", field, value)


def test_a_wrong_type_fails_the_csv_record_but_the_whole_json_request() -> None:
    amount = SCHEMA.get("Opportunity").field("Amount")  # type: ignore[union-attr]
    assert amount is not None
    csv_error = type_error(amount, "abc", "csv")
    assert isinstance(csv_error, RecordError)
    assert csv_error.as_dict() == {
        "statusCode": "INVALID_TYPE_ON_FIELD_IN_RECORD",
        "message": "Amount: value not of required type: abc",
        "fields": ["Amount"],
    }
    json_error = type_error(amount, "abc", "json")
    assert isinstance(json_error, ApiError)
    assert (json_error.status, json_error.error_code) == (400, "JSON_PARSER_ERROR")
    assert json_error.message == (
        "Cannot deserialize instance of double from VALUE_STRING value abc or request may be missing a required field"
    )


# ------------------------------------------------------------------------------- field rule errors
@pytest.mark.parametrize(
    ("field", "value", "code", "message"),
    [
        (
            "Short_Text__c",
            "x" * 21,
            "STRING_TOO_LONG",
            f"Short Text: data value too large: {'x' * 21} (max length=20)",
        ),
        ("Secret__c", "s" * 176, "STRING_TOO_LONG", f"Secret: data value too large: {'s' * 176} (max length=175)"),
        (
            "Count__c",
            10**9,
            "NUMBER_OUTSIDE_VALID_RANGE",
            "Count: value outside of valid range on numeric field: 1.0E9",
        ),
        (
            "Score__c",
            "1234567",
            "NUMBER_OUTSIDE_VALID_RANGE",
            "Score: value outside of valid range on numeric field: 1234567.0",
        ),
        (
            "Discount__c",
            1000,
            "NUMBER_OUTSIDE_VALID_RANGE",
            "Discount: value outside of valid range on numeric field: 1000.0",
        ),
        (
            "Contact_Email__c",
            "not-an-email",
            "INVALID_EMAIL_ADDRESS",
            "Contact Email: invalid email address: not-an-email",
        ),
        ("Contact_Email__c", "a@b", "INVALID_EMAIL_ADDRESS", "Contact Email: invalid email address: a@b"),
        (
            "Size__c",
            "Huge",
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            "Size: bad value for restricted picklist field: Huge",
        ),
        (
            "Features__c",
            "Solar;Nuclear",
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            "Features: bad value for restricted picklist field: Nuclear",
        ),
        ("Account__c", "abc", "MALFORMED_ID", "Account: id value of incorrect type: abc"),
        (
            "Account__c",
            "003D000000QV9n2IAD",
            "FIELD_INTEGRITY_EXCEPTION",
            "Account: id value of incorrect type: 003D000000QV9n2IAD",
        ),
    ],
)
def test_rule_errors_fail_the_record_with_salesforce_wording(field: str, value: Any, code: str, message: str) -> None:
    error = record_error("Widget__c", field, value)
    assert error.as_dict() == {"statusCode": code, "message": message, "fields": [field]}


def test_text_length_counts_utf16_code_units_as_salesforce_does() -> None:
    # Short_Text__c holds 20: ten emoji are 20 UTF-16 code units and fit; one more character does not.
    assert convert("Widget__c", "Short_Text__c", "😀" * 10) == "😀" * 10
    assert record_error("Widget__c", "Short_Text__c", "😀" * 10 + "x").status_code == "STRING_TOO_LONG"


def test_messages_name_standard_fields_by_label() -> None:
    error = record_error("Account", "Name", "n" * 256)
    assert error.message.startswith("Account Name: data value too large: ")
    assert error.fields == ["Name"]


@pytest.mark.parametrize(
    ("number", "text"),
    [(100, "100.0"), (0.5, "0.5"), (1e20, "1.0E20"), (12345678.0, "1.2345678E7"), (-0.0001, "-1.0E-4"), (0, "0.0")],
)
def test_numbers_in_messages_print_as_java_does(number: float, text: str) -> None:
    assert java_double(number) == text


# ------------------------------------------------------------------------------------------ rows
def parser(obj: str, source: str) -> RecordParser:
    found = SCHEMA.get(obj)
    assert found is not None
    return RecordParser(found, SCHEMA, source)


def test_keys_are_case_insensitive_and_values_keyed_by_canonical_name() -> None:
    row = parser("Account", "json").parse({"attributes": {"type": "Account"}, "name": "Acme", "PHONE": 5})
    assert row.values == {"Name": "Acme", "Phone": "5"}
    assert row.error is None


def test_an_unknown_key_fails_the_whole_request() -> None:
    with pytest.raises(ApiError) as caught:
        parser("Account", "csv").parse({"Name": "Acme", "Bogus__c": "x"})
    assert (caught.value.status, caught.value.error_code) == (400, "INVALID_FIELD")
    assert caught.value.message == "No such column 'Bogus__c' on sobject of type Account"


def test_csv_empty_cells_are_left_out_and_na_means_null() -> None:
    row = parser("Account", "csv").parse({"Name": "Acme", "Phone": "", "Website": "#N/A"})
    assert row.values == {"Name": "Acme", "Website": None}


def test_json_empty_string_means_null() -> None:
    assert parser("Account", "json").parse({"Phone": ""}).values == {"Phone": None}


def test_a_csv_type_error_keeps_the_first_error_on_the_row() -> None:
    row = parser("Widget__c", "csv").parse({"Count__c": "abc", "Short_Text__c": "x" * 30, "Name": "ok"})
    assert row.error is not None and row.error.status_code == "INVALID_TYPE_ON_FIELD_IN_RECORD"
    assert row.values["Name"] == "ok"


def test_a_json_type_error_fails_the_request() -> None:
    with pytest.raises(ApiError) as caught:
        parser("Widget__c", "json").parse({"Count__c": "abc"})
    assert caught.value.error_code == "JSON_PARSER_ERROR"


def test_non_writable_fields_are_noted_for_the_store() -> None:
    row = parser("Contact", "json").parse({"LastName": "Li", "Name": "X", "CreatedDate": "2024-01-01T00:00:00Z"})
    assert row.not_createable == ["Name", "CreatedDate"]
    assert row.not_updateable == ["Name", "CreatedDate"]


def test_foreign_keys_by_parent_external_id_csv_and_json() -> None:
    csv_row = parser("Contact", "csv").parse({"LastName": "Li", "account.external_id__c": "A-1"})
    json_row = parser("Contact", "json").parse(
        {"LastName": "Li", "Account": {"attributes": {"type": "Account"}, "External_Id__c": "A-1"}}
    )
    for row in (csv_row, json_row):
        assert row.lookups is not None and len(row.lookups) == 1
        lookup = row.lookups[0]
        assert (lookup.field.name, lookup.parent.name, lookup.parent_field.name, lookup.value) == (
            "AccountId",
            "Account",
            "External_Id__c",
            "A-1",
        )


def test_a_foreign_key_through_a_field_that_is_no_external_id_fails_the_request() -> None:
    with pytest.raises(ApiError) as caught:
        parser("Contact", "csv").parse({"LastName": "Li", "Account.Name": "Acme"})
    assert caught.value.error_code == "INVALID_FIELD"
    assert caught.value.message == (
        "Field name provided, Name does not match an External ID, Salesforce Id, or indexed field for Account"
    )


@pytest.mark.parametrize("key", ["Owner.Email", "Account.Nope__c"])
def test_an_unknown_relationship_column_fails_the_request(key: str) -> None:
    with pytest.raises(ApiError) as caught:
        parser("Contact", "csv").parse({"LastName": "Li", key: "x"})
    assert caught.value.error_code == "INVALID_FIELD"


def test_a_json_relationship_that_is_not_an_object_fails_the_request() -> None:
    with pytest.raises(ApiError) as caught:
        parser("Contact", "json").parse({"LastName": "Li", "Account": "A-1"})
    assert caught.value.error_code == "JSON_PARSER_ERROR"


def test_a_bulk_datetime_column_is_stored_as_each_cell_would_be() -> None:
    """A column read whole (every cell the UTC form with milliseconds) stores what the cell-by-cell reading stores;
    one cell out of range sends the column cell by cell, failing that row alone."""
    cells = ["2024-05-01T10:00:00.123Z", "1999-12-31T23:59:59.999Z", "2024-02-29T00:00:00.000Z"]
    header = ["Name", "Launched_At__c"]
    whole = parser("Widget__c", "csv").parse_table(header, [["w", cell] for cell in cells])
    assert [row.values["Launched_At__c"] for row in whole] == [convert("Widget__c", "Launched_At__c", c) for c in cells]
    assert [row.values["Launched_At__c"] for row in whole] == [c[:23] + "+0000" for c in cells]

    mixed = parser("Widget__c", "csv").parse_table(header, [["w", cells[0]], ["w", "2023-02-29T00:00:00.000Z"]])
    assert mixed[0].values["Launched_At__c"] == "2024-05-01T10:00:00.123+0000" and mixed[0].error is None
    assert mixed[1].error is not None and mixed[1].error.fields == ["Launched_At__c"]


@pytest.mark.parametrize(
    ("field", "cells"),
    [
        ("Price__c", ["12.5", "-0", "99999999999999.99", "0012.30", "7"]),  # plain: read whole
        ("Price__c", ["12.5", "12.345"]),  # more decimals than the scale: rounded cell by cell
        ("Price__c", ["12.5", "1e3"]),  # an exponent: read cell by cell
        ("Discount__c", ["999.99", "-1.5"]),
        ("Score__c", ["123456.1234", "0.00005"]),
    ],
)
def test_a_bulk_number_column_is_stored_as_each_cell_would_be(field: str, cells: list[str]) -> None:
    rows = parser("Widget__c", "csv").parse_table(["Name", field], [["w", cell] for cell in cells])
    assert [row.values[field] for row in rows] == [convert("Widget__c", field, cell) for cell in cells]


def test_a_bulk_number_column_past_the_fields_digits_fails_those_rows_alone() -> None:
    rows = parser("Widget__c", "csv").parse_table(["Name", "Discount__c"], [["w", "1.5"], ["w", "1000"]])
    assert rows[0].values["Discount__c"] == 1.5 and rows[0].error is None
    assert rows[1].error is not None and rows[1].error.status_code == "NUMBER_OUTSIDE_VALID_RANGE"

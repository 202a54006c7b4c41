"""Value conversion against real-shaped describes from the emulator's built-in org (Widget__c has every type)."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal

import pytest

from target_salesforce.convert import RecordConverter, RecordRejected, ValueRejected, converter_for
from target_salesforce.emulator.builtin_objects import builtin_schema
from target_salesforce.mapping import build_plan
from target_salesforce.settings import StreamSettings

UTC = datetime.timezone.utc


def describe(object_name: str) -> dict:
    return builtin_schema().get(object_name).describe("62.0")


def field(object_name: str, field_name: str, **overrides: object) -> dict:
    found = next(f for f in describe(object_name)["fields"] if f["name"] == field_name)
    return {**found, **overrides}


def widget(field_name: str, **overrides: object):
    return converter_for(field("Widget__c", field_name, **overrides))


def rejected(convert, value) -> ValueRejected:
    with pytest.raises(ValueRejected) as info:
        convert(value)
    return info.value


# --- text -------------------------------------------------------------------------------------------------------


def test_text_passes_strings_and_renders_other_scalars_as_text():
    convert = widget("Notes__c")
    assert convert("plain") == "plain"
    assert convert(42) == "42"
    assert convert(Decimal("1.50")) == "1.50"
    assert convert(Decimal("1E+2")) == "100"
    assert convert(True) == "true"
    assert convert(datetime.date(2024, 2, 29)) == "2024-02-29"


def test_text_json_encodes_objects_and_arrays_compactly():
    convert = widget("Notes__c")
    value = {"a": Decimal("1.5"), "b": ["x", Decimal("2")], "when": datetime.date(2024, 1, 2), "é": "ü"}
    assert convert(value) == '{"a":1.5,"b":["x",2],"when":"2024-01-02","é":"ü"}'
    assert convert([1, "two"]) == '[1,"two"]'
    # A number keeps every digit the tap sent, not those of its nearest float (99999999999999.98).
    assert convert({"amount": Decimal("99999999999999.99")}) == '{"amount":99999999999999.99}'


def test_unencodable_value_is_rejected_as_wrong_type():
    assert rejected(widget("Notes__c"), {"x": object()}).code == "INVALID_TYPE_ON_FIELD_IN_RECORD"


def test_length_counts_non_ascii_characters_once():
    convert = widget("Short_Text__c")  # length 20
    assert convert("é" * 20) == "é" * 20
    assert convert("日本語" * 6) == "日本語" * 6
    problem = rejected(convert, "é" * 21)
    assert problem.code == "STRING_TOO_LONG"
    assert "Short_Text__c" in problem.message and "max length=20" in problem.message


def test_length_counts_emoji_as_two_utf16_units_like_salesforce():
    convert = widget("Short_Text__c")
    assert convert("😀" * 10) == "😀" * 10  # 10 characters, 20 UTF-16 units
    assert rejected(convert, "😀" * 10 + "a").code == "STRING_TOO_LONG"  # 11 characters, 21 units


def test_json_encoded_value_still_obeys_the_length():
    assert rejected(widget("Short_Text__c"), {"key": "a value that is long"}).code == "STRING_TOO_LONG"


def test_message_never_echoes_a_huge_value():
    problem = rejected(widget("Short_Text__c"), "x" * 100_000)
    assert len(problem.message) < 150
    assert "xxxx" in problem.message


def test_other_text_types_share_the_length_rule():
    for name, limit in [("Support_Phone__c", 40), ("Homepage__c", 255), ("Secret__c", 175)]:
        convert = widget(name)
        assert convert("1" * limit) == "1" * limit
        assert rejected(convert, "1" * (limit + 1)).code == "STRING_TOO_LONG"


# --- email, ids -------------------------------------------------------------------------------------------------


def test_email_format_is_checked():
    convert = widget("Contact_Email__c")
    assert convert("ann.o'neil+tag@example.co.uk") == "ann.o'neil+tag@example.co.uk"
    for bad in ["not-an-email", "a b@example.com", "ann@", "ann@example", "@example.com", "ann@@example.com"]:
        problem = rejected(convert, bad)
        assert problem.code == "INVALID_EMAIL_ADDRESS", bad
        assert problem.message.startswith("Contact_Email__c:")


def test_email_length_is_checked_too():
    assert rejected(widget("Contact_Email__c"), "a" * 70 + "@example.com").code == "STRING_TOO_LONG"


@pytest.mark.parametrize("value", ["001000000000001", "001000000000001AAA", "001d000000iqhslaaz", "a01Ab0000012345"])
def test_record_ids_of_15_or_18_characters_pass(value):
    assert widget("Account__c")(value) == value
    assert converter_for(field("Account", "Id"))(value) == value


@pytest.mark.parametrize("value", ["001xyz", "001000000000001AA", "001000000000001AA9", "001-00000000001", 1234])
def test_malformed_ids_are_rejected(value):
    assert rejected(widget("Account__c"), value).code == "MALFORMED_ID"


# --- numbers ----------------------------------------------------------------------------------------------------


def test_int_accepts_whole_numbers_in_any_form():
    convert = widget("Count__c")  # digits 9
    assert convert(Decimal("42")) == 42 and type(convert(Decimal("42"))) is int
    assert convert("17") == 17
    assert convert(Decimal("3.0")) == 3
    assert convert(-999_999_999) == -999_999_999


@pytest.mark.parametrize("value", [Decimal("3.5"), "abc", True, Decimal("NaN"), [1]])
def test_int_rejects_fractions_and_non_numbers(value):
    assert rejected(widget("Count__c"), value).code == "INVALID_TYPE_ON_FIELD_IN_RECORD"


def test_int_digits_limit():
    assert rejected(widget("Count__c"), 10**9).code == "NUMBER_OUTSIDE_VALID_RANGE"
    employees = converter_for(field("Account", "NumberOfEmployees"))  # digits 8
    assert employees(99_999_999) == 99_999_999
    assert rejected(employees, Decimal("100000000")).code == "NUMBER_OUTSIDE_VALID_RANGE"


def test_double_rounds_half_up_to_scale_and_returns_json_numbers():
    convert = widget("Score__c")  # precision 10, scale 4: 6 integer digits
    assert convert(Decimal("1.23456")) == 1.2346
    assert convert(Decimal("0.00005")) == 0.0001  # half-up, not banker's rounding
    assert convert(Decimal("-2.00005")) == -2.0001
    assert convert("2.5") == 2.5
    assert convert(7) == 7 and type(convert(7)) is int
    assert convert(Decimal("123456.99995")) == 123457 and type(convert(Decimal("123456.99995"))) is int
    assert json.dumps(convert(Decimal("12.3400"))) == "12.34"


def test_double_rejects_an_integer_part_longer_than_precision_minus_scale():
    convert = widget("Score__c")
    assert convert(Decimal("999999.9999")) == 999999.9999
    for too_big in [Decimal("1000000"), Decimal("999999.99995"), Decimal("-1000000"), Decimal("1E+30")]:
        assert rejected(convert, too_big).code == "NUMBER_OUTSIDE_VALID_RANGE", too_big


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), "12abc", False, {"a": 1}])
def test_double_rejects_non_numbers(value):
    assert rejected(widget("Score__c"), value).code == "INVALID_TYPE_ON_FIELD_IN_RECORD"


def test_currency_and_percent_follow_their_own_precision():
    price = widget("Price__c")  # 16, 2
    assert price(Decimal("19.999")) == 20
    assert price(Decimal("0.125")) == 0.13
    assert price(Decimal("12345678901234.56")) == Decimal("12345678901234.56")  # 16 digits: see below
    assert rejected(price, Decimal("100000000000000")).code == "NUMBER_OUTSIDE_VALID_RANGE"
    discount = widget("Discount__c")  # 5, 2
    assert discount(Decimal("999.994")) == 999.99
    assert rejected(discount, Decimal("999.995")).code == "NUMBER_OUTSIDE_VALID_RANGE"


def test_numbers_past_15_digits_keep_every_digit():
    """A float keeps at most 15 significant digits for sure: a longer value is the Decimal itself, so that the
    JSON body and the Bulk CSV carry the digits the tap sent (rounded to the scale), not those of the nearest
    float (99999999999999.99 is 99999999999999.98 as a float)."""
    amount = converter_for({"name": "X__c", "type": "currency", "precision": 18, "scale": 2})
    for value, sent in [
        ("99999999999999.99", "99999999999999.99"),
        ("9999999999999999.99", "9999999999999999.99"),  # the field's largest value: 1E+16 as a float
        ("-1234567890123456.78", "-1234567890123456.78"),
        ("1234567890123456.785", "1234567890123456.79"),  # still rounded half-up to the scale first
        ("1234567890123456.7849", "1234567890123456.78"),
    ]:
        converted = amount(Decimal(value))
        assert type(converted) is Decimal and str(converted) == sent, value
    assert str(amount("99999999999999.99")) == "99999999999999.99"  # text too
    assert rejected(amount, Decimal("9999999999999999.995")).code == "NUMBER_OUTSIDE_VALID_RANGE"
    point = converter_for({"name": "X__c", "type": "double", "precision": 18, "scale": 15})  # Latitude's shape
    assert str(point(Decimal("37.7749295123456789"))) == "37.774929512345679"
    assert str(point(Decimal("-0.12345678901234567"))) == "-0.123456789012346"


def test_numbers_of_at_most_15_digits_stay_ints_and_floats():
    """The common value costs no Decimal downstream: an integer is an int, a short fraction a float whose shortest
    form is the same decimal."""
    amount = converter_for({"name": "X__c", "type": "currency", "precision": 18, "scale": 2})
    assert amount(Decimal("1234.56")) == 1234.56 and type(amount(Decimal("1234.56"))) is float
    fifteen = amount(Decimal("9999999999999.99"))
    assert type(fifteen) is float and repr(fifteen) == "9999999999999.99"
    assert type(amount(Decimal("99999999999999.99"))) is Decimal  # 16 digits
    integral = amount(Decimal("1234567890123456.999"))  # rounds up to an integer of 16 digits
    assert integral == 1234567890123457 and type(integral) is int
    point = converter_for({"name": "X__c", "type": "double", "precision": 18, "scale": 15})
    short = point("0.1234567890123456")  # 15 digits once rounded to the scale
    assert type(short) is float and repr(short) == "0.123456789012346"


def test_number_without_precision_is_passed_through():
    convert = converter_for({"name": "X__c", "type": "double", "precision": 0, "scale": 0})
    assert convert(Decimal("123456789012.123456")) == Decimal("123456789012.123456")
    assert convert(Decimal("0.000001234")) == 0.000001234 and type(convert(Decimal("0.000001234"))) is float


# --- booleans -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("TRUE", True), (" false ", False), ("1", True), ("0", False), (1, True),
     (Decimal("0"), False)],
)  # fmt: skip
def test_boolean_accepts_xsd_boolean_words_and_zero_one(value, expected):
    assert widget("Active__c")(value) is expected


@pytest.mark.parametrize("value", ["yes", 2, Decimal("0.5"), ""])
def test_boolean_rejects_anything_else(value):
    assert rejected(widget("Active__c"), value).code == "INVALID_TYPE_ON_FIELD_IN_RECORD"


# --- dates and times ----------------------------------------------------------------------------------------------


def test_date_from_date_datetime_and_text():
    convert = widget("Launch_Date__c")
    assert convert(datetime.date(2024, 2, 29)) == "2024-02-29"
    late_evening_in_new_york = datetime.datetime(
        2024, 1, 2, 23, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=-5))
    )
    assert convert(late_evening_in_new_york) == "2024-01-02"  # the date as written, not shifted to UTC
    assert convert("2024-03-01") == "2024-03-01"
    assert convert("2024-03-01T10:00:00Z") == "2024-03-01"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20240105", "2024-01-05"),
        ("2024-W01-2", "2024-01-02"),
        ("2024W012", "2024-01-02"),
        ("0999-12-31", "0999-12-31"),
    ],
)
def test_date_text_in_other_iso_forms_is_sent_as_yyyy_mm_dd(text, expected):
    """Only YYYY-MM-DD goes out as written; the other forms Python reads (basic, week dates) are rewritten."""
    assert widget("Launch_Date__c")(text) == expected


@pytest.mark.parametrize("value", ["31/12/2024", "", "2024-02-30", 20240101])
def test_date_rejects_other_values(value):
    assert rejected(widget("Launch_Date__c"), value).code == "INVALID_TYPE_ON_FIELD_IN_RECORD"


def test_datetime_is_utc_with_milliseconds():
    convert = widget("Launched_At__c")
    naive = datetime.datetime(2024, 1, 2, 3, 4, 5, 678_901)
    assert convert(naive) == "2024-01-02T03:04:05.678Z"  # naive is UTC; microseconds truncated
    assert convert(naive.replace(tzinfo=UTC)) == "2024-01-02T03:04:05.678Z"
    plus_five = datetime.timezone(datetime.timedelta(hours=5))
    assert convert(datetime.datetime(2024, 1, 1, 1, 0, tzinfo=plus_five)) == "2023-12-31T20:00:00.000Z"
    assert convert(datetime.datetime(2024, 12, 31, 23, 59, 59, 999_999)) == "2024-12-31T23:59:59.999Z"
    assert convert(datetime.date(2024, 5, 6)) == "2024-05-06T00:00:00.000Z"
    assert convert("2024-01-02T03:04:05Z") == "2024-01-02T03:04:05.000Z"
    assert convert("2024-01-02T03:04:05.100+01:00") == "2024-01-02T02:04:05.100Z"
    assert convert("2024-01-02 03:04:05") == "2024-01-02T03:04:05.000Z"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-02T03:04:05.678901+00:00", "2024-01-02T03:04:05.678Z"),  # a tap's isoformat: cut, not rounded
        ("2024-01-02T03:04:05.678Z", "2024-01-02T03:04:05.678Z"),
        ("2024-01-02T03:04:05.678901234Z", "2024-01-02T03:04:05.678Z"),
        ("2024-01-02T03:04:05.6Z", "2024-01-02T03:04:05.600Z"),  # too few digits to cut: formatted
        ("2024-01-02T03:04:05.678+02:00", "2024-01-02T01:04:05.678Z"),  # not UTC: moved
        ("2024-W01-2T03:04:05.678Z", "2024-01-02T03:04:05.678Z"),  # a week date: read, never cut
        ("20240102T030405.678Z", "2024-01-02T03:04:05.678Z"),  # basic form: read, never cut
        (" 2024-01-02T03:04:05.678z ", "2024-01-02T03:04:05.678Z"),
    ],
)
def test_datetime_text_in_utc_is_cut_only_in_the_extended_form(text, expected):
    assert widget("Launched_At__c")(text) == expected


@pytest.mark.parametrize(
    "value",
    ["yesterday", "", 1_700_000_000, datetime.datetime(1, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=5)))],
)
def test_datetime_rejects_other_values(value):
    assert rejected(widget("Launched_At__c"), value).code == "INVALID_TYPE_ON_FIELD_IN_RECORD"


def test_time_fields():
    convert = widget("Opens_At__c")
    assert convert(datetime.time(9, 30)) == "09:30:00.000Z"
    assert convert(datetime.time(9, 30, 15, 123_456)) == "09:30:15.123Z"
    assert convert(datetime.time(9, 30, tzinfo=UTC)) == "09:30:00.000Z"
    assert convert("09:30") == "09:30:00.000Z"
    assert convert("09:30:00.500Z") == "09:30:00.500Z"


@pytest.mark.parametrize(
    "value",
    ["25:00", "nine", datetime.time(9, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=2))), "09:30+02:00", 930],
)
def test_time_rejects_other_values_and_real_offsets(value):
    assert rejected(widget("Opens_At__c"), value).code == "INVALID_TYPE_ON_FIELD_IN_RECORD"


# --- picklists ----------------------------------------------------------------------------------------------------


def test_unrestricted_picklist_takes_any_text_within_length():
    convert = widget("Color__c")
    assert convert("Purple") == "Purple"
    assert rejected(convert, "x" * 256).code == "STRING_TOO_LONG"


def test_restricted_picklist_takes_active_values_and_canonicalises_case():
    convert = widget("Size__c")
    assert convert("Small") == "Small"
    assert convert("small") == "Small"
    problem = rejected(convert, "Huge")
    assert problem.code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert problem.message == "Size__c: bad value for restricted picklist field: Huge"


def test_inactive_picklist_values_are_rejected():
    values = [{"value": "Old", "active": False}, {"value": "New", "active": True}]
    convert = widget("Size__c", picklistValues=values)
    assert convert("New") == "New"
    assert rejected(convert, "Old").code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"


def test_restricted_multipicklist_joins_lists_and_checks_each_value():
    convert = widget("Features__c")
    assert convert(["Solar", "Wireless"]) == "Solar;Wireless"
    assert convert("Solar; wireless") == "Solar;Wireless"
    assert convert([]) is None
    problem = rejected(convert, ["Solar", "Jetpack"])
    assert problem.code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" and "Jetpack" in problem.message


def test_unrestricted_multipicklist_keeps_strings_and_joins_lists():
    convert = widget("Features__c", restrictedPicklist=False)
    assert convert(["a", "b", 3]) == "a;b;3"
    assert convert("kept as is; really") == "kept as is; really"


def test_unknown_field_types_are_treated_as_text():
    convert = converter_for({"name": "Any__c", "type": "anyType", "length": 5})
    assert convert("abc") == "abc"
    assert rejected(convert, "abcdef").code == "STRING_TOO_LONG"


# --- whole records ------------------------------------------------------------------------------------------------


def _plan(sync_mode: str, mapping: dict[str, str], object_name: str = "Contact", match_field: str | None = None):
    settings = StreamSettings(
        object=object_name,
        sync_mode=sync_mode,
        match_field=match_field if sync_mode != "insert" else None,
        field_mapping=mapping,
        null_policy="clear",
        api="auto",
        stream="contacts",
    )
    source_properties = {source: {} for source in mapping}
    return build_plan(settings, describe(object_name), source_properties, describe)


CONTACT_MAPPING = {"key": "External_Id__c", "last": "LastName", "mail": "Email", "account": "Account.External_Id__c"}


def test_record_is_converted_to_object_field_names():
    plan = _plan("upsert", CONTACT_MAPPING, match_field="External_Id__c")
    record = {"key": "C-1", "last": "Zoë 😀", "mail": "z@example.com", "account": "A-1", "_sdc_batched_at": "x"}
    assert RecordConverter(plan, "clear")(record) == {
        "External_Id__c": "C-1",
        "LastName": "Zoë 😀",
        "Email": "z@example.com",
        "Account.External_Id__c": "A-1",
    }


def test_missing_source_fields_are_left_out():
    plan = _plan("upsert", CONTACT_MAPPING, match_field="External_Id__c")
    assert RecordConverter(plan, "clear")({"key": "C-1"}) == {"External_Id__c": "C-1"}


def test_null_policy_clear_sends_nulls_and_clears_the_lookup_field_of_a_relationship():
    plan = _plan("upsert", CONTACT_MAPPING, match_field="External_Id__c")
    record = {"key": "C-1", "last": "Z", "mail": None, "account": None}
    assert RecordConverter(plan, "clear")(record) == {
        "External_Id__c": "C-1",
        "LastName": "Z",
        "Email": None,
        "AccountId": None,
    }


def test_null_policy_skip_leaves_nulls_out():
    plan = _plan("update", CONTACT_MAPPING, match_field="External_Id__c")
    record = {"key": "C-1", "last": "Z", "mail": None, "account": None}
    assert RecordConverter(plan, "skip")(record) == {"External_Id__c": "C-1", "LastName": "Z"}


def test_nulls_are_left_out_on_insert_even_with_clear():
    plan = _plan("insert", {"last": "LastName", "mail": "Email"})
    assert RecordConverter(plan, "clear")({"last": "Z", "mail": None}) == {"LastName": "Z"}


def test_the_match_value_is_never_cleared():
    plan = _plan("update", {"id": "Id", "mail": "Email"}, match_field="Id")
    assert RecordConverter(plan, "clear")({"id": None, "mail": None}) == {"Email": None}


def test_every_bad_field_of_a_record_is_reported_at_once():
    plan = _plan("upsert", CONTACT_MAPPING, match_field="External_Id__c")
    record = {"key": "C-1", "last": "L" * 81, "mail": "nope", "account": "A-1"}
    with pytest.raises(RecordRejected) as info:
        RecordConverter(plan, "clear")(record)
    problem = info.value
    assert problem.fields == ["LastName", "Email"]
    assert problem.code == "STRING_TOO_LONG"
    assert "LastName: data value too large" in problem.message
    assert "Email: invalid email address: nope" in problem.message


def test_a_full_widget_record_becomes_plain_json():
    mapping = {
        "name": "Name",
        "count": "Count__c",
        "score": "Score__c",
        "price": "Price__c",
        "active": "Active__c",
        "launch": "Launch_Date__c",
        "launched": "Launched_At__c",
        "opens": "Opens_At__c",
        "features": "Features__c",
        "account": "Account__r.External_Id__c",
    }
    plan = _plan("insert", mapping, object_name="Widget__c")
    record = {
        "name": "Gadget",
        "count": Decimal("3"),
        "score": Decimal("2.71828"),
        "price": Decimal("9.99"),
        "active": True,
        "launch": datetime.date(2024, 1, 2),
        "launched": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        "opens": datetime.time(8, 0),
        "features": ["Solar"],
        "account": "A-1",
    }
    payload = RecordConverter(plan, "clear")(record)
    assert json.loads(json.dumps(payload)) == {
        "Name": "Gadget",
        "Count__c": 3,
        "Score__c": 2.7183,
        "Price__c": 9.99,
        "Active__c": True,
        "Launch_Date__c": "2024-01-02",
        "Launched_At__c": "2024-01-02T03:04:05.000Z",
        "Opens_At__c": "08:00:00.000Z",
        "Features__c": "Solar",
        "Account__r.External_Id__c": "A-1",
    }


# --- blocks of records, a column at a time -------------------------------------------------------------------------

WIDGET_MAPPING = {
    name: name
    for name in (
        "Widget_Key__c",
        "Name",
        "Short_Text__c",
        "Notes__c",
        "Count__c",
        "Score__c",
        "Price__c",
        "Discount__c",
        "Active__c",
        "Launch_Date__c",
        "Launched_At__c",
        "Opens_At__c",
        "Contact_Email__c",
        "Support_Phone__c",
        "Color__c",
        "Size__c",
        "Features__c",
        "Account__c",
    )
}


def widget_record(i: int) -> dict:
    """A record with a value of the usual class for every Widget__c column (as msgspec decodes a tap's line)."""
    return {
        "Widget_Key__c": f"W-{i}",
        "Name": f"Widget {i}",
        "Short_Text__c": f'Zoë {i} "q", a\nb'[:10],
        "Notes__c": "😀" * (i % 5),
        "Count__c": i,
        "Score__c": Decimal(f"{i}.125"),
        "Price__c": Decimal(f"{i % 7}.{i % 100:02d}"),
        "Discount__c": i % 3,
        "Active__c": i % 2 == 0,
        "Launch_Date__c": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}",
        "Launched_At__c": f"2024-05-01T10:{i % 60:02d}:00.{i:06d}+00:00",
        "Opens_At__c": "10:15:30",
        "Contact_Email__c": f"p{i}@example.com",
        "Support_Phone__c": "+1 555",
        "Color__c": "Purple",
        "Size__c": "large",
        "Features__c": ["Solar", "wireless"],
        "Account__c": "001D000000K0fXO",
    }


def widget_converter() -> RecordConverter:
    return RecordConverter(_plan("upsert", WIDGET_MAPPING, "Widget__c", "Widget_Key__c"), "clear")


def test_a_block_converts_every_column_as_each_record_is_converted():
    convert = widget_converter()
    records = [widget_record(i) for i in range(30)]
    columns = convert.block(records)
    assert columns is not None
    assert convert.rows(columns) == [convert(record) for record in records]
    assert [list(row) for row in convert.rows(columns)] == [convert.targets] * len(records)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Short_Text__c", "x" * 11),  # over half the length: counted (and here rejected) record by record
        ("Short_Text__c", 5),  # not a str: rendered as text record by record
        ("Contact_Email__c", "nope"),
        ("Launch_Date__c", "2023-02-29"),
        ("Launch_Date__c", "20240501"),  # another ISO form, sent as YYYY-MM-DD
        ("Launched_At__c", "2024-05-01T12:00:00.123+02:00"),  # an offset: moved to UTC
        ("Launched_At__c", "2024-05-01T10:00:00Z"),  # no milliseconds: formatted
        ("Launched_At__c", "2024-13-01T10:00:00.000Z"),
        ("Active__c", "true"),
        ("Count__c", Decimal("1.5")),
        ("Size__c", "Huge"),
        ("Price__c", None),  # a null: cleared record by record
        ("Price__c", Decimal("1e14")),  # out of range for currency(16, 2): rejected record by record
    ],
)
def test_a_block_with_a_value_that_needs_its_record_converted_alone_is_not_converted_whole(name, value):
    convert = widget_converter()
    records = [widget_record(i) for i in range(5)]
    records[3][name] = value
    assert convert.block(records) is None
    del records[3][name]  # a field missing from one record: that record's payload lacks it
    assert convert.block(records) is None


@pytest.mark.parametrize(
    "prices",
    [
        ["1.125", "-2.5", "3", "0.004", "-0.001", "1.999", "99999999999.99"],  # rounded half up; integral once rounded
        ["1.5", "9999999999999.99", "99999999999999.99"],  # 15 digits go as a float, 16 as the Decimal
        ["0.5", "1.5", 7],  # an int among the Decimals
    ],
)
def test_a_number_column_is_sent_as_each_value_of_it_would_be(prices):
    convert = widget_converter()
    records = [widget_record(i) for i in range(len(prices))]
    for record, price in zip(records, prices, strict=True):
        record["Price__c"] = Decimal(price) if isinstance(price, str) else price
    columns = convert.block(records)
    assert columns is not None
    at = convert.targets.index("Price__c")
    expected = [convert(record)["Price__c"] for record in records]
    assert columns[at] == expected
    assert list(map(type, columns[at])) == list(map(type, expected))


def test_a_datetime_column_is_cut_to_salesforce_form():
    convert = widget_converter()
    records = [widget_record(i) for i in (7, 8)]
    records[1]["Launched_At__c"] = "2024-05-01T10:00:00.999Z"
    columns = convert.block(records)
    assert columns is not None
    at = convert.targets.index("Launched_At__c")
    assert columns[at] == ["2024-05-01T10:07:00.000Z", "2024-05-01T10:00:00.999Z"]

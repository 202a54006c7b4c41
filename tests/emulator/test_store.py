"""The store: SaveResults and errors of every operation, stored forms, system fields, and batch speed."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from target_salesforce.emulator.builtin_objects import builtin_schema
from target_salesforce.emulator.ids import new_id, to_18
from target_salesforce.emulator.schema import FieldDef, ObjectDef
from target_salesforce.emulator.store import Store
from target_salesforce.emulator.validation import ROLLED_BACK_MESSAGE
from target_salesforce.emulator.wire import ApiError

STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000\Z")


@pytest.fixture
def store() -> Store:
    return Store(builtin_schema())


def ok(results: list[dict[str, Any]]) -> list[str]:
    assert all(r["success"] for r in results), results
    return [r["id"] for r in results]


def error_of(result: dict[str, Any]) -> dict[str, Any]:
    assert result["success"] is False and result["id"] is None, result
    assert len(result["errors"]) == 1
    return result["errors"][0]


def code_of(result: dict[str, Any]) -> str:
    return error_of(result)["statusCode"]


def count(store: Store, table: str, where: str = "1") -> int:
    with store.lock:
        return store.read_connection().execute(f'SELECT COUNT(*) FROM "{table}" WHERE {where}').fetchone()[0]


def account(store: Store, name: str = "Acme", **fields: Any) -> str:
    return ok(store.write("insert", "Account", [{"Name": name, **fields}]))[0]


# ---------------------------------------------------------------------------------------- insert
def test_insert_answers_save_results_and_sets_system_fields(store: Store) -> None:
    results = store.write("insert", "Account", [{"Name": "Acme"}, {"name": "Globex", "NumberOfEmployees": 12}])
    assert [(r["success"], r["errors"], r["created"]) for r in results] == [(True, [], True), (True, [], True)]
    record_id = results[1]["id"]
    assert len(record_id) == 18 and record_id.startswith("001") and to_18(record_id[:15]) == record_id
    record = store.get("Account", record_id)
    assert record is not None
    assert (record["Id"], record["Name"], record["NumberOfEmployees"], record["IsDeleted"]) == (
        record_id,
        "Globex",
        12,
        False,
    )
    assert STAMP.match(record["CreatedDate"])
    assert record["CreatedDate"] == record["LastModifiedDate"] == record["SystemModstamp"]
    assert record["BillingAddress"] is None


def test_stored_forms_follow_the_design(store: Store) -> None:
    """The encodings SOQL reads: booleans 0/1, numbers as numbers, dates and datetimes as sortable text."""
    widget = {
        "Name": "W",
        "Active__c": True,
        "Count__c": "3",
        "Score__c": "2.5",
        "Launch_Date__c": "2024-01-31",
        "Launched_At__c": "2024-01-31T23:00:00-02:00",
        "Opens_At__c": "08:00:00",
        "Features__c": "Solar;Wireless",
    }
    record_id = ok(store.write("insert", "Widget__c", [widget], source="csv"))[0]
    with store.lock:
        row = (
            store.read_connection()
            .execute(
                "SELECT Active__c, typeof(Active__c), Count__c, typeof(Count__c), Score__c, typeof(Score__c), "
                "Launch_Date__c, Launched_At__c, Opens_At__c, Features__c, IsDeleted FROM Widget__c WHERE Id = ?",
                (record_id,),
            )
            .fetchone()
        )
    assert row == (
        1,
        "integer",
        3,
        "integer",
        2.5,
        "real",
        "2024-01-31",
        "2024-02-01T01:00:00.000+0000",
        "08:00:00.000Z",
        "Solar;Wireless",
        0,
    )


def test_required_fields_missing(store: Store) -> None:
    results = store.write("insert", "Opportunity", [{"Amount": 5}, {"Name": "", "StageName": "Prospecting"}])
    assert error_of(results[0]) == {
        "statusCode": "REQUIRED_FIELD_MISSING",
        "message": "Required fields are missing: [Name, StageName, CloseDate]",
        "fields": ["Name", "StageName", "CloseDate"],
    }
    assert error_of(results[1])["fields"] == ["Name", "CloseDate"]
    assert count(store, "Opportunity") == 0


def test_fields_defaulted_on_create(store: Store) -> None:
    lead = ok(store.write("insert", "Lead", [{"LastName": "Li", "Company": "Acme"}]))[0]
    contact = ok(store.write("insert", "Contact", [{"LastName": "Li", "HasOptedOutOfEmail": None}]))[0]
    assert store.get("Lead", lead, ["Status", "HasOptedOutOfEmail"]) == {
        "Status": "Open - Not Contacted",
        "HasOptedOutOfEmail": False,
    }
    assert store.get("Contact", contact, ["HasOptedOutOfEmail"]) == {"HasOptedOutOfEmail": False}


def test_read_only_fields_cannot_be_written(store: Store) -> None:
    results = store.write(
        "insert",
        "Contact",
        [
            {"LastName": "Li", "Name": "X", "CreatedDate": "2024-01-01T00:00:00Z"},
            {"LastName": "Li", "Id": new_id("003")},
        ],
    )
    assert error_of(results[0]) == {
        "statusCode": "INVALID_FIELD_FOR_INSERT_UPDATE",
        "message": "Unable to create/update fields: Name, CreatedDate. Please check the security settings of this "
        "field and verify that it is read/write for your profile or permission set.",
        "fields": ["Name", "CreatedDate"],
    }
    assert error_of(results[1]) == {
        "statusCode": "INVALID_FIELD_FOR_INSERT_UPDATE",
        "message": "cannot specify Id in an insert call",
        "fields": ["Id"],
    }
    contact = ok(store.write("insert", "Contact", [{"LastName": "Li"}]))[0]
    assert (
        code_of(store.write("update", "Contact", [{"Id": contact, "Name": "X"}])[0])
        == "INVALID_FIELD_FOR_INSERT_UPDATE"
    )
    account_id = account(store)
    assert error_of(store.write("update", "Account", [{"Id": account_id, "BillingAddress": {"city": "Paris"}}])[0])[
        "fields"
    ] == ["BillingAddress"]


def test_unknown_fields_and_objects_fail_the_whole_request(store: Store) -> None:
    with pytest.raises(ApiError) as caught:
        store.write("insert", "Account", [{"Name": "fine"}, {"Name": "x", "Nope__c": 1}])
    assert (caught.value.status, caught.value.error_code, caught.value.message) == (
        400,
        "INVALID_FIELD",
        "No such column 'Nope__c' on sobject of type Account",
    )
    with pytest.raises(ApiError) as caught:
        store.write("insert", "Nope__c", [{"Name": "x"}])
    assert caught.value.status == 404
    assert count(store, "Account") == 0


def test_a_json_value_of_the_wrong_type_fails_the_request_but_a_csv_one_only_its_row(store: Store) -> None:
    with pytest.raises(ApiError) as caught:
        store.write("insert", "Account", [{"Name": "fine"}, {"Name": "x", "AnnualRevenue": "lots"}])
    assert caught.value.error_code == "JSON_PARSER_ERROR"
    assert count(store, "Account") == 0
    results = store.write("insert", "Account", [{"Name": "fine"}, {"Name": "x", "AnnualRevenue": "lots"}], source="csv")
    assert results[0]["success"]
    assert error_of(results[1]) == {
        "statusCode": "INVALID_TYPE_ON_FIELD_IN_RECORD",
        "message": "Annual Revenue: value not of required type: lots",
        "fields": ["AnnualRevenue"],
    }
    assert count(store, "Account") == 1


def test_rule_errors_reach_the_save_result(store: Store) -> None:
    results = store.write(
        "insert",
        "Widget__c",
        [
            {"Name": "a", "Short_Text__c": "x" * 21},
            {"Name": "b", "Contact_Email__c": "nope"},
            {"Name": "c", "Size__c": "Huge"},
            {"Name": "d", "Score__c": 10**7},
            {"Name": "e", "Account__c": "garbage"},
        ],
    )
    assert [code_of(r) for r in results] == [
        "STRING_TOO_LONG",
        "INVALID_EMAIL_ADDRESS",
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "NUMBER_OUTSIDE_VALID_RANGE",
        "MALFORMED_ID",
    ]


def test_full_name_is_derived_on_every_write(store: Store) -> None:
    contact = ok(store.write("insert", "Contact", [{"FirstName": "Ada", "LastName": "Lovelace"}]))[0]
    assert store.get("Contact", contact, ["Name"]) == {"Name": "Ada Lovelace"}
    ok(store.write("update", "Contact", [{"Id": contact, "FirstName": "Augusta"}]))
    assert store.get("Contact", contact, ["Name"]) == {"Name": "Augusta Lovelace"}
    ok(store.write("upsert", "Contact", [{"Id": contact, "FirstName": None}], ext_field="Id"))
    assert store.get("Contact", contact, ["Name"]) == {"Name": "Lovelace"}


# ---------------------------------------------------------------------------------------- update
def test_update_changes_fields_and_modification_stamps(store: Store) -> None:
    record_id = account(store, Phone="1")
    before = store.get("Account", record_id)
    assert before is not None
    time.sleep(0.002)
    results = store.write("update", "Account", [{"Id": record_id[:15], "Phone": "2", "Website": None}])
    assert results == [{"id": record_id, "success": True, "errors": [], "created": False}]
    after = store.get("Account", record_id)
    assert after is not None
    assert (after["Phone"], after["Name"], after["CreatedDate"]) == ("2", "Acme", before["CreatedDate"])
    assert after["LastModifiedDate"] > before["LastModifiedDate"]
    assert after["SystemModstamp"] == after["LastModifiedDate"]


def test_update_of_missing_malformed_and_deleted_records(store: Store) -> None:
    deleted = account(store, "gone")
    ok(store.write("delete", "Account", [{"Id": deleted}]))
    contact = ok(store.write("insert", "Contact", [{"LastName": "Li"}]))[0]
    results = store.write(
        "update",
        "Account",
        [
            {"Id": "xyz", "Name": "a"},
            {"Id": contact, "Name": "a"},  # an id of another object
            {"Id": new_id("001"), "Name": "a"},  # well-formed, never existed
            {"Id": deleted, "Name": "a"},
            {"Name": "a"},
        ],
    )
    assert [error_of(r) for r in results] == [
        {"statusCode": "MALFORMED_ID", "message": "malformed id xyz", "fields": []},
        {"statusCode": "MALFORMED_ID", "message": f"malformed id {contact}", "fields": []},
        {"statusCode": "INVALID_CROSS_REFERENCE_KEY", "message": "invalid cross reference id", "fields": []},
        {"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted", "fields": []},
        {"statusCode": "MISSING_ARGUMENT", "message": "Id not specified in an update call", "fields": []},
    ]


def test_update_clearing_a_required_field_or_a_checkbox(store: Store) -> None:
    contact = ok(store.write("insert", "Contact", [{"LastName": "Li", "HasOptedOutOfEmail": True}]))[0]
    results = store.write("update", "Contact", [{"Id": contact, "LastName": None}])
    assert error_of(results[0])["statusCode"] == "REQUIRED_FIELD_MISSING"
    ok(store.write("update", "Contact", [{"Id": contact, "HasOptedOutOfEmail": None}]))
    assert store.get("Contact", contact, ["LastName", "HasOptedOutOfEmail"]) == {
        "LastName": "Li",
        "HasOptedOutOfEmail": False,
    }


def test_the_same_id_twice_in_one_update_fails_both(store: Store) -> None:
    record_id = account(store)
    results = store.write("update", "Account", [{"Id": record_id, "Phone": "1"}, {"Id": record_id, "Phone": "2"}])
    assert [error_of(r)["message"] for r in results] == [f"Duplicate id specified: {record_id}"] * 2
    assert [code_of(r) for r in results] == ["DUPLICATE_VALUE"] * 2


def test_csv_empty_cell_keeps_and_na_clears(store: Store) -> None:
    record_id = account(store, Phone="1", Website="w")
    ok(store.write("update", "Account", [{"Id": record_id, "Phone": "", "Website": "#N/A"}], source="csv"))
    assert store.get("Account", record_id, ["Phone", "Website"]) == {"Phone": "1", "Website": None}


# ---------------------------------------------------------------------------------------- upsert
def test_upsert_creates_then_updates_matching_case_insensitively(store: Store) -> None:
    first = store.write("upsert", "Account", [{"External_Id__c": "A-1", "Name": "One"}], ext_field="external_id__c")
    assert first[0]["created"] is True
    again = store.write("upsert", "Account", [{"External_Id__c": "a-1", "Name": "Uno"}], ext_field="External_Id__c")
    assert again == [{"id": first[0]["id"], "success": True, "errors": [], "created": False}]
    assert store.get("Account", first[0]["id"], ["Name"]) == {"Name": "Uno"}
    assert count(store, "Account") == 1


def test_upsert_with_the_same_external_id_twice_fails_those_rows(store: Store) -> None:
    results = store.write(
        "upsert",
        "Account",
        [
            {"External_Id__c": "A", "Name": "1"},
            {"External_Id__c": "B", "Name": "2"},
            {"External_Id__c": "a", "Name": "3"},
        ],
        ext_field="External_Id__c",
    )
    assert results[1]["success"]
    assert error_of(results[0]) == {
        "statusCode": "DUPLICATE_VALUE",
        "message": "Duplicate external id specified: A",
        "fields": ["External_Id__c"],
    }
    assert error_of(results[2])["message"] == "Duplicate external id specified: a"
    assert count(store, "Account") == 1


def test_upsert_matching_several_records_fails(store: Store) -> None:
    ids = ok(
        store.write("insert", "Contact", [{"LastName": "A", "Email": "x@y.com"}, {"LastName": "B", "Email": "X@y.com"}])
    )
    results = store.write("upsert", "Contact", [{"Email": "x@Y.com", "LastName": "C"}], ext_field="Email")
    assert error_of(results[0]) == {
        "statusCode": "DUPLICATE_EXTERNAL_ID",
        "message": f"Email: more than one record found for external id field: [{ids[0]}, {ids[1]}]",
        "fields": ["Email"],
    }


def test_upsert_without_a_key_value_inserts(store: Store) -> None:
    results = store.write("upsert", "Account", [{"Name": "no key"}], ext_field="External_Id__c")
    assert results[0]["created"] is True
    by_id = store.write(
        "upsert", "Account", [{"Name": "by id"}, {"Id": results[0]["id"], "Name": "renamed"}], ext_field="Id"
    )
    assert [(r["success"], r["created"]) for r in by_id] == [(True, True), (True, False)]
    assert store.get("Account", results[0]["id"], ["Name"]) == {"Name": "renamed"}


def test_upsert_ignores_deleted_records(store: Store) -> None:
    old = account(store, External_Id__c="K")
    ok(store.write("delete", "Account", [{"Id": old}]))
    results = store.write("upsert", "Account", [{"External_Id__c": "K", "Name": "new"}], ext_field="External_Id__c")
    assert results[0]["created"] is True and results[0]["id"] != old


@pytest.mark.parametrize(
    ("field", "status", "code"),
    [("Nope__c", 404, "NOT_FOUND"), ("Name", 400, "INVALID_FIELD"), ("Phone", 400, "INVALID_FIELD")],
)
def test_upsert_on_an_unusable_field_fails_the_request(store: Store, field: str, status: int, code: str) -> None:
    with pytest.raises(ApiError) as caught:
        store.write("upsert", "Account", [{"Name": "x"}], ext_field=field)
    assert (caught.value.status, caught.value.error_code) == (status, code)


# ---------------------------------------------------------------------------------------- unique values
def test_unique_values_against_the_org_and_within_the_batch(store: Store) -> None:
    existing = account(store, External_Id__c="U-1")
    results = store.write(
        "insert",
        "Account",
        [
            {"Name": "a", "External_Id__c": "u-1"},
            {"Name": "b", "External_Id__c": "U-2"},
            {"Name": "c", "External_Id__c": "U-2"},
        ],
    )
    assert error_of(results[0]) == {
        "statusCode": "DUPLICATE_VALUE",
        "message": f"duplicate value found: External_Id__c duplicates value on record with id: {existing}",
        "fields": ["External_Id__c"],
    }
    assert results[1]["success"]
    assert error_of(results[2])["message"].endswith(f"record with id: {results[1]['id']}")
    # A record may keep (or re-send) its own value.
    ok(store.write("update", "Account", [{"Id": existing, "External_Id__c": "U-1"}]))
    # A deleted record's value is free again.
    ok(store.write("delete", "Account", [{"Id": existing}]))
    ok(store.write("insert", "Account", [{"Name": "d", "External_Id__c": "U-1"}]))


# ---------------------------------------------------------------------------------------- relationships
def test_lookup_through_parent_external_id_json_and_csv(store: Store) -> None:
    parent = account(store, External_Id__c="P-1")
    results = store.write(
        "insert",
        "Contact",
        [
            {"LastName": "json", "Account": {"attributes": {"type": "Account"}, "External_Id__c": "p-1"}},
            {"LastName": "missing", "Account": {"External_Id__c": "NOPE"}},
        ],
    )
    assert store.get("Contact", results[0]["id"], ["AccountId"]) == {"AccountId": parent}
    assert error_of(results[1]) == {
        "statusCode": "INVALID_FIELD",
        "message": "Foreign key external ID: NOPE not found for field External_Id__c in entity Account",
        "fields": [],
    }
    csv = store.write("insert", "Contact", [{"LastName": "csv", "Account.External_Id__c": "P-1"}], source="csv")
    contact = ok(csv)[0]
    assert store.get("Contact", contact, ["AccountId"]) == {"AccountId": parent}
    ok(store.write("update", "Contact", [{"Id": contact, "Account.External_Id__c": ""}], source="csv"))
    assert store.get("Contact", contact, ["AccountId"]) == {"AccountId": parent}
    ok(store.write("update", "Contact", [{"Id": contact, "Account.External_Id__c": "#N/A"}], source="csv"))
    assert store.get("Contact", contact, ["AccountId"]) == {"AccountId": None}


def test_lookup_by_id_must_name_a_live_parent(store: Store) -> None:
    live, gone = account(store, "live"), account(store, "gone")
    ok(store.write("delete", "Account", [{"Id": gone}]))
    results = store.write(
        "insert",
        "Contact",
        [
            {"LastName": "a", "AccountId": live[:15]},
            {"LastName": "b", "AccountId": new_id("001")},
            {"LastName": "c", "AccountId": gone},
        ],
    )
    assert store.get("Contact", results[0]["id"], ["AccountId"]) == {"AccountId": live}
    assert error_of(results[1]) == {
        "statusCode": "INVALID_CROSS_REFERENCE_KEY",
        "message": "invalid cross reference id",
        "fields": ["AccountId"],
    }
    assert code_of(results[2]) == "ENTITY_IS_DELETED"


# ---------------------------------------------------------------------------------------- delete
def test_soft_delete_then_hard_delete(store: Store) -> None:
    soft, hard = account(store, "soft"), account(store, "hard")
    results = store.write("delete", "Account", [{"Id": soft}, {"Id": new_id("001")}])
    assert results[0] == {"id": soft, "success": True, "errors": [], "created": False}
    assert code_of(results[1]) == "INVALID_CROSS_REFERENCE_KEY"
    assert store.get("Account", soft) is None
    assert count(store, "Account", "IsDeleted = 1") == 1  # still there for queryAll
    assert code_of(store.write("delete", "Account", [{"Id": soft}])[0]) == "ENTITY_IS_DELETED"
    assert code_of(store.write("hardDelete", "Account", [{"Id": soft}])[0]) == "ENTITY_IS_DELETED"
    ok(store.write("hardDelete", "Account", [{"Id": hard}], source="csv"))
    assert count(store, "Account") == 1


def _family(store: Store) -> dict[str, str]:
    """An account with a contact, an opportunity, a widget and a child account; a second account with a contact."""
    acme, other = account(store), account(store, "Other")
    [contact, spare] = ok(
        store.write(
            "insert", "Contact", [{"LastName": "Kid", "AccountId": acme}, {"LastName": "Spare", "AccountId": other}]
        )
    )
    [deal] = ok(
        store.write(
            "insert",
            "Opportunity",
            [{"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2025-01-01", "AccountId": acme}],
        )
    )
    [widget] = ok(store.write("insert", "Widget__c", [{"Name": "W", "Account__c": acme}]))
    subsidiary = account(store, "Sub", ParentId=acme)
    names = ("acme", "other", "contact", "spare", "deal", "widget", "subsidiary")
    return dict(zip(names, (acme, other, contact, spare, deal, widget, subsidiary), strict=True))


def test_deleting_an_account_cascades_to_contacts_and_opportunities_and_clears_lookups(store: Store) -> None:
    ids = _family(store)
    ok(store.write("delete", "Account", [{"Id": ids["acme"]}]))
    assert count(store, "Contact", f"Id = '{ids['contact']}' AND IsDeleted = 1 AND AccountId = '{ids['acme']}'") == 1
    assert count(store, "Opportunity", f"Id = '{ids['deal']}' AND IsDeleted = 1") == 1
    assert store.get("Widget__c", ids["widget"], ["Account__c"]) == {"Account__c": None}
    assert store.get("Account", ids["subsidiary"], ["ParentId"]) == {"ParentId": None}
    assert store.get("Contact", ids["spare"], ["AccountId"]) == {"AccountId": ids["other"]}


def test_hard_deleting_an_account_erases_its_contacts(store: Store) -> None:
    ids = _family(store)
    ok(store.write("delete", "Contact", [{"Id": ids["spare"]}]))  # already in the Recycle Bin: erased too
    ok(store.write("hardDelete", "Account", [{"Id": ids["other"]}, {"Id": ids["acme"]}], source="csv"))
    assert count(store, "Contact") == 0 and count(store, "Opportunity") == 0
    assert store.get("Widget__c", ids["widget"], ["Account__c"]) == {"Account__c": None}


def test_a_failed_delete_cascades_nothing(store: Store) -> None:
    ids = _family(store)
    results = store.write("delete", "Account", [{"Id": ids["acme"]}, {"Id": new_id("001")}], all_or_none=True)
    assert code_of(results[1]) == "INVALID_CROSS_REFERENCE_KEY"
    assert count(store, "Contact", "IsDeleted = 1") == 0
    assert store.get("Widget__c", ids["widget"], ["Account__c"]) == {"Account__c": ids["acme"]}


def test_atomic_undoes_every_batch_of_the_block(store: Store) -> None:
    acme = account(store)
    with store.atomic() as roll_back:
        ok(store.write("update", "Account", [{"Id": acme, "Name": "renamed"}]))
        ok(store.write("insert", "Contact", [{"LastName": "Ng", "AccountId": acme}]))
        roll_back()
    assert store.get("Account", acme, ["Name"]) == {"Name": "Acme"} and count(store, "Contact") == 0
    with pytest.raises(ApiError), store.atomic():
        ok(store.write("delete", "Account", [{"Id": acme}]))
        store.write("insert", "Nope__c", [{}])
    assert store.get("Account", acme, ["Name"]) == {"Name": "Acme"}
    with store.atomic():
        ok(store.write("update", "Account", [{"Id": acme, "Name": "kept"}]))
    assert store.get("Account", acme, ["Name"]) == {"Name": "kept"}


# ---------------------------------------------------------------------------------------- batch behaviour
def test_all_or_none_rolls_everything_back(store: Store) -> None:
    existing = account(store)
    results = store.write(
        "upsert",
        "Account",
        [{"Id": existing, "Name": "renamed"}, {"Name": "new"}, {"Name": None}],
        ext_field="Id",
        all_or_none=True,
    )
    rolled = {"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK", "message": ROLLED_BACK_MESSAGE, "fields": []}
    assert results[0] == {"id": existing, "success": False, "errors": [rolled], "created": False}
    assert results[1] == {"id": None, "success": False, "errors": [rolled], "created": False}
    assert code_of(results[2]) == "REQUIRED_FIELD_MISSING"
    assert count(store, "Account") == 1
    assert store.get("Account", existing, ["Name"]) == {"Name": "Acme"}


def test_lock_row_is_asked_once_per_row(store: Store) -> None:
    answers = iter([False, True, False])
    asked = []

    def lock_row() -> bool:
        asked.append(1)
        return next(answers)

    results = store.write("insert", "Account", [{"Name": "a"}, {"Name": "b"}, {"Name": "c"}], lock_row=lock_row)
    assert len(asked) == 3
    assert [r["success"] for r in results] == [True, False, True]
    assert error_of(results[1]) == {
        "statusCode": "UNABLE_TO_LOCK_ROW",
        "message": "unable to obtain exclusive access to this record",
        "fields": [],
    }


def test_reset_removes_records_and_keeps_the_schema(store: Store) -> None:
    account(store)
    ok(store.write("insert", "Contact", [{"LastName": "Li"}]))
    store.reset()
    assert count(store, "Account") == count(store, "Contact") == 0
    account(store)
    assert count(store, "Account") == 1


# ---------------------------------------------------------------------------------------- reads
def test_get_shapes_values_and_reads_ids_in_any_form(store: Store) -> None:
    record_id = account(store, BillingCity="Paris", BillingPostalCode="75001")
    assert store.get("account", record_id[:15], ["name", "BillingAddress"]) == {
        "Name": "Acme",
        "BillingAddress": {
            "street": None,
            "city": "Paris",
            "state": None,
            "postalCode": "75001",
            "country": None,
            "latitude": None,
            "longitude": None,
        },
    }
    assert store.get("Account", record_id.lower()) is not None
    assert store.get("Contact", record_id) is None
    assert store.get("Account", "nonsense") is None
    with pytest.raises(ApiError) as caught:
        store.get("Account", record_id, ["Nope"])
    assert caught.value.error_code == "INVALID_FIELD"


def test_find_ids(store: Store) -> None:
    first, second = account(store, External_Id__c="F-1"), account(store, "deleted", External_Id__c="F-2")
    ok(store.write("delete", "Account", [{"Id": second}]))
    assert store.find_ids("Account", "external_id__c", "f-1") == [first]
    assert store.find_ids("Account", "External_Id__c", "F-2") == []
    assert store.find_ids("Account", "Id", first[:15]) == [first]
    assert store.find_ids("Account", "Id", second) == []
    with pytest.raises(ApiError) as caught:
        store.find_ids("Account", "Nope", "x")
    assert caught.value.status == 404
    with pytest.raises(ApiError) as caught:
        store.find_ids("Account", "Name", "Acme")
    assert caught.value.status == 400


# ---------------------------------------------------------------------------------------- schema and storage
def test_objects_added_later_get_a_table(store: Store) -> None:
    gadget = ObjectDef(
        "Gadget__c",
        "a02",
        [
            FieldDef("Id", "id", createable=False, updateable=False, nillable=False, defaulted_on_create=True),
            FieldDef("Name", "string", "Gadget Name", length=80, nillable=False),
            FieldDef(
                "Widget__c",
                "reference",
                "Widget",
                length=18,
                reference_to=("Widget__c",),
                relationship_name="Widget__r",
            ),
        ],
        custom=True,
    )
    store.add_object(gadget)
    widget = ok(store.write("insert", "Widget__c", [{"Name": "w", "Widget_Key__c": "W-1"}]))[0]
    gadget_id = ok(store.write("insert", "Gadget__c", [{"Name": "g", "Widget__r": {"Widget_Key__c": "w-1"}}]))[0]
    assert gadget_id.startswith("a02")
    assert store.get("Gadget__c", gadget_id, ["Widget__c"]) == {"Widget__c": widget}


def test_an_on_disk_store_keeps_its_records(tmp_path: Path) -> None:
    path = str(tmp_path / "org.sqlite")
    first = Store(builtin_schema(), path)
    record_id = account(first)
    with first.lock:
        assert first.read_connection().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    first.close()
    again = Store(builtin_schema(), path)
    assert again.get("Account", record_id, ["Name"]) == {"Name": "Acme"}
    assert account(again, "second") != record_id
    again.close()


def test_csv_batches_are_fast(store: Store) -> None:
    """A smoke check against per-row queries creeping in (the real figure is ~90k rows/s; see the report)."""
    rows = [
        {"Name": f"A{i}", "External_Id__c": f"E{i}", "Phone": "555", "AnnualRevenue": "10", "Type": "Prospect"}
        for i in range(20000)
    ]
    started = time.perf_counter()
    for start in range(0, 20000, 10000):
        ok(store.write("insert", "Account", rows[start : start + 10000], source="csv"))
    ok(store.write("upsert", "Account", rows[5000:15000], source="csv", ext_field="External_Id__c"))
    assert time.perf_counter() - started < 3
    assert count(store, "Account") == 20000

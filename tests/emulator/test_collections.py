"""sObject Collections (reference §3), driven through simple-salesforce's ``restful`` and plain requests."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

from tests.conftest import API_VERSION, EmulatorProcess
from tests.emulator.test_rest import read_back, widget_with_account

ROLLED_BACK = "ALL_OR_NONE_OPERATION_ROLLED_BACK"


def collection(sf: Salesforce, method: str, records: list[dict[str, Any]], path: str = "", **body: Any) -> Any:
    return sf.restful(f"composite/sobjects{path}", method=method, json={"records": records, **body})


def account(name: str | None, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"attributes": {"type": "Account"}, **fields}
    if name is not None:
        record["Name"] = name
    return record


def count(sf: Salesforce, obj: str) -> int:
    return sf.query(f"SELECT COUNT() FROM {obj}")["totalSize"]


def codes(result: dict[str, Any]) -> list[str]:
    return [e["statusCode"] for e in result["errors"]]


def test_create_mixed_types_in_request_order(sf: Salesforce) -> None:
    contact = {"attributes": {"type": "Contact"}, "LastName": "Ng"}
    results = collection(sf, "POST", [account("A1"), contact, account("A2")])
    assert [r["success"] for r in results] == [True, True, True]
    assert [r["id"][:3] for r in results] == ["001", "003", "001"]
    assert all(r["errors"] == [] and "created" not in r for r in results)
    assert sf.Account.get(results[2]["id"])["Name"] == "A2"


def test_partial_success_without_all_or_none(sf: Salesforce) -> None:
    results = collection(sf, "POST", [account("ok"), account(None), account("ok2")], allOrNone=False)
    assert [r["success"] for r in results] == [True, False, True]
    assert results[1] == {
        "id": None,
        "success": False,
        "errors": [
            {
                "statusCode": "REQUIRED_FIELD_MISSING",
                "message": "Required fields are missing: [Name]",
                "fields": ["Name"],
            }
        ],
    }
    assert count(sf, "Account") == 2


def test_all_or_none_rolls_everything_back(sf: Salesforce) -> None:
    results = collection(sf, "POST", [account("ok"), account(None), account("ok2")], allOrNone=True)
    assert [codes(r) for r in results] == [[ROLLED_BACK], ["REQUIRED_FIELD_MISSING"], [ROLLED_BACK]]
    assert not any(r["success"] for r in results)
    assert count(sf, "Account") == 0


def test_all_or_none_across_objects_removes_earlier_chunks(sf: Salesforce) -> None:
    bad_contact = {"attributes": {"type": "Contact"}, "FirstName": "no last name"}
    results = collection(sf, "POST", [account("A1"), account("A2"), bad_contact], allOrNone=True)
    assert [codes(r) for r in results] == [[ROLLED_BACK], [ROLLED_BACK], ["REQUIRED_FIELD_MISSING"]]
    assert count(sf, "Account") == 0 and count(sf, "Contact") == 0


def test_all_or_none_across_objects_rolls_back_an_earlier_update(sf: Salesforce) -> None:
    acme = sf.Account.create({"Name": "Acme"})["id"]
    contact = sf.Contact.create({"LastName": "Ng"})["id"]
    records = [
        {"attributes": {"type": "Account"}, "id": acme, "Name": "renamed"},
        {"attributes": {"type": "Contact"}, "id": contact, "LastName": None},
    ]
    results = collection(sf, "PATCH", records, allOrNone=True)
    assert [codes(r) for r in results] == [[ROLLED_BACK], ["REQUIRED_FIELD_MISSING"]]
    assert results[0]["id"] == acme and not results[0]["success"]
    assert sf.Account.get(acme)["Name"] == "Acme"
    results = collection(sf, "PATCH", records[:1], allOrNone=True)
    assert results[0]["success"] and sf.Account.get(acme)["Name"] == "renamed"


def test_delete_of_an_account_cascades_to_its_contacts(emulator: EmulatorProcess, sf: Salesforce) -> None:
    acme = sf.Account.create({"Name": "Acme"})["id"]
    contact = sf.Contact.create({"LastName": "Ng", "AccountId": acme})["id"]
    params = {"ids": acme, "allOrNone": "false"}
    resp = emulator.http.delete(emulator.api_url("composite/sobjects"), params=params, headers=emulator.auth_headers())
    assert [r["success"] for r in resp.json()] == [True]
    [row] = sf.query_all(f"SELECT Id, IsDeleted FROM Contact WHERE Id = '{contact}'", include_deleted=True)["records"]
    assert row["IsDeleted"] is True and count(sf, "Contact") == 0


def test_more_than_200_records_is_exceeded_id_limit(emulator: EmulatorProcess, sf: Salesforce) -> None:
    resp = emulator.http.post(
        emulator.api_url("composite/sobjects"),
        json={"records": [account(f"A{i}") for i in range(201)]},
        headers=emulator.auth_headers(),
    )
    assert resp.status_code == 400
    assert resp.json() == [
        {
            "message": "record limit reached. cannot submit more than 200 records into this call",
            "errorCode": "EXCEEDED_ID_LIMIT",
        }
    ]
    assert count(sf, "Account") == 0
    assert len(collection(sf, "POST", [account(f"A{i}") for i in range(200)])) == 200


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"Name": "untyped"}, "Must send a concrete entity type."),
        (account("x") | {"attributes": {"type": "Nope"}}, "sObject type 'Nope' is not supported."),
    ],
)
def test_record_without_known_type_is_400(sf: Salesforce, record: dict[str, Any], message: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as info:
        collection(sf, "POST", [account("fine"), record])
    assert info.value.content == [{"message": message, "errorCode": "INVALID_TYPE"}]
    assert count(sf, "Account") == 0


def test_malformed_body_is_400(emulator: EmulatorProcess) -> None:
    resp = emulator.http.post(
        emulator.api_url("composite/sobjects"), json={"records": "nope"}, headers=emulator.auth_headers()
    )
    assert resp.status_code == 400 and resp.json()[0]["errorCode"] == "JSON_PARSER_ERROR"


def test_update(sf: Salesforce) -> None:
    ids = [r["id"] for r in collection(sf, "POST", [account("A"), account("B")])]
    results = collection(
        sf,
        "PATCH",
        [account("A2", id=ids[0]), account("no id"), account(None, id=ids[1], Name=None)],
    )
    assert results[0] == {"id": ids[0], "success": True, "errors": []}
    assert codes(results[1]) == ["MISSING_ARGUMENT"]
    assert codes(results[2]) == ["REQUIRED_FIELD_MISSING"]
    assert sf.Account.get(ids[0])["Name"] == "A2"


def test_upsert_by_external_id(sf: Salesforce) -> None:
    existing = sf.Account.create({"Name": "old", "External_Id__c": "E-1"})["id"]
    records = [account("new", External_Id__c="e-1"), account("fresh", External_Id__c="E-2")]
    results = collection(sf, "PATCH", records, path="/Account/External_Id__c", allOrNone=False)
    assert results[0] == {"id": existing, "success": True, "errors": [], "created": False}
    assert results[1]["success"] and results[1]["created"] is True
    assert sf.Account.get(existing)["Name"] == "new"  # external ids match case-insensitively


def test_same_external_id_twice_in_one_upsert(sf: Salesforce) -> None:
    records = [account("a", External_Id__c="DUP"), account("b", External_Id__c="DUP"), account("c", External_Id__c="X")]
    results = collection(sf, "PATCH", records, path="/Account/External_Id__c")
    assert [codes(r) for r in results[:2]] == [["DUPLICATE_VALUE"], ["DUPLICATE_VALUE"]]
    assert results[0]["errors"][0]["message"] == "Duplicate external id specified: DUP"
    assert results[2]["success"] and results[2]["created"] is True


def test_upsert_on_unknown_external_id_field_is_404(sf: Salesforce) -> None:
    with pytest.raises(SalesforceResourceNotFound):
        collection(sf, "PATCH", [account("a")], path="/Account/Nope__c")


def test_delete_with_ids_and_all_or_none(emulator: EmulatorProcess, sf: Salesforce) -> None:
    ids = [r["id"] for r in collection(sf, "POST", [account("A"), account("B")])]
    contact = sf.Contact.create({"LastName": "Ng"})["id"]
    url = emulator.api_url("composite/sobjects")

    def delete(id_list: list[str], all_or_none: str) -> list[dict[str, Any]]:
        params = {"ids": ",".join(id_list), "allOrNone": all_or_none}
        resp = emulator.http.delete(url, params=params, headers=emulator.auth_headers())
        assert resp.status_code == 200
        return resp.json()

    rolled = delete([ids[0], "bogus"], "true")
    assert [codes(r) for r in rolled] == [[ROLLED_BACK], ["MALFORMED_ID"]]
    assert count(sf, "Account") == 2
    done = delete([ids[0], contact, "bogus"], "false")
    assert [r["success"] for r in done] == [True, True, False]
    assert [r["id"] for r in done[:2]] == [ids[0], contact]
    again = delete([ids[0]], "false")
    assert codes(again[0]) == ["ENTITY_IS_DELETED"]
    assert count(sf, "Account") == 1 and count(sf, "Contact") == 0


def test_delete_more_than_200_ids(emulator: EmulatorProcess) -> None:
    params = {"ids": ",".join(["0015g00000AAAAAAAA"] * 201)}
    resp = emulator.http.delete(emulator.api_url("composite/sobjects"), params=params, headers=emulator.auth_headers())
    assert resp.status_code == 400 and resp.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


def test_retrieve_by_ids(emulator: EmulatorProcess, sf: Salesforce) -> None:
    record_id = sf.Account.create({"Name": "A", "Phone": "555"})["id"]
    params = {"ids": f"{record_id},0015g00000AAAAAAAA", "fields": "Name,Phone"}
    resp = emulator.http.get(
        emulator.api_url("composite/sobjects/Account"), params=params, headers=emulator.auth_headers()
    )
    assert resp.status_code == 200
    url = f"/services/data/v62.0/sobjects/Account/{record_id}"
    assert resp.json() == [{"attributes": {"type": "Account", "url": url}, "Name": "A", "Phone": "555"}, None]


def test_call_log_counts_records(emulator: EmulatorProcess, sf: Salesforce) -> None:
    collection(sf, "POST", [account(f"A{i}") for i in range(7)])
    assert emulator.calls()[-1] == {
        "method": "POST",
        "path": "/services/data/v62.0/composite/sobjects",
        "status": 200,
        "records": 7,
    }


def test_every_widget_field_type_round_trips_through_collections(sf: Salesforce) -> None:
    record = widget_with_account(sf, "RT-COLL 🚀")
    created = collection(sf, "POST", [{"attributes": {"type": "Widget__c"}, **record}])
    assert created[0]["success"], created
    assert read_back(sf, record, "RT-COLL 🚀") == record
    record["Name"] = 'Upserted, "again"\n✓'
    upserted = collection(
        sf, "PATCH", [{"attributes": {"type": "Widget__c"}, **record}], path="/Widget__c/Widget_Key__c"
    )
    assert upserted[0]["created"] is False
    assert read_back(sf, record, "RT-COLL 🚀") == record


def test_collections_need_a_session(emulator: EmulatorProcess) -> None:
    resp = requests.post(
        emulator.api_url("composite/sobjects"), json={"records": []}, verify=emulator.ca_bundle, timeout=30
    )
    assert resp.status_code == 401


def test_json_numbers_are_read_digit_for_digit(sf: Salesforce, emulator: EmulatorProcess) -> None:
    """A JSON number is checked on the digits in the body, as Salesforce reads it, not on its nearest float:
    9999999999999999.99, the largest value of Opportunity.Amount (currency 18, 2), fits, though it is 1e16 (one
    past the range) as a float; so does the same body sent as a Composite subrequest, passed on without losing a
    digit. The numbers are written into the JSON text: json.dumps would write the float."""
    headers = {**emulator.auth_headers(), "Content-Type": "application/json"}
    deal = {"attributes": {"type": "Opportunity"}, "StageName": "Prospecting", "CloseDate": "2024-01-01"}
    records = [{**deal, "Name": "largest", "Amount": "LARGEST"}, {**deal, "Name": "past", "Amount": "PAST"}]
    collections = {"allOrNone": False, "records": records}
    url = f"/services/data/v{API_VERSION}/composite/sobjects"
    subrequest: dict[str, Any] = {"method": "POST", "url": url, "referenceId": "deals"}
    outcomes = [(True, []), (False, ["NUMBER_OUTSIDE_VALID_RANGE"])]
    for path, body in [("composite/sobjects", collections), ("composite", {"compositeRequest": [subrequest]})]:
        subrequest["body"] = collections
        text = json.dumps(body).replace('"LARGEST"', "9999999999999999.99").replace('"PAST"', "1E+16")
        resp = emulator.http.post(emulator.api_url(path), data=text, headers=headers, timeout=30)
        resp.raise_for_status()
        answer = resp.json() if path == "composite/sobjects" else resp.json()["compositeResponse"][0]["body"]
        assert [(r["success"], codes(r)) for r in answer] == outcomes, path
    assert count(sf, "Opportunity") == 2

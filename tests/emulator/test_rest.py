"""REST resources (reference §2 and §5) driven by simple-salesforce, plus plain requests where the exact
status code, headers or body matter."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceResourceNotFound,
)

from tests.conftest import EmulatorProcess

NOT_FOUND = [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]

# One value of every Widget__c field type, written in the form SOQL answers, so a round trip compares equal.
# Text values carry what breaks naive encoders: quotes, commas, newlines, CRLF, non-ASCII and emoji.
WIDGET = {
    "Name": 'He said "hi", it\'s\nfine — é ü 中文 🚀',
    "Short_Text__c": 'a,"b"\'c\n🚀é',
    "Notes__c": "line1\r\nline2, \"q\" 'x'\n\n✓ 😀 " * 20,
    "Count__c": 123456789,
    "Score__c": 1234.5678,
    "Price__c": 99.99,
    "Discount__c": 12.5,
    "Active__c": True,
    "Launch_Date__c": "2024-02-29",
    "Launched_At__c": "2024-02-29T23:59:58.000+0000",
    "Opens_At__c": "08:30:00.000Z",
    "Contact_Email__c": "o'brien+tag@example.com",
    "Support_Phone__c": "+1 (555) 010-9999",
    "Homepage__c": "https://example.com/a?b=c&d=é",
    "Color__c": "Green",
    "Size__c": "Large",
    "Features__c": "Solar;Waterproof",
    "Secret__c": "s3cr3t 🔐",
    "Payload__c": base64.b64encode("bytes ✓ 🚀".encode()).decode(),
}


def api(emulator: EmulatorProcess, method: str, path: str, **kw: Any) -> requests.Response:
    headers = {**emulator.auth_headers(), **kw.pop("headers", {})}
    return emulator.http.request(method, emulator.api_url(path), headers=headers, timeout=60, **kw)


def widget_with_account(sf: Salesforce, key: str) -> dict[str, Any]:
    account = sf.Account.create({"Name": 'Parent, "Inc"'})["id"]
    return {**WIDGET, "Account__c": account, "Widget_Key__c": key}


def read_back(sf: Salesforce, record: dict[str, Any], key: str) -> dict[str, Any]:
    soql = f"SELECT {', '.join(record)} FROM Widget__c WHERE Widget_Key__c = '{key}'"
    rows = sf.query_all(soql)["records"]
    assert len(rows) == 1
    return {k: v for k, v in rows[0].items() if k != "attributes"}


# --- discovery -------------------------------------------------------------------------------------------


def test_version_list_needs_no_session(emulator: EmulatorProcess) -> None:
    resp = emulator.http.get(emulator.url("/services/data/"), timeout=30)
    assert resp.status_code == 200
    versions = {v["version"]: v for v in resp.json()}
    assert versions["46.0"] == {"label": "Summer '19", "url": "/services/data/v46.0", "version": "46.0"}
    assert versions["62.0"]["label"] == "Winter '25"
    assert "Sforce-Limit-Info" not in resp.headers


def test_versions_before_46_are_not_served(emulator: EmulatorProcess) -> None:
    resp = emulator.http.get(emulator.url("/services/data/v45.0/sobjects/"), headers=emulator.auth_headers())
    assert resp.status_code == 404 and resp.json() == NOT_FOUND


def test_any_version_from_46_is_routed(emulator: EmulatorProcess) -> None:
    for version in ("46.0", "59.0", "64.0"):
        resp = emulator.http.get(emulator.api_url("sobjects/", version), headers=emulator.auth_headers())
        assert resp.status_code == 200


def test_describe_global(emulator: EmulatorProcess) -> None:
    resp = api(emulator, "GET", "sobjects/")
    assert resp.status_code == 200
    body = resp.json()
    assert body["encoding"] == "UTF-8" and body["maxBatchSize"] == 200
    names = {s["name"]: s for s in body["sobjects"]}
    assert {"Account", "Contact", "Lead", "Opportunity", "Widget__c"} <= set(names)
    assert names["Account"]["keyPrefix"] == "001" and names["Widget__c"]["custom"] is True
    assert names["Contact"]["urls"]["describe"] == "/services/data/v62.0/sobjects/Contact/describe"


def test_describe_and_basic_info(sf: Salesforce) -> None:
    describe = sf.Widget__c.describe()
    fields = {f["name"]: f for f in describe["fields"]}
    assert set(WIDGET) <= set(fields)
    assert fields["Widget_Key__c"]["externalId"] is True
    assert fields["Features__c"]["type"] == "multipicklist"
    info = sf.Contact.metadata()
    assert info["objectDescribe"]["name"] == "Contact" and info["recentItems"] == []


def test_unknown_object_is_404_not_found(emulator: EmulatorProcess, sf: Salesforce) -> None:
    for method, path in [("GET", "sobjects/Nope__c/describe"), ("POST", "sobjects/Nope__c"), ("GET", "nope")]:
        resp = api(emulator, method, path, json={})
        assert resp.status_code == 404 and resp.json() == NOT_FOUND
    with pytest.raises(SalesforceResourceNotFound):
        sf.Nope__c.describe()


def test_wrong_method_is_405(emulator: EmulatorProcess) -> None:
    resp = api(emulator, "PUT", "sobjects/Contact")
    assert resp.status_code == 405
    assert resp.json()[0]["errorCode"] == "METHOD_NOT_ALLOWED"


# --- CRUD ------------------------------------------------------------------------------------------------


def test_create_is_201_with_save_result(emulator: EmulatorProcess) -> None:
    emulator.reset()
    resp = api(emulator, "POST", "sobjects/Contact/", json={"LastName": "Ng", "FirstName": "Ann"})
    assert resp.status_code == 201
    body = resp.json()
    assert body == {"id": body["id"], "success": True, "errors": []}
    assert re.fullmatch(r"003[0-9A-Za-z]{15}", body["id"])


def test_read_update_delete(emulator: EmulatorProcess, sf: Salesforce) -> None:
    record_id = sf.Contact.create({"LastName": "Ng", "FirstName": "Ann"})["id"]
    record = sf.Contact.get(record_id)
    assert record["attributes"] == {"type": "Contact", "url": f"/services/data/v62.0/sobjects/Contact/{record_id}"}
    assert record["Name"] == "Ann Ng" and record["Id"] == record_id

    resp = api(emulator, "GET", f"sobjects/Contact/{record_id}", params={"fields": "LastName,email"})
    assert resp.json() == {"attributes": record["attributes"], "LastName": "Ng", "Email": None}

    update = api(emulator, "PATCH", f"sobjects/Contact/{record_id}", json={"LastName": "Wu"})
    assert update.status_code == 204 and update.content == b""
    assert sf.Contact.get(record_id[:15])["LastName"] == "Wu"  # a 15-character id names the same record

    delete = api(emulator, "DELETE", f"sobjects/Contact/{record_id}")
    assert delete.status_code == 204 and delete.content == b""
    gone = api(emulator, "GET", f"sobjects/Contact/{record_id}")
    assert gone.status_code == 404 and gone.json() == NOT_FOUND
    again = api(emulator, "DELETE", f"sobjects/Contact/{record_id}")
    assert again.status_code == 404 and again.json()[0]["errorCode"] == "ENTITY_IS_DELETED"


def test_read_with_unknown_field_is_invalid_field(emulator: EmulatorProcess, sf: Salesforce) -> None:
    record_id = sf.Account.create({"Name": "A"})["id"]
    resp = api(emulator, "GET", f"sobjects/Account/{record_id}", params={"fields": "Name,Bogus"})
    assert resp.status_code == 400
    assert resp.json() == [
        {"message": "No such column 'Bogus' on sobject of type Account", "errorCode": "INVALID_FIELD"}
    ]


def test_delete_of_an_account_cascades_to_contacts_and_clears_widget_lookups(
    emulator: EmulatorProcess, sf: Salesforce
) -> None:
    widget = sf.Widget__c.create(widget_with_account(sf, "cascade"))["id"]
    acme = sf.Widget__c.get(widget)["Account__c"]
    contact = sf.Contact.create({"LastName": "Ng", "AccountId": acme})["id"]
    assert api(emulator, "DELETE", f"sobjects/Account/{acme}").status_code == 204
    every = sf.query_all("SELECT Id, IsDeleted, AccountId FROM Contact", include_deleted=True)["records"]
    assert [(r["Id"], r["IsDeleted"], r["AccountId"]) for r in every] == [(contact, True, acme)]
    assert sf.Widget__c.get(widget)["Account__c"] is None


def test_describe_lists_child_relationships_with_their_delete_rule(sf: Salesforce) -> None:
    children = {(c["childSObject"], c["field"]): c for c in sf.Account.describe()["childRelationships"]}
    assert children[("Contact", "AccountId")]["cascadeDelete"] is True
    assert children[("Contact", "AccountId")]["relationshipName"] == "Contacts"
    assert children[("Opportunity", "AccountId")]["cascadeDelete"] is True
    assert children[("Widget__c", "Account__c")]["cascadeDelete"] is False
    assert children[("Account", "ParentId")]["cascadeDelete"] is False


def test_update_or_delete_of_missing_record_is_404(emulator: EmulatorProcess) -> None:
    missing = "0035g00000AAAAAAAA"
    for method in ("PATCH", "DELETE"):
        resp = api(emulator, method, f"sobjects/Contact/{missing}", json={"LastName": "x"})
        assert resp.status_code == 404 and resp.json() == NOT_FOUND


def test_id_of_another_object_is_404(emulator: EmulatorProcess, sf: Salesforce) -> None:
    account = sf.Account.create({"Name": "A"})["id"]
    resp = api(emulator, "GET", f"sobjects/Contact/{account}")
    assert resp.status_code == 404 and resp.json()[0]["errorCode"] == "NOT_FOUND"


def test_failing_write_is_400_error_array(emulator: EmulatorProcess, sf: Salesforce) -> None:
    resp = api(emulator, "POST", "sobjects/Contact", json={"FirstName": "No last name"})
    assert resp.status_code == 400
    assert resp.json() == [
        {
            "message": "Required fields are missing: [LastName]",
            "errorCode": "REQUIRED_FIELD_MISSING",
            "fields": ["LastName"],
        }
    ]
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.Widget__c.create({"Name": "w", "Short_Text__c": "x" * 21})
    assert info.value.content[0]["errorCode"] == "STRING_TOO_LONG"


def test_body_that_is_not_json_is_json_parser_error(emulator: EmulatorProcess) -> None:
    resp = api(emulator, "POST", "sobjects/Contact", data=b"{nope", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and resp.json()[0]["errorCode"] == "JSON_PARSER_ERROR"


# --- upsert ----------------------------------------------------------------------------------------------


def test_upsert_creates_201_then_updates_200(emulator: EmulatorProcess, sf: Salesforce) -> None:
    key = "K/1 #é?&"  # needs URL encoding
    first = sf.Widget__c.upsert(
        f"Widget_Key__c/{requests.utils.quote(key, safe='')}", {"Name": "one"}, raw_response=True
    )
    assert first.status_code == 201
    body = first.json()
    assert body == {"id": body["id"], "success": True, "errors": [], "created": True}
    second = sf.Widget__c.upsert(
        f"Widget_Key__c/{requests.utils.quote(key, safe='')}", {"Name": "two"}, raw_response=True
    )
    assert second.status_code == 200
    assert second.json() == {"id": body["id"], "success": True, "errors": [], "created": False}
    assert sf.Widget__c.get_by_custom_id("Widget_Key__c", key)["Name"] == "two"


def test_upsert_with_several_matches_is_300(emulator: EmulatorProcess, sf: Salesforce) -> None:
    ids = [sf.Contact.create({"LastName": n, "Email": "same@example.com"})["id"] for n in ("a", "b")]
    resp = api(emulator, "PATCH", "sobjects/Contact/Email/same@example.com", json={"LastName": "c"})
    assert resp.status_code == 300
    assert resp.json() == [f"/services/data/v62.0/sobjects/Contact/{i}" for i in ids]
    with pytest.raises(SalesforceMoreThanOneRecord):
        sf.Contact.upsert("Email/same@example.com", {"LastName": "c"})


def test_upsert_on_unknown_field_is_404(emulator: EmulatorProcess, sf: Salesforce) -> None:
    resp = api(emulator, "PATCH", "sobjects/Widget__c/Nope__c/1", json={"Name": "x"})
    assert resp.status_code == 404
    assert resp.json()[0]["errorCode"] == "NOT_FOUND"
    with pytest.raises(SalesforceResourceNotFound):
        sf.Widget__c.upsert("Nope__c/1", {"Name": "x"})


# --- SOQL ------------------------------------------------------------------------------------------------


def test_query_pages_2000_with_server_side_cursor(emulator: EmulatorProcess, sf: Salesforce) -> None:
    for start in range(0, 4100, 200):
        records = [{"attributes": {"type": "Account"}, "Name": f"A{i}"} for i in range(start, min(start + 200, 4100))]
        sf.restful("composite/sobjects", method="POST", json={"records": records})
    first = api(emulator, "GET", "query", params={"q": "SELECT Id, Name FROM Account"}).json()
    assert first["totalSize"] == 4100 and first["done"] is False and len(first["records"]) == 2000
    assert re.fullmatch(r"/services/data/v62\.0/query/01g[0-9A-Za-z]{15}-2000", first["nextRecordsUrl"])
    second = emulator.http.get(emulator.url(first["nextRecordsUrl"]), headers=emulator.auth_headers()).json()
    assert len(second["records"]) == 2000 and second["nextRecordsUrl"].endswith("-4000")
    third = emulator.http.get(emulator.url(second["nextRecordsUrl"]), headers=emulator.auth_headers()).json()
    assert third["done"] is True and len(third["records"]) == 100 and "nextRecordsUrl" not in third
    names = {r["Name"] for page in (first, second, third) for r in page["records"]}
    assert len(names) == 4100
    assert len(sf.query_all("SELECT Id FROM Account")["records"]) == 4100


def test_unknown_query_locator(emulator: EmulatorProcess) -> None:
    resp = api(emulator, "GET", "query/01g5g00000AAAAAAAA-2000")
    assert resp.status_code == 400
    assert resp.json() == [{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}]


def test_query_all_sees_deleted_records(emulator: EmulatorProcess, sf: Salesforce) -> None:
    record_id = sf.Account.create({"Name": "gone"})["id"]
    sf.Account.delete(record_id)
    assert sf.query("SELECT Id FROM Account")["totalSize"] == 0
    everything = sf.query_all("SELECT Id, IsDeleted FROM Account", include_deleted=True)
    assert [(r["Id"], r["IsDeleted"]) for r in everything["records"]] == [(record_id, True)]


def test_malformed_query_and_missing_q(emulator: EmulatorProcess) -> None:
    bad = api(emulator, "GET", "query", params={"q": "SELEKT Id FROM Account"})
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "MALFORMED_QUERY"
    missing = api(emulator, "GET", "query")
    assert missing.status_code == 400 and missing.json()[0]["errorCode"] == "MALFORMED_QUERY"


# --- limits ----------------------------------------------------------------------------------------------


def test_limits_reports_daily_api_requests(emulator: EmulatorProcess, sf: Salesforce) -> None:
    first = sf.limits()["DailyApiRequests"]
    second = sf.limits()["DailyApiRequests"]
    assert first["Max"] == 100_000
    assert second["Remaining"] == first["Remaining"] - 1


# --- round trip ------------------------------------------------------------------------------------------


def test_every_widget_field_type_round_trips_through_rest(sf: Salesforce) -> None:
    record = widget_with_account(sf, "RT-REST é/🚀")
    sf.Widget__c.create(record)
    assert read_back(sf, record, "RT-REST é/🚀") == record


def test_round_trip_through_upsert_and_update(sf: Salesforce) -> None:
    record = widget_with_account(sf, "RT-UPSERT")
    body = {k: v for k, v in record.items() if k != "Widget_Key__c"}
    assert sf.Widget__c.upsert("Widget_Key__c/RT-UPSERT", {"Name": "placeholder"}) == 201
    assert sf.Widget__c.upsert("Widget_Key__c/RT-UPSERT", body) == 200
    assert read_back(sf, record, "RT-UPSERT") == record

"""The Composite resource (``POST /composite``): subrequests through the real handlers, one API call in all."""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from tests.conftest import API_VERSION, EmulatorProcess

BASE = f"/services/data/v{API_VERSION}"
HALTED = "PROCESSING_HALTED"


def composite(sf: Salesforce, subrequests: list[dict[str, Any]], **flags: Any) -> list[dict[str, Any]]:
    return sf.restful("composite", method="POST", json={"compositeRequest": subrequests, **flags})["compositeResponse"]


def sub(method: str, path: str, ref: str, body: Any = None) -> dict[str, Any]:
    out = {"method": method, "url": f"{BASE}/{path}", "referenceId": ref}
    if body is not None:
        out["body"] = body
    return out


def statuses(results: list[dict[str, Any]]) -> list[int]:
    return [r["httpStatusCode"] for r in results]


def error_code(result: dict[str, Any]) -> str:
    return result["body"][0]["errorCode"]


def usage(emulator: EmulatorProcess, headers: dict[str, str]) -> int:
    """The org's API usage before this request (an answered request counts itself in its own header)."""
    resp = emulator.http.get(emulator.api_url("limits"), headers=headers, timeout=30)
    return int(resp.headers["Sforce-Limit-Info"].removeprefix("api-usage=").split("/")[0]) - 1


def test_describes_in_one_call_with_a_404_subrequest(sf: Salesforce, emulator: EmulatorProcess) -> None:
    headers = emulator.auth_headers()
    before = usage(emulator, headers)
    subrequests = [
        sub("GET", "sobjects/Contact/describe", "Contact"),
        sub("GET", "sobjects/Nope__c/describe", "Nope"),
        sub("GET", "sobjects/Account/describe", "Account"),
    ]

    results = composite(sf, subrequests)

    assert [r["referenceId"] for r in results] == ["Contact", "Nope", "Account"]
    assert statuses(results) == [200, 404, 200]
    assert results[0]["body"]["name"] == "Contact" and results[2]["body"]["name"] == "Account"
    assert results[1]["body"] == [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]
    # One API call toward the limit and one call-log entry, which names the subrequests.
    assert usage(emulator, headers) == before + 2  # the composite, and the /limits read of the first usage()
    [logged] = [c for c in emulator.calls() if c["path"] == f"{BASE}/composite"]
    assert [(s["method"], s["path"], s["status"]) for s in logged["subrequests"]] == [
        ("GET", f"{BASE}/sobjects/Contact/describe", 200),
        ("GET", f"{BASE}/sobjects/Nope__c/describe", 404),
        ("GET", f"{BASE}/sobjects/Account/describe", 200),
    ]


def test_references_carry_an_answer_into_later_urls_and_bodies(sf: Salesforce) -> None:
    results = composite(
        sf,
        [
            sub("POST", "sobjects/Account", "acct", {"Name": "Acme"}),
            sub("POST", "sobjects/Contact", "ct", {"LastName": "Ng", "AccountId": "@{acct.id}"}),
            sub("GET", "sobjects/Account/@{acct.id}?fields=Name", "read"),
            sub("GET", "query/?q=SELECT+Id+FROM+Contact", "contacts"),
            sub("GET", "sobjects/Contact/@{contacts.records[0].Id}?fields=LastName", "first"),
        ],
    )

    assert statuses(results) == [201, 201, 200, 200, 200]
    assert results[2]["body"]["Name"] == "Acme"
    assert results[4]["body"]["LastName"] == "Ng"
    [row] = sf.query("SELECT LastName, Account.Name FROM Contact")["records"]
    assert (row["LastName"], row["Account"]["Name"]) == ("Ng", "Acme")


def test_without_all_or_none_only_dependent_subrequests_stop(sf: Salesforce) -> None:
    results = composite(
        sf,
        [
            sub("POST", "sobjects/Account", "bad", {"Name": None}),
            sub("POST", "sobjects/Contact", "child", {"LastName": "Ng", "AccountId": "@{bad.id}"}),
            sub("POST", "sobjects/Account", "good", {"Name": "Kept"}),
        ],
        allOrNone=False,
    )

    assert statuses(results) == [400, 400, 201]
    assert error_code(results[0]) == "REQUIRED_FIELD_MISSING"
    assert results[1]["body"] == [
        {"errorCode": HALTED, "message": "Invalid reference specified. No value for bad.id found in bad"}
    ]
    assert [r["Name"] for r in sf.query("SELECT Name FROM Account")["records"]] == ["Kept"]
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == 0


def test_all_or_none_rolls_back_every_subrequest(sf: Salesforce) -> None:
    existing = sf.Account.create({"Name": "Before"})["id"]
    results = composite(
        sf,
        [
            sub("POST", "sobjects/Account", "created", {"Name": "New"}),
            sub("PATCH", f"sobjects/Account/{existing}", "updated", {"Name": "Changed"}),
            sub("POST", "sobjects/Contact", "bad", {"FirstName": "No last name"}),
            sub("POST", "sobjects/Account", "never", {"Name": "Never"}),
        ],
        allOrNone=True,
    )

    assert statuses(results) == [400, 400, 400, 400]
    assert [error_code(r) for r in results] == [HALTED, HALTED, "REQUIRED_FIELD_MISSING", HALTED]
    assert results[0]["body"][0]["message"] == (
        "The transaction was rolled back since another operation in the same transaction failed."
    )
    assert [r["Name"] for r in sf.query("SELECT Name FROM Account")["records"]] == ["Before"]


def test_all_or_none_overrides_a_collections_subrequest(sf: Salesforce) -> None:
    records = [{"attributes": {"type": "Account"}, "Name": "Ok"}, {"attributes": {"type": "Account"}}]
    results = composite(
        sf,
        [
            sub("POST", "sobjects/Account", "first", {"Name": "First"}),
            sub("POST", "composite/sobjects", "many", {"allOrNone": False, "records": records}),
        ],
        allOrNone=True,
    )

    assert statuses(results) == [400, 200]
    assert [r["success"] for r in results[1]["body"]] == [False, False]
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 0


@pytest.mark.parametrize(
    ("subrequests", "message"),
    [
        ([sub("POST", "sobjects/Account", f"a{i}", {"Name": f"A{i}"}) for i in range(26)], "25 operations."),
        ([sub("GET", "query/?q=SELECT+Id+FROM+Account", f"q{i}") for i in range(6)], "5 query operations."),
    ],
    ids=["26 subrequests", "6 queries"],
)
def test_over_the_limits_nothing_runs(sf: Salesforce, emulator: EmulatorProcess, subrequests, message) -> None:
    [result] = composite(sf, subrequests)

    assert (result["httpStatusCode"], result["referenceId"], error_code(result)) == (400, None, "LIMIT_EXCEEDED")
    assert result["body"][0]["message"].endswith(message)
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 0
    assert [c["subrequests"] for c in emulator.calls() if c["path"].endswith("/composite")] == [[]]


@pytest.mark.parametrize(
    ("subrequest", "words"),
    [
        ({"method": "GET", "url": f"{BASE}/sobjects/Account/describe"}, "'referenceId' is a required field"),
        ({**sub("GET", "sobjects", "a"), "httpHeaders": {"Authorization": "Bearer x"}}, "Authorization"),
        (sub("GET", "sobjects", "bad-ref"), "must start with a letter or a number"),
    ],
    ids=["no referenceId", "inherited header", "bad referenceId"],
)
def test_malformed_request_fails_whole(sf: Salesforce, subrequest: dict[str, Any], words: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        composite(sf, [sub("POST", "sobjects/Account", "a0", {"Name": "A"}), subrequest])
    assert raised.value.content[0]["errorCode"] == "JSON_PARSER_ERROR"
    assert words in raised.value.content[0]["message"]
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 0


def test_resources_composite_does_not_serve_answer_404(sf: Salesforce) -> None:
    results = composite(sf, [sub("POST", "jobs/ingest", "job", {"object": "Account", "operation": "insert"})])
    assert (results[0]["httpStatusCode"], error_code(results[0])) == (404, "NOT_FOUND")

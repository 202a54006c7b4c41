"""How many calls the describes of a run cost: the configured objects and their lookups' parents in one Composite
call, read back from the emulator's call log (which lists each Composite call's subrequests)."""

from __future__ import annotations

from typing import Any

import pytest

from target_salesforce.dependencies import configured_lookups, guessed_parent
from target_salesforce.describe import DescribeCache
from target_salesforce.errors import ConfigError
from tests.target.conftest import (
    PARENT_CHILD_SCHEMAS,
    described_objects,
    parent_child_config,
    record_msg,
    schema_msg,
    string_props,
)
from tests.target.test_config_errors import assert_clean_failure


def call_kinds(calls: list[dict[str, Any]]) -> list[str]:
    """Each call as token, composite, describe, write (Collections) or other, in order."""

    def kind(call: dict[str, Any]) -> str:
        path = call["path"]
        if path.endswith("/oauth2/token"):
            return "token"
        if path.endswith("/composite"):
            return "composite"
        if path.endswith("/describe"):
            return "describe"
        return "write" if "/composite/sobjects" in path else "other"

    return [kind(call) for call in calls]


def test_ten_records_with_a_lookup_cost_three_calls(sf, run_target, base_config) -> None:
    sf.Account.create({"Name": "Parent", "External_Id__c": "A-1"})
    config = {
        **base_config,
        "object": "Contact",
        "match_field": "External_Id__c",
        "field_mapping": {"id": "External_Id__c", "last_name": "LastName", "account_key": "Account.External_Id__c"},
    }
    records = [{"id": f"c{i}", "last_name": f"Last {i}", "account_key": "A-1"} for i in range(10)]

    result = run_target(
        config,
        [schema_msg("contacts", string_props("id", "last_name", "account_key"), ["id"])]
        + [record_msg("contacts", r) for r in records],
    )

    result.assert_ok()
    assert call_kinds(result.calls) == ["token", "composite", "write"]
    assert sorted(described_objects(result.calls)) == ["Account", "Contact"]
    rows = sf.query_all("SELECT External_Id__c, LastName, Account.External_Id__c FROM Contact")["records"]
    assert sorted((r["External_Id__c"], r["LastName"], r["Account"]["External_Id__c"]) for r in rows) == sorted(
        (f"c{i}", f"Last {i}", "A-1") for i in range(10)
    )


def test_two_streams_describe_with_one_call(sf, run_target, base_config) -> None:
    messages = [
        *PARENT_CHILD_SCHEMAS,
        record_msg("contacts", {"key": "c1", "name": "Ng", "account_key": "a1"}),
        record_msg("accounts", {"key": "a1", "name": "Acme"}),
    ]

    result = run_target(parent_child_config(base_config, "rest"), messages)

    result.assert_ok()
    kinds = call_kinds(result.calls)
    assert kinds[:2] == ["token", "composite"] and "composite" not in kinds[2:] and "describe" not in kinds
    assert sorted(described_objects(result.calls)) == ["Account", "Contact"]
    [row] = sf.query_all("SELECT External_Id__c, Account.Name FROM Contact")["records"]
    assert (row["External_Id__c"], row["Account"]["Name"]) == ("c1", "Acme")


def test_a_wrong_guess_is_corrected_by_the_childs_describe(sf, run_target, base_config) -> None:
    # Widget__c.Account__r references Account, not the Account__c its name suggests: the guess is described in
    # the Composite call (and not found), then the real parent with one more call, before anything is written.
    sf.Account.create({"Name": "Parent", "External_Id__c": "A-1"})
    config = {
        **base_config,
        "object": "Widget__c",
        "sync_mode": "insert",
        "field_mapping": {"name": "Name", "account_key": "Account__r.External_Id__c"},
    }
    messages = [
        schema_msg("widgets", string_props("name", "account_key")),
        record_msg("widgets", {"name": "W", "account_key": "A-1"}),
    ]

    result = run_target(config, messages)

    result.assert_ok()
    assert call_kinds(result.calls) == ["token", "composite", "describe", "write"]
    assert described_objects(result.calls) == ["Widget__c", "Account__c", "Account"]
    [row] = sf.query_all("SELECT Name, Account__r.Name FROM Widget__c")["records"]
    assert (row["Name"], row["Account__r"]["Name"]) == ("W", "Parent")


def test_unknown_object_in_a_composite_describe_is_a_config_error(sf, run_target, base_config) -> None:
    config = {**base_config, "object": "Contcat", "field_mapping": {"name": "LastName", "acct": "Account.Name"}}

    result = run_target(config, [schema_msg("c", string_props("name", "acct")), record_msg("c", {"name": "x"})])

    assert_clean_failure(result, ("Contcat", "does not exist", "did you mean Contact"))
    assert sorted(described_objects(result.calls)) == ["Account", "Contcat"]
    assert sf.query_all("SELECT Id FROM Contact")["totalSize"] == 0


# --- which objects are described together (pure logic) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "child", "guess"),
    [
        ("Account.External_Id__c", "Contact", "Account"),
        ("Invoice__r.Key__c", "Line__c", "Invoice__c"),
        ("ns__Order__r.Key__c", "Line__c", "ns__Order__c"),
        ("Parent.External_Id__c", "Account", "Account"),
        ("ReportsTo.Email", "Contact", "Contact"),
        ("Owner.Email", "Account", "User"),
        ("What.Id", "Task", None),
    ],
)
def test_guessed_parent(target: str, child: str, guess: str | None) -> None:
    assert guessed_parent(target, child) == guess


def test_configured_lookups_cover_the_top_level_object_and_every_stream() -> None:
    config = {
        "object": "Contact",
        "field_mapping": {"acct": "Account.External_Id__c", "name": "LastName"},
        "streams": {
            "widgets": {"object": "Widget__c", "field_mapping": {"a": "Account__r.External_Id__c"}},
            "accounts": {"object": "Account"},  # inherits the top-level field_mapping
            "leads": {},  # the top-level object and mapping
        },
    }
    assert configured_lookups(config) == {
        "Contact": frozenset({"Account.External_Id__c"}),
        "Widget__c": frozenset({"Account__r.External_Id__c"}),
        "Account": frozenset({"Account.External_Id__c"}),
    }


class ScriptedOrg:
    """A client of an org without objects: every describe is a 404, and each composite request is recorded."""

    api_version = "62.0"

    def __init__(self) -> None:
        self.composites: list[list[str]] = []

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        if (method, path) == ("GET", "sobjects/"):
            return {"sobjects": []}  # the object list, read to word the error
        assert (method, path, kwargs.get("idempotent")) == ("POST", "composite", True)
        subrequests = kwargs["json"]["compositeRequest"]
        self.composites.append([s["referenceId"] for s in subrequests])
        return {"compositeResponse": [{"httpStatusCode": 404, "referenceId": s["referenceId"]} for s in subrequests]}


def test_more_than_25_objects_are_described_in_chunks_of_25() -> None:
    org = ScriptedOrg()
    names = [f"Object{i}__c" for i in range(30)]
    cache = DescribeCache(org, {name: () for name in names})

    with pytest.raises(ConfigError, match="'Object0__c' does not exist"):
        cache.describe("Object0__c")

    assert [len(chunk) for chunk in org.composites] == [25, 5]
    assert sorted(name for chunk in org.composites for name in chunk) == sorted(names)

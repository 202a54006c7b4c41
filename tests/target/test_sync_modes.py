"""The target end to end against the emulator: sync modes x write paths x match kinds, field types, nulls, rejects.

Every test runs the real ``target-salesforce`` CLI (see conftest) and checks what the emulator holds afterwards
through SOQL and its call log.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from tests.target.conftest import record_msg, schema_msg, string_props, write_calls

APIS = ("rest", "bulk")


def soql(sf: Any, query: str) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "attributes"} for r in sf.query_all(query)["records"]]


def assert_write_path(calls: list[dict[str, Any]], api: str) -> None:
    """Records went through Collections only (rest) or Bulk 2.0 ingest jobs only (bulk)."""
    writes = write_calls(calls)
    assert writes, "no write call reached the emulator"
    bulk = [c for c in writes if "/jobs/ingest" in c["path"]]
    rest = [c for c in writes if "/composite/sobjects" in c["path"]]
    assert len(bulk) + len(rest) == len(writes), writes
    assert (bulk and not rest) if api == "bulk" else (rest and not bulk), writes


def summary(stderr: str) -> str:
    return next(line for line in stderr.splitlines() if "Run summary:" in line)


# --- sync modes x write paths x match kinds ----------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("mode", ["update", "upsert"])
@pytest.mark.parametrize("kind", ["Id", "External_Id__c", "Email"])
def test_match_modes(sf, emulator, run_target, base_config, api, mode, kind) -> None:
    c1 = sf.Contact.create({"LastName": "One", "Email": "o'neil@x.com", "External_Id__c": "e1"})["id"]
    c2 = sf.Contact.create({"LastName": "Two", "Email": "b@x.com", "External_Id__c": "e2"})["id"]
    d1 = sf.Contact.create({"LastName": "Dup1", "Email": "dup@x.com", "External_Id__c": "e3"})["id"]
    d2 = sf.Contact.create({"LastName": "Dup2", "Email": "DUP@x.com", "External_Id__c": "e4"})["id"]
    gone = sf.Contact.create({"LastName": "Gone"})["id"]
    sf.Contact.delete(gone)
    values = {
        "Id": {"existing": c1, "merged": c2, "new": None},
        "External_Id__c": {"existing": "e1", "merged": "e2", "new": "e-new"},
        "Email": {"existing": "O'Neil@x.com", "merged": "b@x.com", "new": "new@x.com"},
    }[kind]
    records = [
        {kind: values["existing"], "LastName": "Updated"},
        {kind: values["merged"], "LastName": "First"},
        {kind: values["merged"], "LastName": "Last"},
        {kind: values["new"], "LastName": "New"} if values["new"] else {"LastName": "New"},
    ]
    if kind == "Email":
        records.append({"Email": "dup@X.com", "LastName": "Ambiguous"})
    if kind == "Id":
        records.append({"Id": gone, "LastName": "Resurrected"})
    config = {**base_config, "object": "Contact", "sync_mode": mode, "match_field": kind, "api": api}
    result = run_target(
        config, [schema_msg("contacts", string_props(kind, "LastName")), *(record_msg("contacts", r) for r in records)]
    )
    result.assert_ok()

    contacts = {r["Id"]: r for r in soql(sf, "SELECT Id, LastName, Email FROM Contact")}
    assert contacts[c1]["LastName"] == "Updated"
    assert contacts[c2]["LastName"] == "Last"  # merged: the last record with the same match value wins
    assert contacts[d1]["LastName"] == "Dup1" and contacts[d2]["LastName"] == "Dup2"
    new = [r for r in contacts.values() if r["LastName"] == "New"]
    assert len(new) == (1 if mode == "upsert" else 0)
    assert not [r for r in contacts.values() if r["LastName"] in ("Resurrected", "Ambiguous", "First")]
    assert "1 merged" in summary(result.stderr)

    rejects = {r["record"]["LastName"]: r for r in result.rejects}
    expected = set()
    if kind == "Email":
        expected.add("Ambiguous")
        amb = rejects["Ambiguous"]
        assert amb["error_code"] == "AMBIGUOUS_MATCH" and amb["stream"] == "contacts"
        assert d1 in amb["message"] and d2 in amb["message"]
    if kind == "Id" and mode == "update":
        expected.add("New")  # update on Id without an Id cannot match anything
        assert rejects["New"]["error_code"] == "MATCH_VALUE_MISSING"
    if kind == "Id" and mode == "upsert":
        expected.add("Resurrected")  # upsert on a deleted Id: Salesforce refuses the update
    assert set(rejects) == expected, result.rejects
    if mode == "update" and kind != "Id":
        assert "1 not found" in summary(result.stderr)  # counted, not rejected, nothing created
    if mode == "update" and kind == "Id":
        assert "1 not found" in summary(result.stderr)  # the deleted Id
    assert_write_path(result.calls, api)


@pytest.mark.parametrize("api", APIS)
def test_insert_twice_duplicates_and_upsert_twice_does_not(sf, emulator, run_target, base_config, api) -> None:
    messages = [
        schema_msg("Contact", string_props("LastName", "Email", "External_Id__c")),
        *(
            record_msg("Contact", {"LastName": f"L{i}", "Email": f"p{i}@x.com", "External_Id__c": f"k{i}"})
            for i in range(3)
        ),
    ]
    insert = {
        **base_config,
        "sync_mode": "insert",
        "api": api,
        "field_mapping": {"LastName": "LastName", "Email": "Email"},
    }
    first = run_target(insert, messages)
    first.assert_ok()
    assert_write_path(first.calls, api)
    run_target(insert, messages).assert_ok()
    assert sorted(r["LastName"] for r in soql(sf, "SELECT LastName FROM Contact")) == [
        "L0",
        "L0",
        "L1",
        "L1",
        "L2",
        "L2",
    ]

    emulator.reset()
    upsert = {**base_config, "sync_mode": "upsert", "match_field": "External_Id__c", "api": api}
    first = run_target(upsert, messages)
    first.assert_ok()
    snapshot = soql(sf, "SELECT Id, LastName, Email, External_Id__c FROM Contact ORDER BY External_Id__c")
    assert len(snapshot) == 3
    second = run_target(upsert, messages)
    second.assert_ok()
    assert soql(sf, "SELECT Id, LastName, Email, External_Id__c FROM Contact ORDER BY External_Id__c") == snapshot
    assert "0 created, 3 updated" in summary(second.stderr)


def test_auto_picks_bulk_from_bulk_threshold(sf, emulator, run_target, base_config) -> None:
    messages = [
        schema_msg("Account", string_props("Name", "External_Id__c")),
        *(record_msg("Account", {"Name": f"n{i}", "External_Id__c": f"k{i}"}) for i in range(3)),
    ]
    at_threshold = run_target({**base_config, "match_field": "External_Id__c", "bulk_threshold": 3}, messages)
    at_threshold.assert_ok()
    assert_write_path(at_threshold.calls, "bulk")
    below = run_target({**base_config, "match_field": "External_Id__c", "bulk_threshold": 4}, messages)
    below.assert_ok()
    assert_write_path(below.calls, "rest")
    assert sf.query_all("SELECT Id FROM Account")["totalSize"] == 3


# --- every Widget__c field type ------------------------------------------------------------------------------------

WIDGET_SCHEMA = {
    "key": {"type": "string"},
    "Name": {"type": ["string", "null"]},
    "Short_Text__c": {"type": ["string", "null"]},
    "Notes__c": {"type": ["string", "null"]},
    "Count__c": {"type": ["integer", "null"]},
    "Score__c": {"type": ["number", "null"]},
    "Price__c": {"type": ["number", "null"]},
    "Discount__c": {"type": ["number", "null"]},
    "Active__c": {"type": ["boolean", "null"]},
    "Launch_Date__c": {"type": ["string", "null"], "format": "date"},
    "Launched_At__c": {"type": ["string", "null"], "format": "date-time"},
    "Opens_At__c": {"type": ["string", "null"]},
    "Contact_Email__c": {"type": ["string", "null"]},
    "Support_Phone__c": {"type": ["string", "null"]},
    "Homepage__c": {"type": ["string", "null"]},
    "Color__c": {"type": ["string", "null"]},
    "Size__c": {"type": ["string", "null"]},
    "Features__c": {"type": ["array", "null"], "items": {"type": "string"}},
    "Secret__c": {"type": ["string", "null"]},
    "acct": {"type": ["string", "null"]},
}
WIDGET_FIELDS = [k for k in WIDGET_SCHEMA if k not in ("key", "acct")]
WIDGET_MAPPING = {k: k for k in WIDGET_FIELDS} | {"key": "Widget_Key__c", "acct": "Account__r.External_Id__c"}
TRICKY_TEXT = 'He said "hi", then, left\nline 2\r\nline 3 — ünïcødé 中文 🎉'


def widget_config(base_config: dict[str, Any], api: str, **extra: Any) -> dict[str, Any]:
    return {
        **base_config,
        "object": "Widget__c",
        "sync_mode": "upsert",
        "match_field": "Widget_Key__c",
        "field_mapping": WIDGET_MAPPING,
        "api": api,
        **extra,
    }


def widget_query(sf: Any, where: str = "") -> list[dict[str, Any]]:
    fields = ", ".join(["Id", "Widget_Key__c", "Account__c", *WIDGET_FIELDS])
    return soql(sf, f"SELECT {fields} FROM Widget__c {where} ORDER BY Widget_Key__c")


@pytest.mark.parametrize("api", APIS)
def test_every_widget_field_type(sf, emulator, run_target, base_config, api) -> None:
    acct = sf.Account.create({"Name": "Acme", "External_Id__c": "acc-1"})["id"]
    record = {
        "key": "w1",
        "Name": 'Widget "one", ü 🎉',
        "Short_Text__c": 'a,b "c"\nd é',
        "Notes__c": TRICKY_TEXT,
        "Count__c": 42,
        "Score__c": 3.14159,
        "Price__c": 1234.565,
        "Discount__c": 12.5,
        "Active__c": True,
        "Launch_Date__c": "2024-02-29",
        "Launched_At__c": "2024-03-01T12:34:56.789123+02:00",
        "Opens_At__c": "09:30:15.250",
        "Contact_Email__c": "w@example.com",
        "Support_Phone__c": "+1 (555) 010-2030",
        "Homepage__c": "https://example.com/a?b=c,d",
        "Color__c": "Green",
        "Size__c": "medium",
        "Features__c": ["Wireless", "Solar"],
        "Secret__c": 's3cr3t, "x"',
        "acct": "acc-1",
    }
    result = run_target(
        widget_config(base_config, api), [schema_msg("widgets", WIDGET_SCHEMA), record_msg("widgets", record)]
    )
    result.assert_ok()
    assert result.rejects == []
    assert_write_path(result.calls, api)
    [row] = widget_query(sf)
    assert row["Widget_Key__c"] == "w1"
    assert row["Account__c"] == acct
    assert row["Name"] == 'Widget "one", ü 🎉'
    assert row["Short_Text__c"] == 'a,b "c"\nd é'
    assert row["Notes__c"] == TRICKY_TEXT
    assert row["Count__c"] == 42
    assert row["Score__c"] == pytest.approx(3.1416)
    assert row["Price__c"] == pytest.approx(1234.57)
    assert row["Discount__c"] == pytest.approx(12.5)
    assert row["Active__c"] is True
    assert row["Launch_Date__c"] == "2024-02-29"
    launched = datetime.datetime.strptime(row["Launched_At__c"], "%Y-%m-%dT%H:%M:%S.%f%z")
    assert launched == datetime.datetime(2024, 3, 1, 10, 34, 56, 789000, tzinfo=datetime.timezone.utc)
    assert row["Launched_At__c"].startswith("2024-03-01T10:34:56.789")
    assert row["Opens_At__c"].startswith("09:30:15.250")
    assert row["Contact_Email__c"] == "w@example.com"
    assert row["Support_Phone__c"] == "+1 (555) 010-2030"
    assert row["Homepage__c"] == "https://example.com/a?b=c,d"
    assert row["Color__c"] == "Green"
    assert row["Size__c"] == "Medium"  # restricted picklist: the canonical value
    assert row["Features__c"] == "Wireless;Solar"
    assert row["Secret__c"] == 's3cr3t, "x"'


@pytest.mark.parametrize("api", APIS)
def test_contact_lookup_through_parent_external_id(sf, emulator, run_target, base_config, api) -> None:
    acct = sf.Account.create({"Name": "Acme", "External_Id__c": "acc-9"})["id"]
    config = {
        **base_config,
        "object": "Contact",
        "sync_mode": "insert",
        "api": api,
        "field_mapping": {"name": "LastName", "account_key": "Account.External_Id__c"},
    }
    result = run_target(
        config,
        [
            schema_msg("people", string_props("name", "account_key")),
            record_msg("people", {"name": "Ng", "account_key": "acc-9"}),
        ],
    )
    result.assert_ok()
    assert soql(sf, "SELECT LastName, AccountId FROM Contact") == [{"LastName": "Ng", "AccountId": acct}]
    assert_write_path(result.calls, api)


# --- nulls ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("policy", ["clear", "skip"])
def test_null_policy(sf, emulator, run_target, base_config, api, policy) -> None:
    acct = sf.Account.create({"Name": "Acme", "External_Id__c": "acc-1"})["id"]
    before = {"Name": "W", "Widget_Key__c": "w1", "Short_Text__c": "keep", "Count__c": 5, "Account__c": acct}
    sf.Widget__c.create(before)
    sf.Widget__c.create({"Name": "W2", "Widget_Key__c": "w2", "Short_Text__c": "keep2"})
    sf.Widget__c.create({"Name": "W3", "Widget_Key__c": "w3", "Short_Text__c": "keep3"})
    records = [
        {"key": "w1", "Name": "W", "Short_Text__c": None, "Count__c": None, "acct": None, "Color__c": "Red"},
        {"key": "w2", "Name": "W2", "Short_Text__c": None, "Count__c": None, "acct": None, "Color__c": None},
        {"key": "w3", "Name": "W3", "Short_Text__c": ""},  # empty text is null in Salesforce, whatever the policy
    ]
    result = run_target(
        widget_config(base_config, api, null_policy=policy),
        [schema_msg("widgets", WIDGET_SCHEMA), *(record_msg("widgets", r) for r in records)],
    )
    result.assert_ok()
    assert result.rejects == []
    assert_write_path(result.calls, api)
    w1, w2, w3 = widget_query(sf)
    assert w1["Color__c"] == "Red"
    assert w3["Short_Text__c"] is None  # Bulk once sent an empty cell, which leaves the field unchanged
    if policy == "clear":
        assert (w1["Short_Text__c"], w1["Count__c"], w1["Account__c"]) == (None, None, None)
        assert w2["Short_Text__c"] is None
    else:
        assert (w1["Short_Text__c"], w1["Count__c"], w1["Account__c"]) == ("keep", 5, acct)
        assert w2["Short_Text__c"] == "keep2"


# --- rejects -------------------------------------------------------------------------------------------------------

BAD_WIDGETS = [
    ({"key": "ok1", "Name": "fine"}, None),
    ({"key": "long", "Name": "x", "Short_Text__c": "y" * 21}, ("STRING_TOO_LONG", "Short_Text__c")),
    ({"key": "mail", "Name": "x", "Contact_Email__c": "not-an-email"}, ("INVALID_EMAIL_ADDRESS", "Contact_Email__c")),
    ({"key": "pick", "Name": "x", "Size__c": "Huge"}, ("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "Size__c")),
    ({"key": "parent", "Name": "x", "acct": "no-such-account"}, (None, None)),  # refused by Salesforce itself
    ({"key": "ok2", "Name": "fine too"}, None),
]


@pytest.mark.parametrize("api", APIS)
def test_rejects_land_in_file_and_others_are_written(sf, emulator, run_target, base_config, api) -> None:
    messages = [schema_msg("widgets", WIDGET_SCHEMA), *(record_msg("widgets", r) for r, _ in BAD_WIDGETS)]
    result = run_target(widget_config(base_config, api), messages)
    result.assert_ok()
    assert [r["Widget_Key__c"] for r in widget_query(sf)] == ["ok1", "ok2"]
    rejects = {r["record"]["key"]: r for r in result.rejects}
    assert set(rejects) == {r["key"] for r, bad in BAD_WIDGETS if bad}
    for record, bad in BAD_WIDGETS:
        if not bad:
            continue
        reject = rejects[record["key"]]
        assert reject["stream"] == "widgets"
        assert reject["record"] == record
        assert reject["message"]
        code, field = bad
        if code:
            assert reject["error_code"] == code
            assert reject["fields"] == [field]
        else:
            assert reject["error_code"]


def test_allow_rejects_false_fails_after_writing_the_rest(sf, emulator, run_target, base_config) -> None:
    messages = [schema_msg("widgets", WIDGET_SCHEMA), *(record_msg("widgets", r) for r, _ in BAD_WIDGETS)]
    result = run_target(widget_config(base_config, "rest", allow_rejects=False), messages)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    [line] = result.error_lines()
    assert "4 record(s) were rejected" in line and "rejects.jsonl" in line
    assert [r["Widget_Key__c"] for r in widget_query(sf)] == ["ok1", "ok2"]
    assert len(result.rejects) == 4


def test_literal_na_travels_as_text_through_collections(sf, emulator, run_target, base_config) -> None:
    records = [{"key": "na", "Name": "#N/A", "Short_Text__c": "#N/A"}, {"key": "plain", "Name": "plain"}]
    result = run_target(
        widget_config(base_config, "bulk"),
        [schema_msg("widgets", WIDGET_SCHEMA), *(record_msg("widgets", r) for r in records)],
    )
    result.assert_ok()
    na, plain = widget_query(sf)
    assert (na["Name"], na["Short_Text__c"]) == ("#N/A", "#N/A")
    assert plain["Name"] == "plain"
    writes = write_calls(result.calls)
    assert [c["records"] for c in writes if "/composite/sobjects" in c["path"]] == [1]
    assert [c["records"] for c in writes if c["path"].endswith("/batches")] == [1]

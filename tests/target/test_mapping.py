"""The pre-flight check and write plan, against real-shaped describes from the emulator's built-in org."""

from __future__ import annotations

import pytest

from target_salesforce.convert import ValueRejected
from target_salesforce.emulator.builtin_objects import builtin_schema
from target_salesforce.errors import ConfigError
from target_salesforce.mapping import WritePlan, build_plan
from target_salesforce.settings import StreamSettings


def describe(object_name: str) -> dict:
    found = builtin_schema().get(object_name)
    if found is None:
        raise ConfigError(f"object {object_name} is not accessible")
    return found.describe("62.0")


def with_field(object_describe: dict, **field: object) -> dict:
    """A copy of a describe with one more field (shapes the built-in org lacks)."""
    base = {"createable": True, "updateable": True, "nillable": True, "defaultedOnCreate": False, "type": "string"}
    return {**object_describe, "fields": [*object_describe["fields"], {**base, **field}]}


def plan(
    sources: list[str],
    sync_mode: str = "insert",
    mapping: dict[str, str] | None = None,
    match_field: str | None = None,
    object_describe: dict | None = None,
    parent_describe=describe,
) -> WritePlan:
    settings = StreamSettings(
        object="Contact",
        sync_mode=sync_mode,
        match_field=match_field,
        field_mapping=mapping,
        null_policy="clear",
        api="auto",
        stream="crm-contacts",
    )
    return build_plan(
        settings, object_describe or describe("Contact"), {s: {"type": ["string"]} for s in sources}, parent_describe
    )


def problems(**kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        plan(**kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("Stream 'crm-contacts' → Contact: ")
    return message


def targets(result: WritePlan) -> list[str]:
    return [c.target for c in result.columns]


# --- automatic mapping --------------------------------------------------------------------------------------------


def test_source_fields_match_object_fields_ignoring_case():
    result = plan(["lastname", "EMAIL", "favourite_color"])
    assert result.object_name == "Contact"
    assert [(c.source, c.target) for c in result.columns] == [("lastname", "LastName"), ("EMAIL", "Email")]
    assert result.unmatched_source_fields == ["favourite_color"]
    assert (result.match_field, result.match_kind, result.match_source) == (None, None, None)


def test_auto_mapping_skips_fields_not_writable_in_the_mode_and_never_sends_sdc_fields():
    result = plan(["Id", "LastName", "CreatedDate", "Name", "_sdc_extracted_at", "_sdc_sequence"])
    assert targets(result) == ["LastName"]
    assert result.unmatched_source_fields == ["Id", "CreatedDate", "Name"]


def test_auto_mapping_keeps_the_match_field_even_when_it_is_not_updateable():
    result = plan(["id", "Email", "CreatedDate"], sync_mode="update", match_field="Id")
    assert targets(result) == ["Id", "Email"]
    assert (result.match_field, result.match_kind, result.match_source) == ("Id", "id", "id")
    assert result.columns[0].is_match and not result.columns[1].is_match


def test_columns_carry_converters_built_from_the_describe():
    email = plan(["LastName", "Email"]).columns[1]
    assert email.field["type"] == "email"
    assert email.convert("a@example.com") == "a@example.com"


# --- explicit mapping ---------------------------------------------------------------------------------------------


def test_field_mapping_writes_only_mapped_fields_with_canonical_names():
    result = plan(["surname", "mail", "lastname"], mapping={"surname": "lastname", "MAIL": "email"})
    assert [(c.source, c.target) for c in result.columns] == [("surname", "LastName"), ("mail", "Email")]
    assert result.unmatched_source_fields == ["lastname"]


def test_relationship_mapping_through_the_parents_external_id():
    result = plan(["last", "acct"], mapping={"last": "LastName", "acct": "account.external_id__c"})
    column = result.columns[1]
    assert column.target == "Account.External_Id__c"
    assert column.lookup_field == "AccountId"
    assert column.field["name"] == "External_Id__c" and column.field["externalId"] is True
    assert column.convert("A-1") == "A-1"
    with pytest.raises(ValueRejected, match=r"^Account\.External_Id__c: data value too large"):
        column.convert("x" * 256)


def test_relationship_mapping_through_a_standard_id_lookup_field():
    result = plan(["last", "acct"], mapping={"last": "LastName", "acct": "Account.Id"})
    assert result.columns[1].target == "Account.Id"


def test_relationship_problems_are_named():
    message = problems(
        sources=["last", "a", "b", "c"],
        mapping={"last": "LastName", "a": "Acount.External_Id__c", "b": "Account.Name", "c": "Account.Nope__c"},
    )
    assert "no relationship 'Acount' (has: Account)" in message
    assert "Account.Name is not an External ID or idLookup field" in message and "External_Id__c" in message
    assert "Account has no field 'Nope__c'" in message


def test_polymorphic_relationship_is_refused_with_advice():
    contact = with_field(
        describe("Contact"),
        name="WhatId",
        type="reference",
        referenceTo=["Account", "Opportunity"],
        relationshipName="What",
    )
    message = problems(
        sources=["last", "what"], mapping={"last": "LastName", "what": "What.Id"}, object_describe=contact
    )
    assert "What is polymorphic (Account, Opportunity): map record ids to WhatId instead" in message


def test_parent_that_cannot_be_described_is_reported_with_the_rest():
    contact = with_field(
        describe("Contact"), name="Secret__c", type="reference", referenceTo=["Hidden__c"], relationshipName="Secret__r"
    )
    message = problems(
        sources=["x", "mail"], mapping={"x": "Secret__r.Key__c", "mail": "Nope"}, object_describe=contact
    )
    assert "object Hidden__c is not accessible" in message
    assert "Contact has no field 'Nope'" in message


def test_mapping_to_a_missing_or_read_only_field_is_an_error():
    message = problems(
        sources=["last", "full", "made", "x"],
        mapping={"last": "LastName", "full": "Name", "made": "CreatedDate", "x": "Favourite__c"},
    )
    assert "Contact.Name is not createable, so insert cannot write it" in message
    assert "Contact.CreatedDate is not createable" in message
    assert "Contact has no field 'Favourite__c'" in message


def test_upsert_needs_fields_both_createable_and_updateable():
    contact = with_field(describe("Contact"), name="Origin__c", updateable=False)
    mapping = {"last": "LastName", "origin": "Origin__c"}
    assert targets(plan(["last", "origin"], mapping=mapping, object_describe=contact)) == ["LastName", "Origin__c"]
    message = problems(
        sources=["last", "origin", "key"],
        mapping={**mapping, "key": "External_Id__c"},
        sync_mode="upsert",
        match_field="External_Id__c",
        object_describe=contact,
    )
    assert "Contact.Origin__c is not updateable, so upsert cannot write it" in message


def test_mapping_unknown_source_fields_and_sdc_fields_is_an_error():
    message = problems(sources=["last"], mapping={"last": "LastName", "lsat": "Email", "_sdc_batched_at": "Title"})
    assert "field_mapping 'lsat': the stream's schema has no such source field" in message
    assert "field_mapping '_sdc_batched_at': _sdc_ metadata fields are never sent" in message


def test_two_sources_for_one_field_is_an_error():
    message = problems(sources=["a", "b", "last"], mapping={"a": "Email", "b": "EMAIL", "last": "LastName"})
    assert "source fields 'a' and 'b' both set Contact.Email" in message
    message = problems(sources=["a", "b", "last"], mapping={"a": "AccountId", "b": "Account.Id", "last": "LastName"})
    assert "source fields 'a' and 'b' both set Contact.AccountId" in message


def test_auto_mapping_with_two_sources_differing_in_case_is_an_error():
    assert "source fields 'email' and 'Email' both set Contact.Email" in problems(
        sources=["LastName", "email", "Email"]
    )


# --- required fields ----------------------------------------------------------------------------------------------


def test_required_fields_must_be_mapped_for_insert_and_upsert():
    assert "Contact requires LastName on create" in problems(sources=["Email"])
    assert "Contact requires LastName on create" in problems(
        sources=["External_Id__c"], sync_mode="upsert", match_field="External_Id__c"
    )
    opportunity = describe("Opportunity")
    with pytest.raises(ConfigError, match="Opportunity requires Name, StageName, CloseDate on create: map a source"):
        build_plan(
            StreamSettings("Opportunity", "insert", None, None, "clear", "auto"), opportunity, {"Amount": {}}, describe
        )


def test_update_does_not_need_required_fields():
    result = plan(["Id", "Email"], sync_mode="update", match_field="Id")
    assert targets(result) == ["Id", "Email"]


def test_a_relationship_column_satisfies_a_required_lookup():
    widget = describe("Widget__c")
    for f in widget["fields"]:
        if f["name"] == "Account__c":
            f["nillable"] = False
    settings = StreamSettings(
        "Widget__c", "insert", None, {"n": "Name", "a": "Account__r.External_Id__c"}, "clear", "auto"
    )
    result = build_plan(settings, widget, {"n": {}, "a": {}}, describe)
    assert result.columns[1].lookup_field == "Account__c"
    missing = StreamSettings("Widget__c", "insert", None, {"n": "Name"}, "clear", "auto")
    with pytest.raises(ConfigError, match="Widget__c requires Account__c on create"):
        build_plan(missing, widget, {"n": {}}, describe)


# --- matching -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("match_field", "canonical", "kind"),
    [("id", "Id", "id"), ("external_id__c", "External_Id__c", "external_id"), ("EMAIL", "Email", "id_lookup")],
)
def test_match_kinds(match_field, canonical, kind):
    result = plan(["Id", "External_Id__c", "Email", "LastName"], sync_mode="upsert", match_field=match_field)
    assert (result.match_field, result.match_kind, result.match_source) == (canonical, kind, canonical)


def test_match_field_defaults_to_id():
    result = plan(["id", "LastName"], sync_mode="update")
    assert (result.match_field, result.match_kind, result.match_source) == ("Id", "id", "id")


def test_match_field_mapped_from_a_differently_named_source():
    result = plan(["key", "last"], "upsert", {"key": "External_Id__c", "last": "LastName"}, "External_Id__c")
    assert result.match_source == "key"


def test_match_field_that_cannot_identify_records_is_an_error_listing_the_usable_ones():
    message = problems(sources=["LastName"], sync_mode="update", match_field="LastName")
    assert "match_field LastName cannot identify Contact records" in message
    assert "use one of Id, Email, External_Id__c" in message


def test_unknown_or_unmapped_match_field_is_an_error():
    assert "match_field 'Nope__c': Contact has no such field" in problems(
        sources=["LastName"], sync_mode="update", match_field="Nope__c"
    )
    assert "match_field External_Id__c is not mapped from any source field" in problems(
        sources=["LastName"], sync_mode="upsert", match_field="External_Id__c"
    )


def test_an_unknown_sync_mode_is_refused_before_planning():
    assert "sync_mode is 'merge': use one of insert, update, upsert" in problems(
        sources=["LastName"], sync_mode="merge"
    )


def test_every_problem_lands_in_one_message():
    message = problems(
        sources=["mail", "made"],
        sync_mode="upsert",
        match_field="LastName",
        mapping={"mail": "Emial", "made": "CreatedDate", "ghost": "Title"},
    )
    for part in ["match_field LastName", "'Emial'", "CreatedDate", "'ghost'", "requires LastName"]:
        assert part in message
    assert message.count("; ") == 4

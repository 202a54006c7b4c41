"""The config schema, per-stream resolution and the checks that need no network."""

from __future__ import annotations

import jsonschema
import pytest

from target_salesforce.errors import ConfigError
from target_salesforce.settings import CONFIG_SCHEMA, StreamSettings, check_config, object_candidates, stream_settings

PROPERTIES = CONFIG_SCHEMA["properties"]
SECRETS = {"client_secret", "refresh_token", "private_key", "password", "security_token", "access_token"}


# --- the schema ---------------------------------------------------------------------------------------------------


def test_every_contracted_setting_is_there_with_a_description():
    expected = SECRETS | {
        "client_id",
        "username",
        "instance_url",
        "login_url",
        "api_version",
        "object",
        "sync_mode",
        "match_field",
        "field_mapping",
        "streams",
        "null_policy",
        "api",
        "bulk_threshold",
        "rejects_path",
        "allow_rejects",
        "max_retries",
        "request_timeout",
        "max_api_usage_percent",
        "dry_run",
        "load_method",
        "process_deletes",
        "results_path",
        "results_format",
    }
    assert set(PROPERTIES) == expected
    assert all(len(spec.get("description", "")) > 20 for spec in PROPERTIES.values())


def test_exactly_the_credentials_are_marked_secret():
    assert {name for name, spec in PROPERTIES.items() if spec.get("secret")} == SECRETS
    assert all(PROPERTIES[name].get("writeOnly") for name in SECRETS)


def test_defaults_and_choices():
    defaults = {name: spec["default"] for name, spec in PROPERTIES.items() if "default" in spec}
    assert defaults == {
        "login_url": "https://login.salesforce.com",
        "api_version": "62.0",
        "sync_mode": "upsert",
        "null_policy": "clear",
        "api": "auto",
        "bulk_threshold": 2000,
        "rejects_path": "target-salesforce-rejects.jsonl",
        "allow_rejects": True,
        "max_retries": 5,
        "request_timeout": 120,
        "dry_run": False,
        "process_deletes": False,
        "results_format": "jsonl",
    }
    assert PROPERTIES["sync_mode"]["enum"] == ["insert", "update", "upsert", "delete", "hard_delete"]
    assert PROPERTIES["results_format"]["enum"] == ["jsonl", "singer"]
    assert PROPERTIES["null_policy"]["enum"] == ["clear", "skip"]
    assert PROPERTIES["api"]["enum"] == ["auto", "rest", "bulk"]
    assert "default" not in PROPERTIES["load_method"]  # so singer-sdk does not inject append-only


def test_schema_validates_stream_entries_and_mappings():
    validator = jsonschema.Draft7Validator(CONFIG_SCHEMA)
    good = {
        "sync_mode": "update",
        "field_mapping": {"mail": "Email"},
        "streams": {"orders": {"object": "Order__c", "sync_mode": "insert", "field_mapping": {"a": "B__c"}}},
    }
    assert list(validator.iter_errors(good)) == []
    assert list(validator.iter_errors({"streams": {"orders": {"sync_mode": "merge"}}}))
    assert list(validator.iter_errors({"streams": {"orders": {"objcet": "Order__c"}}}))
    assert list(validator.iter_errors({"field_mapping": {"a": 1}}))
    assert list(validator.iter_errors({"bulk_threshold": 0}))


# --- per-stream settings ------------------------------------------------------------------------------------------


def test_top_level_settings_and_defaults_apply_to_every_stream():
    assert stream_settings({}, "contacts") == StreamSettings(
        object=None,
        sync_mode="upsert",
        match_field="Id",
        field_mapping=None,
        null_policy="clear",
        api="auto",
        stream="contacts",
    )
    config = {"object": "Contact", "sync_mode": "insert", "null_policy": "skip", "api": "bulk", "field_mapping": {}}
    resolved = stream_settings(config, "contacts")
    assert (resolved.object, resolved.sync_mode, resolved.null_policy, resolved.api) == (
        "Contact",
        "insert",
        "skip",
        "bulk",
    )
    assert resolved.match_field is None  # insert matches nothing
    assert resolved.field_mapping == {}


def test_a_streams_entry_overrides_key_by_key_and_replaces_the_mapping():
    config = {
        "sync_mode": "update",
        "match_field": "Email",
        "field_mapping": {"mail": "Email", "last": "LastName"},
        "streams": {"accounts": {"object": "Account", "match_field": "External_Id__c", "field_mapping": {"n": "Name"}}},
    }
    resolved = stream_settings(config, "accounts")
    assert (resolved.object, resolved.sync_mode, resolved.match_field) == ("Account", "update", "External_Id__c")
    assert resolved.field_mapping == {"n": "Name"}
    assert stream_settings(config, "contacts").field_mapping == {"mail": "Email", "last": "LastName"}


def test_resolved_mapping_is_a_copy():
    config = {"field_mapping": {"mail": "Email"}}
    stream_settings(config, "s").field_mapping["x"] = "Y"
    assert config["field_mapping"] == {"mail": "Email"}


def test_stream_names_match_exactly_first_then_ignoring_case():
    config = {"streams": {"Contacts": {"object": "Contact"}, "contacts": {"object": "Lead"}, "ORDERS": {"api": "rest"}}}
    assert stream_settings(config, "Contacts").object == "Contact"
    assert stream_settings(config, "contacts").object == "Lead"
    assert stream_settings(config, "orders").api == "rest"
    assert stream_settings(config, "other").api == "auto"


def test_match_field_defaults_to_id_for_update_and_upsert():
    assert stream_settings({"sync_mode": "update"}, "s").match_field == "Id"
    assert stream_settings({"streams": {"s": {"sync_mode": "upsert"}}, "sync_mode": "insert"}, "s").match_field == "Id"
    assert stream_settings({"sync_mode": "insert", "match_field": "Email"}, "s").match_field == "Email"


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        ("Contact", ["Contact"]),
        ("public-Contact", ["public-Contact", "Contact"]),
        ("crm-Custom_Thing__c", ["crm-Custom_Thing__c", "Custom_Thing__c"]),
        ("a-b-c", ["a-b-c", "b-c"]),
        ("trailing-", ["trailing-"]),
    ],
)
def test_object_candidates(stream, expected):
    assert object_candidates(stream) == expected


# --- config checks ------------------------------------------------------------------------------------------------


def config_problems(config: dict) -> str:
    with pytest.raises(ConfigError) as info:
        check_config(config)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_a_sound_config_passes():
    check_config({})
    check_config(
        {
            "sync_mode": "insert",
            "load_method": "append-only",
            "field_mapping": {"mail": "Email", "acct": "Account.External_Id__c"},
            "streams": {"x": {"object": "Lead", "null_policy": "skip", "api": "bulk"}},
        }
    )
    check_config({"load_method": "upsert", "streams": {"x": {"sync_mode": "upsert"}}})


def test_every_problem_is_listed_in_one_line():
    message = config_problems(
        {
            "sync_mode": "merge",
            "null_policy": "ignore",
            "api": "soap",
            "match_field": "Account.Id",
            "object": "",
            "field_mapping": {"a": 5, "b": "A.B.C", "c": ".Name", "d": "  "},
        }
    )
    for part in [
        "sync_mode is 'merge' (use one of insert, update, upsert, delete, hard_delete)",
        "null_policy is 'ignore'",
        "api is 'soap'",
        "match_field 'Account.Id' must be a field of the object",
        "object must be a non-empty string",
        "field_mapping['a'] must be a field name string, not 5",
        "field_mapping['b'] = 'A.B.C': use `Field` or `Relationship.ExternalIdField`",
        "field_mapping['c'] = '.Name'",
        "field_mapping['d'] must be a field name string",
    ]:
        assert part in message, part
    assert message.startswith("Invalid configuration: ")
    assert message.count("; ") == 8


def test_streams_entries_are_checked_and_named():
    message = config_problems(
        {"streams": {"orders": {"sync_mode": "purge", "objcet": "Order"}, "bad": "Order__c"}, "field_mapping": []}
    )
    assert "streams['orders'].sync_mode is 'purge'" in message
    assert "streams['orders'].objcet: unknown key" in message
    assert "streams['bad'] must be an object" in message
    assert "field_mapping must be an object" in message
    assert "streams must be an object" in config_problems({"streams": ["orders"]})


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"load_method": "append-only"}, "load_method append-only conflicts with sync_mode upsert"),
        ({"load_method": "upsert", "sync_mode": "insert"}, "load_method upsert conflicts with sync_mode insert"),
        (
            {"load_method": "upsert", "streams": {"a": {"sync_mode": "update"}, "b": {"sync_mode": "insert"}}},
            "load_method upsert conflicts with sync_mode insert, update",
        ),
        ({"load_method": "overwrite", "sync_mode": "insert"}, "load_method overwrite is not supported"),
        ({"load_method": "truncate"}, "load_method is 'truncate'"),
    ],
)
def test_load_method_must_agree_with_sync_mode(config, expected):
    assert expected in config_problems(config)

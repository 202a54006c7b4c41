"""The target's settings: the config schema users see, per-stream resolution, and the checks that need no network.

Everything here runs before the first API call so that a config which cannot work fails at once, with every
problem listed in one line, instead of after a login and half a batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from singer_sdk import typing as th

from target_salesforce.errors import ConfigError

SYNC_MODES = ("insert", "update", "upsert", "delete", "hard_delete")
DELETE_MODES = ("delete", "hard_delete")
NULL_POLICIES = ("clear", "skip")
APIS = ("auto", "rest", "bulk")
RESULTS_FORMATS = ("jsonl", "singer")
LOAD_METHODS = ("append-only", "upsert", "overwrite")

DEFAULT_SYNC_MODE = "upsert"
DEFAULT_NULL_POLICY = "clear"
DEFAULT_API = "auto"
DEFAULT_RESULTS_FORMAT = "jsonl"
DEFAULT_MATCH_FIELD = "Id"

# The singer-sdk load_method each sync_mode corresponds to; any other pairing is a conflict.
_LOAD_METHOD_FOR_SYNC_MODE = {"insert": "append-only", "upsert": "upsert"}

_STREAM_KEYS = ("object", "sync_mode", "match_field", "field_mapping", "null_policy", "api", "process_deletes")


def _field_mapping_type() -> th.ObjectType:
    return th.ObjectType(additional_properties=th.StringType)


_SYNC_MODE_HELP = (
    "`insert` creates every record; `update` changes existing records found through `match_field` (records "
    "not found are counted and skipped); `upsert` updates the record found through `match_field` or creates one; "
    "`delete` moves the record found through `match_field` to the Recycle Bin and `hard_delete` erases it (Bulk API "
    "2.0 only: Collections cannot hard-delete); records not found are counted as not found."
)
_PROCESS_DELETES_HELP = (
    "When true, a record whose `_sdc_deleted_at` is set (log-based replication) deletes the Salesforce record found "
    "through `match_field` instead of being written. With `sync_mode` insert it needs `match_field` set to an "
    "External ID or idLookup field. When false, `_sdc_deleted_at` is ignored."
)
_MATCH_FIELD_HELP = (
    "Object field that identifies the existing record for `update` and `upsert`: `Id`, an External ID field "
    "(native upsert), or an idLookup field such as Contact `Email` (ids are looked up by SOQL first). It must be "
    "mapped from a source field. Defaults to `Id`; ignored for `insert`."
)
_FIELD_MAPPING_HELP = (
    "Source field → object field, or → `Relationship.ExternalIdField` (e.g. `Account.External_Id__c`) to set a "
    "lookup through the parent's External ID or idLookup field. When set, only the mapped source fields are "
    "written. When unset, source fields are matched to object fields of the same name, ignoring case; source "
    "fields with no writable match are skipped with one warning."
)
_NULL_POLICY_HELP = (
    "What a null source value does: `clear` empties the Salesforce field on update/upsert (on insert the field "
    "is simply left out; a null relationship value clears the lookup field); `skip` leaves the field unchanged."
)
_API_HELP = (
    "`rest` sends sObject Collections requests of up to 200 records; `bulk` uses Bulk API 2.0 jobs; `auto` "
    "picks Bulk for batches of at least `bulk_threshold` records and REST for smaller ones."
)


def _stream_entry_type() -> th.ObjectType:
    # No defaults here on purpose: an absent key means "inherit the top-level setting".
    return th.ObjectType(
        th.Property("object", th.StringType, description="Salesforce object this stream writes to."),
        th.Property("sync_mode", th.StringType, allowed_values=list(SYNC_MODES), description=_SYNC_MODE_HELP),
        th.Property("match_field", th.StringType, description=_MATCH_FIELD_HELP),
        th.Property("field_mapping", _field_mapping_type(), description=_FIELD_MAPPING_HELP),
        th.Property("null_policy", th.StringType, allowed_values=list(NULL_POLICIES), description=_NULL_POLICY_HELP),
        th.Property("api", th.StringType, allowed_values=list(APIS), description=_API_HELP),
        th.Property("process_deletes", th.BooleanType, description=_PROCESS_DELETES_HELP),
        additional_properties=False,
    )


CONFIG_SCHEMA: dict[str, Any] = th.PropertiesList(
    # --- authentication ---
    th.Property(
        "client_id",
        th.StringType,
        description="Consumer key of the Salesforce connected app (refresh-token, JWT, password and "
        "client-credentials flows).",
    ),
    th.Property(
        "client_secret",
        th.StringType,
        secret=True,
        description="Consumer secret of the connected app (refresh-token, password and client-credentials flows).",
    ),
    th.Property(
        "refresh_token",
        th.StringType,
        secret=True,
        description="OAuth refresh token: the target exchanges it for an access token at `login_url`.",
    ),
    th.Property(
        "username",
        th.StringType,
        description="Salesforce username: the JWT `sub` for the JWT bearer flow, or the login of the password flow.",
    ),
    th.Property(
        "private_key",
        th.StringType,
        secret=True,
        description="RSA private key for the JWT bearer flow, as PEM text or the path of a PEM file.",
    ),
    th.Property("password", th.StringType, secret=True, description="Password for the username-password flow."),
    th.Property(
        "security_token",
        th.StringType,
        secret=True,
        description="Security token appended to `password` in the username-password flow, when the org needs it.",
    ),
    th.Property(
        "access_token",
        th.StringType,
        secret=True,
        description="A ready access token (session id); needs `instance_url`. It is not renewed when it expires.",
    ),
    th.Property(
        "instance_url",
        th.StringType,
        description="Org URL such as `https://mydomain.my.salesforce.com`; required with `access_token`, "
        "otherwise taken from the token response.",
    ),
    th.Property(
        "login_url",
        th.StringType,
        default="https://login.salesforce.com",
        description="OAuth server for token requests: `https://login.salesforce.com`, "
        "`https://test.salesforce.com` for sandboxes, or the org's My Domain URL.",
    ),
    th.Property(
        "api_version",
        th.StringType,
        default="62.0",
        description="Salesforce API version, such as `62.0` (46.0 or later: Collections upsert needs it).",
    ),
    # --- what to write and how ---
    th.Property(
        "object",
        th.StringType,
        description="Salesforce object every stream writes to (e.g. `Contact`, `Invoice__c`). When unset, the "
        "stream name is the object name, also after a `schema-` prefix (`public-Contact` → `Contact`).",
    ),
    th.Property(
        "sync_mode",
        th.StringType,
        default=DEFAULT_SYNC_MODE,
        allowed_values=list(SYNC_MODES),
        description=_SYNC_MODE_HELP,
    ),
    th.Property("match_field", th.StringType, description=_MATCH_FIELD_HELP),
    th.Property("field_mapping", _field_mapping_type(), description=_FIELD_MAPPING_HELP),
    th.Property(
        "streams",
        th.ObjectType(additional_properties=_stream_entry_type()),
        description="Per-stream overrides: stream name → {object, sync_mode, match_field, field_mapping, "
        "null_policy, api, process_deletes}. A key set here replaces the top-level setting for that stream (a "
        "`field_mapping` replaces the whole top-level mapping). Stream names match exactly, else ignoring case.",
    ),
    th.Property(
        "null_policy",
        th.StringType,
        default=DEFAULT_NULL_POLICY,
        allowed_values=list(NULL_POLICIES),
        description=_NULL_POLICY_HELP,
    ),
    th.Property("api", th.StringType, default=DEFAULT_API, allowed_values=list(APIS), description=_API_HELP),
    th.Property("process_deletes", th.BooleanType, default=False, description=_PROCESS_DELETES_HELP),
    th.Property(
        "bulk_threshold",
        th.IntegerType(minimum=1),
        default=2000,
        description="In `api: auto`, batches of at least this many records go through Bulk API 2.0. 2000 is "
        "where Bulk starts to pay: REST needs 10 Collections calls for 2000 records, a Bulk job about as many "
        "(create, upload, close, polls, three result reads) plus seconds of queueing, and each job uses the "
        "org's daily Bulk batch allocation; beyond it Bulk costs fewer calls per record.",
    ),
    th.Property(
        "rejects_path",
        th.StringType,
        default="target-salesforce-rejects.jsonl",
        description="JSON Lines file that receives every record Salesforce or the target rejected, with the "
        "stream, the source record, the error code and message.",
    ),
    th.Property(
        "allow_rejects",
        th.BooleanType,
        default=True,
        description="Rejected records always go to `rejects_path`. When true the run succeeds anyway; when false "
        "it ends with an error after writing everything else, if any record was rejected.",
    ),
    th.Property(
        "results_path",
        th.StringType,
        description="Optional file receiving one line per input record: stream, source key properties, "
        "Salesforce Id and outcome (created, updated, deleted, not_found, rejected with its error code), to write "
        "the Ids back to the source. Unset: no results file.",
    ),
    th.Property(
        "results_format",
        th.StringType,
        default=DEFAULT_RESULTS_FORMAT,
        allowed_values=list(RESULTS_FORMATS),
        description="`jsonl`: one JSON object a line; `singer`: SCHEMA and RECORD messages of a stream "
        "`<stream>_results` per input stream, keyed on the source key properties, for any Singer target to load.",
    ),
    th.Property(
        "max_retries",
        th.IntegerType(minimum=0),
        default=5,
        description="Retries of a retryable failure (network error, HTTP 5xx, UNABLE_TO_LOCK_ROW), with "
        "exponential backoff that honours `Retry-After`.",
    ),
    th.Property(
        "request_timeout",
        th.IntegerType(minimum=1),
        default=120,
        description="Seconds to wait for one HTTP response before treating it as a retryable failure.",
    ),
    th.Property(
        "max_api_usage_percent",
        th.IntegerType(minimum=1, maximum=100),
        description="Stop the run cleanly once the org's daily API usage (all integrations, as Salesforce reports "
        "it with every answer) reaches this percentage of its daily limit, leaving the rest to other integrations. "
        "A group of writes already started finishes; the last STATE printed covers what was written and the run "
        "exits with code 75: rerun from that STATE to resume. Unset: no limit of its own (the org's limit "
        "still stops the run the same way).",
    ),
    th.Property(
        "dry_run",
        th.BooleanType,
        default=False,
        description="Log in, describe and check every record against the objects, but write nothing.",
    ),
    th.Property(
        "load_method",
        th.StringType,
        allowed_values=list(LOAD_METHODS),
        description="Inherited singer-sdk setting; `sync_mode` decides how records are written. Leave it unset, "
        "or make it agree with every stream's `sync_mode` (`append-only` = insert, `upsert` = upsert); a "
        "conflict, or `overwrite` (this target never empties an object), is rejected.",
    ),
).to_dict()


@dataclass(frozen=True)
class StreamSettings:
    """The settings that govern one stream, after its `streams` entry was laid over the top-level keys.

    ``match_field`` is already defaulted (``Id`` for update/upsert) so the plan builder has one source of truth.
    ``stream`` names the stream in error messages.
    """

    object: str | None
    sync_mode: str
    match_field: str | None
    field_mapping: dict[str, str] | None
    null_policy: str
    api: str
    stream: str = ""
    process_deletes: bool = False


def _stream_entry(config: Mapping[str, Any], stream_name: str) -> Mapping[str, Any]:
    """The `streams` entry for a stream: exact name first, so two entries differing only in case stay usable."""
    streams = config.get("streams") or {}
    if stream_name in streams:
        return streams[stream_name]
    lowered = stream_name.lower()
    return next((entry for name, entry in streams.items() if name.lower() == lowered), {})


def stream_settings(config: Mapping[str, Any], stream_name: str) -> StreamSettings:
    """Resolve one stream's settings: its `streams` entry, else the top-level key, else the default."""
    entry = _stream_entry(config, stream_name)

    def pick(key: str, default: Any = None) -> Any:
        value = entry.get(key)
        if value is None:
            value = config.get(key)
        return default if value is None else value

    sync_mode = pick("sync_mode", DEFAULT_SYNC_MODE)
    match_field = pick("match_field", None if sync_mode == "insert" else DEFAULT_MATCH_FIELD)
    field_mapping = pick("field_mapping")
    return StreamSettings(
        object=pick("object"),
        sync_mode=sync_mode,
        match_field=match_field,
        field_mapping=dict(field_mapping) if field_mapping is not None else None,
        null_policy=pick("null_policy", DEFAULT_NULL_POLICY),
        api=pick("api", DEFAULT_API),
        stream=stream_name,
        process_deletes=bool(pick("process_deletes", False)),
    )


def object_candidates(stream_name: str) -> list[str]:
    """Object names a stream could denote when `object` is unset, most specific first.

    Taps name streams `schema-table` (`public-Contact`); the object is then the part after the first `-`.
    """
    candidates = [stream_name]
    _, dash, rest = stream_name.partition("-")
    if dash and rest and rest not in candidates:
        candidates.append(rest)
    return candidates


def _check_choice(problems: list[str], where: str, key: str, value: Any, choices: tuple[str, ...]) -> None:
    if value is not None and value not in choices:
        problems.append(f"{where}{key} is {value!r} (use one of {', '.join(choices)})")


def _check_field_mapping(problems: list[str], where: str, mapping: Any) -> None:
    if mapping is None:
        return
    if not isinstance(mapping, Mapping):
        problems.append(f"{where}field_mapping must be an object of source field → object field")
        return
    for source, target in mapping.items():
        if not isinstance(target, str) or not target.strip():
            problems.append(f"{where}field_mapping[{source!r}] must be a field name string, not {target!r}")
        elif target.count(".") > 1 or "" in target.split("."):
            problems.append(
                f"{where}field_mapping[{source!r}] = {target!r}: use `Field` or `Relationship.ExternalIdField` "
                "(one level of relationship only)"
            )


def _check_scope(problems: list[str], where: str, scope: Mapping[str, Any]) -> None:
    """Check the keys a top-level config and a `streams` entry share."""
    _check_choice(problems, where, "sync_mode", scope.get("sync_mode"), SYNC_MODES)
    _check_choice(problems, where, "null_policy", scope.get("null_policy"), NULL_POLICIES)
    _check_choice(problems, where, "api", scope.get("api"), APIS)
    for key in ("object", "match_field"):
        value = scope.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            problems.append(f"{where}{key} must be a non-empty string")
    match_field = scope.get("match_field")
    if isinstance(match_field, str) and "." in match_field:
        problems.append(f"{where}match_field {match_field!r} must be a field of the object, not a relationship")
    _check_field_mapping(problems, where, scope.get("field_mapping"))


def _check_streams(problems: list[str], streams: Any) -> list[str]:
    """Check `streams` and return the sync modes its entries set."""
    if streams is None:
        return []
    if not isinstance(streams, Mapping):
        problems.append("streams must be an object of stream name → settings")
        return []
    modes = []
    for name, entry in streams.items():
        where = f"streams[{name!r}]."
        if not isinstance(entry, Mapping):
            problems.append(f"streams[{name!r}] must be an object with keys {', '.join(_STREAM_KEYS)}")
            continue
        unknown = sorted(set(entry) - set(_STREAM_KEYS))
        if unknown:
            problems.append(f"{where}{', '.join(unknown)}: unknown key (use {', '.join(_STREAM_KEYS)})")
        _check_scope(problems, where, entry)
        if entry.get("sync_mode") is not None:
            modes.append(entry["sync_mode"])
    return modes


def _check_load_method(problems: list[str], load_method: Any, sync_modes: set[str]) -> None:
    """Reject a singer-sdk load_method that contradicts sync_mode rather than silently ignoring it."""
    if load_method is None:
        return
    if load_method not in LOAD_METHODS:
        _check_choice(problems, "", "load_method", load_method, LOAD_METHODS)
        return
    if load_method == "overwrite":
        problems.append("load_method overwrite is not supported (this target never empties an object): unset it")
        return
    conflicting = sorted(mode for mode in sync_modes if _LOAD_METHOD_FOR_SYNC_MODE.get(mode) != load_method)
    if conflicting:
        problems.append(
            f"load_method {load_method} conflicts with sync_mode {', '.join(conflicting)}: "
            "unset load_method (sync_mode decides)"
        )


def _check_hard_delete_api(problems: list[str], config: Mapping[str, Any]) -> None:
    """sObject Collections has no hard delete (only Bulk API 2.0's hardDelete job does), so forcing REST cannot work."""
    streams = config.get("streams") or {}
    if not isinstance(streams, Mapping):
        return  # reported by _check_streams
    for name in ["", *(n for n, entry in streams.items() if isinstance(entry, Mapping))]:
        resolved = stream_settings(config, name)
        if resolved.sync_mode == "hard_delete" and resolved.api == "rest":
            where = f"streams[{name!r}]: " if name else ""
            problems.append(
                f"{where}sync_mode hard_delete cannot use api rest (sObject Collections has no hard delete; "
                "Bulk API 2.0 does it): set api to auto or bulk"
            )


def check_config(config: Mapping[str, Any]) -> None:
    """Raise one ConfigError naming every setting that cannot work, before any network call."""
    problems: list[str] = []
    _check_scope(problems, "", config)
    stream_modes = _check_streams(problems, config.get("streams"))
    top_mode = config.get("sync_mode") or DEFAULT_SYNC_MODE
    effective_modes = {mode for mode in [top_mode, *stream_modes] if mode in SYNC_MODES}
    _check_load_method(problems, config.get("load_method"), effective_modes)
    _check_choice(problems, "", "results_format", config.get("results_format"), RESULTS_FORMATS)
    _check_hard_delete_api(problems, config)
    if problems:
        raise ConfigError("Invalid configuration: " + "; ".join(problems) + ".")

"""The sink: one stream's records, converted, matched and written to one Salesforce object, every row accounted for.

``process_record`` converts each record against the object's describe and holds it in the batch, merging records
that share a match value (the last wins). ``process_batch`` decides how each row must be written (matching through
SOQL where Salesforce cannot match natively), sends the rows and returns only once Salesforce has answered for all
of them, so the STATE singer-sdk emits afterwards never covers a record that is not written or rejected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from singer_sdk.exceptions import InvalidJSONSchema, InvalidRecord
from singer_sdk.sinks import BatchSink
from singer_sdk.sinks.core import BaseJSONSchemaValidator, JSONSchemaValidator

from target_salesforce.bulk_writer import NULL as BULK_NULL
from target_salesforce.convert import RecordRejected, convert_record
from target_salesforce.errors import ConfigError
from target_salesforce.lookup import find_ids, match_key
from target_salesforce.mapping import WritePlan, build_plan
from target_salesforce.outcomes import Outcome, retry_locked_rows
from target_salesforce.settings import StreamSettings, object_candidates, stream_settings
from target_salesforce.summary import Tally

if TYPE_CHECKING:
    from singer_sdk.target_base import Target

    from target_salesforce.run_context import RunContext

# What Salesforce answers for an update of a record that does not exist (any more): counted as not found.
NOT_FOUND_CODES = frozenset({"INVALID_CROSS_REFERENCE_KEY", "ENTITY_IS_DELETED", "NOT_FOUND"})
LOCK_RETRIES = 3


@dataclass(slots=True)
class Row:
    """A record on its way: the source record (for the reject file) and the values to send."""

    record: dict
    values: dict[str, Any]


class RejectingValidator(BaseJSONSchemaValidator):
    """Schema validation that sends a non-conforming record to the reject file instead of ending the run.

    singer-sdk's own handling logs a traceback and stops; one bad row among millions should cost that row only.
    """

    def __init__(self, schema: dict, stream_name: str) -> None:
        super().__init__(schema)
        try:
            self._inner = JSONSchemaValidator(schema)
        except InvalidJSONSchema as exc:
            raise ConfigError(f"Stream '{stream_name}': its SCHEMA message is not valid JSON Schema ({exc}).") from None
        self.errors: dict[int, str] = {}

    def validate(self, record: dict[str, Any]) -> None:
        try:
            self._inner.validate(record)
        except InvalidRecord as exc:
            self.errors[id(record)] = str(exc)


class SalesforceSink(BatchSink):
    MAX_SIZE_DEFAULT = 10000

    def __init__(self, target: Target, stream_name: str, schema: dict, key_properties: Sequence[str] | None) -> None:
        self._run: RunContext = target.run_context  # type: ignore[attr-defined]
        self.tally = Tally()
        super().__init__(target, stream_name, schema, key_properties)

    # Set-up: everything about the object is checked before the first write.

    def setup(self) -> None:
        self.settings = stream_settings(self.config, self.stream_name)
        object_name = self._resolve_object(self.settings)
        describe = self._run.describe.describe(object_name)
        self.plan: WritePlan = build_plan(
            self.settings, describe, self.schema.get("properties", {}), self._run.describe.describe
        )
        self._match_case_sensitive = bool(self._match_field_describe().get("caseSensitive"))
        if self.plan.unmatched_source_fields:
            how = "are not in field_mapping" if self.settings.field_mapping is not None else "match no writable field"
            self.logger.warning(
                "Stream '%s': source field(s) %s %s (object %s) and are not sent.",
                self.stream_name,
                ", ".join(self.plan.unmatched_source_fields),
                how,
                self.plan.object_name,
            )
        self.logger.info(
            "Stream '%s' → %s (%s%s)",
            self.stream_name,
            self.plan.object_name,
            self.plan.sync_mode,
            f" on {self.plan.match_field}" if self.plan.match_field else "",
        )

    def _resolve_object(self, settings: StreamSettings) -> str:
        names = self._run.describe.object_names()
        if settings.object:
            return self._run.describe.describe(settings.object)["name"]
        for candidate in object_candidates(self.stream_name):
            if candidate.lower() in names:
                return names[candidate.lower()]
        raise ConfigError(
            f"Stream '{self.stream_name}' names no Salesforce object; set 'object' "
            f"(or streams.{self.stream_name}.object) to the object's API name, e.g. Contact. "
            "List objects with target-salesforce-describe."
        )

    def _match_field_describe(self) -> Mapping[str, Any]:
        if not self.plan.match_field:
            return {}
        return self._run.describe.field_map(self.plan.object_name).get(self.plan.match_field.lower(), {})

    def get_validator(self) -> BaseJSONSchemaValidator | None:
        return RejectingValidator(self.schema, self.stream_name) if self.validate_schema else None

    # Records

    def process_record(self, record: dict, context: dict) -> None:
        rows: dict[Any, Row] = context.setdefault("rows", {})
        error = self._validator.errors.pop(id(record), None) if self._validator is not None else None  # type: ignore[attr-defined]
        if error is not None:
            self._reject(record, "INVALID_RECORD", f"Record does not match the stream's schema: {error}")
            return
        try:
            values = convert_record(self.plan, record, self.settings.null_policy)
        except RecordRejected as exc:
            self._reject(record, exc.code, exc.message, exc.fields)
            return
        key: Any = len(rows)
        if self.plan.sync_mode != "insert":
            match_value = values.get(self.plan.match_field) if self.plan.match_field else None
            if match_value is None:
                if self.plan.match_kind != "id" or self.plan.sync_mode != "upsert":
                    self._reject(
                        record,
                        "MATCH_VALUE_MISSING",
                        f"Field '{self.plan.match_source}' (matched on {self.plan.object_name}.{self.plan.match_field})"
                        " has no value, so the record cannot be matched; give it a value or use sync_mode insert.",
                        [self.plan.match_field or ""],
                    )
                    return
                key = ("new", len(rows))  # upsert on Id without an Id: a new record.
            else:
                key = match_key(match_value, self._match_case_sensitive)
                if key in rows:
                    self.tally.merged += 1
                    self.tally_duplicate_merged()
        rows[key] = Row(record, values)

    def process_batch(self, context: dict) -> None:
        rows = list(context.get("rows", {}).values())
        if not rows:
            return
        batch = Tally()
        self._write(rows, batch)
        self.tally.add(batch)
        self.tally_record_written(batch.created + batch.updated)
        prefix = "DRY RUN, nothing written: " if self.config.get("dry_run") else ""
        self.logger.info("%s%s batch of %d: %s", prefix, self.plan.object_name, len(rows), batch.describe())

    def clean_up(self) -> None:
        self.logger.info("%s (stream '%s') totals: %s", self.plan.object_name, self.stream_name, self.tally.describe())
        super().clean_up()

    # Writing

    def _write(self, rows: list[Row], tally: Tally) -> None:
        plan = self.plan
        if self.config.get("dry_run") and plan.sync_mode != "insert":
            # A dry run matches by query, even where a real run would let Salesforce match, so that it can say
            # which records would be created, updated or not found without writing.
            self._write_looked_up(rows, tally)
        elif plan.sync_mode == "insert":
            self._send("insert", rows, tally)
        elif plan.match_kind == "external_id" and plan.sync_mode == "upsert":
            self._send("upsert", rows, tally, ext_field=plan.match_field)
        elif plan.match_kind == "id":
            with_id = [row for row in rows if row.values.get("Id") is not None]
            self._send("update", with_id, tally)
            if plan.sync_mode == "upsert":
                self._send("insert", [row for row in rows if row.values.get("Id") is None], tally)
        else:
            self._write_looked_up(rows, tally)

    def _write_looked_up(self, rows: list[Row], tally: Tally) -> None:
        """Match on a field Salesforce cannot match natively (idLookup, or external id without creating)."""
        plan = self.plan
        assert plan.match_field is not None
        found = find_ids(
            self._run.client,
            plan.object_name,
            plan.match_field,
            (row.values[plan.match_field] for row in rows),
            case_sensitive=self._match_case_sensitive,
        )
        updates: list[Row] = []
        inserts: list[Row] = []
        for row in rows:
            ids = found.get(match_key(row.values[plan.match_field], self._match_case_sensitive), [])
            if len(ids) == 1:
                row.values["Id"] = ids[0]
                updates.append(row)
            elif len(ids) > 1:
                self._reject(
                    row.record,
                    "AMBIGUOUS_MATCH",
                    f"{plan.match_field} value matches {len(ids)} {plan.object_name} records ({', '.join(ids[:10])});"
                    " make the value unique in Salesforce or match on an external id.",
                    [plan.match_field],
                    tally,
                )
            elif plan.sync_mode == "upsert":
                inserts.append(row)
            else:
                tally.not_found += 1
        self._send("update", updates, tally)
        self._send("insert", inserts, tally)

    def _send(self, op: str, rows: list[Row], tally: Tally, ext_field: str | None = None) -> None:
        if not rows:
            return
        if self.config.get("dry_run"):
            for row in rows:
                self._account(op, row, Outcome(True), tally)
            return
        bulk_rows, rest_rows = self._split_by_api(rows)
        for writer, part in ((self._run.bulk, bulk_rows), (self._run.collections, rest_rows)):
            if not part:
                continue
            outcomes = retry_locked_rows(
                lambda values, w=writer: w.write(op, self.plan.object_name, values, ext_field),
                [row.values for row in part],
                LOCK_RETRIES,
            )
            for row, outcome in zip(part, outcomes, strict=True):
                self._account(op, row, outcome, tally)

    def _split_by_api(self, rows: list[Row]) -> tuple[list[Row], list[Row]]:
        """Which rows go through Bulk API 2.0 and which through Collections.

        A value that is literally ``#N/A`` would be read by Bulk as "set to null", so such a row always takes
        Collections, where JSON carries it unchanged.
        """
        api = self.settings.api
        use_bulk = api == "bulk" or (api == "auto" and len(rows) >= int(self.config.get("bulk_threshold", 2000)))
        if not use_bulk:
            return [], rows
        bulk: list[Row] = []
        rest: list[Row] = []
        for row in rows:
            (rest if BULK_NULL in row.values.values() else bulk).append(row)
        return bulk, rest

    def _account(self, op: str, row: Row, outcome: Outcome, tally: Tally) -> None:
        if outcome.success:
            if op == "insert" or outcome.created:
                tally.created += 1
            else:
                tally.updated += 1
        elif op == "update" and self.plan.sync_mode == "update" and outcome.error_code in NOT_FOUND_CODES:
            tally.not_found += 1
        else:
            self._reject(
                row.record, outcome.error_code or "UNKNOWN_ERROR", outcome.message or "", outcome.fields, tally
            )

    def _reject(
        self,
        record: dict,
        code: str,
        message: str,
        fields: Sequence[str] = (),
        tally: Tally | None = None,
    ) -> None:
        (tally or self.tally).rejected[code] += 1
        self._run.rejects.write(
            stream=self.stream_name,
            sobject=self.plan.object_name,
            sync_mode=self.plan.sync_mode,
            record=record,
            error_code=code,
            message=message,
            fields=list(fields),
        )

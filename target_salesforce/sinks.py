"""The sink: one stream's records, converted, matched and written to one Salesforce object, every row accounted for.

``process_record`` converts each record against the object's describe and holds it in the batch, merging records
that share a match value (the last wins). ``process_batch`` decides how each row must be written (matching through
SOQL where Salesforce cannot match natively), sends the rows and returns only once Salesforce has answered for all
of them, so the STATE singer-sdk emits afterwards never covers a record that is not written or rejected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any

from singer_sdk.helpers.conform import DatetimeErrorTreatmentEnum
from singer_sdk.sinks import BatchSink
from singer_sdk.sinks.core import BaseJSONSchemaValidator

from target_salesforce.bulk_writer import NULL as BULK_NULL
from target_salesforce.collections_writer import MAX_RECORDS as COLLECTIONS_MAX_RECORDS
from target_salesforce.collections_writer import MatchField
from target_salesforce.convert import RecordConverter, RecordRejected
from target_salesforce.dependencies import mapped_parents, object_of
from target_salesforce.errors import ConfigError
from target_salesforce.lookup import find_ids, match_key
from target_salesforce.mapping import WritePlan, build_plan
from target_salesforce.outcomes import Outcome, retry_locked_rows
from target_salesforce.record_check import RejectingValidator
from target_salesforce.rows import Row
from target_salesforce.settings import DELETE_MODES, StreamSettings, stream_settings
from target_salesforce.summary import Tally

if TYPE_CHECKING:
    from singer_sdk.target_base import Target

    from target_salesforce.run_context import RunContext

# What Salesforce answers for an update of a record that does not exist (any more): counted as not found.
NOT_FOUND_CODES = frozenset({"INVALID_CROSS_REFERENCE_KEY", "ENTITY_IS_DELETED", "NOT_FOUND"})
DELETE_OPS = frozenset({"delete", "hardDelete"})
LOCK_RETRIES = 3
# Rows a sink holds back for parent records not read yet, at most: beyond, they are rejected at once (memory bound).
MAX_DEFERRED_ROWS = 10000
# Collections rows sent between two checks of the API budget: one round of the writer's parallel requests.
BUDGET_CHECK_ROWS = 4 * COLLECTIONS_MAX_RECORDS


class SalesforceSink(BatchSink):
    MAX_SIZE_DEFAULT = 10000
    # Records per batch, without batch_size_rows, for a stream that can use Bulk: each batch is one Bulk job of at
    # least five calls whatever its size, and at about 3 KB a held row this stays well under 200 MB of memory.
    BULK_MAX_SIZE_DEFAULT = 25000

    def __init__(self, target: Target, stream_name: str, schema: dict, key_properties: Sequence[str] | None) -> None:
        self._run: RunContext = target.run_context  # type: ignore[attr-defined]
        self._owner = target  # drains the parents' pending records before this sink writes (drain_parents)
        self.tally = Tally()
        self._keeps_deleted_at = stream_settings(target.config, stream_name).process_deletes
        super().__init__(target, stream_name, schema, key_properties)

    @property
    def max_size(self) -> int:
        if self.batch_size_rows is None and self.settings.api != "rest":
            return self.BULK_MAX_SIZE_DEFAULT
        return super().max_size

    @property
    def include_sdc_metadata_properties(self) -> bool:
        """process_deletes reads ``_sdc_deleted_at``, which singer-sdk strips from records unless metadata is kept."""
        return self._keeps_deleted_at or super().include_sdc_metadata_properties

    # Set-up: everything about the object is checked before the first write.

    def setup(self) -> None:
        self.settings = stream_settings(self.config, self.stream_name)
        object_name = self._resolve_object(self.settings)
        describe = self._run.describe.describe(object_name)
        self.plan: WritePlan = build_plan(
            self.settings, describe, self.schema.get("properties", {}), self._run.describe.describe
        )
        self._match_case_sensitive = bool(self._match_field_describe().get("caseSensitive"))
        self._insert_match = self._insert_match_field()
        self.object_name = self.plan.object_name
        self.parent_objects = mapped_parents(describe, [c.target for c in self.plan.columns if c.lookup_field])
        graph = self._owner.dependencies  # type: ignore[attr-defined]
        graph.add_configured(self.config, self._run.describe)
        graph.add(self.object_name, self.parent_objects)
        self._deletes_all = self.plan.sync_mode in DELETE_MODES
        self._deferred: dict[Any, Row] = {}  # rows whose parent record was not written yet (retry_deferred)
        self._may_defer = False
        # A record that deletes needs only its match value: its other fields are neither converted nor sent.
        self._delete_plan = replace(self.plan, columns=[c for c in self.plan.columns if c.is_match])
        results = self._run.results
        self._results = (
            results.for_stream(
                self.stream_name, self.plan.object_name, self.key_properties, self.schema.get("properties", {})
            )
            if results is not None
            else None
        )
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
        name = object_of(self._run.describe, self.stream_name, settings)
        if name is not None:
            return name
        raise ConfigError(
            f"Stream '{self.stream_name}' names no Salesforce object; set 'object' "
            f"(or streams.{self.stream_name}.object) to the object's API name, e.g. Contact. "
            "List objects with target-salesforce-describe."
        )

    def _match_field_describe(self) -> Mapping[str, Any]:
        if not self.plan.match_field:
            return {}
        return self._run.describe.field_map(self.plan.object_name).get(self.plan.match_field.lower(), {})

    def _insert_match_field(self) -> MatchField | None:
        """The field that tells, after an insert's answer was lost, which rows' records were created (not Id)."""
        name = self.plan.match_field or self.settings.match_field
        field = self._run.describe.field_map(self.plan.object_name).get(name.lower()) if name else None
        if not field or field["name"] == "Id":
            return None
        return MatchField(field["name"], bool(field.get("caseSensitive")))

    def get_validator(self) -> BaseJSONSchemaValidator | None:
        return RejectingValidator(self.schema, self.stream_name) if self.validate_schema else None

    def _parse_timestamps_in_record(self, record: dict, schema: dict, treatment: DatetimeErrorTreatmentEnum) -> None:
        """Date-like strings stay as the tap wrote them; only singer-sdk's warning about unknown fields is kept.

        The converters parse dates against the Salesforce field's type and reject a bad value as that record's
        error, where singer-sdk's parsing ends the run on it (and costs a tenth of the CPU per record).
        """
        unknown = record.keys() - schema["properties"].keys()
        if unknown and not schema.get("additionalProperties", False):
            for key in sorted(unknown - self._warned_missing_fields):
                if record[key] is not None:
                    self.logger.warning("No schema for record field '%s'", key)
                    self._warned_missing_fields.add(key)

    # Records

    @cached_property
    def _convert(self) -> RecordConverter:
        return RecordConverter(self.plan, self.settings.null_policy)

    @cached_property
    def _convert_delete(self) -> RecordConverter:
        return RecordConverter(self._delete_plan, self.settings.null_policy)

    def process_record(self, record: dict, context: dict) -> None:
        rows: dict[Any, Row] = context.setdefault("rows", {})
        error = self._validator.errors.pop(id(record), None) if self._validator is not None else None  # type: ignore[attr-defined]
        if error is not None:
            self._reject(record, "INVALID_RECORD", f"Record does not match the stream's schema: {error}")
            return
        delete = self._deletes_all or (self.settings.process_deletes and record.get("_sdc_deleted_at") is not None)
        try:
            values = (self._convert_delete if delete else self._convert)(record)
        except RecordRejected as exc:
            self._reject(record, exc.code, exc.message, exc.fields)
            return
        key: Any = len(rows)
        if delete or self.plan.sync_mode != "insert":
            match_value = values.get(self.plan.match_field) if self.plan.match_field else None
            if match_value is None:
                if delete or self.plan.match_kind != "id" or self.plan.sync_mode != "upsert":
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
                if delete and self.plan.sync_mode == "insert":
                    key = ("delete", key)  # inserts are never merged, deletes of one record are
        row = Row.of(record, values, delete)
        previous = rows.get(key)
        if previous is not None:
            row.merged = [*previous.merged, previous.record]
            self.tally.merged += 1
            self.tally_duplicate_merged()
        rows[key] = row

    def process_batch(self, context: dict) -> None:
        pending: dict[Any, Row] = context.get("rows", {})
        if not pending:
            return
        self._supersede_deferred(pending)
        self._owner.drain_parents(self)  # type: ignore[attr-defined]  # parents' pending records first
        # Outside a full drain a parent record may not have been read yet: its children can wait for the next one.
        self._may_defer = not self._owner.in_full_drain  # type: ignore[attr-defined]
        self._write_rows(list(pending.values()), "batch")

    def retry_deferred(self) -> None:
        """Write the rows deferred for a parent not yet read, once more, after the parents' pending records.

        Called at each full drain (before its STATE) and when a new SCHEMA retires the sink; a row failing again is
        rejected, so no STATE ever covers a deferred row.
        """
        rows = list(self._deferred.values())
        self._deferred.clear()
        if rows:
            self._owner.drain_parents(self)  # type: ignore[attr-defined]
            self._may_defer = False
            self._write_rows(rows, "retry of deferred rows")

    @property
    def holds_unwritten_rows(self) -> bool:
        """Whether records this sink has read are neither written nor rejected yet (pending or deferred): no STATE
        read after them may be printed until they are."""
        return bool(self.current_size or self._deferred)

    def _supersede_deferred(self, pending: dict[Any, Row]) -> None:
        """A newer record for the match value of a deferred row replaces it, so an old version never lands last."""
        for key, row in pending.items():
            old = self._deferred.pop(key, None) if isinstance(key, str) else None
            if old is not None:
                row.merged = [*old.merged, old.record, *row.merged]
                self.tally.merged += 1

    def _write_rows(self, rows: list[Row], what: str) -> None:
        batch = Tally()
        self._run.client.check_budget()
        try:
            # Writes before deletes: in a change log a row's delete follows its writes.
            self._write([row for row in rows if not row.delete], batch)
            self._delete([row for row in rows if row.delete], batch)
        finally:
            # Also when the run stops mid-batch at the API limit: the rows Salesforce answered stay counted.
            if self._run.results is not None:
                self._run.results.flush()  # before the STATE that covers this batch
            self.tally.add(batch)
            self.tally_record_written(batch.created + batch.updated + batch.deleted)
        prefix = "DRY RUN, nothing written: " if self.config.get("dry_run") else ""
        deferred = f", {len(self._deferred)} deferred until their parents are written" if self._deferred else ""
        self.logger.info(
            "%s%s %s of %d: %s%s", prefix, self.plan.object_name, what, len(rows), batch.describe(), deferred
        )

    def clean_up(self) -> None:
        self.logger.info("%s (stream '%s') totals: %s", self.plan.object_name, self.stream_name, self.tally.describe())
        super().clean_up()

    # Writing

    def _write(self, rows: list[Row], tally: Tally) -> None:
        plan = self.plan
        if not rows:
            return
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

    def _delete(self, rows: list[Row], tally: Tally) -> None:
        """Delete by Id directly; by any other match field (and in a dry run) through the ids SOQL finds."""
        if not rows:
            return
        op = "hardDelete" if self.plan.sync_mode == "hard_delete" else "delete"
        if self.plan.match_kind == "id" and not self.config.get("dry_run"):
            self._send(op, rows, tally)
        else:
            self._write_looked_up(rows, tally, op)

    def _write_looked_up(self, rows: list[Row], tally: Tally, op: str = "update") -> None:
        """Match on a field Salesforce cannot match natively (idLookup, or external id without creating).

        ``op`` is what a found record gets (update, delete, hardDelete); only an upsert's update creates the rest.
        """
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
                    row=row,
                )
            elif op == "update" and plan.sync_mode == "upsert":
                inserts.append(row)
            else:
                self._not_found(row, tally)
        self._send(op, updates, tally)
        self._send("insert", inserts, tally)

    def _send(self, op: str, rows: list[Row], tally: Tally, ext_field: str | None = None) -> None:
        if not rows:
            return
        if self.config.get("dry_run"):
            for row in rows:
                self._account(op, row, Outcome(True), tally)
            return
        bulk_rows, rest_rows = self._split_by_api(op, rows)
        for writer, part in ((self._run.bulk, bulk_rows), (self._run.collections, rest_rows)):
            # A Bulk job is one group; Collections rows go a round of parallel requests at a time, so that a stop
            # at the API budget comes between groups, after the rows already sent have their outcomes.
            step = BUDGET_CHECK_ROWS if writer is self._run.collections else max(len(part), 1)
            for start in range(0, len(part), step):
                group = part[start : start + step]
                self._run.client.check_budget()
                # Collections can check a lost insert answer by the match field; a Bulk job is read back by id.
                write = (
                    partial(writer.write, match=self._insert_match) if writer is self._run.collections else writer.write
                )
                outcomes = retry_locked_rows(
                    lambda values, w=write: w(op, self.plan.object_name, values, ext_field),
                    [{"Id": row.values["Id"]} if op in DELETE_OPS else row.values for row in group],
                    LOCK_RETRIES,
                )
                for row, outcome in zip(group, outcomes, strict=True):
                    self._account(op, row, outcome, tally)

    def _split_by_api(self, op: str, rows: list[Row]) -> tuple[list[Row], list[Row]]:
        """Which rows go through Bulk API 2.0 and which through Collections.

        A value that is literally ``#N/A`` would be read by Bulk as "set to null", so such a row always takes
        Collections, where JSON carries it unchanged. Only Bulk can hard-delete (Collections deletes go to the
        Recycle Bin), so hardDelete always takes Bulk.
        """
        api = self.settings.api
        threshold = int(self.config.get("bulk_threshold", 2000))
        use_bulk = op == "hardDelete" or api == "bulk" or (api == "auto" and len(rows) >= threshold)
        if not use_bulk:
            return [], rows
        if op in DELETE_OPS:
            return rows, []  # a delete sends only the Id
        bulk: list[Row] = []
        rest: list[Row] = []
        for row in rows:
            (rest if BULK_NULL in row.values.values() else bulk).append(row)
        return bulk, rest

    def _account(self, op: str, row: Row, outcome: Outcome, tally: Tally) -> None:
        if outcome.success:
            if op in DELETE_OPS:
                tally.deleted += 1
                self._report(row, "deleted", outcome.id)
            elif op == "insert" or outcome.created:
                tally.created += 1
                self._report(row, "created", outcome.id)
            else:
                tally.updated += 1
                self._report(row, "updated", outcome.id)
        elif outcome.error_code in NOT_FOUND_CODES and (
            op in DELETE_OPS or (op == "update" and self.plan.sync_mode == "update")
        ):
            self._not_found(row, tally)
        elif self._may_defer and self._parent_not_read_yet(outcome):
            self._defer(row)
        else:
            code = outcome.error_code or "UNKNOWN_ERROR"
            self._reject(row.record, code, outcome.message or "", outcome.fields, tally, row=row, sf_id=outcome.id)

    def _parent_not_read_yet(self, outcome: Outcome) -> bool:
        """A lookup to a parent object this run writes failed: the parent record may still be in the input.

        Salesforce says ``INVALID_FIELD: Foreign key external ID: X not found for field F in entity Account``. At
        most MAX_DEFERRED_ROWS wait, so that a child stream whose parents never come cannot fill the memory.
        """
        if outcome.error_code != "INVALID_FIELD" or len(self._deferred) >= MAX_DEFERRED_ROWS:
            return False
        message = outcome.message or ""
        return (
            message.startswith("Foreign key external ID")
            and message.rpartition(" in entity ")[2] in self.parent_objects
        )

    def _defer(self, row: Row) -> None:
        value = row.values.get(self.plan.match_field) if self.plan.match_field else None
        # Insert rows are never merged (each creates a record); the others are keyed as in the batch.
        keyed = value is not None and self.plan.sync_mode != "insert"
        self._deferred[match_key(value, self._match_case_sensitive) if keyed else ("deferred", id(row))] = row

    def _not_found(self, row: Row, tally: Tally) -> None:
        tally.not_found += 1
        self._report(row, "not_found", None)

    def _report(self, row: Row, outcome: str, sf_id: str | None, error_code: str | None = None) -> None:
        """The results line of a row's record and of the duplicates merged into it."""
        if self._results is not None:
            self._results.write([*row.merged, row.record], outcome, sf_id, error_code)

    def _reject(
        self,
        record: dict,
        code: str,
        message: str,
        fields: Sequence[str] = (),
        tally: Tally | None = None,
        *,
        row: Row | None = None,
        sf_id: str | None = None,
    ) -> None:
        """Count and file a rejected record; ``row`` is given once the record is in a batch (for its duplicates)."""
        (tally or self.tally).rejected[code] += 1
        if self._results is not None:
            self._results.write([*(row.merged if row else ()), record], "rejected", sf_id, code)
        self._run.rejects.write(
            stream=self.stream_name,
            sobject=self.plan.object_name,
            sync_mode=self.plan.sync_mode,
            record=record,
            error_code=code,
            message=message,
            fields=list(fields),
        )

"""The sink: one stream's records, converted, matched and written to one Salesforce object, every row accounted for.

``process_record`` converts each record against the object's describe and spools it to the batch's temporary file
(``spool.SpooledBatch``), where records that share a match value are merged (the last wins). Where every row of a
batch takes one Bulk operation (an insert, or an upsert on an external id), the row's CSV line also goes into the
batch's job file as it is read (``BulkUpload``), so that writing the batch is uploading that file. ``process_batch``
sends that job, reads the rest of the batch back a chunk at a time, decides how each row must be written (matching
through SOQL where Salesforce cannot match natively), sends the rows as each API's groups fill and returns only once
Salesforce has answered for all of them, so the STATE singer-sdk emits afterwards never covers a record that is not
written or rejected.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from functools import cached_property, partial
from itertools import islice, repeat
from typing import TYPE_CHECKING, Any

from singer_sdk.helpers.conform import DatetimeErrorTreatmentEnum
from singer_sdk.sinks import BatchSink
from singer_sdk.sinks.core import BaseJSONSchemaValidator

from target_salesforce.bulk_upload import NULL as BULK_NULL
from target_salesforce.bulk_upload import BulkUpload, render_block
from target_salesforce.collections_writer import MAX_RECORDS as COLLECTIONS_MAX_RECORDS
from target_salesforce.collections_writer import MatchField
from target_salesforce.convert import RecordConverter, RecordRejected
from target_salesforce.dependencies import mapped_parents, object_of
from target_salesforce.errors import ConfigError
from target_salesforce.lookup import find_ids, match_key
from target_salesforce.mapping import WritePlan, build_plan
from target_salesforce.outcomes import Outcome, retry_locked_rows
from target_salesforce.record_check import RejectingValidator
from target_salesforce.rows import MemoryRows, Row, RowSource
from target_salesforce.settings import DELETE_MODES, StreamSettings, stream_settings
from target_salesforce.spool import SpooledBatch
from target_salesforce.summary import Tally

if TYPE_CHECKING:
    from singer_sdk.target_base import Target

    from target_salesforce.run_context import RunContext

# What Salesforce answers for an update of a record that does not exist (any more): counted as not found.
NOT_FOUND_CODES = frozenset({"INVALID_CROSS_REFERENCE_KEY", "ENTITY_IS_DELETED", "NOT_FOUND"})
DELETE_OPS = frozenset({"delete", "hardDelete"})
# Rows a sink holds back for parent records not read yet, at most: beyond, they are rejected at once (memory bound).
MAX_DEFERRED_ROWS = 10000
# Collections rows sent between two checks of the API budget: one round of the writer's parallel requests.
BUDGET_CHECK_ROWS = 4 * COLLECTIONS_MAX_RECORDS
# Rows of a batch in memory at once while it is written (read back from its spool).
CHUNK_ROWS = 5000
# Records bound for a Bulk CSV converted together, a column at a time (see add_record): long enough that the C loops
# over a column outweigh setting them up, short enough to be a trifle of memory.
BLOCK_ROWS = 1000


class SalesforceSink(BatchSink):
    MAX_SIZE_DEFAULT = 10000
    # Records per batch, without batch_size_rows, for a stream that can use Bulk: each Bulk job costs five calls or
    # so whatever its size, and a batch is spooled to disk (about 15 bytes of memory a row), so it can be large; a
    # batch whose Bulk CSV is built while reading also ends once that CSV reaches MAX_UPLOAD_BYTES (one job a batch).
    BULK_MAX_SIZE_DEFAULT = 500_000
    # The first such batch is smaller: Salesforce starts on its job while the next batch is read (see
    # process_batch), instead of waiting idle for half a million records to be read first. Not much smaller: jobs
    # of one stream run one after another, so the first job should take about as long as reading the next batch
    # (reading runs about twice as fast as the emulator's processing). Measured on 1M upsert-bulk records: 50,000
    # rows left the job pipeline idle for about 9 s; 200,000 took 41-44 s against 46-52 s in all.
    BULK_FIRST_SIZE_DEFAULT = 200_000
    # Once the job before it has ended, a later batch ends as soon as it holds BULK_GROWTH times that job's rows:
    # Salesforce is then idle, and waiting for a full batch would leave it so (see _end_batch_if_idle). The growth
    # keeps the jobs few when Salesforce is faster than reading: 200,000, 300,000, 450,000, then full batches.
    BULK_GROWTH = 1.5

    def __init__(self, target: Target, stream_name: str, schema: dict, key_properties: Sequence[str] | None) -> None:
        self._run: RunContext = target.run_context  # type: ignore[attr-defined]
        self._owner = target  # drains the parents' pending records before this sink writes (drain_parents)
        self.tally = Tally()
        self._keeps_deleted_at = stream_settings(target.config, stream_name).process_deletes
        self._drained_once = False
        self._last_batch_rows = 0  # records in the batch drained last (see _end_batch_if_idle)
        self._block: list[tuple[dict, bytes | None]] = []  # records held for the next block (see add_record)
        super().__init__(target, stream_name, schema, key_properties)

    @property
    def _sized_for_bulk(self) -> bool:
        """Whether batches take this target's Bulk sizes (BULK_*): no batch_size_rows, and Bulk allowed."""
        return self.batch_size_rows is None and self.settings.api != "rest"

    @property
    def max_size(self) -> int:
        if self._sized_for_bulk:
            return self.BULK_MAX_SIZE_DEFAULT if self._drained_once else self.BULK_FIRST_SIZE_DEFAULT
        return super().max_size

    @property
    def is_full(self) -> bool:
        """singer-sdk's test, against the size worked out once per batch (it is asked after every record)."""
        return self._batch_records_read >= self._batch_limit

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
        self._bulk_threshold = int(self.config.get("bulk_threshold", 2000))
        self._bulk_ahead = self._bulk_op_built_while_reading()
        self._batch_limit = self.max_size
        self.object_name = self.plan.object_name
        self.parent_objects = mapped_parents(describe, [c.target for c in self.plan.columns if c.lookup_field])
        graph = self._owner.dependencies  # type: ignore[attr-defined]
        graph.add_configured(self.config, self._run.describe)
        graph.add(self.object_name, self.parent_objects)
        self._deletes_all = self.plan.sync_mode in DELETE_MODES
        self._deferred: dict[Any, Row] = {}  # rows whose parent record was not written yet (retry_deferred)
        self._may_defer = False
        self._writing: tuple[Future[None], Tally] | None = None  # the batch being written in the background
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

    def _bulk_op_built_while_reading(self) -> tuple[str, str | None] | None:
        """The Bulk operation (and external id field) every row of a batch takes when the job's CSV can be built as
        records are read: an insert, or an upsert on an external id, that may go through Bulk, outside a dry run.

        Building the CSV in the reading thread lets the writing thread upload the file as it is, instead of reading
        the batch back and converting each row to CSV while the next batch is read: about a third less CPU a row.
        """
        plan = self.plan
        if self.config.get("dry_run") or self.settings.api == "rest":
            return None
        if plan.sync_mode == "insert":
            return ("insert", None)
        if plan.match_kind == "external_id" and plan.sync_mode == "upsert":
            return ("upsert", plan.match_field)
        return None

    def get_validator(self) -> BaseJSONSchemaValidator | None:
        return RejectingValidator(self.schema, self.stream_name) if self.validate_schema else None

    def _parse_timestamps_in_record(self, record: dict, schema: dict, treatment: DatetimeErrorTreatmentEnum) -> None:
        """Date-like strings stay as the tap wrote them; only singer-sdk's warning about unknown fields is kept.

        The converters parse dates against the Salesforce field's type and reject a bad value as that record's
        error, where singer-sdk's parsing ends the run on it (and costs a tenth of the CPU per record).
        """
        known = schema["properties"].keys()
        if record.keys() <= known or schema.get("additionalProperties", False):
            return  # the usual record: every field in the schema, found without building the set of the others
        for key in sorted(record.keys() - known - self._warned_missing_fields):
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

    def _merge_key(self, values: dict[str, Any], delete: bool) -> Hashable | None:
        """What merges records of a batch (the last wins): the match value; None for a row never merged."""
        match_field = self.plan.match_field
        return self._key_of(values.get(match_field) if match_field else None, delete)

    def _key_of(self, value: Any, delete: bool) -> Hashable | None:
        """``_merge_key`` of a row whose match value is ``value``."""
        inserts = self.plan.sync_mode == "insert"
        if value is None or (inserts and not delete):
            return None  # inserts are never merged: each creates a record
        key = match_key(value, self._match_case_sensitive)
        return ("delete", key) if delete and inserts else key  # deletes of one record merge

    def _block_keys(self, columns: list[list[Any]]) -> list[Hashable | None]:
        """Each row's ``_merge_key``, read from a converted block's match column rather than from payloads."""
        targets, match_field = self._convert.targets, self.plan.match_field
        if match_field not in targets:
            return [None] * len(columns[0])
        return list(map(self._key_of, columns[targets.index(match_field)], repeat(False)))

    def process_record(self, record: dict, context: dict) -> None:
        self.add_record(record, context, None)

    def add_record(self, record: dict, context: dict, message: bytes | None) -> None:
        """``process_record``, given the record's Singer message as read when the record is unchanged since (its
        source for a reject or the results output, spooled as it is instead of encoding the record again).

        Records bound for the batch's Bulk CSV are held in a block of ``BLOCK_ROWS`` and converted a column at a
        time (``_add_block``); any other record first adds the held ones, so the batch keeps the order read.
        """
        failures = self._validator.errors if self._validator is not None else None  # type: ignore[attr-defined]
        error = failures.pop(id(record), None) if failures else None  # empty for nearly every record: no id() then
        if error is not None:
            self._reject(record, "INVALID_RECORD", f"Record does not match the stream's schema: {error}")
            return
        delete = self._deletes_all or (self._keeps_deleted_at and record.get("_sdc_deleted_at") is not None)
        block = self._block
        if not delete and (block or self._takes_a_block(context)):
            block.append((record, message))
            if len(block) == BLOCK_ROWS:
                self._add_block(context)
            return
        self._add_block(context)
        self._add_one(record, context, message, delete)

    def _takes_a_block(self, context: dict) -> bool:
        """Whether the next records go into a block: the batch builds its Bulk CSV as it is read (or will, once
        started) and that CSV has room for a block of lines as long as the longest so far."""
        if "batch" not in context:
            return self._builds_upload()
        upload: BulkUpload | None = context["upload"]
        return upload is not None and upload.has_room_for(BLOCK_ROWS)

    def _add_block(self, context: dict) -> None:
        """Add the records held in the block: converted and rendered a column at a time where the whole block
        allows (``RecordConverter.block``), else one by one."""
        block = self._block
        if not block:
            return
        self._block = []
        converted = self._convert.block([record for record, _ in block])
        if converted is None:
            for record, message in block:
                self._add_one(record, context, message, False)
            return
        lines = render_block(converted)
        if (
            lines is not None
            # A literal #N/A is a value the CSV cannot carry (it means null there): its row is written the usual way.
            and not any(BULK_NULL in column for column in converted)
            and self._add_whole(block, converted, lines, context)
        ):
            return
        rows = self._convert.rows(converted)
        for (record, message), values, line in zip(block, rows, lines or repeat(None), strict=False):
            self._add_values(record, context, message, values, False, line)

    def _add_whole(
        self, block: list[tuple[dict, bytes | None]], columns: list[list[Any]], lines: list[bytes], context: dict
    ) -> bool:
        """Add a converted block in one step, its lines to the Bulk CSV and its messages to the spool, where each row
        would go into the CSV as it is (``_add_values``): every row has its message and its merge key where it needs
        one, and the lines all fit. False, adding nothing, otherwise. No payload is built: the spool keeps the
        messages, and the keys come from the match column."""
        keys = self._block_keys(columns)
        if None in keys and self._needs_key(False):
            return False  # a row without its match value: rejected on its own
        messages = [message for _, message in block]
        if None in messages:
            return False
        batch, upload = self._started(context)
        if upload is None or not upload.takes_lines_of(self._convert.targets):
            return False
        if not upload.add_lines(lines, len(batch)):
            return False
        batch.add_kept(messages, keys)  # type: ignore[arg-type]  # no message is None (checked above)
        self._end_batch_if_full(upload)
        return True

    def _started(self, context: dict) -> tuple[SpooledBatch, BulkUpload | None]:
        """The batch's spool and Bulk CSV (None when its rows are not written by one Bulk job), started with the
        batch's first row."""
        batch = context.get("batch")
        if batch is None:
            batch = context["batch"] = SpooledBatch(self._merge_key, self.max_size, self._convert)
            context["upload"] = BulkUpload() if self._builds_upload() else None
        return batch, context["upload"]

    def _add_one(self, record: dict, context: dict, message: bytes | None, delete: bool) -> None:
        """Convert and add one record, or reject it for a value Salesforce would refuse."""
        try:
            values = (self._convert_delete if delete else self._convert)(record)
        except RecordRejected as exc:
            self._reject(record, exc.code, exc.message, exc.fields)
            return
        self._add_values(record, context, message, values, delete)

    def _add_values(
        self,
        record: dict,
        context: dict,
        message: bytes | None,
        values: dict[str, Any],
        delete: bool,
        line: bytes | None = None,
    ) -> None:
        """Spool a converted record to the batch (and its Bulk CSV); ``line`` is its CSV line when already
        rendered with a cell for each of the payload's keys, in order."""
        key = self._merge_key(values, delete)
        if key is None and self._needs_key(delete):
            self._reject(
                record,
                "MATCH_VALUE_MISSING",
                f"Field '{self.plan.match_source}' (matched on {self.plan.object_name}.{self.plan.match_field})"
                " has no value, so the record cannot be matched; give it a value or use sync_mode insert.",
                [self.plan.match_field or ""],
            )
            return
        batch, upload = self._started(context)
        # A row the upload cannot take (a delete, a literal #N/A, past the byte limit) is written the usual way.
        in_upload = (
            upload is not None
            and not delete
            and BULK_NULL not in values.values()
            and (
                upload.add_line(line, len(batch))
                if line is not None and upload.takes_lines_of(self._convert.targets)
                else upload.add(values, len(batch))
            )
        )
        batch.add(record, values, delete, key, message, values_kept_elsewhere=in_upload)
        if in_upload:
            self._end_batch_if_full(upload)

    def _end_batch_if_full(self, upload: BulkUpload) -> None:
        """End the batch with the record just read once its job's CSV is at the upload limit: one job a batch, not
        a second for the rest."""
        if upload.full:
            self._batch_limit = self._batch_records_read

    def _builds_upload(self) -> bool:
        """Whether the batch now starting builds its Bulk CSV as it is read: with ``api: auto`` only when it can
        grow to ``bulk_threshold`` rows (a smaller batch goes through Collections)."""
        return self._bulk_ahead is not None and (self.settings.api == "bulk" or self.max_size >= self._bulk_threshold)

    def _needs_key(self, delete: bool) -> bool:
        """Whether a row without a match value cannot be written: an insert needs none and an upsert on Id creates
        a new record; any other row (a delete included) cannot match."""
        if delete:
            return True
        mode = self.plan.sync_mode
        return mode != "insert" and not (mode == "upsert" and self.plan.match_kind == "id")

    def process_batch(self, context: dict) -> None:
        """Write a batch; a full one drained while records stream in is written in the background.

        The target says when a batch may overlap reading (``overlaps``): then its Bulk job is built, uploaded and
        processed by Salesforce while the next batch is read, instead of reading waiting for Salesforce. Every other
        drain (a full drain before STATE, a parent's records before its children's, a sink retired by a new
        SCHEMA) writes before it returns. A sink never has two writes at once: each waits for the one before it, so an
        older version of a record never lands after a newer one.
        """
        self._add_block(context)
        batch: SpooledBatch | None = context.pop("batch", None)
        upload: BulkUpload | None = context.pop("upload", None)
        self._drained_once = True
        self._last_batch_rows = self._batch_records_read
        self._batch_limit = self.max_size
        self.wait_for_writes()
        if batch is None:
            return
        try:
            self._owner.drain_parents(self)  # type: ignore[attr-defined]  # parents' pending records first
            # Outside a full drain a parent record may not have been read yet: its children can wait for the next one.
            self._may_defer = not self._owner.in_full_drain  # type: ignore[attr-defined]
        except BaseException:
            _close(batch, upload)
            raise
        tally = Tally()
        if self._owner.overlaps(self):  # type: ignore[attr-defined]
            self._writing = (self._background.submit(self._write_batch, batch, upload, tally), tally)
        else:
            try:
                self._write_batch(batch, upload, tally)
            finally:
                self._settle(tally)

    def _write_batch(self, batch: SpooledBatch, upload: BulkUpload | None, tally: Tally) -> None:
        try:
            self._write_rows(batch, "batch", tally, upload)
        finally:
            _close(batch, upload)

    @cached_property
    def _background(self) -> ThreadPoolExecutor:
        """One thread: a sink's batches are written one after another, in the order they were read."""
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"write-{self.stream_name}")

    def wait_for_writes(self) -> None:
        """Return once the batch written in the background (if any) is; its failure (the API limit, a lost job)
        is raised here, in the reading thread, before any STATE can cover its rows."""
        if self._writing is None:
            return
        (future, tally), self._writing = self._writing, None
        try:
            future.result()
        finally:
            self._settle(tally)

    def finished_writing(self) -> None:
        """Take in a background write that has ended, so its failure stops the run at once (called now and then)."""
        if self._writing is not None and self._writing[0].done():
            self.wait_for_writes()
            self._end_batch_if_idle()

    def _end_batch_if_idle(self) -> None:
        """Now that Salesforce has finished the job before it, end the batch being read once it holds BULK_GROWTH
        times that job's rows (with the next record if it already does): its job starts then, not once it is full.

        Measured on 1M upsert-bulk records: the emulator sat idle for 6-9 s while the second batch of 500,000 was
        read, then the third job's processing came after the end of input all the same.
        """
        if self._sized_for_bulk:
            enough = max(self.BULK_FIRST_SIZE_DEFAULT, math.ceil(self.BULK_GROWTH * self._last_batch_rows))
            self._batch_limit = max(self._batch_records_read, min(self._batch_limit, enough))

    def _settle(self, batch: Tally) -> None:
        """Count a written batch's rows, in the reading thread: also when the run stops mid-batch at the API limit,
        the rows Salesforce answered stay counted."""
        self.tally.add(batch)
        self.tally_record_written(batch.created + batch.updated + batch.deleted)
        if batch.merged:
            self.tally_duplicate_merged(batch.merged)

    def retry_deferred(self) -> None:
        """Write the rows deferred for a parent not yet read, once more, after the parents' pending records.

        Called at each full drain (before its STATE) and when a new SCHEMA retires the sink; a row failing again is
        rejected, so no STATE ever covers a deferred row.
        """
        self.wait_for_writes()  # a background write may defer rows too
        rows = list(self._deferred.values())
        self._deferred.clear()
        if rows:
            self._owner.drain_parents(self)  # type: ignore[attr-defined]
            self._may_defer = False
            tally = Tally()
            try:
                self._write_rows(MemoryRows(rows), "retry of deferred rows", tally)
            finally:
                self._settle(tally)

    @property
    def holds_pending_rows(self) -> bool:
        """Whether records this sink has read wait to be written (pending, or deferred for their parent)."""
        return bool(self.current_size) or self.holds_deferred_rows

    @property
    def holds_deferred_rows(self) -> bool:
        """Whether rows wait for a parent record (written, or rejected, at the next full drain)."""
        return bool(self._deferred)

    @property
    def background_write(self) -> Future[None] | None:
        """The batch being written in the background, if any: its rows are neither written nor rejected yet."""
        return self._writing[0] if self._writing is not None else None

    def _read(self, rows: Iterable[Row], spooled: SpooledBatch | None, deletes: array, tally: Tally) -> Iterator[Row]:
        """The rows to write, in order; the refs of rows that delete go to ``deletes``, to be sent after them.

        A newer record for the match value of a deferred row replaces it, so an old version never lands last.
        """
        for row in rows:
            self._rows_read += 1
            if spooled is not None and self._deferred:
                key = self._merge_key(row.values, row.delete)
                old = self._deferred.pop(key, None) if isinstance(key, str) else None
                if old is not None:
                    spooled.merge_outside(row, [*old.merged, old.source])
                    tally.merged += 1
            if row.delete:
                deletes.append(row.ref)
            else:
                yield row
        if spooled is not None:
            tally.merged += spooled.merged

    def _write_rows(self, source: RowSource, what: str, batch: Tally, upload: BulkUpload | None = None) -> None:
        """Write every row of ``source`` and count each in ``batch``; rows are read in chunks and sent as they come.

        ``upload`` is the Bulk CSV built while ``source`` (then a spooled batch) was read, if any. This may run in the
        background thread, so it counts only in ``batch``, which the reading thread adds to the sink's totals
        (``_settle``).
        """
        self._source = source  # where a row is read back from by its ref when its outcome needs the record
        self._senders: dict[str, _Sender] = {}
        self._rows_read = 0
        self._run.client.check_budget()
        deletes = array("q")
        spooled = source if isinstance(source, SpooledBatch) else None
        try:
            rows = source if spooled is None or upload is None else self._send_upload(spooled, upload, batch)
            # Writes before deletes: in a change log a row's delete follows its writes.
            for chunk in _chunks(self._read(rows, spooled, deletes, batch)):
                self._write(chunk, batch)
            self._finish_sends()
            for chunk in _chunks(source.row(ref) for ref in deletes):
                self._delete(chunk, batch)
            self._finish_sends()
        finally:
            if self._run.results is not None:
                self._run.results.flush()  # before the STATE that covers this batch
        prefix = "DRY RUN, nothing written: " if self.config.get("dry_run") else ""
        deferred = f", {len(self._deferred)} deferred until their parents are written" if self._deferred else ""
        self.logger.info(
            "%s%s %s of %d: %s%s", prefix, self.plan.object_name, what, self._rows_read, batch.describe(), deferred
        )

    def _send_upload(self, batch: SpooledBatch, upload: BulkUpload, tally: Tally) -> Iterable[Row]:
        """Send the Bulk job built while ``batch`` was read; the rows it does not hold, to be written the usual way.

        Rows replaced by a later record of their key leave the job first. Not taken: with rows deferred for a parent
        (a row of the batch may supersede one, see ``_read``), or below ``bulk_threshold`` rows with ``api: auto``.
        """
        if self._deferred or not upload or (self.settings.api != "bulk" and len(upload) < self._bulk_threshold):
            upload.close()
            return batch
        replaced = batch.merge()
        rest: list[int] = []  # the slots of rows the job does not hold
        if len(upload) < len(batch):
            sent = bytearray(len(batch))
            for ref in upload.refs:
                sent[ref] = 1
            rest = [slot for slot, flag in enumerate(sent) if not flag]
        if replaced:
            keep = [line for line, ref in enumerate(upload.refs) if ref not in replaced]
            if len(keep) < len(upload):
                upload.body()  # every line on disk, for the subset
                whole, upload = upload, upload.subset(keep)
                whole.close()
        self._rows_read += len(upload)
        op, ext_field = self._bulk_ahead  # type: ignore[misc]
        sender = self._senders[op] = _Sender(self, op, tally, ext_field)
        sender.send_upload(upload)
        return batch.rows_at(rest)

    def clean_up(self) -> None:
        self.wait_for_writes()
        if "_background" in self.__dict__:
            self._background.shutdown()
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
        """Hand ``rows`` to the operation's sender, which sends them as its API's groups fill (see _finish_sends)."""
        if not rows:
            return
        sender = self._senders.get(op)
        if sender is None:
            sender = self._senders[op] = _Sender(self, op, tally, ext_field)
        for row in rows:
            sender.add(row)

    def _finish_sends(self) -> None:
        """Send what the senders still hold; every row handed to them has its outcome accounted after this."""
        senders, self._senders = self._senders, {}
        for sender in senders.values():
            sender.finish()

    def _account(self, op: str, row: Row | int, outcome: Outcome, tally: Tally) -> None:
        """Count and report a row's outcome; ``row`` may be a ref, read back from the source only if needed."""
        if outcome.success:
            created = op == "insert" or bool(outcome.created)
            self._account_successes(op, int(created), int(not created), tally)
            self._report(row, "deleted" if op in DELETE_OPS else "created" if created else "updated", outcome.id)
        elif outcome.error_code in NOT_FOUND_CODES and (
            op in DELETE_OPS or (op == "update" and self.plan.sync_mode == "update")
        ):
            self._not_found(row, tally)
        elif self._may_defer and self._parent_not_read_yet(outcome):
            self._defer(self._row(row))
        else:
            code = outcome.error_code or "UNKNOWN_ERROR"
            row = self._row(row)
            self._reject(row.record, code, outcome.message or "", outcome.fields, tally, row=row, sf_id=outcome.id)

    @staticmethod
    def _account_successes(op: str, created: int, not_created: int, tally: Tally) -> None:
        """Count rows that succeeded, ``created`` of them creating their record (every row of an insert does)."""
        if op in DELETE_OPS:
            tally.deleted += created + not_created
        elif op == "insert":
            tally.created += created + not_created
        else:
            tally.created += created
            tally.updated += not_created

    def _row(self, row: Row | int) -> Row:
        return row if isinstance(row, Row) else self._source.row(row)

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

    def _not_found(self, row: Row | int, tally: Tally) -> None:
        tally.not_found += 1
        self._report(row, "not_found", None)

    def _report(self, row: Row | int, outcome: str, sf_id: str | None, error_code: str | None = None) -> None:
        """The results line of a row's record and of the duplicates merged into it."""
        if self._results is not None:
            self._results.write(self._row(row).records, outcome, sf_id, error_code)

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
            self._results.write(row.records if row is not None else [record], "rejected", sf_id, code)
        self._run.rejects.write(
            stream=self.stream_name,
            sobject=self.plan.object_name,
            sync_mode=self.plan.sync_mode,
            record=record,
            error_code=code,
            message=message,
            fields=list(fields),
        )


def _close(batch: SpooledBatch, upload: BulkUpload | None) -> None:
    batch.close()
    if upload is not None:
        upload.close()


def _chunks(rows: Iterable[Row]) -> Iterator[list[Row]]:
    """Rows a chunk at a time: only a chunk of a batch is in memory, whatever the batch size."""
    iterator = iter(rows)
    while chunk := list(islice(iterator, CHUNK_ROWS)):
        yield chunk


class _Sender:
    """The rows of one operation, sent as they come through Bulk API 2.0 or Collections, each outcome accounted.

    hardDelete always takes Bulk (only Bulk can hard-delete; Collections deletes go to the Recycle Bin), ``api:
    bulk`` Bulk and ``api: rest`` Collections; ``api: auto`` holds the first ``bulk_threshold`` rows and takes Bulk
    once that many come. A value that is literally ``#N/A`` would be read by Bulk as "set to null", so such a row
    takes Collections, where JSON carries it unchanged. A Bulk job is sent when it is full (MAX_UPLOAD_BYTES) and
    at ``finish``; Collections rows a round of parallel requests at a time, so that a stop at the API budget comes
    between groups, after the rows already sent have their outcomes.
    """

    def __init__(self, sink: SalesforceSink, op: str, tally: Tally, ext_field: str | None) -> None:
        self._sink, self._op, self._tally, self._ext_field = sink, op, tally, ext_field
        self._dry_run = bool(sink.config.get("dry_run"))
        api = sink.settings.api
        # Rows before Bulk is taken: 0 for Bulk from the first row, None for never.
        self._threshold: int | None = sink._bulk_threshold
        if op == "hardDelete" or api == "bulk":
            self._threshold = 0
        elif api == "rest":
            self._threshold = None
        self._held: list[Row] | None = []  # None once Bulk is taken
        self._rest: list[Row] = []
        self._upload: BulkUpload | None = None

    def add(self, row: Row) -> None:
        if self._dry_run:
            self._sink._account(self._op, row, Outcome(True), self._tally)
        elif self._threshold is None:
            self._to_rest(row)
        elif self._held is None:
            self._to_bulk(row)
        else:
            self._held.append(row)
            if len(self._held) >= self._threshold:
                held, self._held = self._held, None
                for each in held:
                    self._to_bulk(each)

    def finish(self) -> None:
        for row in self._held or ():
            self._to_rest(row)
        self._held = []
        if self._upload is not None:
            self._send_bulk()
        if self._rest:
            self._send_rest()

    def send_upload(self, upload: BulkUpload) -> None:
        """Send a job built beforehand; Bulk is taken, so rows added afterwards take it too."""
        self._held = None
        self._upload = upload
        self._send_bulk()

    def _to_bulk(self, row: Row) -> None:
        deletes = self._op in DELETE_OPS
        if not deletes and BULK_NULL in row.values.values():
            self._to_rest(row)
            return
        values = {"Id": row.values["Id"]} if deletes else row.values  # a delete sends only the Id
        if self._upload is None:
            self._upload = BulkUpload()
        if not self._upload.add(values, row.ref):
            self._send_bulk()  # full: a job of its own, and the row starts the next
            self._upload = BulkUpload()
            self._upload.add(values, row.ref)

    def _to_rest(self, row: Row) -> None:
        self._rest.append(row)
        if len(self._rest) >= BUDGET_CHECK_ROWS:
            self._send_rest()

    def _send_bulk(self) -> None:
        upload, self._upload = self._upload, None
        assert upload is not None
        run = self._sink._run
        run.client.check_budget()
        # Rows' Ids are wanted only by the results output; without it a job that fully succeeded is tallied by count.
        sink = self._sink
        counted = None if sink._results is not None else partial(sink._account_successes, self._op, tally=self._tally)
        for ref, outcome in run.bulk.run(self._op, sink.plan.object_name, upload, self._ext_field, counted):
            sink._account(self._op, ref, outcome, self._tally)

    def _send_rest(self) -> None:
        rows, self._rest = self._rest, []
        sink, op = self._sink, self._op
        sink._run.client.check_budget()
        # Collections can check a lost insert answer by the match field.
        outcomes = retry_locked_rows(
            lambda values: sink._run.collections.write(
                op, sink.plan.object_name, values, self._ext_field, match=sink._insert_match
            ),
            [{"Id": row.values["Id"]} if op in DELETE_OPS else row.values for row in rows],
        )
        for row, outcome in zip(rows, outcomes, strict=True):
            sink._account(op, row, outcome, self._tally)

"""The per-record steps of singer-sdk's RECORD handling, for the streams that need no more than this target's sink.

singer-sdk's ``Target._process_record_message`` is general: for every record it copies the record for each stream
map, runs the map (which, unconfigured, returns the record as it is), strips or adds the ``_sdc_`` metadata columns,
validates, checks the key properties and keeps its counters, through two dozen calls that were about a fifth of the
target's CPU per record. For a stream with singer-sdk's default map (no ``stream_maps``, no flattening) and this
target's sink, ``RecordPath`` does the same steps in the same order, decided once per sink instead of per record:
no copy (nothing else reads the message's record), metadata stripped only when the record has some, the
validator called directly. Any other stream keeps singer-sdk's own path, so stream maps and flattening behave as
singer-sdk defines them.
"""

from __future__ import annotations

import logging
from typing import Any

from singer_sdk.mapper import SameRecordTransform
from singer_sdk.sinks import BatchSink

from target_salesforce.record_check import RejectingValidator
from target_salesforce.sinks import SalesforceSink

# The metadata columns singer-sdk removes from a record when the sink does not keep them.
SDC_COLUMNS = frozenset(
    {
        "_sdc_extracted_at",
        "_sdc_received_at",
        "_sdc_batched_at",
        "_sdc_deleted_at",
        "_sdc_sequence",
        "_sdc_table_version",
        "_sdc_sync_started_at",
    }
)


# Sink hooks this path calls singer-sdk's way or skips (preprocess_record returns the record as it is): a sink that
# overrides one of them keeps singer-sdk's path, which calls it.
_STEPS_TAKEN_AS_SINGER_SDKS = ("_get_context", "_validate_and_parse", "preprocess_record", "_after_process_record")


class RecordPath:
    """One sink's per-record steps, in singer-sdk's order; ``process`` answers whether the sink is now full."""

    __slots__ = (
        "_adds_metadata",
        "_counter",
        "_debug",
        "_key_properties",
        "_schema",
        "_treatment",
        "_validator",
        "sink",
    )

    def __init__(self, sink: SalesforceSink) -> None:
        self.sink = sink
        self._adds_metadata = sink.include_sdc_metadata_properties
        self._validator: RejectingValidator | None = sink._validator  # type: ignore[assignment]
        self._schema = sink.schema
        self._treatment = sink.datetime_error_treatment
        self._key_properties = tuple(sink.key_properties or ())
        self._counter = sink.record_counter_metric
        # singer-sdk logs every processed record at debug level; only a debug run pays for it here.
        self._debug = sink.logger.isEnabledFor(logging.DEBUG)

    @classmethod
    def for_stream(cls, mapper_maps: dict[str, list[Any]], stream_name: str, sink: Any) -> RecordPath | None:
        """The lean path for ``stream_name``, or None where singer-sdk's own path must run (maps, flattening, a
        sink or validator other than this target's, or no sink yet: singer-sdk then raises its error)."""
        maps = mapper_maps.get(stream_name)
        if (
            sink is None
            or type(sink) is not SalesforceSink
            or not maps
            or len(maps) != 1
            or type(maps[0]) is not SameRecordTransform
            or maps[0].flattening_enabled
            or maps[0].stream_alias != stream_name
            or not (sink._validator is None or type(sink._validator) is RejectingValidator)
            or any(getattr(type(sink), name) is not getattr(BatchSink, name) for name in _STEPS_TAKEN_AS_SINGER_SDKS)
        ):
            return None
        return cls(sink)

    def process(self, message: dict[str, Any]) -> bool:
        sink = self.sink
        record = message["record"]
        context = sink._pending_batch
        if context is None:
            context = sink._get_context(record)
        if self._adds_metadata:
            sink._add_sdc_metadata_to_record(record, message, context)
        elif not SDC_COLUMNS.isdisjoint(record):
            sink._remove_sdc_metadata_from_record(record)
        if self._validator is not None:
            self._validator.validate(record)  # a failure is kept for process_record, which rejects the record
        sink._parse_timestamps_in_record(record, self._schema, self._treatment)
        for name in self._key_properties:
            if name not in record:
                sink._singer_validate_message(record)  # raises singer-sdk's MissingKeyPropertiesError
        sink.tally_record_read()
        sink.process_record(record, context)
        self._counter.increment()
        if self._debug:
            sink._after_process_record(context)
        return sink.is_full

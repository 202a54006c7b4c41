"""The per-record steps of singer-sdk's RECORD handling, for the streams that need no more than this target's sink.

singer-sdk's ``Target._process_record_message`` is general: for every record it copies the record for each stream
map, runs the map (which, unconfigured, returns the record as it is), strips or adds the ``_sdc_`` metadata columns,
validates, checks the key properties and keeps its counters, through two dozen calls that were about a fifth of the
target's CPU per record. For a stream with singer-sdk's default map (no ``stream_maps``, no flattening) and this
target's sink, ``RecordPath`` does the same steps in the same order, decided once per sink instead of per record:
no copy (nothing else reads the message's record), metadata stripped only when the record has some, the
validator called directly. Any other stream keeps singer-sdk's own path, so stream maps and flattening behave as
singer-sdk defines them.

The checks before the write (metadata columns to strip, the schema check, warnings about fields the schema lacks,
key properties present) depend, for the usual schema that only says which types each field holds, on nothing but
the record's shape: its keys in order and the classes of its values. A shape that passed them all once is
remembered, and the next records of that shape (nearly all of them: a tap writes the same fields each time) skip
them for one set look-up.
"""

from __future__ import annotations

import logging
from typing import Any

from singer_sdk.mapper import SameRecordTransform
from singer_sdk.sinks import BatchSink

from target_salesforce.reader import LineCountingReader
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


# Fields and classes of the shapes remembered per sink, at most (a pointer each: 4 MB): a tap whose records take
# more shapes than fit has the others checked in full each time.
MAX_SHAPE_CELLS = 500_000

# Sink hooks this path calls singer-sdk's way or skips (preprocess_record returns the record as it is): a sink that
# overrides one of them keeps singer-sdk's path, which calls it.
_STEPS_TAKEN_AS_SINGER_SDKS = ("_get_context", "_validate_and_parse", "preprocess_record", "_after_process_record")


class RecordPath:
    """One sink's per-record steps, in singer-sdk's order; ``process`` answers whether the sink is now full.

    The sink's methods and settings the steps use are looked up once here: the path lives as long as its sink.
    """

    __slots__ = (
        "_adds_metadata",
        "_check_fields",
        "_counter",
        "_debug",
        "_key_properties",
        "_passes_by_shape",
        "_reader",
        "_schema",
        "_shape_cells",
        "_shapes",
        "_tally",
        "_treatment",
        "_validate",
        "_write",
        "sink",
    )

    def __init__(self, sink: SalesforceSink, reader: LineCountingReader | None) -> None:
        self.sink = sink
        self._adds_metadata = sink.include_sdc_metadata_properties
        # Whose ``line`` is the message of the record in hand, spooled as its source while the record is as the tap
        # wrote it: never when metadata columns are added.
        self._reader = None if self._adds_metadata else reader
        validator: RejectingValidator | None = sink._validator  # type: ignore[assignment]
        self._validate = validator.validate if validator is not None else None
        self._passes_by_shape = validator.passes_by_shape if validator is not None else None
        self._shapes: set[tuple] = set()  # shapes of records that passed every check before the write
        self._shape_cells = 0
        self._check_fields = sink._parse_timestamps_in_record
        self._schema = sink.schema
        self._treatment = sink.datetime_error_treatment
        self._key_properties = tuple(sink.key_properties or ())
        self._tally = sink.tally_record_read
        self._write = sink.add_record
        self._counter = sink.record_counter_metric
        # singer-sdk logs every processed record at debug level; only a debug run pays for it here.
        self._debug = sink.logger.isEnabledFor(logging.DEBUG)

    @classmethod
    def for_stream(
        cls, mapper_maps: dict[str, list[Any]], stream_name: str, sink: Any, reader: Any
    ) -> RecordPath | None:
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
        return cls(sink, reader if isinstance(reader, LineCountingReader) else None)

    def process(self, message: dict[str, Any]) -> bool:
        sink = self.sink
        record = message["record"]
        context = sink._pending_batch
        if context is None:
            context = sink._get_context(record)
        if self._adds_metadata:
            sink._add_sdc_metadata_to_record(record, message, context)
        shape = (*record, *map(type, record.values()))  # keys are str, never a class: the two halves cannot blur
        unchanged = shape in self._shapes or self._check(record, shape)
        self._tally()
        reader = self._reader
        self._write(record, context, reader.line if reader is not None and unchanged else None)
        self._counter.value += 1  # singer-sdk's counter; the target has it log now and then (see its increment(0))
        if self._debug:
            sink._after_process_record(context)
        return sink.is_full

    def _check(self, record: dict[str, Any], shape: tuple) -> bool:
        """singer-sdk's steps between metadata and write, and whether the record is unchanged by them (no metadata
        columns stripped); the shape is remembered when the answer holds for it."""
        sink = self.sink
        unchanged = True
        if not self._adds_metadata and not SDC_COLUMNS.isdisjoint(record):
            sink._remove_sdc_metadata_from_record(record)
            shape = ()  # the record changed: its shape is not the one looked up
            unchanged = False
        if self._validate is not None:
            self._validate(record)  # a failure is kept for process_record, which rejects the record
        self._check_fields(record, self._schema, self._treatment)
        for name in self._key_properties:
            if name not in record:
                sink._singer_validate_message(record)  # raises singer-sdk's MissingKeyPropertiesError
        if (
            shape
            and self._shape_cells + len(shape) <= MAX_SHAPE_CELLS
            and (self._passes_by_shape is None or self._passes_by_shape(record))
        ):
            self._shapes.add(shape)
            self._shape_cells += len(shape)
        return unchanged

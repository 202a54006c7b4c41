"""The results output: one line per input record saying what became of it in Salesforce, for writing Ids back.

A reverse-ETL pipeline usually needs the Salesforce Id of each source row back in the warehouse (to update by Id
next time, or to join). Every record the target reads ends here exactly once, keyed by the values of its stream's
``key_properties``: ``created``, ``updated``, ``deleted``, ``not_found`` or ``rejected`` (with the error code), and
the Salesforce Id when Salesforce gave one.

Two formats:
- ``jsonl``: ``{"stream", "key": {key property: value}, "object", "id", "outcome", "error_code"}`` per line.
- ``singer``: Singer SCHEMA and RECORD messages of a stream ``<stream>_results`` whose key properties are the
  source stream's, so any Singer target (target-postgres, target-csv) loads it as a table with one row per source
  key: the source key columns plus ``salesforce_object``, ``salesforce_id``, ``salesforce_outcome`` and
  ``salesforce_error_code``.

One writer is shared by every sink of a run (``jsonl.LineFile`` serialises the threads). The file is opened on the
first line and flushed after each batch, before the STATE that covers the batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from target_salesforce.errors import ConfigError
from target_salesforce.jsonl import ENCODER, LineFile

OUTCOMES = ("created", "updated", "deleted", "not_found", "rejected")
RESULTS_STREAM_SUFFIX = "_results"
_SINGER_COLUMNS: dict[str, dict[str, Any]] = {
    "salesforce_object": {"type": "string"},
    "salesforce_id": {"type": ["string", "null"]},
    "salesforce_outcome": {"type": "string", "enum": list(OUTCOMES)},
    "salesforce_error_code": {"type": ["string", "null"]},
}


class ResultsWriter:
    """The results file of one run; ``for_stream`` gives each sink its handle."""

    def __init__(self, path: str | Path, results_format: str) -> None:
        self._file = LineFile(path)
        self.format = results_format

    def for_stream(
        self, stream: str, sobject: str, key_properties: Sequence[str], properties: Mapping[str, Any]
    ) -> StreamResults:
        return StreamResults(self, stream, sobject, list(key_properties), properties)

    def emit(self, lines: Sequence[bytes]) -> None:
        self._file.append(lines)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class StreamResults:
    """Results of one sink (one stream under one SCHEMA): its key properties and, for Singer, its SCHEMA message."""

    def __init__(
        self,
        writer: ResultsWriter,
        stream: str,
        sobject: str,
        key_properties: list[str],
        properties: Mapping[str, Any],
    ) -> None:
        self._writer = writer
        self._stream = stream
        self._object = sobject
        self._keys = key_properties
        self._schema_line: bytes | None = None
        if writer.format == "singer":
            clash = sorted(set(key_properties) & set(_SINGER_COLUMNS))
            if clash:
                raise ConfigError(
                    f"Stream '{stream}': key propert(ies) {', '.join(clash)} clash with the results columns of "
                    "results_format singer; rename them with a stream map or use results_format jsonl."
                )
            schema = {
                "type": "SCHEMA",
                "stream": stream + RESULTS_STREAM_SUFFIX,
                "schema": {
                    "type": "object",
                    "properties": {**{k: properties.get(k, {}) for k in key_properties}, **_SINGER_COLUMNS},
                },
                "key_properties": key_properties,
            }
            self._schema_line = ENCODER.encode(schema)

    def write(
        self, records: Sequence[Mapping[str, Any]], outcome: str, sf_id: str | None, error_code: str | None
    ) -> None:
        """One line per record; several records share an outcome when duplicates in a batch were merged."""
        lines = []
        if self._schema_line is not None:
            lines.append(self._schema_line)  # once per sink, before its first record
            self._schema_line = None
        singer = self._writer.format == "singer"
        for record in records:
            key = {k: record.get(k) for k in self._keys}
            if singer:
                row = {
                    **key,
                    "salesforce_object": self._object,
                    "salesforce_id": sf_id,
                    "salesforce_outcome": outcome,
                    "salesforce_error_code": error_code,
                }
                lines.append(
                    ENCODER.encode({"type": "RECORD", "stream": self._stream + RESULTS_STREAM_SUFFIX, "record": row})
                )
            else:
                line = {
                    "stream": self._stream,
                    "key": key,
                    "object": self._object,
                    "id": sf_id,
                    "outcome": outcome,
                    "error_code": error_code,
                }
                lines.append(ENCODER.encode(line))
        self._writer.emit(lines)

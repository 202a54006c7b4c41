"""The Singer target: settings, one shared run context, and the ordering and exit rules around the sinks."""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Sequence
from functools import cached_property

from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.sinks import Sink
from singer_sdk.target_base import Target

from target_salesforce.errors import ConfigError, TargetError
from target_salesforce.reader import LineCountingReader
from target_salesforce.run_context import RunContext
from target_salesforce.settings import CONFIG_SCHEMA, check_config
from target_salesforce.sinks import SalesforceSink
from target_salesforce.summary import Tally

# Seconds between progress lines on long runs; TARGET_SALESFORCE_PROGRESS_SECONDS overrides it (tests use 0).
PROGRESS_SECONDS = 10.0


def progress_interval() -> float:
    try:
        return float(os.environ.get("TARGET_SALESFORCE_PROGRESS_SECONDS", PROGRESS_SECONDS))
    except ValueError:
        return PROGRESS_SECONDS


class TargetSalesforce(Target):
    """Writes any tap's records to Salesforce objects with insert, update or upsert."""

    name = "target-salesforce"
    # A copy: singer-sdk adds its built-in settings to this dict in place on every instantiation.
    config_jsonschema = copy.deepcopy(CONFIG_SCHEMA)
    default_sink_class = SalesforceSink
    message_reader_class = LineCountingReader

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        check_config(self.config)
        self._retired = Tally()  # what sinks retired by a new SCHEMA did, for the run summary
        self._records_read = 0
        self._started = time.monotonic()
        self._progress_every = progress_interval()
        self._next_progress = self._started + self._progress_every

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """Report settings that fail the config JSON Schema as one ``ConfigError`` line naming each setting."""
        try:
            return super()._validate_config(raise_errors=raise_errors)
        except ConfigValidationError as exc:
            raise ConfigError(f"invalid setting(s): {'; '.join(exc.errors)}: fix the config file") from None

    @cached_property
    def run_context(self) -> RunContext:
        """Built on first use, so ``--about`` and config errors never touch the network."""
        return RunContext.from_config(self.config)

    def get_sink(
        self,
        stream_name: str,
        *,
        record: dict | None = None,
        schema: dict | None = None,
        key_properties: Sequence[str] | None = None,
    ) -> Sink:
        """Drain a sink retired by a new SCHEMA before its successor can write.

        singer-sdk holds a retired sink until the next full drain, while the new sink may drain first when it fills:
        an older version of a record would then overwrite a newer one. Draining the old sink at once keeps the
        input order. No STATE is written here; it still waits for the next full drain.
        """
        existing = self._sinks_active.get(stream_name)
        if (
            schema is not None
            and isinstance(existing, SalesforceSink)
            and (existing.original_schema != schema or existing.key_properties != key_properties)
        ):
            self.drain_one(existing)
            self._retired.add(existing.tally)
        return super().get_sink(stream_name, record=record, schema=schema, key_properties=key_properties)

    def _process_record_message(self, message_dict: dict) -> None:
        super()._process_record_message(message_dict)
        self._records_read += 1
        now = time.monotonic()
        if now >= self._next_progress:
            self._next_progress = now + self._progress_every
            self._log_progress(now)

    def _total(self) -> Tally:
        total = Tally()
        total.add(self._retired)
        for sink in self._sinks_active.values():
            if isinstance(sink, SalesforceSink):
                total.add(sink.tally)
        return total

    def _log_progress(self, now: float) -> None:
        total = self._total()
        elapsed = max(now - self._started, 1e-9)
        calls = self.run_context.client.call_count if "run_context" in self.__dict__ else 0
        self.logger.info(
            "Progress: %d record(s) read, %d written, %d rejected; %.1f records/s; %d API call(s) used",
            self._records_read,
            total.created + total.updated + total.deleted,
            sum(total.rejected.values()),
            self._records_read / elapsed,
            calls,
        )

    def process_endofpipe(self) -> None:
        super().process_endofpipe()
        if "run_context" not in self.__dict__:
            return
        run = self.run_context
        run.rejects.close()
        total = self._total()
        usage = run.client.api_usage
        self.logger.info(
            "Run summary: %s; %d API call(s) made%s",
            total.describe(),
            run.client.call_count,
            f"; org API usage {usage[0]}/{usage[1]}" if usage else "",
        )
        if run.rejects.count:
            self.logger.warning("%d record(s) rejected; see %s", run.rejects.count, run.rejects.path)
            if not self.config.get("allow_rejects", True):
                raise TargetError(
                    f"{run.rejects.count} record(s) were rejected (allow_rejects is false); "
                    f"their reasons are in {run.rejects.path}."
                )

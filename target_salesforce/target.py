"""The Singer target: settings, one shared run context, and the ordering and exit rules around the sinks."""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from functools import cached_property
from typing import IO

from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.sinks import Sink
from singer_sdk.target_base import Target

from target_salesforce.budget import stop_message
from target_salesforce.dependencies import DependencyGraph, levels, parents_among
from target_salesforce.errors import ApiLimitReached, ConfigError, TargetError
from target_salesforce.interpreter import interpreter_tuned_for_records
from target_salesforce.reader import LineCountingReader
from target_salesforce.record_path import RecordPath
from target_salesforce.run_context import RunContext
from target_salesforce.settings import CONFIG_SCHEMA, check_config
from target_salesforce.sinks import SalesforceSink
from target_salesforce.summary import Tally

# Seconds between progress lines on long runs; TARGET_SALESFORCE_PROGRESS_SECONDS overrides it (tests use 0).
PROGRESS_SECONDS = 10.0
# Seconds between the checks that follow a record but need not follow each one (see _process_record_message).
CHECK_SECONDS = 0.05
# Seconds between two checks of singer-sdk's record age limit (a full drain once a record has waited 5 minutes):
# singer-sdk checks after every record, which cost about 3 % of the CPU of reading one.
AGE_CHECK_SECONDS = 1.0


def progress_interval() -> float:
    try:
        return float(os.environ.get("TARGET_SALESFORCE_PROGRESS_SECONDS", PROGRESS_SECONDS))
    except ValueError:
        return PROGRESS_SECONDS


class TargetSalesforce(Target):
    """Writes any tap's records to Salesforce objects with insert, update, upsert or delete."""

    name = "target-salesforce"
    # A copy: singer-sdk adds its built-in settings to this dict in place on every instantiation.
    config_jsonschema = copy.deepcopy(CONFIG_SCHEMA)
    default_sink_class = SalesforceSink
    message_reader_class = LineCountingReader

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        check_config(self.config)
        self._retired = Tally()  # what sinks retired by a new SCHEMA did, for the run summary
        self.in_full_drain = False  # sinks defer rows only outside a full drain (see _drain_all)
        self._overlapping: Sink | None = None  # the full sink whose batch may be written while reading goes on
        self._records_read = 0
        self._started = time.monotonic()
        self._progress_every = progress_interval()
        self._next_progress = self._started + self._progress_every
        self._next_age_check = self._started
        self._check_every = min(CHECK_SECONDS, self._progress_every)
        self._next_check = self._started
        self._state_written: dict | None = None  # the STATE value last printed (singer-sdk's object, not a copy)
        # A STATE whose records are all written or rejected but for batches being written in the background, and
        # those writes: printed when they end (see _write_covered_state).
        self._held_state: tuple[dict, list[Future[None]]] | None = None
        # Per stream: the sink a RecordPath was decided for, and that path (None: singer-sdk's own path).
        self._record_paths: dict[str, tuple[Sink | None, RecordPath | None]] = {}

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

    @cached_property
    def dependencies(self) -> DependencyGraph:
        """Which objects of the run reference which; the sinks add to it when they start."""
        return DependencyGraph()

    def _drain_all(self, sink_list: Iterable[Sink], parallelism: int) -> None:
        """Drain parents before children: level by level, each level's sinks in parallel as singer-sdk does.

        A full drain ends with a STATE, so each level also settles the rows its sinks deferred earlier (waiting for
        a parent record not yet read): written now that the parents are, or rejected.
        """
        self.in_full_drain = True
        try:
            for level in levels(list(sink_list)):  # type: ignore[arg-type]
                # One sink is drained in this thread: no pool of threads, no joblib polling its result every 10 ms.
                super()._drain_all(level, max(1, min(parallelism, len(level))))
                for sink in level:
                    sink.retry_deferred()
        finally:
            self.in_full_drain = False

    def drain_parents(self, sink: SalesforceSink) -> None:
        """Write the pending records of the objects ``sink`` looks up before ``sink`` writes its batch."""
        for parent in parents_among(sink, [s for s in self._sinks_active.values() if isinstance(s, SalesforceSink)]):
            self.drain_one(parent)
            parent.wait_for_writes()  # also a batch the parent was writing in the background

    def overlaps(self, sink: SalesforceSink) -> bool:
        """Whether ``sink``'s batch may be written in the background: only a batch drained because it is full, while
        records stream in. Any other drain must have written its rows when it returns (see process_batch)."""
        return sink is self._overlapping and not self.in_full_drain

    def _drain_full_sink(self, sink: SalesforceSink) -> None:
        """singer-sdk's drain of a sink that is full, marked so that its batch may be written in the background."""
        self.logger.info(
            "Target sink for '%s' is full. Current size is '%s'. Draining...", sink.stream_name, sink.current_size
        )
        self._overlapping = sink
        try:
            self.drain_one(sink)
        finally:
            self._overlapping = None

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
            existing.retry_deferred()  # its rows are settled before its successor writes the same records
            self._retired.add(existing.tally)
        return super().get_sink(stream_name, record=record, schema=schema, key_properties=key_properties)

    def listen(self, file_input: IO[str] | None = None) -> None:
        """End a run stopped at the API limit with one line saying how far it got and how to resume.

        The STATE of the drain that was interrupted is never printed (the exception leaves singer-sdk's drain before
        it writes STATE), so the last STATE printed covers only records that were written or rejected.
        """
        try:
            with interpreter_tuned_for_records():
                super().listen(file_input)
        except ApiLimitReached as exc:
            self._close_outputs()
            total = self._total()
            written = total.created + total.updated + total.deleted
            usage = self.run_context.client.api_usage
            raise ApiLimitReached(stop_message(exc, written, sum(total.rejected.values()), usage)) from None

    def _process_state_message(self, message_dict: dict) -> None:
        super()._process_state_message(message_dict)
        self._write_covered_state()

    def _write_covered_state(self) -> None:
        """Print the latest STATE as soon as every record before it is written or rejected.

        singer-sdk prints STATE only when it drains all sinks (end of input, or a record older than 5 minutes), so a
        run killed or stopped at the API limit hours in would have to start over. When no sink holds a record (pending
        or deferred for its parent), every record before the latest STATE has been written or rejected, or is in a
        batch being written in the background: then that STATE is held until those writes end (``_held_state``),
        while the records after it are read.
        """
        if self._held_state is not None:
            self._write_held_state()
        latest = self._latest_state
        if latest is None or latest is self._state_written or (self._held_state and self._held_state[0] is latest):
            return
        writes: list[Future[None]] = []
        for sink in [*self._sinks_active.values(), *self._sinks_to_clear]:
            if not isinstance(sink, SalesforceSink):
                if sink.current_size:
                    return
            elif sink.holds_pending_rows:
                return
            elif sink.background_write is not None:
                writes.append(sink.background_write)
        if writes:
            self._held_state = (latest, writes)  # a newer STATE whose writes include every write still running
        else:
            self._write_state_message(copy.deepcopy(latest))

    def _write_held_state(self) -> None:
        """Print the held STATE once the background writes it waits for have ended (their failures raised first)."""
        state, writes = self._held_state  # type: ignore[misc]
        if not all(write.done() for write in writes):
            return
        self._held_state = None
        sinks = [sink for sink in self._sinks_active.values() if isinstance(sink, SalesforceSink)]
        for sink in sinks:
            sink.finished_writing()
        if any(sink.holds_deferred_rows for sink in sinks):
            return  # a write deferred rows (waiting for a parent record): they wait for the next full drain's STATE
        Target._write_state_message(self, copy.deepcopy(state))
        self._state_written = state

    def _write_state_message(self, state: dict) -> None:
        """Print each STATE once: singer-sdk writes its latest STATE again at every full drain."""
        self._held_state = None  # the latest STATE covers it (a full drain has written everything)
        if self._latest_state is self._state_written:
            return
        super()._write_state_message(state)
        self._state_written = self._latest_state  # singer-sdk only ever writes its latest STATE

    def _process_schema_message(self, message_dict: dict) -> None:
        super()._process_schema_message(message_dict)
        self._record_paths.clear()  # the stream's maps and sink may have changed

    def _record_path(self, stream_name: str) -> RecordPath | None:
        sink = self._sinks_active.get(stream_name)
        decided = self._record_paths.get(stream_name)
        if decided is None or decided[0] is not sink:
            decided = (sink, RecordPath.for_stream(self.mapper.stream_maps, stream_name, sink, self.message_reader))
            self._record_paths[stream_name] = decided
        return decided[1]

    def _handle_max_record_age(self) -> None:
        """singer-sdk's check of its record age limit, at most once a second (see AGE_CHECK_SECONDS)."""
        now = time.monotonic()
        if now >= self._next_age_check:
            self._next_age_check = now + AGE_CHECK_SECONDS
            super()._handle_max_record_age()

    def _process_record_message(self, message_dict: dict) -> None:
        """singer-sdk's RECORD handling, through the lean RecordPath where the stream allows (see record_path).

        A STATE can only become covered by a drain, or by a background write ending. So after a drain the latest
        STATE is looked at at once; the rest (a write that ended, with its failure or the STATE it held, singer-sdk's
        record age limit, the progress line) at most every CHECK_SECONDS, which for a fast tap is once in a thousand
        records or so, instead of after every record.
        """
        path = self._record_path(message_dict["stream"])
        if path is None:
            super()._process_record_message(message_dict)  # it checks the record age itself
            self._write_covered_state()
        elif path.process(message_dict):
            self._drain_full_sink(path.sink)
            self._write_covered_state()
        self._records_read += 1
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + self._check_every
            self._check_now_and_then(now)

    def _check_now_and_then(self, now: float) -> None:
        for sink in self._sinks_active.values():
            if isinstance(sink, SalesforceSink):
                sink.finished_writing()
            # The lean path counts records without asking the clock each time: the metric is logged from here.
            sink.record_counter_metric.increment(0)
        self._write_covered_state()
        self._handle_max_record_age()
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
        self._close_outputs()
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

    def _close_outputs(self) -> None:
        """Close the reject and results files, also when the run stops early, so every line is on disk."""
        run = self.run_context
        run.rejects.close()
        if run.results is not None:
            run.results.close()

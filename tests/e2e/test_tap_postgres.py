"""`tap-postgres | target-salesforce`, both real processes, from a real PostgreSQL into the emulator.

The data goes through everything a user's pipeline goes through: PostgreSQL types as the tap renders them
(numeric, timestamptz in UTC, dates, NULLs, non-ASCII text), Singer messages over a pipe, the target's login,
describe and upserts over HTTPS, and the STATE the target echoes, fed back to the tap for an incremental run.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from simple_salesforce import Salesforce

from tests.conftest import EmulatorProcess
from tests.e2e.conftest import (
    CHANGED_KEYS,
    REPLICATION_KEY,
    TABLES,
    SampleSource,
    pipeline_env,
    records_written,
    target_settings,
)
from tests.postgres import PostgresServer, tap_catalog

RUN_TIMEOUT_SECONDS = 180


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def _write_json(path: Path, payload: Any) -> Path:
    path.write_text(json.dumps(payload))
    return path


@dataclass(frozen=True)
class Pipeline:
    """Runs the tap piped into the target, like `tap-postgres ... | target-salesforce --config ...` in a shell."""

    tap: str
    target: str
    workdir: Path
    env: dict[str, str]
    tap_config: Path
    target_config: Path
    catalog: Path

    def run(self, state: dict[str, Any] | None = None) -> dict[str, Any]:
        """One sync; returns the last state the target emitted (what an orchestrator stores for the next run)."""
        tap_args = [self.tap, "--config", str(self.tap_config), "--catalog", str(self.catalog)]
        if state is not None:
            tap_args += ["--state", str(_write_json(self.workdir / "state.json", state))]
        tap_log, target_log = self.workdir / "tap.log", self.workdir / "target.log"
        with tap_log.open("w") as tap_err, target_log.open("w") as target_err:
            tap = subprocess.Popen(tap_args, stdout=subprocess.PIPE, stderr=tap_err, env=self.env)
            assert tap.stdout is not None
            target = subprocess.Popen(
                [self.target, "--config", str(self.target_config)],
                stdin=tap.stdout,
                stdout=subprocess.PIPE,
                stderr=target_err,
                env=self.env,
                text=True,
            )
            tap.stdout.close()  # the target holds the read end now: if it dies, the tap gets SIGPIPE
            out, _ = target.communicate(timeout=RUN_TIMEOUT_SECONDS)
            tap_code = tap.wait(timeout=RUN_TIMEOUT_SECONDS)
        assert tap_code == 0, f"tap-postgres exited {tap_code}:\n{_tail(tap_log)}"
        assert target.returncode == 0, f"target-salesforce exited {target.returncode}:\n{_tail(target_log)}"
        # A Singer target writes each state value it can vouch for as one JSON line, and nothing else.
        states = [json.loads(line) for line in out.splitlines() if line.strip()]
        assert states, "target-salesforce emitted no STATE"
        return states[-1]


@pytest.fixture
def pipeline(
    tmp_path: Path,
    emulator: EmulatorProcess,
    postgres: PostgresServer,
    tap_postgres_bin: str,
    target_salesforce_bin: str,
    source: SampleSource,
) -> Pipeline:
    """A configured pipeline over the freshly created sample source (discovery needs its tables)."""
    env = pipeline_env(emulator)
    tap_config = _write_json(tmp_path / "tap.json", postgres.tap_config())
    discovered = subprocess.run(
        [tap_postgres_bin, "--config", str(tap_config), "--discover"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=RUN_TIMEOUT_SECONDS,
    ).stdout
    return Pipeline(
        tap=tap_postgres_bin,
        target=target_salesforce_bin,
        workdir=tmp_path,
        env=env,
        tap_config=tap_config,
        target_config=_write_json(tmp_path / "target.json", target_settings(emulator, tmp_path / "rejects.jsonl")),
        catalog=_write_json(tmp_path / "catalog.json", tap_catalog(json.loads(discovered), REPLICATION_KEY)),
    )


@pytest.mark.slow
def test_full_then_incremental_sync(
    sf: Salesforce, emulator: EmulatorProcess, source: SampleSource, pipeline: Pipeline
) -> None:
    state = pipeline.run()
    source.assert_synced(sf)
    bookmarks = state["bookmarks"]
    assert {table.stream for table in TABLES} <= set(bookmarks)
    assert all(bookmarks[table.stream]["replication_key"] == REPLICATION_KEY for table in TABLES)
    first = source.field_by_key(sf, "LastModifiedDate")

    source.change()
    calls_before = len(emulator.calls())
    pipeline.run(state)

    assert records_written(emulator.calls()[calls_before:]) == len(CHANGED_KEYS)
    source.assert_synced(sf)
    second = source.field_by_key(sf, "LastModifiedDate")
    assert {key for key, modified in second.items() if first.get(key) != modified} == CHANGED_KEYS


@pytest.mark.slow
def test_rerun_without_state_upserts_in_place(sf: Salesforce, source: SampleSource, pipeline: Pipeline) -> None:
    pipeline.run()
    ids = source.field_by_key(sf, "Id")

    pipeline.run()

    assert source.field_by_key(sf, "Id") == ids
    source.assert_synced(sf)

"""Kill -9 and resume: a 50,000-record load killed again and again ends with exactly the data of an uninterrupted run.

The input carries a STATE bookmark (the position in the input) every STATE_EVERY records. Each run is SIGKILLed at a
random moment (before its first STATE, mid-batch with Collections requests or a Bulk job in flight, or while
reading); the next run gets the input after the bookmark of the last STATE the killed run printed, the way Meltano
resumes. A STATE must never cover a record that is not in Salesforce, or the resumed run would skip it: the final
SOQL read-back finds every record once, with its values.
"""

from __future__ import annotations

import json
import random
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.target.conftest import encode, record_msg, schema_msg, state_msg, target_command, target_env

RECORDS = 50_000
STATE_EVERY = 250
BATCH = 1000
KILLS = 20
SEED = 20261129
RUN_TIMEOUT_SECONDS = 120
PROPERTIES = {
    "External_Id__c": {"type": "string"},
    "Name": {"type": "string"},
    "AccountNumber": {"type": ["string", "null"]},
    "NumberOfEmployees": {"type": ["integer", "null"]},
}


def record(index: int, version: int) -> dict[str, Any]:
    return {
        "External_Id__c": f"k{index:05d}",
        "Name": f"Ååccount {index} v{version}",
        "AccountNumber": None if index % 7 == 0 else f"N-{index}-{version}",
        "NumberOfEmployees": index * version,
    }


def input_lines(start: int, version: int) -> str:
    """SCHEMA, the records from ``start`` on, and a STATE {"position": n} after every STATE_EVERY records."""
    messages: list[dict[str, Any]] = [schema_msg("Account", PROPERTIES, ["External_Id__c"])]
    for index in range(start, RECORDS):
        messages.append(record_msg("Account", record(index, version)))
        if (index + 1) % STATE_EVERY == 0:
            messages.append(state_msg({"bookmarks": {"Account": {"position": index + 1}}}))
    return encode(messages)


def expected_rows(version: int) -> list[tuple[Any, ...]]:
    return sorted(
        (r["External_Id__c"], r["Name"], r["AccountNumber"], r["NumberOfEmployees"])
        for r in (record(i, version) for i in range(RECORDS))
    )


def rows_in_salesforce(emulator: Any) -> list[tuple[Any, ...]]:
    sf = emulator.salesforce()
    soql = "SELECT External_Id__c, Name, AccountNumber, NumberOfEmployees FROM Account"
    return sorted(
        (r["External_Id__c"], r["Name"], r["AccountNumber"], r["NumberOfEmployees"])
        for r in sf.query_all(soql)["records"]
    )


class KillingRunner:
    """Runs the target again and again from the last printed STATE, SIGKILLing each run at a random moment."""

    def __init__(self, emulator: Any, workdir: Path, config: dict[str, Any], rng: random.Random) -> None:
        self.emulator = emulator
        self.workdir = workdir
        self.config_path = workdir / "config.json"
        self.config_path.write_text(json.dumps(config))
        self.rng = rng
        self.position = 0
        self.kills = 0
        self.resumed_from: list[int] = []  # the bookmark each run after a kill started from

    def load(self, version: int, kills: int) -> None:
        """Load every record of ``version``, killing runs until ``kills`` runs in all were killed, then finish."""
        self.position = 0
        while True:
            finished = self._run(version, kills_left=max(kills - self.kills, 0))
            if finished:
                return
            self.resumed_from.append(self.position)

    def _run(self, version: int, *, kills_left: int) -> bool:
        """One run from the current position; True when it ran to the end of its input."""
        stdin_path = self.workdir / "input.jsonl"
        stdin_path.write_text(input_lines(self.position, version), encoding="utf-8")
        stdout_path = self.workdir / "stdout.txt"
        stderr_path = self.workdir / "stderr.txt"
        with stdin_path.open("rb") as stdin, stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
            proc = subprocess.Popen(
                [*target_command(), "--config", str(self.config_path)],
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                env=target_env(self.emulator["ca_bundle"]),
                cwd=self.workdir,
            )
            if kills_left:
                self._kill_at_random_moment(proc, stdout_path, kills_left)
            returncode = proc.wait(timeout=RUN_TIMEOUT_SECONDS)
        self.position = self._last_position(stdout_path)
        if returncode == -9:
            self.kills += 1
            return False
        assert returncode == 0, stderr_path.read_text(errors="replace")
        assert self.position == RECORDS
        return True

    def _kill_at_random_moment(self, proc: subprocess.Popen[bytes], stdout_path: Path, kills_left: int) -> None:
        """SIGKILL ``proc`` at a random moment: for a quarter of the runs a random time after the start (maybe
        before any write), for the others a random time after their first STATE (mid-batch or mid-read). No run
        may get much further than its share of the remaining records, so that every kill lands mid-load."""
        share = max((RECORDS - self.position) // (kills_left + 1), 1)
        started = time.monotonic()
        kill_at = started + self.rng.uniform(0.3, 1.5) if self.rng.random() < 0.25 else None
        while proc.poll() is None and time.monotonic() - started < RUN_TIMEOUT_SECONDS:
            now = time.monotonic()
            progress = self._last_position(stdout_path) - self.position
            if progress > 0 and kill_at is None:
                kill_at = now + self.rng.uniform(0.0, 0.3)
            if progress >= share:
                kill_at = min(kill_at or now, now + self.rng.uniform(0.0, 0.05))
            if kill_at is not None and now >= kill_at:
                proc.kill()
                return
            time.sleep(0.01)

    def _last_position(self, stdout_path: Path) -> int:
        """The bookmark of the last complete STATE line (a kill may cut the last line short)."""
        text = stdout_path.read_text(encoding="utf-8")
        complete = text[: text.rfind("\n") + 1].splitlines()
        if not complete:
            return self.position
        position = json.loads(complete[-1])["bookmarks"]["Account"]["position"]
        assert position >= self.position, (position, self.position)  # STATE never moves backwards
        return position


@pytest.mark.parametrize("api", ["bulk", "rest"])
def test_upsert_and_update_killed_at_random_end_as_an_uninterrupted_run(sf, emulator, tmp_path, api) -> None:
    rng = random.Random(f"{SEED}-{api}")
    config = {
        "client_id": emulator["client_id"],
        "client_secret": emulator["client_secret"],
        "refresh_token": emulator["refresh_token"],
        "login_url": emulator["login_url"],
        "rejects_path": str(tmp_path / "rejects.jsonl"),
        "object": "Account",
        "sync_mode": "upsert",
        "match_field": "External_Id__c",
        "api": api,
        "batch_size_rows": BATCH,
        "validate_records": False,
    }
    runner = KillingRunner(emulator, tmp_path, config, rng)

    runner.load(version=1, kills=KILLS)

    assert runner.kills == KILLS, (runner.kills, runner.resumed_from)
    # Most runs resumed from a bookmark, not from the start: the STATE moved on while the load went on.
    assert sum(1 for p in runner.resumed_from if 0 < p < RECORDS) >= KILLS // 2, runner.resumed_from
    assert rows_in_salesforce(emulator) == expected_rows(1)

    # update by external id (matched through SOQL) changes every record, again killed on the way.
    runner.config_path.write_text(json.dumps({**config, "sync_mode": "update"}))
    runner.load(version=2, kills=KILLS + KILLS // 4)

    assert runner.kills == KILLS + KILLS // 4, runner.resumed_from
    assert rows_in_salesforce(emulator) == expected_rows(2)
    assert not (tmp_path / "rejects.jsonl").exists()

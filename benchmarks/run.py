"""Measure target-salesforce end to end against the bundled emulator, and print one JSON object per case.

    python benchmarks/run.py --records 10000                 # every case
    python benchmarks/run.py --records 100000 --case upsert-bulk

Each case: write N Contact-like records as a Singer stream (SCHEMA, RECORDs, a final STATE) to a temp file, start
a fresh emulator, pre-create the Accounts the records point at, run the ``target-salesforce`` CLI beside this
Python with that file on stdin, and read back through SOQL the Contact count and every value of the first and last
record. This is a measuring script, not a test: it asserts nothing and only prints what it saw (``verified`` says
whether the count and those values matched).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
import requests

from target_salesforce.emulator.builtin_objects import contact
from target_salesforce.emulator.schema import FieldDef, ObjectDef

API_VERSION = "62.0"
ACCOUNTS = 20
STREAM = "contacts"
# case name -> (sync_mode, api, emulator latency in ms)
CASES: dict[str, tuple[str, str, int]] = {
    "insert-rest": ("insert", "rest", 0),
    "upsert-rest": ("upsert", "rest", 0),
    "insert-bulk": ("insert", "bulk", 0),
    "upsert-bulk": ("upsert", "bulk", 0),
    "rest-latency": ("upsert", "rest", 50),
}
KINDS = (
    "token",
    "describe",
    "composite",
    "query",
    "collections",
    "bulk-job",
    "bulk-upload",
    "bulk-poll",
    "bulk-results",
    "other",
)

FIRST = ["José", "Zoë", "Łukasz", "Søren", "Ana", "François", "Jürgen", "Åsa", "Nguyễn", "Mårten", "Chloé", "Ömer"]
LAST = ["Müller", "Ødegård", "García", "Dvořák", "O'Brien", "Smith", "Öztürk", "Nakamura", "Żółć", "Brontë"]

SCHEMA_PROPS: dict[str, Any] = {
    "External_Id__c": {"type": "string"},
    "FirstName": {"type": ["string", "null"]},
    "LastName": {"type": "string"},
    "Email": {"type": ["string", "null"]},
    "Description": {"type": ["string", "null"]},
    "Birthdate": {"type": ["string", "null"], "format": "date"},
    "Lifetime_Value__c": {"type": ["number", "null"]},
    "Last_Activity_At__c": {"type": ["string", "null"], "format": "date-time"},
    "HasOptedOutOfEmail": {"type": ["boolean", "null"]},
    "account_key": {"type": ["string", "null"]},
}
FIELD_MAPPING = {name: name for name in SCHEMA_PROPS if name != "account_key"} | {
    "account_key": "Account.External_Id__c"
}


def record(i: int) -> dict[str, Any]:
    """The i-th record of the stream."""
    return {
        "External_Id__c": f"C-{i:09d}",
        "FirstName": FIRST[i % len(FIRST)],
        "LastName": f"{LAST[i % len(LAST)]} {i}",
        "Email": f"contact{i}@example.com",
        "Description": f'Met at "Expo {i % 7}", said: fine, thanks; wants a call, "soon"\nline 2 #{i}',
        "Birthdate": f"{1950 + i % 50}-{1 + i % 12:02d}-{1 + i % 28:02d}",
        "Lifetime_Value__c": Decimal(f"{i % 1_000_000}.{i % 97:02d}"),
        # as singer-sdk taps write a timestamp with time zone (Python's isoformat)
        "Last_Activity_At__c": f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:"
        f"{i % 59:02d}.{i % 1_000_000:06d}+00:00",
        "HasOptedOutOfEmail": i % 3 == 0,
        "account_key": f"A-{i % ACCOUNTS:04d}",
    }


def stored_as_sent(emu: Emulator, i: int) -> bool:
    """Whether the i-th record reads back through SOQL with every value as Salesforce would store it."""
    sent = record(i)
    soql = (
        "SELECT FirstName, LastName, Email, Description, Birthdate, Lifetime_Value__c, Last_Activity_At__c, "
        f"HasOptedOutOfEmail, Account.External_Id__c FROM Contact WHERE External_Id__c = '{sent['External_Id__c']}'"
    )
    rows = emu.api("GET", "query", params={"q": soql}, timeout=60).json()["records"]
    if len(rows) != 1:
        return False
    got = rows[0]
    moment = sent["Last_Activity_At__c"]
    return (
        all(got[name] == sent[name] for name in ("FirstName", "LastName", "Email", "Description", "Birthdate"))
        and got["HasOptedOutOfEmail"] is sent["HasOptedOutOfEmail"]
        and Decimal(str(got["Lifetime_Value__c"])) == sent["Lifetime_Value__c"]
        and got["Last_Activity_At__c"] == moment[:23] + "+0000"  # milliseconds kept, the rest truncated
        and got["Account"]["External_Id__c"] == sent["account_key"]
    )


def write_input(path: Path, n: int) -> None:
    """SCHEMA + n RECORDs + a final STATE, one JSON message a line."""
    enc = msgspec.json.Encoder(decimal_format="number")  # JSON numbers, as a tap writes them
    with path.open("wb") as out:
        schema = {"type": "SCHEMA", "stream": STREAM, "schema": {"type": "object", "properties": SCHEMA_PROPS}}
        schema["key_properties"] = ["External_Id__c"]
        out.write(enc.encode(schema) + b"\n")
        for i in range(n):
            out.write(enc.encode({"type": "RECORD", "stream": STREAM, "record": record(i)}) + b"\n")
        out.write(enc.encode({"type": "STATE", "value": {"bookmarks": {STREAM: {"done": n}}}}) + b"\n")


def write_objects(path: Path) -> None:
    """The emulator's Contact with the two custom fields the records also fill (a currency and a datetime), as an
    org's own describe would list them: loaded with the emulator's ``--objects``."""
    builtin = contact()
    custom = [
        FieldDef("Lifetime_Value__c", "currency", "Lifetime Value", precision=16, scale=2, custom=True),
        FieldDef("Last_Activity_At__c", "datetime", "Last Activity At", custom=True),
    ]
    extended = ObjectDef(builtin.name, builtin.key_prefix, [*builtin.fields, *custom], builtin.label)
    path.write_text(json.dumps(extended.describe(API_VERSION)))


def decode_rate(path: Path, n: int) -> float:
    """Records per second of a bare msgspec decode loop over the same file (the parsing floor)."""
    dec = msgspec.json.Decoder()
    start = time.perf_counter()
    with path.open("rb") as f:
        for line in f:
            dec.decode(line)
    return n / (time.perf_counter() - start)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def call_kind(method: str, path: str) -> str:
    if path.endswith("/oauth2/token"):
        return "token"
    if "/composite/sobjects" in path:
        return "collections"
    if path.rstrip("/").endswith("/composite"):
        return "composite"  # one call however many subrequests (the target sends its describes this way)
    if path.endswith("/describe") or path.rstrip("/").endswith("/sobjects"):
        return "describe"
    if "/query" in path:
        return "query"
    if "/jobs/ingest" in path:
        tail = path.split("/jobs/ingest", 1)[1].strip("/").split("/")
        if len(tail) >= 2 and tail[1] == "batches":
            return "bulk-upload"
        if len(tail) >= 2:
            return "bulk-results"
        if method == "GET" and tail[0]:
            return "bulk-poll"
        return "bulk-job"  # create (POST), close (PATCH), delete
    return "other"


class Emulator:
    def __init__(self, workdir: Path, latency_ms: int) -> None:
        ready = workdir / "ready.json"
        script = Path(sys.executable).with_name("salesforce-emulator")
        objects = workdir / "objects.json"
        write_objects(objects)
        cmd = [str(script), "--port", "0", "--ready-file", str(ready), "--log-level", "WARNING"]
        cmd += ["--objects", str(objects)]
        if latency_ms:
            cmd += ["--latency-ms", str(latency_ms)]
        self.log = (workdir / "emulator.log").open("wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + 60
        while not ready.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"emulator did not start; see {workdir / 'emulator.log'}")
            time.sleep(0.05)
        self.info: dict[str, str] = json.loads(ready.read_text())
        self.http = requests.Session()
        self.http.verify = self.info["ca_bundle"]
        self.http.trust_env = False

    def url(self, path: str) -> str:
        return self.info["instance_url"] + path

    def token(self) -> str:
        resp = self.http.post(
            self.info["login_url"] + "/services/oauth2/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": self.info["refresh_token"],
                "client_id": self.info["client_id"],
                "client_secret": self.info["client_secret"],
            },
            timeout=60,
        )
        resp.raise_for_status()
        return resp.json()["access_token"]

    def api(self, method: str, path: str, **kw: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token()}"}
        resp = self.http.request(method, self.url(f"/services/data/v{API_VERSION}/{path}"), headers=headers, **kw)
        resp.raise_for_status()
        return resp

    def calls(self) -> list[dict[str, Any]]:
        resp = self.http.get(self.url("/_emulator/calls"), timeout=60)
        resp.raise_for_status()
        return resp.json()

    def stop(self) -> None:
        self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def run_case(
    case: str, n: int, keep: bool, profile: Path | None = None, settings: dict[str, Any] | None = None
) -> dict[str, Any]:
    sync_mode, api, latency_ms = CASES[case]
    workdir = Path(tempfile.mkdtemp(prefix=f"sf-bench-{case}-"))
    input_path = workdir / "input.jsonl"
    write_input(input_path, n)
    emu = Emulator(workdir, latency_ms)
    try:
        emu.http.post(emu.url("/_emulator/reset"), timeout=60).raise_for_status()
        accounts = [
            {"attributes": {"type": "Account"}, "Name": f"Account {i}", "External_Id__c": f"A-{i:04d}"}
            for i in range(ACCOUNTS)
        ]
        emu.api("POST", "composite/sobjects", json={"allOrNone": True, "records": accounts}, timeout=60)
        calls_before = len(emu.calls())

        config = {
            "client_id": emu.info["client_id"],
            "client_secret": emu.info["client_secret"],
            "refresh_token": emu.info["refresh_token"],
            "login_url": emu.info["login_url"],
            "api_version": API_VERSION,
            "object": "Contact",
            "sync_mode": sync_mode,
            "match_field": "External_Id__c",
            "field_mapping": FIELD_MAPPING,
            "api": api,
            "rejects_path": str(workdir / "rejects.jsonl"),
            **(settings or {}),
        }
        config_path = workdir / "config.json"
        config_path.write_text(json.dumps(config))
        target = Path(sys.executable).with_name("target-salesforce")
        env = dict(os.environ, REQUESTS_CA_BUNDLE=emu.info["ca_bundle"])

        emu_cpu0 = cpu_seconds(emu.proc.pid)
        cmd = [str(target), "--config", str(config_path)]
        if profile is not None:  # same run under cProfile; its CPU figures then include the profiler's overhead
            cmd = [sys.executable, "-m", "cProfile", "-o", str(profile), *cmd]
        with (
            input_path.open("rb") as stdin,
            (workdir / "state.jsonl").open("wb") as out,
            (workdir / "target.log").open("wb") as err,
        ):
            start = time.perf_counter()
            proc = subprocess.Popen(cmd, stdin=stdin, stdout=out, stderr=err, env=env)
            _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage: CPU and peak RSS
            wall = time.perf_counter() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
        emu_cpu = cpu_seconds(emu.proc.pid) - emu_cpu0

        kinds = Counter(call_kind(c["method"], c["path"]) for c in emu.calls()[calls_before:])
        api_calls = {k: kinds.get(k, 0) for k in KINDS} | {"total": sum(kinds.values())}
        count = emu.api("GET", "query", params={"q": "SELECT COUNT() FROM Contact"}, timeout=120).json()["totalSize"]
        rejects = workdir / "rejects.jsonl"
        target_cpu = usage.ru_utime + usage.ru_stime
        result = {
            "case": case,
            "records": n,
            "wall_s": round(wall, 3),
            "records_per_s": round(n / wall, 1),
            "target_cpu_s": round(target_cpu, 3),
            "target_cpu_us_per_record": round(target_cpu / n * 1e6, 1) if n else None,
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "api_calls": api_calls,
            "emulator_cpu_s": round(emu_cpu, 3),
            "decode_records_per_s": round(decode_rate(input_path, n)),
            "exit_code": proc.returncode,
            "rejected": sum(1 for _ in rejects.open()) if rejects.exists() else 0,
            "verified": count == n
            and proc.returncode == 0
            and all(map(partial(stored_as_sent, emu), {0, n - 1} - {-1})),
        }
        if proc.returncode != 0 or count != n:
            result["workdir"] = str(workdir)
            keep = True
        return result
    finally:
        emu.stop()
        if not keep:
            for path in sorted(workdir.iterdir()):
                path.unlink()
            workdir.rmdir()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10_000, help="records per case (default 10000)")
    parser.add_argument("--case", action="append", choices=list(CASES), help="repeatable; default: every case")
    parser.add_argument("--keep", action="store_true", help="keep each case's temp dir (input, logs, rejects)")
    parser.add_argument(
        "--setting", action="append", default=[], metavar="NAME=JSON", help="extra target setting (repeatable)"
    )
    parser.add_argument("--profile", type=Path, help="run the target under cProfile, writing stats to PROFILE.<case>")
    args = parser.parse_args()
    settings = {name: json.loads(value) for name, _, value in (s.partition("=") for s in args.setting)}
    for case in args.case or list(CASES):
        profile = args.profile.with_suffix(f".{case}") if args.profile else None
        print(json.dumps(run_case(case, args.records, args.keep, profile, settings)), flush=True)


if __name__ == "__main__":
    main()

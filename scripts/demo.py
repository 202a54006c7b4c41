"""A first run of target-salesforce, end to end on this machine: PostgreSQL → tap-postgres → target-salesforce.

No Salesforce account and no internet needed: "Salesforce" is the bundled emulator (a real HTTPS server that
speaks Salesforce's OAuth, REST and SOQL) and PostgreSQL is a throwaway server in a temporary directory. Both
are stopped and deleted on exit, Ctrl-C included; the configs and logs stay in .demo/ to look at afterwards.
Run it with scripts/demo.sh, which installs what it needs first.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import requests
from simple_salesforce import Salesforce

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # tests/postgres.py: the throwaway-PostgreSQL helper the e2e tests use too

from tests.postgres import PostgresServer, running_postgres, tap_catalog  # noqa: E402

WORKDIR = REPO_ROOT / ".demo"
BIN_DIR = Path(sys.executable).parent  # the venv's console scripts: salesforce-emulator, tap-postgres, target-...
EMULATOR_START_SECONDS = 30
API_VERSION = "62.0"

SAMPLE_TABLE = """CREATE TABLE contact (
    id serial PRIMARY KEY, external_id text NOT NULL UNIQUE, first_name text, last_name text NOT NULL,
    email text, title text, city text, birthdate date, updated_at timestamptz NOT NULL DEFAULT now())"""
SAMPLE_ROWS = (
    ("CUST-001", "Zoë", "Ångström", "zoe@example.com", "Head of Data", "Malmö", "1988-04-12"),
    ("CUST-002", "José", "Müller", "jose@example.com", "Engineer", "Zürich", "1991-11-30"),
    ("CUST-003", "Amélie", "Dubois", None, "Analyst", "Montréal", None),
    ("CUST-004", None, "O'Connor", "oconnor@example.com", None, "Dublin", "1979-01-05"),
    ("CUST-005", "Łukasz", "Nowak", "lukasz@example.com", "CTO", "Kraków", "1983-07-21"),
)
# Source column → Contact field. External_Id__c is an External ID field, so reruns update instead of duplicating.
FIELD_MAPPING = {
    "external_id": "External_Id__c",
    "first_name": "FirstName",
    "last_name": "LastName",
    "email": "Email",
    "title": "Title",
    "city": "MailingCity",
    "birthdate": "Birthdate",
}
SHOWN_FIELDS = ("External_Id__c", "Name", "Email", "Title", "MailingCity", "Birthdate")


def step(number: int, text: str) -> None:
    print(f"\n[{number}/5] {text}", flush=True)


def say(text: str) -> None:
    print(f"      {text}", flush=True)


def write_json(name: str, payload: Any) -> Path:
    path = WORKDIR / name
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


@contextlib.contextmanager
def running_emulator() -> Iterator[dict[str, str]]:
    """Start ``salesforce-emulator`` and yield its ready info (URLs, CA bundle, demo credentials)."""
    ready = WORKDIR / "emulator-ready.json"
    with (WORKDIR / "emulator.log").open("wb") as log:
        # Its own session, so Ctrl-C reaches only this script, which then stops the emulator itself.
        proc = subprocess.Popen(
            [str(BIN_DIR / "salesforce-emulator"), "--port", "0", "--ready-file", str(ready)],
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + EMULATOR_START_SECONDS
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the emulator did not start; see {WORKDIR / 'emulator.log'}")
            time.sleep(0.05)
        yield json.loads(ready.read_text())
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def fill_sample_table(server: PostgresServer) -> None:
    server.execute(SAMPLE_TABLE)
    columns = "external_id, first_name, last_name, email, title, city, birthdate"
    for row in SAMPLE_ROWS:
        server.execute(f"INSERT INTO contact ({columns}) VALUES (%s, %s, %s, %s, %s, %s, %s)", row)


def target_config(emulator: dict[str, str]) -> dict[str, Any]:
    """Log in with the emulator's connected-app refresh token; upsert every row on Contact.External_Id__c."""
    return {
        "client_id": emulator["client_id"],
        "client_secret": emulator["client_secret"],
        "refresh_token": emulator["refresh_token"],
        "login_url": emulator["login_url"],
        "sync_mode": "upsert",
        "match_field": "External_Id__c",
        "field_mapping": FIELD_MAPPING,
        "rejects_path": str(WORKDIR / "rejects.jsonl"),
    }


def run(command: str, env: dict[str, str]) -> None:
    """Run a shell pipeline as a user would type it; pipefail makes a failing tap fail the run too."""
    say(f"$ {command}")
    result = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=WORKDIR, env=env, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"the pipeline failed (exit {result.returncode}); see the logs in {WORKDIR}")


def salesforce_client(emulator: dict[str, str]) -> Salesforce:
    """A simple-salesforce client logged in like the target: refresh-token grant, trusting the emulator's CA."""
    session = requests.Session()
    session.verify = emulator["ca_bundle"]
    session.trust_env = False  # else a REQUESTS_CA_BUNDLE in the environment would replace `verify`
    token = session.post(
        emulator["login_url"] + "/services/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": emulator["refresh_token"],
            "client_id": emulator["client_id"],
            "client_secret": emulator["client_secret"],
        },
        timeout=30,
    )
    token.raise_for_status()
    body = token.json()
    return Salesforce(
        instance_url=body["instance_url"], session_id=body["access_token"], session=session, version=API_VERSION
    )


def print_table(records: list[dict[str, Any]], fields: tuple[str, ...]) -> None:
    rows = [[str(record.get(field) or "") for field in fields] for record in records]
    widths = [max(len(cell) for cell in column) for column in zip(fields, *rows, strict=True)]
    for cells in [list(fields), ["-" * width for width in widths], *rows]:
        say("  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip())


def demo() -> None:
    shutil.rmtree(WORKDIR, ignore_errors=True)
    WORKDIR.mkdir()

    step(1, "Starting the Salesforce emulator (a local HTTPS server speaking Salesforce's APIs)")
    with running_emulator() as emulator:
        say(f"Salesforce org at {emulator['instance_url']}, login server {emulator['login_url']}")
        env = {**os.environ, "REQUESTS_CA_BUNDLE": emulator["ca_bundle"]}  # trust its CA; verification stays on

        step(2, "Starting a throwaway PostgreSQL server and filling a sample table")
        with running_postgres("demo") as server:
            fill_sample_table(server)
            say(f"PostgreSQL on {server.host}:{server.port}, database '{server.database}'")
            say(f"table public.contact: {len(SAMPLE_ROWS)} rows (accents, NULLs and dates included)")

            step(3, "Configuring tap-postgres and target-salesforce")
            tap_config = write_json("tap.json", server.tap_config())
            settings = target_config(emulator)
            write_json("target.json", settings)
            say("tap.json: which database to read; target.json: how to log in to Salesforce and what to write")
            say(f"stream public-contact → object Contact, {settings['sync_mode']} on {settings['match_field']}")
            for column, field in FIELD_MAPPING.items():
                say(f"  {column:<12} → {field}")
            discovered = subprocess.run(
                [str(BIN_DIR / "tap-postgres"), "--config", str(tap_config), "--discover"],
                capture_output=True,
                text=True,
                check=True,
                env=env,
            ).stdout
            write_json("catalog.json", tap_catalog(json.loads(discovered)))
            say("catalog.json: the tables tap-postgres found, all selected")

            step(4, "Running the pipeline: tap-postgres reads the table, target-salesforce writes Contacts")
            tap, target = (shlex.quote(str(BIN_DIR / name)) for name in ("tap-postgres", "target-salesforce"))
            run(
                f"{tap} --config tap.json --catalog catalog.json 2>tap.log"
                f" | {target} --config target.json 2>target.log >state.json",
                env,
            )
            say(f"done; the state for an incremental rerun is in {WORKDIR.name}/state.json")

        step(5, "Reading back what landed in Salesforce (SOQL through simple-salesforce)")
        fields = ", ".join(SHOWN_FIELDS)
        records = salesforce_client(emulator).query_all(f"SELECT {fields} FROM Contact ORDER BY External_Id__c")
        print_table(records["records"], SHOWN_FIELDS)
        say(f"{len(records['records'])} of {len(SAMPLE_ROWS)} rows are Contacts now. Configs and logs: {WORKDIR}")


def _stop_on_sigterm(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


def main() -> int:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)  # so `kill` also stops the servers on the way out
    try:
        demo()
    except KeyboardInterrupt:
        print("\nInterrupted: the emulator and PostgreSQL were stopped.", file=sys.stderr)
        return 130
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"\ndemo failed: {exc}", file=sys.stderr)
        return 1
    print("\nThe servers were stopped. Next: README.md explains the settings for a real org.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Fixtures for the real pipelines: a throwaway PostgreSQL, the installed tap and target, and a sample source.

Everything here is the real thing a user runs: PostgreSQL 15 started by ``tests/postgres.py``, the
``tap-postgres`` and ``target-salesforce`` console scripts as subprocesses, and the emulator from
``tests/conftest.py``. The sample source is defined once and serves both the direct pipe and Meltano, so the
two tests prove the same data lands.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from simple_salesforce import Salesforce

from tests.conftest import EmulatorProcess
from tests.postgres import PostgresServer, running_postgres

REPO_ROOT = Path(__file__).resolve().parents[2]
REPLICATION_KEY = "updated_at"


def console_script(name: str) -> str:
    """An installed command: beside this Python first (the project's .venv), else on PATH."""
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; run scripts/bootstrap.sh")
    return found


@dataclass(frozen=True)
class Table:
    """A source table, the Salesforce object its stream upserts into, and which column maps to which field."""

    name: str
    object: str
    ddl: str
    mapping: dict[str, str]  # column → field; the first entry is the external id used as match_field
    rows: tuple[tuple[Any, ...], ...]  # values for the mapped columns, in mapping order, then updated_at

    @property
    def stream(self) -> str:
        return f"public-{self.name}"

    @property
    def key(self) -> str:
        return next(iter(self.mapping))

    @property
    def match_field(self) -> str:
        return self.mapping[self.key]


CONTACT = Table(
    name="contact",
    object="Contact",  # found from the stream name `public-contact`; the target config does not name it
    ddl="""CREATE TABLE contact (
        id serial PRIMARY KEY, external_id text NOT NULL UNIQUE, first_name text, last_name text NOT NULL,
        email text, birthdate date, note text, updated_at timestamptz NOT NULL)""",
    mapping={
        "external_id": "External_Id__c",
        "first_name": "FirstName",
        "last_name": "LastName",
        "email": "Email",
        "birthdate": "Birthdate",
        "note": "Description",
    },
    rows=(
        ("C-001", "Zoë", "Ångström", "zoe@example.com", "1990-02-03", "Grüße aus Köln 日本 🚀", "2024-01-01 10:00+02"),
        ("C-002", None, "Nulls-Everywhere", None, None, None, "2024-01-02 00:00Z"),
        ("C-003", "José", "Müller", "jose@example.com", "1985-12-31", 'Line one\nLine "two"', "2024-01-03 00:00Z"),
    ),
)  # fmt: skip

WIDGET = Table(
    name="widget",
    object="Widget__c",
    ddl="""CREATE TABLE widget (
        widget_key text PRIMARY KEY, name text NOT NULL, quantity integer, price numeric(16, 2),
        score double precision, active boolean NOT NULL, launch_date date, launched_at timestamptz, notes text,
        updated_at timestamptz NOT NULL)""",
    mapping={
        "widget_key": "Widget_Key__c",
        "name": "Name",
        "quantity": "Count__c",
        "price": "Price__c",
        "score": "Score__c",
        "active": "Active__c",
        "launch_date": "Launch_Date__c",
        "launched_at": "Launched_At__c",
        "notes": "Notes__c",
    },
    rows=(
        ("W-1", "Sprocket", 7, "1234.50", 0.125, True, "2024-05-01", "2024-05-01 09:30:15.25+02", "✓ ok",
         "2024-01-01Z"),
        ("W-2", "Ünïcödé widget", None, None, None, False, None, None, None, "2024-01-02Z"),
        ("W-3", "Negative", -3, "-0.99", -12.5, True, "1999-12-31", "1999-12-31 23:59:59Z", "edge",
         "2024-01-03Z"),
    ),
)  # fmt: skip

TABLES = (CONTACT, WIDGET)

# The incremental change: each table's newest row changes (the tap re-reads rows whose key equals the bookmark,
# so changing it keeps "only changed rows are sent" exact), an older row changes, and a contact is added.
CHANGES = (
    "UPDATE contact SET last_name = 'Ångström-Berg', updated_at = '2024-02-01Z' WHERE external_id = 'C-001'",
    "UPDATE contact SET email = NULL, note = 'changed ✔', updated_at = '2024-02-01Z' WHERE external_id = 'C-003'",
    "INSERT INTO contact (external_id, first_name, last_name, updated_at) "
    "VALUES ('C-004', 'Ørjan', 'New', '2024-02-02Z')",
    "UPDATE widget SET price = 99.99, active = false, updated_at = '2024-02-01Z' WHERE widget_key = 'W-1'",
    "UPDATE widget SET quantity = NULL, launched_at = '2030-06-15 12:00Z', updated_at = '2024-02-01Z' "
    "WHERE widget_key = 'W-3'",
)
CHANGED_KEYS = {"C-001", "C-003", "C-004", "W-1", "W-3"}


def _from_soql(value: Any, like: Any) -> Any:
    """A SOQL value as the Python type psycopg2 gives for the column (SOQL returns dates and datetimes as text)."""
    if value is None:
        return None
    if isinstance(like, datetime):
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")
    if isinstance(like, date):
        return date.fromisoformat(value)
    if isinstance(like, Decimal):
        return Decimal(str(value))  # JSON numbers arrive as floats; compare them as the decimals they print as
    return value


class SampleSource:
    """The sample tables in PostgreSQL, and what Salesforce must hold once they are synced."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server

    def create(self) -> None:
        """(Re)create every table with its first rows."""
        for table in TABLES:
            self.server.execute(f"DROP TABLE IF EXISTS {table.name}")
            self.server.execute(table.ddl)
            columns = ", ".join([*table.mapping, REPLICATION_KEY])
            placeholders = ", ".join(["%s"] * (len(table.mapping) + 1))
            for row in table.rows:
                self.server.execute(f"INSERT INTO {table.name} ({columns}) VALUES ({placeholders})", row)

    def change(self) -> None:
        for statement in CHANGES:
            self.server.execute(statement)

    def source_rows(self, table: Table) -> list[tuple[Any, ...]]:
        with contextlib.closing(self.server.connect()) as conn, conn.cursor() as cursor:
            cursor.execute(f"SELECT {', '.join(table.mapping)} FROM {table.name} ORDER BY {table.key}")
            return cursor.fetchall()

    def salesforce_rows(self, sf: Salesforce, table: Table, *fields: str) -> list[dict[str, Any]]:
        soql = f"SELECT {', '.join(fields)} FROM {table.object} ORDER BY {table.match_field}"
        return sf.query_all(soql)["records"]

    def assert_synced(self, sf: Salesforce) -> None:
        """Every source row is one record in Salesforce, with every mapped value equal (NULLs as nulls)."""
        for table in TABLES:
            expected = [dict(zip(table.mapping.values(), row, strict=True)) for row in self.source_rows(table)]
            records = self.salesforce_rows(sf, table, *table.mapping.values())
            assert len(records) == len(expected), f"{table.object}: {len(records)} records for {len(expected)} rows"
            actual = [
                {field: _from_soql(record[field], row[field]) for field in table.mapping.values()}
                for record, row in zip(records, expected, strict=True)
            ]
            assert actual == expected

    def field_by_key(self, sf: Salesforce, field: str) -> dict[str, Any]:
        """External id → ``field`` (e.g. Id, LastModifiedDate) of every synced record."""
        return {
            record[table.match_field]: record[field]
            for table in TABLES
            for record in self.salesforce_rows(sf, table, table.match_field, field)
        }


def target_settings(emulator: EmulatorProcess, rejects_path: Path) -> dict[str, Any]:
    """The target config for the sample source: refresh-token login to the emulator, upserts on external ids.

    ``allow_rejects`` is off so that any record Salesforce refuses fails the run instead of hiding in a file.
    """
    streams: dict[str, Any] = {
        table.stream: {"match_field": table.match_field, "field_mapping": table.mapping} for table in TABLES
    }
    streams[WIDGET.stream]["object"] = WIDGET.object
    return {
        "client_id": emulator["client_id"],
        "client_secret": emulator["client_secret"],
        "refresh_token": emulator["refresh_token"],
        "login_url": emulator["login_url"],
        "sync_mode": "upsert",
        "api": "rest",
        "streams": streams,
        "rejects_path": str(rejects_path),
        "allow_rejects": False,
    }


def pipeline_env(emulator: EmulatorProcess) -> dict[str, str]:
    """The environment for tap/target/Meltano processes: trust the emulator's CA (verification stays on)."""
    return {**os.environ, "REQUESTS_CA_BUNDLE": emulator["ca_bundle"]}


def records_written(calls: list[dict[str, Any]]) -> int:
    """How many records the calls sent to Salesforce (reads, such as describe and SOQL, are not counted)."""
    return sum(call["records"] for call in calls if call["method"] != "GET")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A private PostgreSQL server for the whole session, with an empty database `e2e`."""
    with running_postgres("e2e") as server:
        yield server


@pytest.fixture(scope="session")
def tap_postgres_bin() -> str:
    return console_script("tap-postgres")


@pytest.fixture(scope="session")
def target_salesforce_bin() -> str:
    return console_script("target-salesforce")


@pytest.fixture
def source(postgres: PostgresServer) -> SampleSource:
    """The sample tables, freshly created with their first rows."""
    sample = SampleSource(postgres)
    sample.create()
    return sample

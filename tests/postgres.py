"""A private, throwaway PostgreSQL server for the end-to-end tests and the demo, and how tap-postgres reads it.

Nothing here touches a PostgreSQL the machine may already run: the cluster is created with ``initdb`` in a fresh
temporary directory, listens on a free port on 127.0.0.1 only (its Unix socket stays in that directory), and is
stopped and deleted on exit. PostgreSQL refuses to run as root, so when we are root the directory is handed to
the ``postgres`` system user and every server command runs as that user; CI runs as root.

Durability is switched off (``fsync``, ``synchronous_commit``, ``full_page_writes``): the data is thrown away,
and it makes the cluster start and load in well under a second.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2

SUPERUSER = "postgres"
SYSTEM_USER = "postgres"
START_ATTEMPTS = 3
_FAST_UNSAFE_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


class PostgresError(RuntimeError):
    """PostgreSQL could not be found, initialised or started; the message says why and how to fix it."""


def find_bin_dir() -> Path:
    """The directory of ``initdb``/``pg_ctl``: Debian keeps them off PATH, under /usr/lib/postgresql/<major>/bin."""
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if debian:
        return Path(debian[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    raise PostgresError("PostgreSQL's initdb was not found; install PostgreSQL (scripts/bootstrap.sh does)")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class PostgresServer:
    """Where a running throwaway server listens and how to log in to its database."""

    host: str
    port: int
    user: str
    password: str
    database: str

    def tap_config(self) -> dict[str, Any]:
        """The connection settings of ``tap-postgres`` (MeltanoLabs) for this server, limited to ``public``."""
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "database": self.database,
            "filter_schemas": ["public"],
        }

    def meltano_env(self) -> dict[str, str]:
        """The same settings as the ``TAP_POSTGRES_*`` variables Meltano reads for the extractor."""
        return {
            "TAP_POSTGRES_HOST": self.host,
            "TAP_POSTGRES_PORT": str(self.port),
            "TAP_POSTGRES_USER": self.user,
            "TAP_POSTGRES_PASSWORD": self.password,
            "TAP_POSTGRES_DATABASE": self.database,
            "TAP_POSTGRES_FILTER_SCHEMAS": '["public"]',
        }

    def connect(self) -> Any:
        """A psycopg2 connection in autocommit mode, so each statement is visible to the tap at once."""
        conn = psycopg2.connect(
            host=self.host, port=self.port, user=self.user, password=self.password, dbname=self.database
        )
        conn.autocommit = True
        return conn

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        """Run one statement (DDL or DML) and commit it."""
        with contextlib.closing(self.connect()) as conn, conn.cursor() as cursor:
            cursor.execute(sql, params)


class _Cluster:
    """The initdb'd data directory and the commands that act on it, run as the right system user."""

    def __init__(self, bin_dir: Path, root: Path) -> None:
        self.bin_dir = bin_dir
        self.root = root
        self.data = root / "data"
        self.log = root / "server.log"
        self.as_root = os.geteuid() == 0

    def run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", SYSTEM_USER, "--"] if self.as_root else []
        # A session of its own keeps the server out of our process group: Ctrl-C reaches us, and our cleanup
        # stops the server in order, instead of the signal killing it under a test or the demo.
        return subprocess.run(
            [*prefix, str(self.bin_dir / tool), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            start_new_session=True,
        )

    def check(self, tool: str, *args: str) -> None:
        result = self.run(tool, *args)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise PostgresError(f"{tool} failed ({result.returncode}):\n{result.stdout}{result.stderr}{log}")

    def init(self, password: str) -> None:
        if self.as_root:
            shutil.chown(self.root, user=SYSTEM_USER, group=SYSTEM_USER)
        pwfile = self.root / "pwfile"
        pwfile.write_text(password + "\n")
        if self.as_root:
            shutil.chown(pwfile, user=SYSTEM_USER, group=SYSTEM_USER)
        try:
            self.check(
                "initdb",
                f"--pgdata={self.data}",
                f"--username={SUPERUSER}",
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            )
        finally:
            pwfile.unlink()

    def start(self, port: int) -> None:
        options = [f"-p {port}", "-c listen_addresses=127.0.0.1", f"-c unix_socket_directories={self.root}"]
        options += [f"-c {setting}" for setting in _FAST_UNSAFE_SETTINGS]
        self.check("pg_ctl", "start", "--wait", f"--pgdata={self.data}", f"--log={self.log}", "-o", " ".join(options))

    def start_on_free_port(self) -> int:
        """Start on a port that was free a moment ago; another process may take it first, so try a few."""
        for _ in range(START_ATTEMPTS - 1):
            port = _free_port()
            with contextlib.suppress(PostgresError):
                self.start(port)
                return port
        port = _free_port()
        self.start(port)
        return port

    def stop(self) -> None:
        # Also fine when it is already down (e.g. Ctrl-C reached the server too): pg_ctl then just says so.
        self.run("pg_ctl", "stop", "--wait", "--mode=fast", f"--pgdata={self.data}")


@contextlib.contextmanager
def running_postgres(database: str = "source") -> Iterator[PostgresServer]:
    """Start a throwaway server with an empty ``database``, yield how to reach it, then stop and delete it.

    The superuser gets a random password and password (SCRAM) authentication, like a real server would ask of
    a tap, so the tap's login is exercised too.
    """
    cluster = _Cluster(find_bin_dir(), Path(tempfile.mkdtemp(prefix="throwaway-postgres-")))
    password = secrets.token_urlsafe(18)
    try:
        cluster.init(password)
        port = cluster.start_on_free_port()
        server = PostgresServer("127.0.0.1", port, SUPERUSER, password, "postgres")
        server.execute(f'CREATE DATABASE "{database}"')
        yield PostgresServer(server.host, server.port, server.user, password, database)
    finally:
        cluster.stop()
        shutil.rmtree(cluster.root, ignore_errors=True)


def tap_catalog(discovered: dict[str, Any], replication_key: str | None = None) -> dict[str, Any]:
    """The catalog from ``tap-postgres --discover`` with every stream selected (it selects none by default).

    With ``replication_key`` each stream is replicated INCREMENTAL on that column: tap-postgres 0.10.0
    (singer-sdk) takes the method and key from the entry's ``replication_method`` and ``replication_key``.
    """
    for stream in discovered["streams"]:
        if replication_key is not None:
            stream["replication_method"] = "INCREMENTAL"
            stream["replication_key"] = replication_key
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = True
    return discovered

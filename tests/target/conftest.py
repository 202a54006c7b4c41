"""Helpers for the target's integration tests: run the real ``target-salesforce`` CLI against the emulator.

- ``base_config`` (function): a config that logs in to the shared emulator with the refresh-token flow, writes
  rejects into the test's tmp dir and forces nothing else; tests lay their own keys over it.
- ``run_target(config, messages, ...)`` (function fixture): runs the installed ``target-salesforce`` script as a
  subprocess with ``REQUESTS_CA_BUNDLE`` pointing at the emulator's CA, feeds the Singer ``messages`` (dicts, or
  ready JSON lines) on stdin and returns a ``TargetResult`` (exit code, stdout lines, stderr, parsed rejects).
- ``schema_msg`` / ``record_msg`` / ``state_msg``: Singer message builders.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

RUN_TIMEOUT_SECONDS = 120


def target_command() -> list[str]:
    """The installed ``target-salesforce`` script beside this Python, else the module (same code)."""
    script = Path(sys.executable).with_name("target-salesforce")
    return [str(script)] if script.exists() else [sys.executable, "-m", "target_salesforce.cli"]


def target_env(ca_bundle: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CURL_CA_BUNDLE", "SSL_CERT_FILE")}
    env["REQUESTS_CA_BUNDLE"] = ca_bundle
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_target(emulator: Any, workdir: Path, config: dict[str, Any]) -> subprocess.Popen[bytes]:
    """The CLI started on ``config`` with stdin, stdout and stderr piped, for tests that feed it as it runs."""
    config_path = workdir / "config.json"
    config_path.write_text(json.dumps(config))
    return subprocess.Popen(
        [*target_command(), "--config", str(config_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=target_env(emulator["ca_bundle"]),
        cwd=workdir,
    )


def schema_msg(stream: str, properties: dict[str, Any], key_properties: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "SCHEMA",
        "stream": stream,
        "schema": {"type": "object", "properties": properties},
        "key_properties": key_properties or [],
    }


def record_msg(stream: str, record: dict[str, Any]) -> dict[str, Any]:
    return {"type": "RECORD", "stream": stream, "record": record}


def state_msg(value: dict[str, Any]) -> dict[str, Any]:
    return {"type": "STATE", "value": value}


def string_props(*names: str) -> dict[str, Any]:
    """JSON Schema properties of nullable strings."""
    return {name: {"type": ["string", "null"]} for name in names}


def encode(messages: Iterable[dict[str, Any] | str]) -> str:
    return "".join((m if isinstance(m, str) else json.dumps(m)) + "\n" for m in messages)


@dataclass
class TargetResult:
    returncode: int
    stdout_lines: list[str]
    stderr: str
    rejects: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)  # the emulator's call log entries made by this run

    @property
    def states(self) -> list[dict[str, Any]]:
        """The STATE values printed on stdout, in order: a target prints each as one JSON object line, nothing else."""
        values = [json.loads(line) for line in self.stdout_lines]
        assert all(isinstance(v, dict) for v in values), self.stdout_lines
        return values

    def error_lines(self) -> list[str]:
        """The error lines on stderr: the CLI's ``target-salesforce: error: ...`` line and ERROR log lines
        (singer-sdk reports a config that fails JSON Schema validation as log lines and exits 1)."""
        return [
            line
            for line in self.stderr.splitlines()
            if line.startswith("target-salesforce: error:") or "| ERROR " in line
        ]

    def assert_ok(self) -> None:
        assert self.returncode == 0, f"exit {self.returncode}\nstderr:\n{self.stderr}"
        assert "Traceback" not in self.stderr, self.stderr


@pytest.fixture
def base_config(emulator: Any, tmp_path: Path) -> dict[str, Any]:
    return {
        "client_id": emulator["client_id"],
        "client_secret": emulator["client_secret"],
        "refresh_token": emulator["refresh_token"],
        "login_url": emulator["login_url"],
        "rejects_path": str(tmp_path / "rejects.jsonl"),
        "max_retries": 1,
        "request_timeout": 30,
    }


RunTarget = Callable[..., TargetResult]

# Settings whose values are secrets, and what a Salesforce session id (access token) looks like: <org id>!<opaque>.
SECRET_SETTINGS = ("client_secret", "refresh_token", "password", "security_token", "private_key", "access_token")
SESSION_ID = re.compile(r"00D\w{12,15}![\w.]{20,}")


def pem_body(pem: str) -> list[str]:
    """The base64 lines of a PEM key (long enough to be recognisable)."""
    return [line for line in pem.splitlines() if line and not line.startswith("-----") and len(line) > 20]


def secret_values(emulator: Any, config: dict[str, Any]) -> list[str]:
    """The emulator's demo secrets and the secret settings of ``config``: none may ever leave the target."""
    values = [emulator[k] for k in ("client_secret", "refresh_token", "password", "security_token")]
    values.extend(pem_body(Path(emulator["private_key"]).read_text()))
    for key in SECRET_SETTINGS:
        value = config.get(key)
        if isinstance(value, str):
            values.extend(pem_body(value) if "-----BEGIN" in value else [value])
    return [v for v in values if isinstance(v, str) and len(v) >= 8]  # a short value would match by chance


def assert_no_secrets(outputs: dict[str, str], secrets: Iterable[str]) -> None:
    for name, text in outputs.items():
        for secret in secrets:
            assert secret not in text, f"a secret appears in {name}"
        assert "Bearer " not in text, name
        assert not SESSION_ID.search(text), f"a session id appears in {name}"


@pytest.fixture
def run_target(emulator: Any, tmp_path: Path) -> RunTarget:
    counter = iter(range(1000))

    def run(config: dict[str, Any], messages: Iterable[dict[str, Any] | str], *args: str) -> TargetResult:
        config_path = tmp_path / f"config-{next(counter)}.json"
        config_path.write_text(json.dumps(config))
        rejects_path = Path(config.get("rejects_path") or tmp_path / "target-salesforce-rejects.jsonl")
        calls_before = len(emulator.calls())
        before = rejects_path.read_text(encoding="utf-8").splitlines() if rejects_path.exists() else []
        proc = subprocess.run(
            [*target_command(), "--config", str(config_path), *args],
            input=encode(messages).encode("utf-8"),
            capture_output=True,
            env=target_env(emulator["ca_bundle"]),
            cwd=tmp_path,
            timeout=RUN_TIMEOUT_SECONDS,
            check=False,
        )
        after = rejects_path.read_text(encoding="utf-8").splitlines() if rejects_path.exists() else []
        result = TargetResult(
            returncode=proc.returncode,
            stdout_lines=[line for line in proc.stdout.decode("utf-8").splitlines() if line.strip()],
            stderr=proc.stderr.decode("utf-8", errors="replace"),
            rejects=[json.loads(line) for line in after[len(before) :]],
            calls=emulator.calls()[calls_before:],
        )
        # Every run of the suite, whatever its scenario, is also a check that no secret leaves the target.
        outputs = {"stdout": proc.stdout.decode("utf-8"), "stderr": result.stderr, "rejects": "\n".join(after)}
        results_path = config.get("results_path")
        if results_path and Path(results_path).exists():
            outputs["results"] = Path(results_path).read_text(encoding="utf-8")
        assert_no_secrets(outputs, secret_values(emulator, config))
        return result

    return run


WRITE_METHODS = ("POST", "PATCH", "PUT", "DELETE")


def write_calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Calls of the emulator's log that write data (sObject/Collections writes and Bulk ingest jobs).

    A Composite call (a POST) writes only if one of its subrequests does: the target's describes come that way.
    """
    return [
        c
        for c in calls
        if c["method"] in WRITE_METHODS
        and "/services/oauth2/" not in c["path"]
        and "/_emulator" not in c["path"]
        and not reads_only(c)
    ]


def reads_only(call: dict[str, Any]) -> bool:
    """A Composite call whose subrequests are all GETs (the emulator's log lists them)."""
    subrequests = call.get("subrequests")
    return subrequests is not None and all(s["method"] == "GET" for s in subrequests)


def described_objects(calls: list[dict[str, Any]]) -> list[str]:
    """The objects the calls described, directly or as Composite subrequests, in order."""
    paths = [path for c in calls for path in (c["path"], *(s["path"] for s in c.get("subrequests") or ()))]
    return [p.split("/sobjects/")[1].split("/")[0] for p in paths if p.rstrip("/").endswith("/describe")]


def parent_child_config(base_config: dict[str, Any], api: str, **extra: Any) -> dict[str, Any]:
    """Contacts that look up their Account through its external id, and the Accounts, in one run."""
    return {
        **base_config,
        "api": api,
        "streams": {
            "contacts": {
                "object": "Contact",
                "match_field": "External_Id__c",
                "field_mapping": {"key": "External_Id__c", "name": "LastName", "account_key": "Account.External_Id__c"},
            },
            "accounts": {
                "object": "Account",
                "match_field": "External_Id__c",
                "field_mapping": {"key": "External_Id__c", "name": "Name"},
            },
        },
        **extra,
    }


PARENT_CHILD_SCHEMAS = [
    schema_msg("contacts", string_props("key", "name", "account_key"), ["key"]),
    schema_msg("accounts", string_props("key", "name"), ["key"]),
]

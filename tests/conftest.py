"""Shared fixtures: one real emulator process over real HTTPS, and real simple-salesforce clients against it.

Fixtures
- ``emulator`` (session): an ``EmulatorProcess`` started as ``salesforce-emulator --port 0 --ready-file ...``.
  Ready info by attribute or key (``emulator.instance_url``, ``emulator["client_id"]``: login_url, instance_url,
  ca_bundle, client_id, client_secret, refresh_token, username, password, security_token, private_key).
  Helpers: ``reset()``, ``calls()``, ``set_faults(**kw)`` (replaces the fault set; no arguments clears it),
  ``token()`` (refresh-token grant), ``auth_headers()``, ``url(path)``, ``api_url("sobjects/Contact")``,
  ``http`` (a ``requests.Session`` trusting the emulator's CA), ``new_session()`` and ``salesforce()`` (a new
  simple-salesforce client, no reset). Tests share the process: call ``reset()`` (or use ``sf``) first.
  ``start_emulator(workdir, *args)`` starts a private one (e.g. with ``--token-ttl-seconds 1``); ``stop()`` it.
- ``sf`` (function): after ``emulator.reset()``, a ``simple_salesforce.Salesforce`` on API 62.0 whose session
  comes from the refresh-token grant and whose ``requests.Session`` verifies the emulator's CA.

TLS verification is never disabled: everything trusts the CA the emulator generated at start. The sessions
set ``trust_env = False`` because requests lets a ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` environment variable
override ``session.verify`` for every request that does not pass ``verify=`` itself (simple-salesforce never does).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce

API_VERSION = "62.0"
START_TIMEOUT_SECONDS = 30


def emulator_command() -> list[str]:
    """The installed ``salesforce-emulator`` script beside this Python, else the module (same code)."""
    script = Path(sys.executable).with_name("salesforce-emulator")
    return [str(script)] if script.exists() else [sys.executable, "-m", "target_salesforce.emulator.cli"]


class EmulatorProcess:
    """A running emulator subprocess and small helpers for its test controls."""

    def __init__(self, proc: subprocess.Popen[bytes], info: dict[str, str], log_path: Path) -> None:
        self.proc = proc
        self.info = info
        self.log_path = log_path
        self.http = self.new_session()

    def __getitem__(self, key: str) -> str:
        return self.info[key]

    def __getattr__(self, name: str) -> str:
        try:
            return self.__dict__["info"][name]
        except KeyError:
            raise AttributeError(name) from None

    def new_session(self) -> requests.Session:
        """A ``requests.Session`` that trusts the emulator's CA (and only it)."""
        session = requests.Session()
        session.verify = self.info["ca_bundle"]
        session.trust_env = False
        return session

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` on the instance (``/services/data/v62.0/limits``)."""
        return self.info["instance_url"] + path

    def api_url(self, path: str, version: str = API_VERSION) -> str:
        """Absolute URL of ``path`` under ``/services/data/vXX.X/`` (``sobjects/Contact``)."""
        return self.url(f"/services/data/v{version}/{path}")

    def reset(self) -> None:
        """Delete all records and Bulk jobs, empty the call log, clear faults and API usage (schema stays)."""
        self.http.post(self.url("/_emulator/reset"), timeout=30).raise_for_status()

    def calls(self) -> list[dict[str, Any]]:
        """Every call since the last reset: ``{"method","path","status","records"}`` (path without query)."""
        resp = self.http.get(self.url("/_emulator/calls"), timeout=30)
        resp.raise_for_status()
        return resp.json()

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Replace the fault set (``set_faults()`` clears it); returns the settings now in force."""
        resp = self.http.post(self.url("/_emulator/faults"), json=faults, timeout=30)
        resp.raise_for_status()
        return resp.json()

    def token(self) -> str:
        """A fresh access token from the refresh-token grant."""
        resp = self.http.post(
            self.info["login_url"] + "/services/oauth2/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": self.info["refresh_token"],
                "client_id": self.info["client_id"],
                "client_secret": self.info["client_secret"],
            },
            timeout=30,
        )
        resp.raise_for_status()
        return resp.json()["access_token"]

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}

    def salesforce(self, version: str = API_VERSION) -> Salesforce:
        """A simple-salesforce client with a fresh session (no reset)."""
        return Salesforce(
            instance_url=self.info["instance_url"], session_id=self.token(), session=self.new_session(), version=version
        )

    def stop(self) -> int:
        self.http.close()
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def start_emulator(workdir: Path, *extra_args: str) -> EmulatorProcess:
    """Start an emulator process and wait for its ready file; the process log goes to ``workdir/emulator.log``."""
    ready = workdir / "ready.json"
    log_path = workdir / "emulator.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*emulator_command(), "--port", "0", "--ready-file", str(ready), *extra_args],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"emulator did not start:\n{log_path.read_text(errors='replace')}")
        time.sleep(0.05)
    return EmulatorProcess(proc, json.loads(ready.read_text()), log_path)


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorProcess]:
    """The shared emulator process for the whole test session (see the module docstring)."""
    with tempfile.TemporaryDirectory(prefix="emulator-test-") as tmp:
        process = start_emulator(Path(tmp))
        try:
            yield process
        finally:
            process.stop()


@pytest.fixture
def sf(emulator: EmulatorProcess) -> Salesforce:
    """A real simple-salesforce client on a freshly reset emulator (API 62.0, session from the refresh grant)."""
    emulator.reset()
    return emulator.salesforce()

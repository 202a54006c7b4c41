"""``target-salesforce-login`` against the emulator: the test plays the browser (authorize, then the redirect)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import requests

from tests.target.conftest import target_env


def login_command() -> list[str]:
    script = Path(sys.executable).with_name("target-salesforce-login")
    return [str(script)] if script.exists() else [sys.executable, "-m", "target_salesforce.oauth_login"]


def start_login(emulator: Any) -> tuple[subprocess.Popen[str], str]:
    """Start the command with --no-browser and read the authorize URL it prints on stderr."""
    proc = subprocess.Popen(
        [
            *login_command(),
            *("--login-url", emulator["login_url"], "--client-id", emulator["client_id"]),
            *("--client-secret", emulator["client_secret"], "--no-browser", "--timeout", "30"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=target_env(emulator["ca_bundle"]),
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if line.startswith("https://"):
            return proc, line.strip()
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError("the command printed no authorize URL")


def test_login_prints_a_working_refresh_token(emulator: Any) -> None:
    proc, url = start_login(emulator)
    try:
        query = parse_qs(urlsplit(url).query)
        assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
        authorize = requests.get(url, verify=emulator["ca_bundle"], allow_redirects=False, timeout=30)
        assert authorize.status_code == 302
        location = authorize.headers["Location"]
        assert location.startswith("http://127.0.0.1:") and "/callback?" in location
        assert requests.get(location, timeout=30).status_code == 200
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    snippet = json.loads(out)
    assert snippet["client_id"] == emulator["client_id"] and snippet["instance_url"] == emulator["instance_url"]
    token = emulator.http.post(
        emulator["login_url"] + "/services/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": snippet["refresh_token"],
            "client_id": emulator["client_id"],
            "client_secret": emulator["client_secret"],
        },
        timeout=30,
    )
    assert token.status_code == 200, token.text
    assert token.json()["access_token"]
    assert snippet["refresh_token"] not in err


def test_wrong_state_is_one_line_error(emulator: Any) -> None:
    proc, url = start_login(emulator)
    try:
        authorize = requests.get(url, verify=emulator["ca_bundle"], allow_redirects=False, timeout=30)
        parts = urlsplit(authorize.headers["Location"])
        params = {k: v[0] for k, v in parse_qs(parts.query).items()}
        params["state"] = "forged"
        assert requests.get(urlunsplit(parts._replace(query=urlencode(params))), timeout=30).status_code == 200
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 1
    assert out == ""
    assert err.strip().splitlines() == [
        "target-salesforce-login: error: the redirect's state does not match this login; run the command again"
    ]

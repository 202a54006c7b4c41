"""``target-salesforce --about``: every setting documented, and no secret value ever printed."""

from __future__ import annotations

import json
import subprocess

from target_salesforce.settings import CONFIG_SCHEMA
from tests.target.conftest import target_command


def about(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*target_command(), "--about", *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


def test_about_markdown_lists_every_setting_with_its_description() -> None:
    text = about("--format", "markdown").stdout
    for name, prop in CONFIG_SCHEMA["properties"].items():
        assert f"| {name} |" in text, name
        assert prop["description"] in text, name


def test_about_json_holds_no_secret_values(tmp_path, emulator) -> None:
    secrets = {
        "client_secret": emulator["client_secret"],
        "refresh_token": emulator["refresh_token"],
        "password": emulator["password"],
        "security_token": emulator["security_token"],
        "access_token": "00DXX0000000001!AQ0AQSecretAccessToken",
        "private_key": "-----BEGIN PRIVATE KEY-----\nSECRETKEYMATERIAL\n-----END PRIVATE KEY-----",
    }
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"client_id": emulator["client_id"], "login_url": emulator["login_url"], **secrets}))
    proc = about("--format", "json", "--config", str(config))
    info = json.loads(proc.stdout)
    assert set(CONFIG_SCHEMA["properties"]) <= set(info["settings"]["properties"])
    for value in secrets.values():
        assert value not in proc.stdout and value not in proc.stderr
    assert "SECRETKEYMATERIAL" not in proc.stdout + proc.stderr
    for name in secrets:
        assert info["settings"]["properties"][name].get("secret") is True, name

"""Secrets never appear in the target's stdout, stderr or reject file, whatever happens in the run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.target.conftest import assert_no_secrets, record_msg, schema_msg, secret_values, string_props

SCHEMA = schema_msg("contacts", string_props("LastName", "Email"))
RECORD = record_msg("contacts", {"LastName": "Ng", "Email": "ng@example.com"})
FAKE_SECRET = "SECRET-sentinel-XYZ"


def assert_no_secrets_at_all(emulator: Any, result: Any, tmp_path: Path) -> None:
    """Beyond run_target's own check: every reject file of the test and a fresh token of the emulator too."""
    rejects = "".join(p.read_text(errors="replace") for p in tmp_path.glob("*rejects*.jsonl"))
    outputs = {"stdout": "\n".join(result.stdout_lines), "stderr": result.stderr, "rejects": rejects}
    assert_no_secrets(outputs, [*secret_values(emulator, {}), emulator.token(), FAKE_SECRET])


def config_for(base_config: dict[str, Any], flow: str, emulator: Any) -> dict[str, Any]:
    config = {**base_config, "object": "Contact", "sync_mode": "insert"}
    if flow == "password":
        del config["refresh_token"]
        config |= {k: emulator[k] for k in ("username", "password", "security_token")}
    elif flow == "jwt":
        for key in ("refresh_token", "client_secret"):
            del config[key]
        config |= {"username": emulator["username"], "private_key": Path(emulator["private_key"]).read_text()}
    return config


@pytest.mark.parametrize("flow", ["refresh_token", "password", "jwt"])
def test_successful_run(sf, emulator, run_target, base_config, tmp_path, flow: str) -> None:
    result = run_target(config_for(base_config, flow, emulator), [SCHEMA, RECORD])
    result.assert_ok()
    assert_no_secrets_at_all(emulator, result, tmp_path)


def test_wrong_secret(sf, emulator, run_target, base_config, tmp_path) -> None:
    result = run_target({**base_config, "object": "Contact", "client_secret": FAKE_SECRET}, [SCHEMA, RECORD])
    assert result.returncode != 0
    assert_no_secrets_at_all(emulator, result, tmp_path)


def test_wrong_password(sf, emulator, run_target, base_config, tmp_path) -> None:
    config = config_for(base_config, "password", emulator) | {"password": FAKE_SECRET}
    result = run_target(config, [SCHEMA, RECORD])
    assert result.returncode != 0
    assert_no_secrets_at_all(emulator, result, tmp_path)


def test_expired_session_renewal(sf, emulator, run_target, base_config, tmp_path) -> None:
    emulator.set_faults(expire_sessions_after_calls=1)
    records = [record_msg("contacts", {"LastName": f"N{i}"}) for i in range(5)]
    result = run_target({**base_config, "object": "Contact", "sync_mode": "insert"}, [SCHEMA, *records])
    emulator.set_faults()
    result.assert_ok()
    assert_no_secrets_at_all(emulator, result, tmp_path)


def test_rejected_record(sf, emulator, run_target, base_config, tmp_path) -> None:
    schema = schema_msg("contacts", {"LastName": {"type": "string"}, "Age": {"type": "integer"}})
    bad = record_msg("contacts", {"LastName": FAKE_SECRET[:6], "Age": "old"})
    result = run_target({**base_config, "object": "Contact", "sync_mode": "insert"}, [schema, bad])
    result.assert_ok()
    assert result.rejects
    assert_no_secrets_at_all(emulator, result, tmp_path)


def test_about_json(emulator, run_target, base_config, tmp_path) -> None:
    result = run_target(base_config, [], "--about", "--format", "json")
    result.assert_ok()
    assert_no_secrets_at_all(emulator, result, tmp_path)


def test_503_burst(sf, emulator, run_target, base_config, tmp_path) -> None:
    emulator.set_faults(http_503_next=5)
    result = run_target({**base_config, "object": "Contact", "max_retries": 1}, [SCHEMA, RECORD])
    emulator.set_faults()
    assert "Traceback" not in result.stderr
    assert_no_secrets_at_all(emulator, result, tmp_path)

"""Bad input through the real CLI: one clear error line, no traceback, and nothing partial written."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.target.conftest import (
    RUN_TIMEOUT_SECONDS,
    record_msg,
    schema_msg,
    string_props,
    target_command,
    target_env,
    write_calls,
)

SCHEMA = schema_msg("contacts", string_props("LastName", "Email"))
RECORD = record_msg("contacts", {"LastName": "Ng", "Email": "ng@example.com"})
CONTACT = {"object": "Contact", "sync_mode": "insert"}

# name -> (config overrides, input lines, expected exit code, substrings of the error line)
INPUT_CASES: dict[str, tuple[dict[str, Any], list[Any], int, tuple[str, ...]]] = {
    "malformed JSON": (CONTACT, [SCHEMA, '{"type": "RECORD", "stream": '], 1, ("line 2:", "not valid JSON")),
    "malformed JSON after blank lines": (CONTACT, [SCHEMA, "", "", "{oops}"], 1, ("line 4:", "not valid JSON")),
    "unknown type": (CONTACT, [SCHEMA, {"type": "BOGUS", "stream": "contacts"}], 1, ("line 2:", "'BOGUS'")),
    "record before schema": (CONTACT, [RECORD, SCHEMA], 1, ("line 1:", "'contacts'", "SCHEMA")),
    "non-object line list": (CONTACT, [SCHEMA, "[1, 2]"], 1, ("line 2:", "JSON object", "list")),
    "non-object line number": (CONTACT, ["42"], 1, ("line 1:", "JSON object", "int")),
    "missing type": (CONTACT, [{"stream": "contacts"}], 1, ("line 1:", "'type'")),
    "missing stream": (CONTACT, [SCHEMA, {"type": "RECORD", "record": {"LastName": "x"}}], 1, ("line 2:", "'stream'")),
    "missing record": (CONTACT, [SCHEMA, {"type": "RECORD", "stream": "contacts"}], 1, ("line 2:", "'record'")),
    "non-string key": (
        CONTACT,
        [SCHEMA, '{"type": "RECORD", "stream": "contacts", "record": {1: "x"}}'],
        1,
        ("line 2:", "not valid JSON"),
    ),
    "record not an object": (
        CONTACT,
        [SCHEMA, {"type": "RECORD", "stream": "contacts", "record": [1]}],
        1,
        ("line 2:", "JSON object", "list"),
    ),
    "stream not a string": (
        CONTACT,
        [SCHEMA, {"type": "RECORD", "stream": 5, "record": {}}],
        1,
        ("line 2:", "'stream'", "5"),
    ),
    "values nested too deeply": (
        CONTACT,
        [
            SCHEMA,
            '{"type": "RECORD", "stream": "contacts", "record": {"Email": ' + "[" * 100_000 + "]" * 100_000 + "}}",
        ],
        1,
        ("line 2:", "nested too deeply"),
    ),
    "schema message without schema": (CONTACT, [{"type": "SCHEMA", "stream": "contacts"}], 1, ("line 1:", "'schema'")),
    "schema not valid JSON Schema": (
        CONTACT,
        [{**SCHEMA, "schema": {"type": "object", "properties": {"LastName": {"type": "strng"}}}}, RECORD],
        1,
        ("contacts",),
    ),
    "schema without properties": (CONTACT, [{**SCHEMA, "schema": {"type": "object"}}, RECORD], 1, ("contacts",)),
    "unknown object": ({"object": "Nope__c"}, [SCHEMA, RECORD], 1, ("Nope__c",)),
    "unknown mapped field": (
        {**CONTACT, "field_mapping": {"LastName": "LastName", "Email": "Nope__c"}},
        [SCHEMA, RECORD],
        1,
        ("Nope__c",),
    ),
    "match field cannot identify": (
        {"object": "Contact", "sync_mode": "upsert", "match_field": "LastName"},
        [SCHEMA, RECORD],
        1,
        ("LastName",),
    ),
}


@pytest.mark.parametrize("case", list(INPUT_CASES), ids=list(INPUT_CASES))
def test_bad_input_fails_on_one_line(sf, run_target, base_config, case: str) -> None:
    overrides, messages, code, expected = INPUT_CASES[case]
    result = run_target({**base_config, **overrides}, messages)
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("target-salesforce: error:")]
    assert len(errors) == 1, result.stderr
    for text in expected:
        assert text in errors[0], errors[0]
    assert "Error initializing target sink" not in result.stderr
    assert write_calls(result.calls) == []
    assert sf.query("SELECT Id FROM Contact")["totalSize"] == 0


def test_empty_lines_are_fine(sf, run_target, base_config) -> None:
    result = run_target({**base_config, **CONTACT}, ["", SCHEMA, "", "   ", RECORD, ""])
    result.assert_ok()
    assert sf.query("SELECT Id FROM Contact")["totalSize"] == 1


def test_record_not_matching_schema_is_rejected(sf, run_target, base_config) -> None:
    schema = schema_msg("contacts", {"LastName": {"type": "string"}, "Age": {"type": "integer"}})
    result = run_target({**base_config, **CONTACT}, [schema, record_msg("contacts", {"LastName": "Ng", "Age": "old"})])
    result.assert_ok()
    assert len(result.rejects) == 1
    assert write_calls(result.calls) == []
    assert sf.query("SELECT Id FROM Contact")["totalSize"] == 0


def run_raw(emulator: Any, tmp_path: Path, config_arg: str, stdin: bytes, ca_bundle: str | None = None):
    return subprocess.run(
        [*target_command(), "--config", config_arg],
        input=stdin,
        capture_output=True,
        env=target_env(ca_bundle or emulator["ca_bundle"]),
        cwd=tmp_path,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )


def assert_one_line_failure(proc: subprocess.CompletedProcess, *expected: str) -> str:
    stderr = proc.stderr.decode("utf-8", errors="replace")
    assert proc.returncode != 0, stderr
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("target-salesforce: error:")]
    assert len(errors) == 1, stderr
    for text in expected:
        assert text in errors[0], errors[0]
    return errors[0]


def test_invalid_utf8(sf, emulator, tmp_path, base_config) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**base_config, **CONTACT}))
    bad_record = b'{"type": "RECORD", "stream": "contacts", "record": {"LastName": "\xff"}}\n'
    stdin = (json.dumps(SCHEMA) + "\n").encode() + bad_record
    proc = run_raw(emulator, tmp_path, str(config), stdin)
    assert_one_line_failure(proc, "line 2:", "not valid UTF-8")
    assert sf.query("SELECT Id FROM Contact")["totalSize"] == 0


CONFIG_FILE_CASES = {
    "missing config file": (None, ("not found",)),
    "config not JSON": ("{not json", ("not valid JSON", "config")),
    "config a list": ("[1, 2]", ()),
}


@pytest.mark.parametrize("case", list(CONFIG_FILE_CASES), ids=list(CONFIG_FILE_CASES))
def test_config_file_problems(sf, emulator, tmp_path, case: str) -> None:
    text, expected = CONFIG_FILE_CASES[case]
    config = tmp_path / "config.json"
    if text is not None:
        config.write_text(text)
    proc = run_raw(emulator, tmp_path, str(config), encode_lines([SCHEMA, RECORD]))
    assert_one_line_failure(proc, *expected)
    assert sf.query("SELECT Id FROM Contact")["totalSize"] == 0


def encode_lines(messages: list[Any]) -> bytes:
    return "".join((m if isinstance(m, str) else json.dumps(m)) + "\n" for m in messages).encode()


SETTING_CASES = {
    "sync_mode a number": ({"sync_mode": 5}, "sync_mode"),
    "allow_rejects a string": ({"allow_rejects": "yes"}, "allow_rejects"),
    "field_mapping a list": ({"field_mapping": ["LastName"]}, "field_mapping"),
    "max_retries a string": ({"max_retries": "three"}, "max_retries"),
}


@pytest.mark.parametrize("case", list(SETTING_CASES), ids=list(SETTING_CASES))
def test_wrong_setting_type(sf, run_target, base_config, case: str) -> None:
    overrides, setting = SETTING_CASES[case]
    result = run_target({**base_config, "object": "Contact", **overrides}, [SCHEMA, RECORD])
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("target-salesforce: error:")]
    assert len(errors) == 1, result.stderr
    assert setting in errors[0] and "config" in errors[0]
    assert result.calls == []


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_wrong_credentials(sf, run_target, base_config) -> None:
    result = run_target({**base_config, **CONTACT, "client_secret": "SECRET-sentinel-XYZ"}, [SCHEMA, RECORD])
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith("target-salesforce: error:")]) == 1
    assert "SECRET-sentinel-XYZ" not in result.stderr
    assert write_calls(result.calls) == []


LOGIN_CASES = {
    "unreachable login URL": lambda emulator: f"https://127.0.0.1:{free_port()}",
    "not a Salesforce login URL": lambda emulator: emulator["instance_url"] + "/nothing",
}


@pytest.mark.parametrize("case", list(LOGIN_CASES), ids=list(LOGIN_CASES))
def test_bad_login_url(sf, emulator, run_target, base_config, case: str) -> None:
    make_url = LOGIN_CASES[case]
    result = run_target({**base_config, **CONTACT, "login_url": make_url(emulator)}, [SCHEMA, RECORD])
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("target-salesforce: error:")]
    assert len(errors) == 1, result.stderr
    assert "login_url" in errors[0] or "login" in errors[0].lower(), errors[0]
    assert write_calls(result.calls) == []


def test_certificate_that_does_not_verify(sf, emulator, tmp_path, base_config) -> None:
    trustme = pytest.importorskip("trustme")
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**base_config, **CONTACT}))
    proc = run_raw(emulator, tmp_path, str(config), encode_lines([SCHEMA, RECORD]), ca_bundle=str(other_ca))
    assert_one_line_failure(proc, "certificate", "REQUESTS_CA_BUNDLE")
    assert sf.query("SELECT Id FROM Contact")["totalSize"] == 0


def test_huge_value_is_rejected_naming_its_field(sf, run_target, base_config) -> None:
    huge = record_msg("contacts", {"LastName": "x" * 5_000_000, "Email": "big@example.com"})
    result = run_target({**base_config, **CONTACT}, [SCHEMA, huge, RECORD])
    result.assert_ok()
    assert [(r["error_code"], r["fields"]) for r in result.rejects] == [("STRING_TOO_LONG", ["LastName"])]
    assert [r["LastName"] for r in sf.query_all("SELECT LastName FROM Contact")["records"]] == ["Ng"]

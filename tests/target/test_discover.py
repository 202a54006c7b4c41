"""``target-salesforce-describe`` run as a real subprocess against the emulator, checked on what it prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EmulatorProcess


def _command() -> list[str]:
    script = Path(sys.executable).with_name("target-salesforce-describe")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from target_salesforce.discover import main; main()"]


@pytest.fixture
def config_file(emulator: EmulatorProcess, tmp_path: Path) -> Path:
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "login_url": emulator["login_url"],
                "client_id": emulator["client_id"],
                "client_secret": emulator["client_secret"],
                "refresh_token": emulator["refresh_token"],
                "max_retries": 0,
            }
        )
    )
    return path


def run(emulator: EmulatorProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REQUESTS_CA_BUNDLE": emulator["ca_bundle"]}
    return subprocess.run([*_command(), *args], capture_output=True, text=True, env=env, timeout=60, check=False)


def _secrets(emulator: EmulatorProcess) -> list[str]:
    return [emulator["client_secret"], emulator["refresh_token"]]


def test_lists_objects_as_json(emulator: EmulatorProcess, config_file: Path) -> None:
    result = run(emulator, "--config", str(config_file), "--format", "json")
    assert result.returncode == 0, result.stderr
    objects = {entry["name"]: entry for entry in json.loads(result.stdout)}
    assert objects["Contact"] == {"name": "Contact", "label": "Contact", "custom": False}
    assert objects["Widget__c"]["custom"] is True
    assert {"Account", "Lead", "Opportunity"} <= set(objects)


def test_lists_objects_as_table(emulator: EmulatorProcess, config_file: Path) -> None:
    result = run(emulator, "--config", str(config_file))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "LABEL", "CUSTOM"]
    widget = next(line for line in lines if line.startswith("Widget__c "))
    assert widget.split() == ["Widget__c", "Widget", "yes"]
    assert next(line for line in lines if line.startswith("Contact ")).split() == ["Contact", "Contact"]
    for secret in _secrets(emulator):
        assert secret not in result.stdout + result.stderr


def test_contact_fields_as_json(emulator: EmulatorProcess, config_file: Path) -> None:
    result = run(emulator, "--config", str(config_file), "contact", "--format", "json")
    assert result.returncode == 0, result.stderr
    described = json.loads(result.stdout)
    assert described["name"] == "Contact"  # the canonical name, whatever case was asked
    fields = {field["name"]: field for field in described["fields"]}
    assert fields["Email"]["id_lookup"] is True
    assert fields["Email"]["external_id"] is False
    assert fields["Email"]["type"] == "email"
    assert fields["External_Id__c"]["external_id"] is True
    assert fields["LastName"]["required_on_create"] is True
    assert fields["FirstName"]["required_on_create"] is False
    # Id: not createable, so not required although not nillable; CreatedDate is defaulted on create.
    assert fields["Id"]["createable"] is False
    assert fields["Id"]["required_on_create"] is False
    assert fields["CreatedDate"]["required_on_create"] is False
    account = fields["AccountId"]
    assert (account["relationship_name"], account["reference_to"]) == ("Account", ["Account"])
    assert fields["LastName"]["length"] > 0


def test_widget_fields_as_table(emulator: EmulatorProcess, config_file: Path) -> None:
    result = run(emulator, "--config", str(config_file), "Widget__c")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Widget__c (Widget, custom): ")
    header = lines[1].split()
    assert header == [
        "NAME",
        "LABEL",
        "TYPE",
        "LENGTH",
        "CREATEABLE",
        "UPDATEABLE",
        "REQUIRED",
        "EXTERNAL_ID",
        "ID_LOOKUP",
        "RELATIONSHIP",
        "PICKLIST",
    ]
    by_name = {line.split()[0]: line for line in lines[3:]}
    assert "Small; Medium; Large" in by_name["Size__c"]
    assert "Account__r → Account" in by_name["Account__c"]
    # Columns line up under their headers: read the REQUIRED and EXTERNAL_ID columns by position.
    required_at, external_at = lines[1].index("REQUIRED"), lines[1].index("EXTERNAL_ID")
    assert by_name["Name"][required_at:].startswith("yes")
    assert by_name["Widget_Key__c"][external_at:].startswith("yes")
    assert not by_name["Notes__c"][required_at:].startswith("yes")


def test_unknown_object_is_one_line_error(emulator: EmulatorProcess, config_file: Path) -> None:
    result = run(emulator, "--config", str(config_file), "Contactt")
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("target-salesforce-describe: error: Salesforce object 'Contactt' does not exist")
    assert "did you mean Contact" in lines[0]
    assert "Traceback" not in result.stderr


def test_auth_failure_is_one_line_error_without_secrets(emulator: EmulatorProcess, tmp_path: Path) -> None:
    wrong = "not-the-secret-0123456789"
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "login_url": emulator["login_url"],
                "client_id": emulator["client_id"],
                "client_secret": wrong,
                "refresh_token": emulator["refresh_token"],
                "max_retries": 0,
            }
        )
    )
    result = run(emulator, "--config", str(path))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("target-salesforce-describe: error: ")
    assert "Traceback" not in result.stderr
    for secret in [wrong, *_secrets(emulator)]:
        assert secret not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read config file"),
        ("{not json", "is not valid JSON"),
        ("[]", "must hold a JSON object"),
        ("{}", ""),  # no credentials at all: the client's own ConfigError
    ],
)
def test_bad_config_is_one_line_error(
    emulator: EmulatorProcess, tmp_path: Path, content: str | None, expected: str
) -> None:
    path = tmp_path / "config.json"
    if content is not None:
        path.write_text(content)
    result = run(emulator, "--config", str(path))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("target-salesforce-describe: error: ")
    assert expected in lines[0]
    assert "Traceback" not in result.stderr


def test_missing_config_option_is_a_usage_error(emulator: EmulatorProcess) -> None:
    result = run(emulator)
    assert result.returncode == 2
    assert "--config" in result.stderr
    assert "Traceback" not in result.stderr

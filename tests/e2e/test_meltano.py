"""The repository's meltano.yml as a user runs it: `meltano install`, `meltano run tap-postgres target-salesforce`.

The project is a temporary copy of meltano.yml whose only change is the loader's ``pip_url``: ``-e .`` means
"this checkout", which from the copy's directory must be spelled as the checkout's path. ``meltano install``
really installs both plugins from their pip_urls (Meltano uses uv: a few seconds with a warm cache), once per
module. Everything else (settings from environment variables, incremental metadata, the state Meltano keeps
between runs) goes through Meltano unchanged.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from simple_salesforce import Salesforce

from tests.conftest import EmulatorProcess
from tests.e2e.conftest import (
    CHANGED_KEYS,
    REPLICATION_KEY,
    REPO_ROOT,
    TABLES,
    SampleSource,
    console_script,
    pipeline_env,
    records_written,
    target_settings,
)
from tests.postgres import PostgresServer

MELTANO_YML = REPO_ROOT / "meltano.yml"
INSTALL_TIMEOUT_SECONDS = 600
RUN_TIMEOUT_SECONDS = 300
_OTHER_PROJECT_VARIABLES = ("MELTANO_PROJECT_ROOT", "MELTANO_ENVIRONMENT", "MELTANO_SYS_DIR_ROOT")
# singer-sdk types → the Meltano setting kind that edits them; secrets are `password` and enums `options`.
KIND_OF_TYPE = {"string": "string", "integer": "integer", "boolean": "boolean", "object": "object"}


def _loader(project: dict[str, Any]) -> dict[str, Any]:
    return next(plugin for plugin in project["plugins"]["loaders"] if plugin["name"] == "target-salesforce")


def meltano_bin() -> str:
    """Meltano from .venv-meltano (scripts/bootstrap.sh), else from PATH."""
    own = REPO_ROOT / ".venv-meltano" / "bin" / "meltano"
    return str(own) if own.exists() else console_script("meltano")


def meltano(project: Path, *args: str, env: dict[str, str], timeout: int) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [meltano_bin(), *args], cwd=project, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"meltano {' '.join(args)} exited {result.returncode}:\n{result.stderr[-6000:]}"
    return result


@pytest.fixture(scope="module")
def meltano_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary copy of the repo's Meltano project with both plugins installed from their pip_urls."""
    project = tmp_path_factory.mktemp("meltano-project")
    config = yaml.safe_load(MELTANO_YML.read_text())
    loader = _loader(config)
    assert loader["pip_url"] == "-e ."
    loader["pip_url"] = f"-e {REPO_ROOT}"
    (project / "meltano.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    meltano(project, "install", env=_own_project(dict(os.environ)), timeout=INSTALL_TIMEOUT_SECONDS)
    return project


def _own_project(env: dict[str, str]) -> dict[str, str]:
    """``env`` minus variables that would point Meltano at another project (e.g. set by a parent Meltano run)."""
    return {name: value for name, value in env.items() if name not in _OTHER_PROJECT_VARIABLES}


def meltano_env(emulator: EmulatorProcess, postgres: PostgresServer, rejects_path: Path) -> dict[str, str]:
    """Every setting as the environment variable Meltano reads for it; objects as JSON."""
    env = {**pipeline_env(emulator), **postgres.meltano_env()}
    for name, value in target_settings(emulator, rejects_path).items():
        env[f"TARGET_SALESFORCE_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    env["TAP_POSTGRES__METADATA"] = json.dumps({table.stream: {"replication-key": REPLICATION_KEY} for table in TABLES})
    return _own_project(env)


@pytest.mark.slow
def test_meltano_run_syncs_then_continues_from_its_state(
    sf: Salesforce,
    emulator: EmulatorProcess,
    postgres: PostgresServer,
    source: SampleSource,
    meltano_project: Path,
    tmp_path: Path,
) -> None:
    env = meltano_env(emulator, postgres, tmp_path / "rejects.jsonl")
    run = ("run", "tap-postgres", "target-salesforce")

    meltano(meltano_project, *run, "--full-refresh", env=env, timeout=RUN_TIMEOUT_SECONDS)
    source.assert_synced(sf)

    source.change()
    calls_before = len(emulator.calls())
    meltano(meltano_project, *run, env=env, timeout=RUN_TIMEOUT_SECONDS)

    assert records_written(emulator.calls()[calls_before:]) == len(CHANGED_KEYS)
    source.assert_synced(sf)


def test_loader_settings_match_the_target() -> None:
    """meltano.yml declares exactly the settings `target-salesforce --about` reports, each with its kind."""
    about = subprocess.run(
        [console_script("target-salesforce"), "--about", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    properties = json.loads(about.stdout)["settings"]["properties"]
    declared = {setting["name"]: setting for setting in _loader(yaml.safe_load(MELTANO_YML.read_text()))["settings"]}

    assert sorted(declared) == sorted(properties)
    for name, schema in properties.items():
        setting = declared[name]
        secret = bool(schema.get("secret"))
        assert setting.get("sensitive", False) is secret, name
        if secret:
            assert setting["kind"] == "password", name
        elif "enum" in schema:
            assert setting["kind"] == "options", name
            assert [option["value"] for option in setting["options"]] == schema["enum"], name
        else:
            json_type = next(t for t in schema["type"] if t != "null")
            assert setting.get("kind") == KIND_OF_TYPE[json_type], name

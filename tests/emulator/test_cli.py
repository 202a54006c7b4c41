"""The ``salesforce-emulator`` command: the ready-file contract, options, clean stops, and the server's
handling of large bodies and many concurrent clients."""

from __future__ import annotations

import http.client
import json
import os
import signal
import ssl
import stat
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import EmulatorProcess, emulator_command, start_emulator

READY_KEYS = {
    "login_url",
    "instance_url",
    "ca_bundle",
    "client_id",
    "client_secret",
    "refresh_token",
    "username",
    "password",
    "security_token",
    "private_key",
}


def test_ready_file_and_stdout_carry_the_same_json(tmp_path: Path) -> None:
    ready = tmp_path / "nested" / "ready.json"
    proc = subprocess.Popen(
        [*emulator_command(), "--port", "0", "--ready-file", str(ready)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # printed once the server accepts connections
        info = json.loads(line)
        assert json.loads(ready.read_text()) == info
        assert set(info) == READY_KEYS
        assert info["login_url"] == info["instance_url"]
        host, port = info["instance_url"].removeprefix("https://").split(":")
        assert host == "127.0.0.1" and int(port) > 0
        assert Path(info["ca_bundle"]).read_text().startswith("-----BEGIN CERTIFICATE-----")
        key = Path(info["private_key"])
        assert b"PRIVATE KEY" in key.read_bytes()
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert not list(ready.parent.glob(".ready.json.*"))  # the temp file was renamed, not left behind
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert b"serving on" in stderr  # logs go to stderr, stdout holds only the JSON
    assert not Path(info["ca_bundle"]).exists()  # the temporary state directory is removed


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stops_cleanly_on_signal(tmp_path: Path, sig: signal.Signals) -> None:
    process = start_emulator(tmp_path)
    assert process.http.get(process.url("/services/data/"), timeout=10).status_code == 200
    process.proc.send_signal(sig)
    assert process.proc.wait(timeout=15) == 0


def test_help_documents_every_option() -> None:
    out = subprocess.run([*emulator_command(), "--help"], capture_output=True, text=True, check=True).stdout
    for option in (
        "--host",
        "--port",
        "--ready-file",
        "--db",
        "--objects",
        "--latency-ms",
        "--token-ttl-seconds",
        "--daily-api-limit",
        "--state-dir",
        "--log-level",
    ):
        assert option in out


def test_port_in_use_fails_with_exit_1(tmp_path: Path, emulator: EmulatorProcess) -> None:
    port = emulator.instance_url.rsplit(":", 1)[1]
    result = subprocess.run([*emulator_command(), "--port", port], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "cannot start the emulator" in result.stderr


def test_db_file_keeps_records_across_restarts(tmp_path: Path) -> None:
    db = str(tmp_path / "org.sqlite")
    (tmp_path / "one").mkdir()
    first = start_emulator(tmp_path / "one", "--db", db)
    record_id = first.salesforce().Account.create({"Name": "kept"})["id"]
    assert first.stop() == 0
    (tmp_path / "two").mkdir()
    second = start_emulator(tmp_path / "two", "--db", db)
    try:
        assert second.salesforce().Account.get(record_id)["Name"] == "kept"
    finally:
        second.stop()


def test_options_objects_limit_latency_and_state_dir(tmp_path: Path) -> None:
    describe = {
        "name": "Gadget__c",
        "keyPrefix": "a07",
        "label": "Gadget",
        "fields": [
            {"name": "Id", "type": "id", "createable": False, "updateable": False, "nillable": False},
            {"name": "Name", "type": "string", "length": 80, "nillable": False},
        ],
    }
    objects = tmp_path / "gadget.json"
    objects.write_text(json.dumps(describe))
    state = tmp_path / "state"
    args = ["--objects", str(objects), "--daily-api-limit", "1", "--latency-ms", "200", "--state-dir", str(state)]
    process = start_emulator(tmp_path, *args)
    try:
        assert Path(process.ca_bundle).parent == state
        headers = process.auth_headers()
        started = time.monotonic()
        resp = process.http.get(process.api_url("sobjects/Gadget__c/describe"), headers=headers)
        assert time.monotonic() - started >= 0.2
        assert resp.status_code == 200 and resp.json()["keyPrefix"] == "a07"
        refused = process.http.get(process.api_url("limits"), headers=headers)
        assert refused.status_code == 403 and refused.headers["Sforce-Limit-Info"] == "api-usage=1/1"
    finally:
        process.stop()
    assert (state / "ca.pem").exists()  # a given state directory is kept


def test_unreadable_objects_file_fails_with_exit_1(tmp_path: Path) -> None:
    result = subprocess.run(
        [*emulator_command(), "--objects", str(tmp_path / "missing.json")], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1 and "cannot start the emulator" in result.stderr


# --- the HTTP server under load --------------------------------------------------------------------------


def test_100_mb_bulk_upload(emulator: EmulatorProcess) -> None:
    emulator.reset()
    headers = emulator.auth_headers()
    job = emulator.http.post(
        emulator.api_url("jobs/ingest"),
        json={"object": "Widget__c", "operation": "insert", "contentType": "CSV", "lineEnding": "LF"},
        headers=headers,
    ).json()
    row = "Widget " + "x" * 92 + "\n"
    body = ("Name\n" + row * (100 * 1024 * 1024 // len(row))).encode()
    resp = emulator.http.put(
        emulator.api_url(f"jobs/ingest/{job['id']}/batches"),
        data=body,
        headers={**headers, "Content-Type": "text/csv"},
        timeout=120,
    )
    assert resp.status_code == 201
    aborted = emulator.http.patch(
        emulator.api_url(f"jobs/ingest/{job['id']}"), json={"state": "Aborted"}, headers=headers
    )
    assert aborted.json()["state"] == "Aborted"
    assert emulator.calls()[-2]["method"] == "PUT"


def raw_connection(emulator: EmulatorProcess) -> http.client.HTTPSConnection:
    host, port = emulator.instance_url.removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=emulator.ca_bundle)
    return http.client.HTTPSConnection(host, int(port), context=context, timeout=30)


def test_body_over_150_mb_is_refused_before_reading(emulator: EmulatorProcess) -> None:
    conn = raw_connection(emulator)
    conn.putrequest("PUT", "/services/data/v62.0/jobs/ingest/7505g00000AAAAAAAA/batches")
    conn.putheader("Content-Length", str(200 * 1024 * 1024))
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 413
    assert json.loads(resp.read())[0]["errorCode"] == "REQUEST_ENTITY_TOO_LARGE"
    conn.close()


def test_chunked_request_body(emulator: EmulatorProcess) -> None:
    conn = raw_connection(emulator)
    body = json.dumps({"LastName": "Chunked ✓"}).encode()
    conn.request(
        "POST",
        "/services/data/v62.0/sobjects/Contact",
        body=iter([body[:5], body[5:]]),
        headers={**emulator.auth_headers(), "Content-Type": "application/json"},
    )  # an iterable body without a length goes out with Transfer-Encoding: chunked
    resp = conn.getresponse()
    assert resp.status == 201 and json.loads(resp.read())["success"] is True
    conn.close()


def test_many_concurrent_clients(emulator: EmulatorProcess) -> None:
    emulator.reset()
    token = emulator.token()

    def create(i: int) -> int:
        with emulator.new_session() as http:
            resp = http.post(
                emulator.api_url("sobjects/Account"),
                json={"Name": f"Concurrent {i}"},
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
            )
            return resp.status_code

    with ThreadPoolExecutor(max_workers=64) as pool:
        statuses = list(pool.map(create, range(256)))
    assert statuses == [201] * 256
    sf = emulator.salesforce()
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 256


def test_keep_alive_reuses_one_connection(emulator: EmulatorProcess) -> None:
    conn = raw_connection(emulator)
    for _ in range(3):
        conn.request("GET", "/services/data/")
        resp = conn.getresponse()
        assert resp.status == 200 and resp.getheader("Connection") != "close"
        resp.read()
    assert conn.sock is not None  # still the same open socket
    conn.close()


def test_ready_file_is_written_atomically(tmp_path: Path) -> None:
    from target_salesforce.emulator.server import write_ready_file

    target = tmp_path / "ready.json"
    write_ready_file(str(target), {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    assert os.listdir(tmp_path) == ["ready.json"]

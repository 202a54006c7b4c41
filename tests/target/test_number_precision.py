"""Numbers of 16 to 18 digits reach Salesforce digit for digit, through Bulk CSV and through Collections JSON.

A Salesforce number field holds up to 18 digits; a float only 15 for sure, so a value converted through one arrives
changed (99999999999999.99 as 99999999999999.98). The emulator stores numbers as floats too (SQLite REAL, see
docs/emulator-design.md), so SOQL cannot show the difference: these tests run the real CLI against a private
emulator started with ``--log-bodies`` and read what it received from the bodies in its call log, the uploaded CSV
of the Bulk job or the JSON of the Collections requests, parsed without any float.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from simple_salesforce import Salesforce

from tests.conftest import EmulatorProcess, start_emulator
from tests.target.conftest import schema_msg

# Source text → what Salesforce must receive. Opportunity.Amount is currency(18, 2), rounded half-up to 2 places.
AMOUNTS = {
    "99999999999999.99": "99999999999999.99",  # 16 digits: 99999999999999.98 through a float
    "9999999999999999.99": "9999999999999999.99",  # the field's largest value: 1E+16, out of range, as a float
    "-1234567890123456.785": "-1234567890123456.79",  # rounded to the scale first
    "1234.5": "1234.5",  # a short value, sent as a float, as before
}
# Account.BillingLatitude is double(18, 15).
LATITUDES = {
    "37.774929512345679": "37.774929512345679",  # 17 digits: 37.77492951234568 through a float
    "-0.1234567890123456789": "-0.123456789012346",  # rounded to 15 places: 15 digits
}


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    """This module's own emulator (in place of the shared one), keeping each call's request body in its log."""
    process = start_emulator(tmp_path_factory.mktemp("emulator-bodies"), "--log-bodies")
    yield process
    process.stop()


def messages() -> list[dict[str, Any] | str]:
    """A stream of deals and one of accounts; records are JSON text, so that each number has exactly its digits."""
    out: list[dict[str, Any] | str] = [
        schema_msg(
            "deals",
            {
                "name": {"type": "string"},
                "stage": {"type": "string"},
                "close": {"type": "string"},
                "amount": {"type": "number"},
            },
        ),
        schema_msg("accounts", {"name": {"type": "string"}, "lat": {"type": "number"}}),
    ]
    out += [
        f'{{"type":"RECORD","stream":"deals","record":{{"name":"D{text}","stage":"Prospecting","close":"2024-01-01","amount":{text}}}}}'
        for text in AMOUNTS
    ]
    out += [f'{{"type":"RECORD","stream":"accounts","record":{{"name":"A{text}","lat":{text}}}}}' for text in LATITUDES]
    return out


def config(base_config: dict[str, Any], api: str) -> dict[str, Any]:
    common = {"sync_mode": "insert", "api": api}
    return {
        **base_config,
        "streams": {
            "deals": {
                **common,
                "object": "Opportunity",
                "field_mapping": {"name": "Name", "stage": "StageName", "close": "CloseDate", "amount": "Amount"},
            },
            "accounts": {**common, "object": "Account", "field_mapping": {"name": "Name", "lat": "BillingLatitude"}},
        },
    }


def received_csv(calls: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Name → cells of every row uploaded to a Bulk job, as the emulator received them."""
    uploads = [c["body"] for c in calls if c["method"] == "PUT" and c["path"].endswith("/batches")]
    return {row["Name"]: row for body in uploads for row in csv.DictReader(io.StringIO(body, newline=""))}


def received_json(calls: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Name → fields of every record sent through Collections, numbers as the text of the JSON body."""
    posts = [c["body"] for c in calls if c["method"] == "POST" and c["path"].endswith("/composite/sobjects")]
    return {r["Name"]: r for body in posts for r in json.loads(body, parse_float=str, parse_int=str)["records"]}


@pytest.mark.parametrize("api", ["bulk", "rest"])
def test_numbers_reach_salesforce_with_every_digit(
    api: str, sf: Salesforce, run_target: Any, base_config: dict[str, Any]
) -> None:
    result = run_target(config(base_config, api), messages())
    result.assert_ok()
    assert result.rejects == []
    received = received_csv(result.calls) if api == "bulk" else received_json(result.calls)
    assert {name: received[f"D{name}"]["Amount"] for name in AMOUNTS} == AMOUNTS
    assert {name: received[f"A{name}"]["BillingLatitude"] for name in LATITUDES} == LATITUDES
    # Every record was stored; the emulator keeps a float of each (its known limit), so SOQL shows no more.
    stored = {r["Name"]: r["Amount"] for r in sf.query("SELECT Name, Amount FROM Opportunity")["records"]}
    assert stored == {f"D{name}": float(sent) for name, sent in AMOUNTS.items()}
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == len(LATITUDES)

"""The API client and the describe cache: retry and error rules on a scripted transport, then the real thing
against the emulator's faults (expired sessions, 503 bursts, dropped connections, the daily limit)."""

from __future__ import annotations

import http.client
import socket
import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from email.utils import formatdate
from typing import Any

import pytest
import requests
import tenacity.nap
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from target_salesforce.client import OutcomeUnknown, SalesforceClient
from target_salesforce.describe import DescribeCache
from target_salesforce.errors import ApiLimitReached, AuthError, ConfigError, SalesforceApiError, TargetError
from tests.target.test_auth import emulator_config, trusted  # noqa: F401  (trusted is a fixture)

INSTANCE = "https://org.example.com"
DATA = f"{INSTANCE}/services/data/v62.0"
Step = tuple[int, str, dict[str, str]] | BaseException


class ScriptedAdapter(BaseAdapter):
    """A transport that answers each request with the next scripted step: an answer, or an exception to raise."""

    def __init__(self, *steps: Step) -> None:
        super().__init__()
        self.steps = list(steps)
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.sent.append(request)
        step = self.steps.pop(0)
        if isinstance(step, BaseException):
            raise step
        status, body, headers = step
        response = requests.Response()
        response.status_code = status
        response._content = body.encode()
        response.headers = CaseInsensitiveDict({"Content-Type": "application/json", **headers})
        response.request, response.url = request, request.url or ""
        return response

    def close(self) -> None:
        pass


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every wait tenacity makes, recorded instead of slept."""
    waits: list[float] = []
    monkeypatch.setattr(tenacity.nap, "time", types.SimpleNamespace(sleep=waits.append))
    return waits


def scripted(*steps: Step, max_retries: int = 3, **options: Any) -> tuple[SalesforceClient, ScriptedAdapter]:
    """A client on a ready access token whose every request goes to a ScriptedAdapter."""
    adapter = ScriptedAdapter(*steps)
    session = requests.Session()
    session.mount("https://", adapter)
    config = {"access_token": "tok", "instance_url": INSTANCE, "max_retries": max_retries}
    return SalesforceClient(config, session=session, **options), adapter


def ok(body: str = "{}", **headers: str) -> Step:
    return (200, body, headers)


def error(status: int, code: str, message: str = "m", **headers: str) -> Step:
    return (status, f'[{{"message": "{message}", "errorCode": "{code}"}}]', headers)


def connect_refused() -> requests.ConnectionError:
    return requests.ConnectionError(MaxRetryError(None, "/", NewConnectionError(None, "Connection refused")))  # type: ignore[arg-type]


def dropped() -> requests.ConnectionError:
    return requests.ConnectionError(ProtocolError("Connection aborted.", http.client.RemoteDisconnected("closed")))


# --- retry rules (scripted transport) ---------------------------------------------------------------------


def test_429_waits_exactly_retry_after(sleeps: list[float]) -> None:
    client, adapter = scripted(error(429, "REQUEST_LIMIT", **{"Retry-After": "7"}), ok('{"a": 1}'))
    assert client.json("GET", "limits") == {"a": 1}
    assert sleeps == [7.0] and len(adapter.sent) == 2


def test_retry_after_as_http_date(sleeps: list[float]) -> None:
    when = formatdate(time.time() + 30, usegmt=True)
    client, _ = scripted(error(503, "SERVER_UNAVAILABLE", **{"Retry-After": when}), ok())
    client.request("GET", "limits")
    assert 25 <= sleeps[0] <= 31


def test_backoff_grows_exponentially_with_jitter(sleeps: list[float]) -> None:
    steps = [error(503, "SERVER_UNAVAILABLE")] * 4
    client, adapter = scripted(*steps, max_retries=3, backoff_base=1.0, backoff_max=3.0)
    with pytest.raises(SalesforceApiError) as raised:
        client.request("GET", "limits")
    assert (raised.value.status, raised.value.error_code) == (503, "SERVER_UNAVAILABLE")
    assert len(adapter.sent) == 4 and len(sleeps) == 3
    assert all(0 <= wait <= limit for wait, limit in zip(sleeps, [1, 2, 3], strict=True))


def test_post_5xx_is_outcome_unknown_and_not_resent(sleeps: list[float]) -> None:
    client, adapter = scripted(error(500, "UNKNOWN_EXCEPTION"))
    with pytest.raises(OutcomeUnknown, match="may or may not have applied it"):
        client.request("POST", "composite/sobjects", json={"records": []})
    assert len(adapter.sent) == 1 and sleeps == []


def test_patch_5xx_is_retried(sleeps: list[float]) -> None:
    client, adapter = scripted(error(502, "BAD_GATEWAY"), (204, "", {}))
    assert client.json("PATCH", "sobjects/Account/001", json={"Name": "x"}) is None
    assert len(adapter.sent) == 2


def test_post_is_resent_when_the_connection_failed_before_sending(sleeps: list[float]) -> None:
    client, adapter = scripted(connect_refused(), (201, '{"id": "001"}', {}))
    assert client.json("POST", "sobjects/Account", json={"Name": "x"}) == {"id": "001"}
    assert len(adapter.sent) == 2 and client.call_count == 1


@pytest.mark.parametrize("lost", [dropped, lambda: requests.ReadTimeout("read timed out")])
def test_post_with_a_lost_answer_is_outcome_unknown(sleeps: list[float], lost: Any) -> None:
    client, adapter = scripted(lost(), ok())
    with pytest.raises(OutcomeUnknown) as raised:
        client.request("POST", "composite/sobjects", json={})
    assert (raised.value.method, raised.value.path) == ("POST", "composite/sobjects")
    assert len(adapter.sent) == 1 and client.call_count == 1


def test_a_json_body_carries_every_digit_of_a_decimal_on_every_attempt(sleeps: list[float]) -> None:
    """A number of 16 to 18 digits is a Decimal (convert._number): sent as a JSON number of exactly its digits
    (json.dumps cannot encode it, and a float would send 99999999999999.98), as JSON, and the same on a retry."""
    client, adapter = scripted(error(503, "SERVER_UNAVAILABLE"), ok("[]"))
    body = {"records": [{"attributes": {"type": "Opportunity"}, "Amount": Decimal("99999999999999.99"), "N": 1.5}]}
    client.json("PATCH", "composite/sobjects", json=body)
    assert len(adapter.sent) == 2
    for sent in adapter.sent:
        assert sent.body == b'{"records":[{"attributes":{"type":"Opportunity"},"Amount":99999999999999.99,"N":1.5}]}'
        assert sent.headers["Content-Type"] == "application/json"
        assert sent.headers["Content-Length"] == str(len(sent.body))


def test_lost_answer_is_resent_when_idempotent(sleeps: list[float]) -> None:
    client, adapter = scripted(dropped(), requests.ReadTimeout("read timed out"), ok('{"id": "750"}'))
    assert client.json("POST", "jobs/ingest", json={}, idempotent=True) == {"id": "750"}
    assert len(adapter.sent) == 3


def test_network_failure_after_all_retries_is_one_target_error(sleeps: list[float]) -> None:
    client, _ = scripted(dropped(), dropped(), max_retries=1)
    with pytest.raises(TargetError, match=r"GET limits failed 2 time\(s\): no answer \(RemoteDisconnected\)"):
        client.request("GET", "limits")


def test_unreachable_instance_is_retried_then_fails(trusted: Any) -> None:  # noqa: F811
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = SalesforceClient(
        {"access_token": "tok", "instance_url": f"https://127.0.0.1:{port}", "max_retries": 2}, backoff_base=0.01
    )
    with pytest.raises(TargetError, match=r"failed 3 time\(s\): cannot connect to https://127.0.0.1"):
        client.request("POST", "sobjects/Account", json={})
    assert client.call_count == 0


# --- answers, paths and bookkeeping (scripted transport) ---------------------------------------------------


def test_error_body_becomes_salesforce_api_error() -> None:
    client, _ = scripted(error(400, "MALFORMED_QUERY", "unexpected token: FORM"))
    with pytest.raises(SalesforceApiError) as raised:
        client.query_all("SELECT Id FORM Account")
    assert (raised.value.status, raised.value.error_code, raised.value.message) == (
        400,
        "MALFORMED_QUERY",
        "unexpected token: FORM",
    )


def test_non_json_error_body_is_summarised_on_one_line() -> None:
    client, _ = scripted((404, "<html>\n<body>Not   here</body></html>", {"Content-Type": "text/html"}))
    with pytest.raises(SalesforceApiError, match=r"HTTP 404 HTTP_404: <html> <body>Not here</body></html>"):
        client.request("GET", "sobjects/Nope/describe")


def test_request_limit_exceeded_is_api_limit_reached() -> None:
    client, _ = scripted(error(403, "REQUEST_LIMIT_EXCEEDED", **{"Sforce-Limit-Info": "api-usage=5000/5000"}))
    with pytest.raises(ApiLimitReached, match=r"REQUEST_LIMIT_EXCEEDED, 5000/5000 used"):
        client.request("GET", "limits")


def test_other_403_is_an_api_error() -> None:
    client, _ = scripted(error(403, "INSUFFICIENT_ACCESS"))
    with pytest.raises(SalesforceApiError, match="INSUFFICIENT_ACCESS"):
        client.request("GET", "limits")


def test_paths_token_usage_and_call_count() -> None:
    client, adapter = scripted(
        ok(**{"Sforce-Limit-Info": "api-usage=18/5000"}),
        (204, "", {"Sforce-Limit-Info": "api-usage=19/5000; per-app-api-usage=3/250(appName=x)"}),
    )
    assert client.api_usage is None
    client.request("GET", "sobjects/", headers={"X-Extra": "1"})
    assert client.json("DELETE", "/services/data/v62.0/jobs/ingest/750") is None
    assert [r.url for r in adapter.sent] == [f"{DATA}/sobjects/", f"{DATA}/jobs/ingest/750"]
    assert adapter.sent[0].headers["Authorization"] == "Bearer tok" and adapter.sent[0].headers["X-Extra"] == "1"
    assert client.api_usage == (19, 5000) and client.call_count == 2


def test_query_all_follows_next_records_url() -> None:
    client, adapter = scripted(
        ok('{"done": false, "nextRecordsUrl": "/services/data/v62.0/query/01g-2000", "records": [{"Id": "1"}]}'),
        ok('{"done": true, "records": [{"Id": "2"}]}'),
    )
    assert client.query_all("SELECT Id FROM Account") == [{"Id": "1"}, {"Id": "2"}]
    assert adapter.sent[0].url == f"{DATA}/query?q=SELECT+Id+FROM+Account"
    assert adapter.sent[1].url == f"{DATA}/query/01g-2000"


@pytest.mark.parametrize(("given", "used"), [("62.0", "62.0"), ("v61.0", "61.0"), (None, "62.0")])
def test_api_version(given: str | None, used: str) -> None:
    config = {"access_token": "t", "instance_url": INSTANCE, "api_version": given}
    assert SalesforceClient(config).api_version == used


def test_malformed_api_version_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"api_version must look like 62\.0"):
        SalesforceClient({"access_token": "t", "instance_url": INSTANCE, "api_version": "62"})


# --- against the emulator ---------------------------------------------------------------------------------


def token_calls(emulator: Any) -> int:
    return sum(call["path"] == "/services/oauth2/token" for call in emulator.calls())


def test_expired_session_is_renewed_once_for_all_threads(trusted: Any) -> None:  # noqa: F811
    client = SalesforceClient(emulator_config(trusted, "refresh"))
    client.instance_url  # noqa: B018  (logs in)
    trusted.set_faults(expire_sessions_after_calls=3, latency_ms=20)
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: client.json("GET", "limits"), range(24)))
    assert len(answers) == 24
    statuses = [call["status"] for call in trusted.calls() if call["path"].endswith("/limits")]
    assert 401 in statuses and statuses.count(200) == 24
    assert token_calls(trusted) == 2  # the first login and one renewal


def test_expired_access_token_cannot_be_renewed(trusted: Any) -> None:  # noqa: F811
    client = SalesforceClient({"access_token": trusted.token(), "instance_url": trusted.instance_url})
    trusted.set_faults(expire_sessions_after_calls=0)
    with pytest.raises(AuthError, match="no renewable credentials were given") as raised:
        client.request("GET", "limits")
    assert "access_token" in str(raised.value)


def test_503_burst_is_retried(trusted: Any) -> None:  # noqa: F811
    client = SalesforceClient(emulator_config(trusted, "refresh", max_retries=3), backoff_base=0.01)
    trusted.set_faults(http_503_next=3)
    assert client.json("GET", "limits")["DailyApiRequests"]
    assert [c["status"] for c in trusted.calls() if c["path"].endswith("/limits")] == [503, 503, 503, 200]
    trusted.set_faults(http_503_next=9)
    with pytest.raises(SalesforceApiError, match="503 SERVER_UNAVAILABLE"):
        client.request("GET", "limits")


def account_names(client: SalesforceClient) -> list[str]:
    return sorted(row["Name"] for row in client.query_all("SELECT Name FROM Account"))


def test_dropped_connections(trusted: Any) -> None:  # noqa: F811
    client = SalesforceClient(emulator_config(trusted, "refresh"), backoff_base=0.01)
    trusted.set_faults(drop_connection_next=1)
    record = client.json("POST", "sobjects/Account", json={"Name": "first"}, idempotent=True)  # resent
    trusted.set_faults(drop_after_processing_next=1)
    client.request("PATCH", f"sobjects/Account/{record['id']}", json={"Name": "renamed"})  # PATCH: resent
    assert account_names(client) == ["renamed"]

    trusted.set_faults(drop_after_processing_next=1)
    with pytest.raises(OutcomeUnknown):
        client.request("POST", "sobjects/Account", json={"Name": "second"})
    # It was created: re-sending would have made a duplicate, which is why the client did not.
    assert account_names(client) == ["renamed", "second"]


def test_daily_limit_is_api_limit_reached(trusted: Any) -> None:  # noqa: F811
    client = SalesforceClient(emulator_config(trusted, "refresh"))
    client.request("GET", "limits")
    trusted.set_faults(daily_api_limit=1)
    with pytest.raises(ApiLimitReached, match="1/1 used"):
        client.request("GET", "limits")
    assert client.api_usage == (1, 1) and client.call_count == 2


def test_query_all_pages_and_simple_salesforce_shares_the_session(trusted: Any) -> None:  # noqa: F811
    client = SalesforceClient(emulator_config(trusted, "refresh"))
    for start in range(0, 2050, 200):
        records = [{"attributes": {"type": "Account"}, "Name": f"A{i}"} for i in range(start, min(start + 200, 2050))]
        client.json("POST", "composite/sobjects", json={"allOrNone": True, "records": records})
    sf = client.simple_salesforce()
    sf.Account.create({"Name": "via simple-salesforce"})
    assert len(client.query_all("SELECT Id FROM Account")) == 2051
    assert any("/query/" in call["path"] for call in trusted.calls())  # the second page was fetched
    assert token_calls(trusted) == 1


def test_describe_cache_asks_once_per_object_across_threads(trusted: Any) -> None:  # noqa: F811
    cache = DescribeCache(SalesforceClient(emulator_config(trusted, "refresh")))
    trusted.set_faults(latency_ms=20)
    with ThreadPoolExecutor(max_workers=8) as pool:
        describes = list(pool.map(cache.describe, ["Contact", "contact", "CONTACT", "Account"] * 4))
    assert {d["name"] for d in describes} == {"Contact", "Account"}
    assert cache.field_map("contact")["lastname"]["name"] == "LastName"
    paths = [
        c["path"].removeprefix("/services/data/v62.0/")
        for c in trusted.calls()
        if c["path"] != "/services/oauth2/token"
    ]
    # One describe per object whatever the spelling, and no describeGlobal: the objects are named.
    assert sorted(path.lower() for path in paths) == ["sobjects/account/describe", "sobjects/contact/describe"]


def test_unknown_object_suggests_close_names_and_the_discovery_command(trusted: Any) -> None:  # noqa: F811
    cache = DescribeCache(SalesforceClient(emulator_config(trusted, "refresh")))
    with pytest.raises(ConfigError) as raised:
        cache.describe("Contcat")
    assert "'Contcat' does not exist" in str(raised.value)
    assert "did you mean Contact" in str(raised.value) and "target-salesforce-describe" in str(raised.value)
    with pytest.raises(ConfigError) as nothing_close:
        cache.field_map("Zzzqqq")
    assert "did you mean" not in str(nothing_close.value)


def test_call_count_is_exact_under_concurrency(trusted: Any) -> None:  # noqa: F811
    client = SalesforceClient(emulator_config(trusted, "refresh"))
    threads = [threading.Thread(target=lambda: [client.request("GET", "limits") for _ in range(5)]) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert client.call_count == 40 == sum(c["path"].endswith("/limits") for c in trusted.calls())

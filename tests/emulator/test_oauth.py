"""OAuth: every grant of reference §1 against the real emulator process, success and failure bodies, token
checks on API calls, and expiry."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
import trustme
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceExpiredSession

from tests.conftest import EmulatorProcess, start_emulator

SUCCESS_KEYS = {"access_token", "instance_url", "id", "token_type", "issued_at", "signature", "scope"}


def token_request(emulator: EmulatorProcess, data: dict[str, str], **kw: Any) -> requests.Response:
    return emulator.http.post(emulator.login_url + "/services/oauth2/token", data=data, timeout=30, **kw)


def api_status(emulator: EmulatorProcess, token: str, scheme: str = "Bearer") -> int:
    resp = emulator.http.get(emulator.api_url("limits"), headers={"Authorization": f"{scheme} {token}"}, timeout=30)
    return resp.status_code


def assert_refused(resp: requests.Response, error: str, description: str) -> None:
    assert resp.status_code == 400
    assert resp.json() == {"error": error, "error_description": description}


def refresh_data(emulator: EmulatorProcess, **overrides: str) -> dict[str, str]:
    data = {
        "grant_type": "refresh_token",
        "refresh_token": emulator.refresh_token,
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
    }
    return {**data, **overrides}


# --- refresh_token ---------------------------------------------------------------------------------------


def test_refresh_grant_answers_salesforce_token_body(emulator: EmulatorProcess) -> None:
    resp = token_request(emulator, refresh_data(emulator))
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == SUCCESS_KEYS
    assert body["instance_url"] == emulator.instance_url
    assert body["token_type"] == "Bearer"
    org_id, user_id = body["id"].rsplit("/", 2)[-2:]
    assert body["id"] == f"{emulator.login_url}/id/{org_id}/{user_id}"
    assert org_id.startswith("00D") and user_id.startswith("005")
    assert abs(int(body["issued_at"]) / 1000 - time.time()) < 60
    # The signature is HMAC-SHA256(id + issued_at) keyed with the consumer secret, base64-encoded.
    expected = hmac.new(
        emulator.client_secret.encode(), (body["id"] + body["issued_at"]).encode(), hashlib.sha256
    ).digest()
    assert base64.b64decode(body["signature"]) == expected
    assert "refresh_token" not in body
    assert api_status(emulator, body["access_token"]) == 200


def test_refresh_grant_without_secret_is_allowed(emulator: EmulatorProcess) -> None:
    data = refresh_data(emulator)
    del data["client_secret"]
    assert token_request(emulator, data).status_code == 200


def test_unknown_refresh_token_is_invalid_grant(emulator: EmulatorProcess) -> None:
    resp = token_request(emulator, refresh_data(emulator, refresh_token="5Aep861nope"))
    assert_refused(resp, "invalid_grant", "expired access/refresh token")


def test_unknown_client_id_is_refused(emulator: EmulatorProcess) -> None:
    resp = token_request(emulator, refresh_data(emulator, client_id="3MVG9unknown"))
    assert_refused(resp, "invalid_client_id", "client identifier invalid")


def test_wrong_client_secret_is_refused(emulator: EmulatorProcess) -> None:
    resp = token_request(emulator, refresh_data(emulator, client_secret="wrong"))
    assert_refused(resp, "invalid_client", "invalid client credentials")


def test_unsupported_grant_type(emulator: EmulatorProcess) -> None:
    resp = token_request(emulator, {"grant_type": "implicit", "client_id": emulator.client_id})
    assert_refused(resp, "unsupported_grant_type", "grant type not supported")


# --- password --------------------------------------------------------------------------------------------


def password_data(emulator: EmulatorProcess, password: str) -> dict[str, str]:
    return {
        "grant_type": "password",
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
        "username": emulator.username,
        "password": password,
    }


def test_password_grant_needs_security_token_appended(emulator: EmulatorProcess) -> None:
    good = token_request(emulator, password_data(emulator, emulator.password + emulator.security_token))
    assert good.status_code == 200 and set(good.json()) == SUCCESS_KEYS
    assert api_status(emulator, good.json()["access_token"]) == 200
    without_token = token_request(emulator, password_data(emulator, emulator.password))
    assert_refused(without_token, "invalid_grant", "authentication failure")


def test_password_grant_with_wrong_secret(emulator: EmulatorProcess) -> None:
    data = password_data(emulator, emulator.password + emulator.security_token)
    resp = token_request(emulator, {**data, "client_secret": "nope"})
    assert_refused(resp, "invalid_client", "invalid client credentials")


# --- JWT bearer ------------------------------------------------------------------------------------------


def jwt_data(assertion: str) -> dict[str, str]:
    return {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}


def assertion(emulator: EmulatorProcess, key: bytes | None = None, **claims: Any) -> str:
    payload = {
        "iss": emulator.client_id,
        "sub": emulator.username,
        "aud": "https://login.salesforce.com",
        "exp": int(time.time()) + 180,
        **claims,
    }
    return jwt.encode(payload, key or Path(emulator.private_key).read_bytes(), algorithm="RS256")


@pytest.mark.parametrize("audience", ["https://login.salesforce.com", "https://test.salesforce.com", "own"])
def test_jwt_grant_accepts_salesforce_and_own_audiences(emulator: EmulatorProcess, audience: str) -> None:
    aud = emulator.login_url if audience == "own" else audience
    resp = token_request(emulator, jwt_data(assertion(emulator, aud=aud)))
    assert resp.status_code == 200, resp.text
    assert set(resp.json()) == SUCCESS_KEYS
    assert api_status(emulator, resp.json()["access_token"]) == 200


def test_jwt_signed_by_another_key_is_invalid_assertion(emulator: EmulatorProcess) -> None:
    other = trustme.CA().issue_cert("x@example.com", key_type=trustme.KeyType.RSA).private_key_pem.bytes()
    resp = token_request(emulator, jwt_data(assertion(emulator, key=other)))
    assert_refused(resp, "invalid_grant", "invalid assertion")


def test_jwt_with_wrong_audience(emulator: EmulatorProcess) -> None:
    resp = token_request(emulator, jwt_data(assertion(emulator, aud="https://evil.example.com")))
    assert_refused(resp, "invalid_grant", "audience is invalid")


def test_expired_jwt_is_invalid_assertion(emulator: EmulatorProcess) -> None:
    resp = token_request(emulator, jwt_data(assertion(emulator, exp=int(time.time()) - 60)))
    assert_refused(resp, "invalid_grant", "invalid assertion")


def test_jwt_from_unknown_client(emulator: EmulatorProcess) -> None:
    resp = token_request(emulator, jwt_data(assertion(emulator, iss="3MVG9someoneelse")))
    assert_refused(resp, "invalid_client_id", "client identifier invalid")


def test_jwt_for_unknown_user(emulator: EmulatorProcess) -> None:
    resp = token_request(emulator, jwt_data(assertion(emulator, sub="nobody@example.com")))
    assert_refused(resp, "invalid_grant", "user hasn't approved this consumer")


def test_garbage_assertion(emulator: EmulatorProcess) -> None:
    assert_refused(token_request(emulator, jwt_data("not.a.jwt")), "invalid_grant", "invalid assertion")


# --- client_credentials ----------------------------------------------------------------------------------


def test_client_credentials_with_basic_auth_header(emulator: EmulatorProcess) -> None:
    basic = base64.b64encode(f"{emulator.client_id}:{emulator.client_secret}".encode()).decode()
    resp = token_request(emulator, {"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"})
    assert resp.status_code == 200
    assert api_status(emulator, resp.json()["access_token"]) == 200


def test_client_credentials_in_body(emulator: EmulatorProcess) -> None:
    data = {
        "grant_type": "client_credentials",
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
    }
    assert token_request(emulator, data).status_code == 200
    resp = token_request(emulator, {**data, "client_secret": "wrong"})
    assert_refused(resp, "invalid_client", "invalid client credentials")


# --- authorization_code (+ PKCE) -------------------------------------------------------------------------

REDIRECT = "https://app.example.com/callback"


def authorize(emulator: EmulatorProcess, **params: str) -> requests.Response:
    query = {"response_type": "code", "client_id": emulator.client_id, "redirect_uri": REDIRECT, **params}
    return emulator.http.get(
        emulator.login_url + "/services/oauth2/authorize", params=query, allow_redirects=False, timeout=30
    )


def code_from(resp: requests.Response) -> dict[str, str]:
    assert resp.status_code == 302
    location = resp.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def code_data(emulator: EmulatorProcess, code: str, **extra: str) -> dict[str, str]:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
    }
    return {**data, **extra}


def test_code_grant_returns_working_refresh_token(emulator: EmulatorProcess) -> None:
    params = code_from(authorize(emulator, state="xyz 1"))
    assert params["state"] == "xyz 1"
    resp = token_request(emulator, code_data(emulator, params["code"]))
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == SUCCESS_KEYS | {"refresh_token"}
    assert api_status(emulator, body["access_token"]) == 200
    refreshed = token_request(emulator, refresh_data(emulator, refresh_token=body["refresh_token"]))
    assert refreshed.status_code == 200


def test_code_is_single_use(emulator: EmulatorProcess) -> None:
    code = code_from(authorize(emulator))["code"]
    assert token_request(emulator, code_data(emulator, code)).status_code == 200
    assert_refused(token_request(emulator, code_data(emulator, code)), "invalid_grant", "invalid authorization code")


def test_code_with_other_redirect_uri(emulator: EmulatorProcess) -> None:
    code = code_from(authorize(emulator))["code"]
    resp = token_request(emulator, code_data(emulator, code, redirect_uri="https://other.example.com/cb"))
    assert_refused(resp, "invalid_grant", "redirect_uri must match configuration")


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def test_pkce_verifier_checked_at_token_time(emulator: EmulatorProcess) -> None:
    verifier, challenge = pkce_pair()
    code = code_from(authorize(emulator, code_challenge=challenge, code_challenge_method="S256"))["code"]
    # A PKCE client may be public: no secret, the verifier proves it started the flow.
    data = code_data(emulator, code, code_verifier=verifier)
    del data["client_secret"]
    assert token_request(emulator, data).status_code == 200


def test_pkce_mismatch_is_refused(emulator: EmulatorProcess) -> None:
    _, challenge = pkce_pair()
    code = code_from(authorize(emulator, code_challenge=challenge))["code"]
    resp = token_request(emulator, code_data(emulator, code, code_verifier=pkce_pair()[0]))
    assert_refused(resp, "invalid_grant", "invalid code verifier")


def test_authorize_refuses_unknown_client_without_redirecting(emulator: EmulatorProcess) -> None:
    resp = authorize(emulator, client_id="3MVG9unknown")
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_client_id"


def test_authorize_wrong_response_type_redirects_with_error(emulator: EmulatorProcess) -> None:
    params = code_from(authorize(emulator, response_type="token", state="s"))
    assert params["error"] == "unsupported_response_type" and params["state"] == "s" and "code" not in params


# --- access tokens on API calls --------------------------------------------------------------------------


def test_unknown_token_is_401_json_array(emulator: EmulatorProcess) -> None:
    resp = emulator.http.get(emulator.api_url("limits"), headers={"Authorization": "Bearer nope"}, timeout=30)
    assert resp.status_code == 401
    assert resp.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    assert emulator.http.get(emulator.api_url("limits"), timeout=30).status_code == 401


def test_oauth_authorization_scheme_is_accepted(emulator: EmulatorProcess) -> None:
    assert api_status(emulator, emulator.token(), scheme="OAuth") == 200


def test_simple_salesforce_raises_expired_session(emulator: EmulatorProcess) -> None:
    sf = Salesforce(instance_url=emulator.instance_url, session_id="bogus", session=emulator.new_session())
    with pytest.raises(SalesforceExpiredSession):
        sf.Contact.describe()


def test_token_requests_are_in_the_call_log(emulator: EmulatorProcess) -> None:
    emulator.reset()
    token_request(emulator, refresh_data(emulator, client_secret="wrong"))
    assert emulator.calls() == [{"method": "POST", "path": "/services/oauth2/token", "status": 400, "records": 0}]


@pytest.fixture(scope="module")
def short_lived(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    """An emulator whose access tokens live one second."""
    process = start_emulator(tmp_path_factory.mktemp("ttl"), "--token-ttl-seconds", "1")
    yield process
    process.stop()


def test_access_token_expires_after_ttl(short_lived: EmulatorProcess) -> None:
    token = short_lived.token()
    assert api_status(short_lived, token) == 200
    time.sleep(1.2)
    resp = short_lived.http.get(short_lived.api_url("limits"), headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401
    assert resp.json()[0]["errorCode"] == "INVALID_SESSION_ID"
    assert api_status(short_lived, short_lived.token()) == 200

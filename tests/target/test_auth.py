"""Authentication: choosing the auth group, the JWT assertion, and real logins against the emulator over HTTPS."""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

import jwt
import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from target_salesforce.auth import (
    AccessTokenAuth,
    ClientCredentialsAuth,
    JwtBearerAuth,
    PasswordAuth,
    RefreshTokenAuth,
    jwt_audience,
    resolve_auth,
)
from target_salesforce.client import SalesforceClient
from target_salesforce.errors import AuthError, ConfigError

SECRETS = {
    "client_secret": "SECRET-client-secret",
    "refresh_token": "SECRET-refresh-token",
    "password": "SECRET-password",
    "security_token": "SECRET-security-token",
    "access_token": "SECRET-access-token",
}
SECRET_KEYS = ("client_secret", "refresh_token", "access_token", "password", "security_token", "private_key")
GROUP_KEYS = {
    "refresh": ("client_id", "client_secret", "refresh_token"),
    "jwt": ("client_id", "username", "private_key"),
    "client_credentials": ("client_id", "client_secret"),
    "password": ("client_id", "client_secret", "username", "password", "security_token"),
}


@pytest.fixture(scope="module")
def rsa_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture
def trusted(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The emulator, reset, with requests trusting its CA through REQUESTS_CA_BUNDLE as a user would set it."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.ca_bundle)
    emulator.reset()
    return emulator


def emulator_config(emulator: Any, group: str, **overrides: Any) -> dict[str, Any]:
    """A config with exactly one auth group of the emulator's demo credentials, and fast retries."""
    config = {key: emulator[key] for key in GROUP_KEYS[group]}
    return {"login_url": emulator.login_url, "max_retries": 1, **config, **overrides}


def login(config: dict[str, Any], **client_options: Any) -> str:
    """Log in (the client does so on first use of instance_url) and return the org URL."""
    return SalesforceClient(config, **client_options).instance_url


def no_secret_in(text: str, config: dict[str, Any]) -> None:
    for key in SECRET_KEYS:
        value = config.get(key)
        if value and key != "private_key":
            assert value not in text, f"{key} leaked"


# --- choosing the auth group (no network) ----------------------------------------------------------------


def test_each_complete_group_is_resolved(rsa_pem: str) -> None:
    cases = [
        ({"client_id": "id", "client_secret": "s", "refresh_token": "r"}, RefreshTokenAuth),
        ({"client_id": "id", "username": "u@x.com", "private_key": rsa_pem}, JwtBearerAuth),
        ({"client_id": "id", "client_secret": "s"}, ClientCredentialsAuth),
        (
            {"client_id": "id", "client_secret": "s", "username": "u", "password": "p", "security_token": "t"},
            PasswordAuth,
        ),
        ({"access_token": "a", "instance_url": "https://x.my.salesforce.com"}, AccessTokenAuth),
    ]
    for config, expected in cases:
        assert type(resolve_auth(config)) is expected


def test_larger_groups_win_and_access_token_comes_last(caplog: pytest.LogCaptureFixture) -> None:
    everything = {"client_id": "id", "username": "u", "instance_url": "https://x.my.salesforce.com", **SECRETS}
    with caplog.at_level(logging.WARNING):
        assert type(resolve_auth(everything)) is PasswordAuth
    # refresh-token and access-token were complete too and are named; client-credentials is a mere subset.
    assert "refresh-token" in caplog.text and "access-token" in caplog.text
    assert "client-credentials" not in caplog.text
    no_secret_in(caplog.text, everything)

    assert type(resolve_auth({"client_id": "id", "client_secret": "s", "refresh_token": "r"})) is RefreshTokenAuth
    token_and_client = {"access_token": "a", "instance_url": "https://x.my.salesforce.com", "client_id": "i"}
    assert type(resolve_auth({**token_and_client, "client_secret": "s"})) is ClientCredentialsAuth


def test_no_complete_group_is_one_line_naming_every_group_and_its_missing_keys() -> None:
    with pytest.raises(ConfigError) as raised:
        resolve_auth({"client_id": "id", "username": "  ", "password": "p"})
    message = str(raised.value)
    assert "\n" not in message
    assert "refresh-token (client_id + client_secret + refresh_token) lacks client_secret, refresh_token" in message
    assert "JWT bearer (client_id + username + private_key) lacks username, private_key" in message  # blank = unset
    assert "client-credentials (client_id + client_secret) lacks client_secret" in message
    assert "lacks client_secret, username, security_token" in message
    assert "access-token (access_token + instance_url) lacks access_token, instance_url" in message
    assert "SECRET" not in message


@pytest.mark.parametrize("url", ["http://login.salesforce.com", "login.salesforce.com", "ftp://x.example.com"])
def test_login_url_must_be_https(url: str) -> None:
    with pytest.raises(ConfigError, match="login_url must be an https:// URL"):
        resolve_auth({"client_id": "id", "client_secret": "s", "login_url": url})


def test_access_token_instance_url_must_be_https() -> None:
    with pytest.raises(ConfigError, match="instance_url must be an https:// URL"):
        resolve_auth({"access_token": "a", "instance_url": "http://x.my.salesforce.com"})


def test_reprs_hold_no_secret(rsa_pem: str) -> None:
    configs = [
        {"client_id": "id", **SECRETS},
        {"client_id": "id", "username": "u", "private_key": rsa_pem},
        {"access_token": SECRETS["access_token"], "instance_url": "https://x.my.salesforce.com"},
    ]
    for config in configs:
        text = repr(resolve_auth(config))
        assert "SECRET" not in text and "PRIVATE KEY" not in text


# --- the private key and the JWT assertion -----------------------------------------------------------------


def test_private_key_is_pem_text_or_a_path(rsa_pem: str, tmp_path: Any) -> None:
    path = tmp_path / "key.pem"
    path.write_text(rsa_pem)
    from_text = resolve_auth({"client_id": "i", "username": "u", "private_key": rsa_pem})
    from_path = resolve_auth({"client_id": "i", "username": "u", "private_key": str(path)})
    assert isinstance(from_text, JwtBearerAuth) and isinstance(from_path, JwtBearerAuth)
    assert from_text.private_key.private_numbers() == from_path.private_key.private_numbers()


def test_unreadable_private_key_is_a_config_error_that_does_not_echo_it(tmp_path: Any) -> None:
    pasted_without_header = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQ"
    with pytest.raises(ConfigError, match="neither PEM text") as raised:
        resolve_auth({"client_id": "i", "username": "u", "private_key": pasted_without_header})
    assert pasted_without_header not in str(raised.value)


def test_private_key_must_be_rsa() -> None:
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )
    with pytest.raises(ConfigError, match="must be an RSA key"):
        resolve_auth({"client_id": "i", "username": "u", "private_key": ec_pem})


def test_encrypted_private_key_is_refused(rsa_pem: str) -> None:
    key = serialization.load_pem_private_key(rsa_pem.encode(), password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pass"),
    ).decode()
    with pytest.raises(ConfigError, match="encrypted"):
        resolve_auth({"client_id": "i", "username": "u", "private_key": encrypted})


@pytest.mark.parametrize(
    ("login_url", "audience"),
    [
        ("https://login.salesforce.com", "https://login.salesforce.com"),
        ("https://acme.my.salesforce.com", "https://login.salesforce.com"),
        ("https://test.salesforce.com", "https://test.salesforce.com"),
        ("https://acme--uat.sandbox.my.salesforce.com", "https://test.salesforce.com"),
        ("https://cs42.salesforce.com", "https://test.salesforce.com"),
        ("https://acme.my.site.com/customers", "https://acme.my.site.com/customers"),
        ("https://127.0.0.1:8443", "https://127.0.0.1:8443"),
    ],
)
def test_jwt_audience_follows_salesforce_rules(login_url: str, audience: str) -> None:
    assert jwt_audience(login_url) == audience


def test_jwt_assertion_claims(rsa_pem: str) -> None:
    method = resolve_auth(
        {
            "client_id": "3MVGapp",
            "username": "u@x.com",
            "private_key": rsa_pem,
            "login_url": "https://test.salesforce.com",
        }
    )
    assert isinstance(method, JwtBearerAuth)
    form, basic = method.token_request()
    assert basic is None and form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = jwt.decode(
        form["assertion"],
        method.private_key.public_key(),
        algorithms=["RS256"],
        audience="https://test.salesforce.com",
    )
    assert claims["iss"] == "3MVGapp" and claims["sub"] == "u@x.com"
    assert time.time() < claims["exp"] <= time.time() + 300


def test_password_grant_appends_the_security_token_and_client_credentials_use_basic_auth() -> None:
    password = resolve_auth(
        {"client_id": "id", "client_secret": "s", "username": "u", "password": "p", "security_token": "t"}
    )
    assert isinstance(password, PasswordAuth)
    form, _ = password.token_request()
    assert form["password"] == "pt"
    client = resolve_auth({"client_id": "id", "client_secret": "s"})
    assert isinstance(client, ClientCredentialsAuth)
    assert client.token_request() == ({"grant_type": "client_credentials"}, ("id", "s"))


# --- real logins against the emulator ---------------------------------------------------------------------


@pytest.mark.parametrize("group", list(GROUP_KEYS))
def test_each_group_logs_in_and_calls_the_api(trusted: Any, group: str) -> None:
    client = SalesforceClient(emulator_config(trusted, group))
    assert client.instance_url == trusted.instance_url
    assert "DailyApiRequests" in client.json("GET", "limits")
    assert [c["path"] for c in trusted.calls()] == ["/services/oauth2/token", "/services/data/v62.0/limits"]


def test_jwt_login_with_the_key_as_pem_text(trusted: Any) -> None:
    with open(trusted.private_key) as fh:
        config = emulator_config(trusted, "jwt", private_key=fh.read())
    assert SalesforceClient(config).instance_url == trusted.instance_url


def test_access_token_group_needs_no_login(trusted: Any) -> None:
    config = {"access_token": trusted.token(), "instance_url": trusted.instance_url}
    client = SalesforceClient(config)
    assert client.json("GET", "limits")["DailyApiRequests"]["Max"] > 0
    assert [c["path"] for c in trusted.calls()] == ["/services/oauth2/token", "/services/data/v62.0/limits"]


@pytest.mark.parametrize(
    ("group", "wrong", "expected"),
    [
        ("refresh", {"refresh_token": "SECRET-refresh-token"}, "refresh_token is expired, revoked"),
        ("refresh", {"client_secret": "SECRET-client-secret"}, "check client_secret"),
        ("client_credentials", {"client_secret": "SECRET-client-secret"}, "check client_secret"),
        ("password", {"password": "SECRET-password"}, "check username, password and security_token"),
        ("password", {"security_token": "SECRET-security-token"}, "check username, password and security_token"),
        ("jwt", {"username": "nobody@example.com"}, "pre-authorize nobody@example.com"),
        ("refresh", {"client_id": "3MVGunknown"}, "check client_id"),
    ],
)
def test_refused_login_names_the_group_and_what_to_check_without_the_secret(
    trusted: Any, caplog: pytest.LogCaptureFixture, group: str, wrong: dict[str, str], expected: str
) -> None:
    config = emulator_config(trusted, group, **wrong)
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthError) as raised:
        SalesforceClient(config).json("GET", "limits")
    message = str(raised.value)
    assert expected in message and "\n" not in message
    assert f"({' + '.join(GROUP_KEYS[group])})" in message
    for text in (message, repr(raised.value), caplog.text):
        no_secret_in(text, config)
    # A refusal is final: the token endpoint is asked once, not retried.
    assert [c["path"] for c in trusted.calls()] == ["/services/oauth2/token"]


def test_jwt_signed_by_another_key_is_refused(trusted: Any, rsa_pem: str) -> None:
    with pytest.raises(AuthError, match="private_key matches the certificate"):
        login(emulator_config(trusted, "jwt", private_key=rsa_pem))


def test_login_url_that_is_not_a_token_endpoint(trusted: Any) -> None:
    config = emulator_config(trusted, "refresh", login_url=trusted.login_url + "/services/data/v62.0")
    with pytest.raises(AuthError, match="not a Salesforce token endpoint; check login_url"):
        login(config)


def test_unreachable_login_url_is_retried_then_an_auth_error(trusted: Any) -> None:
    with socket.socket() as sock:  # a port nobody listens on once the socket is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = emulator_config(trusted, "refresh", login_url=f"https://127.0.0.1:{port}", max_retries=2)
    started = time.monotonic()
    with pytest.raises(AuthError, match=f"Cannot reach login_url https://127.0.0.1:{port}") as raised:
        login(config, backoff_base=0.01)
    assert time.monotonic() - started < 5
    no_secret_in(str(raised.value), config)


def test_certificate_that_does_not_verify_is_an_auth_error(
    trusted: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other_ca))
    with pytest.raises(AuthError, match="does not verify against the trusted CAs") as raised:
        login(emulator_config(trusted, "refresh"))
    assert "\n" not in str(raised.value)
    assert trusted.calls() == []  # nothing was sent over the unverified connection

"""Logging in to Salesforce: which credentials the config holds, and one OAuth token request for them.

simple-salesforce logs in only against ``*.salesforce.com`` and has no refresh-token grant, so the target asks
``{login_url}/services/oauth2/token`` itself and hands the session to the API client. Every message here names
the auth group and the setting to check, never a secret: errors and reprs may reach logs, CI output and issues.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from target_salesforce.errors import AuthError, ConfigError

DEFAULT_LOGIN_URL = "https://login.salesforce.com"
PRODUCTION_AUDIENCE = "https://login.salesforce.com"
SANDBOX_AUDIENCE = "https://test.salesforce.com"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Salesforce wants a short-lived assertion ("exp" within a few minutes); three leaves room for clock skew.
JWT_LIFETIME_SECONDS = 180

logger = logging.getLogger(__name__)


class LoginUnavailable(AuthError):
    """The login service could not be reached or answered 5xx: worth retrying, unlike a refusal."""


@dataclass(frozen=True)
class Token:
    """A session: the bearer token and the org URL every API call goes to."""

    access_token: str = field(repr=False)
    instance_url: str


@dataclass(frozen=True)
class AuthMethod(ABC):
    """One complete auth group. Secrets are ``repr=False`` fields so that no repr or log line can show them."""

    name: ClassVar[str]
    keys: ClassVar[tuple[str, ...]]
    renewable: ClassVar[bool] = True
    login_url: str

    @classmethod
    def label(cls) -> str:
        """How messages name the group: the flow and the settings that make it up."""
        return f"{cls.name} ({' + '.join(cls.keys)})"

    @classmethod
    def missing(cls, given: set[str]) -> list[str]:
        return [key for key in cls.keys if key not in given]

    @abstractmethod
    def login(self, http: requests.Session, *, timeout: float) -> Token:
        """A session for these credentials (one attempt; the caller retries ``LoginUnavailable``)."""


@dataclass(frozen=True)
class OAuthGrant(AuthMethod):
    """A group that obtains its session from ``{login_url}/services/oauth2/token``."""

    @property
    def token_url(self) -> str:
        return f"{self.login_url}/services/oauth2/token"

    @abstractmethod
    def token_request(self) -> tuple[dict[str, str], tuple[str, str] | None]:
        """The form to post and the Basic-auth pair, if the grant sends the client that way."""

    @abstractmethod
    def grant_hint(self, description: str) -> str:
        """What to check when the grant itself (not the client) is refused."""

    def refusal_hint(self, error: str, description: str) -> str:
        """What the user should check when Salesforce refuses this grant with ``error``."""
        if error == "invalid_client_id":
            return "check client_id: it must be the consumer key of a connected app in the org behind login_url"
        if error == "invalid_client":
            return "check client_secret: it must be the consumer secret that belongs to client_id"
        return self.grant_hint(description)

    def login(self, http: requests.Session, *, timeout: float) -> Token:
        form, basic = self.token_request()
        try:
            response = http.post(self.token_url, data=form, auth=basic, timeout=timeout, allow_redirects=False)
        except requests.exceptions.SSLError as exc:
            if is_certificate_error(exc):
                raise AuthError(certificate_message(self.login_url)) from None
            raise LoginUnavailable(f"TLS handshake with login_url {self.login_url} failed; retry later") from None
        except requests.exceptions.RequestException as exc:
            raise LoginUnavailable(
                f"Cannot reach login_url {self.login_url} ({type(exc).__name__}); check the URL and the network"
            ) from None
        return self._token_from(response)

    def _token_from(self, response: requests.Response) -> Token:
        status = response.status_code
        if status >= 500:
            raise LoginUnavailable(f"The login service at {self.login_url} answered HTTP {status}; retry later")
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise AuthError(
                f"{self.token_url} answered HTTP {status} without an OAuth JSON body: it is not a Salesforce "
                "token endpoint; check login_url (e.g. https://login.salesforce.com or your My Domain URL)"
            )
        if status != 200 or "error" in body:
            error = str(body.get("error", f"HTTP {status}"))
            description = str(body.get("error_description", ""))
            raise AuthError(
                f"Salesforce refused the {self.label()} login at {self.login_url}: {error} ({description}); "
                f"{self.refusal_hint(error, description)}"
            )
        access_token, instance_url = body.get("access_token"), body.get("instance_url")
        if not isinstance(access_token, str) or not isinstance(instance_url, str):
            raise AuthError(f"{self.token_url} answered without access_token and instance_url; check login_url")
        instance_url = instance_url.rstrip("/")
        if urlsplit(instance_url).scheme != "https":
            raise AuthError(f"The login at {self.login_url} returned an instance_url that is not https")
        logger.info("Logged in to %s with the %s flow", instance_url, self.name)
        return Token(access_token, instance_url)


_SANDBOX_HINT = "for a sandbox set login_url to https://test.salesforce.com or its My Domain URL"


@dataclass(frozen=True)
class RefreshTokenAuth(OAuthGrant):
    name: ClassVar[str] = "refresh-token"
    keys: ClassVar[tuple[str, ...]] = ("client_id", "client_secret", "refresh_token")
    client_id: str
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)

    def token_request(self) -> tuple[dict[str, str], tuple[str, str] | None]:
        form = {
            "grant_type": "refresh_token",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": self.refresh_token,
        }
        return form, None

    def grant_hint(self, description: str) -> str:
        return (
            "the refresh_token is expired, revoked or was issued to another connected app or org; "
            f"issue a new one ({_SANDBOX_HINT})"
        )


@dataclass(frozen=True)
class JwtBearerAuth(OAuthGrant):
    name: ClassVar[str] = "JWT bearer"
    keys: ClassVar[tuple[str, ...]] = ("client_id", "username", "private_key")
    client_id: str
    username: str
    private_key: rsa.RSAPrivateKey = field(repr=False)

    @property
    def audience(self) -> str:
        return jwt_audience(self.login_url)

    def token_request(self) -> tuple[dict[str, str], tuple[str, str] | None]:
        claims = {
            "iss": self.client_id,
            "sub": self.username,
            "aud": self.audience,
            "exp": int(time.time()) + JWT_LIFETIME_SECONDS,
        }
        assertion = jwt.encode(claims, self.private_key, algorithm="RS256")
        return {"grant_type": JWT_GRANT, "assertion": assertion}, None

    def grant_hint(self, description: str) -> str:
        if "audience" in description:
            return f"the JWT audience was {self.audience}; {_SANDBOX_HINT}"
        if "approved" in description:
            return (
                f"pre-authorize {self.username} for the connected app (Manage > Policies: admin approved users, "
                "then add the user's profile or permission set)"
            )
        return (
            "check that private_key matches the certificate uploaded to the connected app, that username is right, "
            "and that this machine's clock is correct"
        )


@dataclass(frozen=True)
class ClientCredentialsAuth(OAuthGrant):
    name: ClassVar[str] = "client-credentials"
    keys: ClassVar[tuple[str, ...]] = ("client_id", "client_secret")
    client_id: str
    client_secret: str = field(repr=False)

    def token_request(self) -> tuple[dict[str, str], tuple[str, str] | None]:
        return {"grant_type": "client_credentials"}, (self.client_id, self.client_secret)

    def grant_hint(self, description: str) -> str:
        return (
            "enable the client credentials flow on the connected app and give it a Run As user; the flow needs "
            "login_url to be the org's My Domain URL"
        )


@dataclass(frozen=True)
class PasswordAuth(OAuthGrant):
    name: ClassVar[str] = "username-password"
    keys: ClassVar[tuple[str, ...]] = ("client_id", "client_secret", "username", "password", "security_token")
    client_id: str
    client_secret: str = field(repr=False)
    username: str
    password: str = field(repr=False)
    security_token: str = field(repr=False)

    def token_request(self) -> tuple[dict[str, str], tuple[str, str] | None]:
        form = {
            "grant_type": "password",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "username": self.username,
            "password": self.password + self.security_token,
        }
        return form, None

    def grant_hint(self, description: str) -> str:
        return f"check username, password and security_token (reset it after a password change); {_SANDBOX_HINT}"


@dataclass(frozen=True)
class AccessTokenAuth(AuthMethod):
    """A ready session. Nothing to ask for, and nothing to renew it with once it expires."""

    name: ClassVar[str] = "access-token"
    keys: ClassVar[tuple[str, ...]] = ("access_token", "instance_url")
    renewable: ClassVar[bool] = False
    access_token: str = field(repr=False)
    instance_url: str

    def login(self, http: requests.Session, *, timeout: float) -> Token:
        return Token(self.access_token, self.instance_url)


# Precedence when several groups are complete: the group with the most settings first, since each of its keys
# was given on purpose, while a smaller group (client-credentials) is complete whenever a larger one is; among
# equals the refresh-token flow (the default) wins; a bare access token comes last because it cannot be renewed.
_GROUPS: tuple[type[AuthMethod], ...] = (
    PasswordAuth,
    RefreshTokenAuth,
    JwtBearerAuth,
    ClientCredentialsAuth,
    AccessTokenAuth,
)


def resolve_auth(config: Mapping[str, Any]) -> AuthMethod:
    """The auth group the config completes (see ``_GROUPS`` for precedence); no network, only local checks."""
    login_url = _https_url(config.get("login_url") or DEFAULT_LOGIN_URL, "login_url")
    given = {key for key in config if isinstance(config[key], str) and config[key].strip()}
    complete = [group for group in _GROUPS if not group.missing(given)]
    if not complete:
        missing = "; ".join(f"{group.label()} lacks {', '.join(group.missing(given))}" for group in _GROUPS)
        raise ConfigError(f"No complete set of Salesforce credentials. Give one of: {missing}.")
    chosen = complete[0]
    ignored = ", ".join(group.name for group in complete[1:] if not set(group.keys) <= set(chosen.keys))
    if ignored:
        logger.warning("Credentials for several auth flows are set; using %s, ignoring %s", chosen.name, ignored)
    values: dict[str, Any] = {key: config[key] for key in chosen.keys}
    if chosen is JwtBearerAuth:
        values["private_key"] = load_private_key(values["private_key"])
    if chosen is AccessTokenAuth:
        values["instance_url"] = _https_url(values["instance_url"], "instance_url")
    return chosen(login_url=login_url, **values)


def _https_url(value: Any, setting: str) -> str:
    """Credentials only ever travel over verified TLS, so anything but an https URL is a config error."""
    url = str(value).strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ConfigError(f"{setting} must be an https:// URL, such as https://login.salesforce.com; got {url!r}")
    return url


def jwt_audience(login_url: str) -> str:
    """The ``aud`` Salesforce expects for a JWT posted to ``login_url``.

    Salesforce's docs: https://login.salesforce.com for production, https://test.salesforce.com for sandboxes,
    whichever host (including My Domain) the JWT is posted to; an Experience Cloud site uses its own URL. Any
    host outside salesforce.com is therefore a site (or a local emulator) and is its own audience.
    """
    host = (urlsplit(login_url).hostname or "").lower()
    if host != "salesforce.com" and not host.endswith(".salesforce.com"):
        return login_url
    labels = host.split(".")
    sandbox = (
        host == "test.salesforce.com"
        or host.endswith(".sandbox.my.salesforce.com")
        or any(label.startswith("cs") and label[2:].isdigit() for label in labels)
    )
    return SANDBOX_AUDIENCE if sandbox else PRODUCTION_AUDIENCE


def load_private_key(value: str) -> rsa.RSAPrivateKey:
    """``private_key`` as PEM text or the path of a PEM file; checked now so a bad key fails before any call."""
    if "-----BEGIN" in value:
        pem = value.encode()
    else:
        try:
            pem = Path(value).expanduser().read_bytes()
        except (OSError, ValueError):
            # The value is not echoed: a pasted key without its BEGIN line would be a secret.
            raise ConfigError(
                "private_key is neither PEM text (-----BEGIN ... PRIVATE KEY-----) nor the path of a readable file"
            ) from None
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError:
        raise ConfigError("private_key is encrypted; give an unencrypted PEM key") from None
    except ValueError:
        raise ConfigError("private_key is not a valid PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError("private_key must be an RSA key: Salesforce's JWT bearer flow signs with RS256")
    return key


def is_certificate_error(exc: BaseException) -> bool:
    """Whether an SSLError is a failed certificate check (permanent) rather than a broken handshake."""
    return "certificate" in str(exc).lower()


def certificate_message(url: str) -> str:
    return (
        f"The TLS certificate of {url} does not verify against the trusted CAs; if the server uses a private CA, "
        "point REQUESTS_CA_BUNDLE at its CA bundle (verification cannot be turned off)"
    )

"""Salesforce's OAuth 2.0 endpoints: ``/services/oauth2/token`` (five grants) and ``/services/oauth2/authorize``.

The emulated org has one user and one connected app whose credentials are generated at start and published
in the ready file, so nothing secret is ever baked into the code. Access tokens expire after a configurable
time, so a client's re-login path can be exercised in seconds instead of the real two hours.
Bodies follow the reference §1: success ``{"access_token","instance_url","id","token_type","issued_at",
"signature","scope"}``; failure 400 ``{"error","error_description"}``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt

from target_salesforce.emulator.ids import new_id
from target_salesforce.emulator.wire import Request, Response, json_response

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Audiences Salesforce accepts for the JWT bearer grant; the emulator's own login URL is added per instance.
SALESFORCE_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")
# Salesforce authorization codes are valid for 15 minutes and can be used once.
AUTH_CODE_TTL_SECONDS = 15 * 60
# Salesforce's default session timeout.
DEFAULT_TOKEN_TTL_SECONDS = 2 * 60 * 60


@dataclass(frozen=True)
class Credentials:
    """The demo org's connected app and user. Generated per run so that no secret lives in the source."""

    client_id: str
    client_secret: str
    username: str
    password: str
    security_token: str
    refresh_token: str
    org_id: str
    user_id: str

    @classmethod
    def generate(cls) -> Credentials:
        return cls(
            client_id="3MVG9" + secrets.token_urlsafe(60).replace("-", "A").replace("_", "z"),
            client_secret=secrets.token_hex(32).upper(),
            username="demo@emulator.example.com",
            password=secrets.token_urlsafe(12),
            security_token=secrets.token_urlsafe(18),
            refresh_token="5Aep861" + secrets.token_urlsafe(64),
            org_id=new_id("00D"),
            user_id=new_id("005"),
        )


class OAuthError(Exception):
    """A refused token or authorize request, answered as Salesforce does: 400 ``{"error","error_description"}``."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description

    def response(self) -> Response:
        return json_response(400, {"error": self.error, "error_description": self.description})


BAD_CLIENT = OAuthError("invalid_client_id", "client identifier invalid")
BAD_SECRET = OAuthError("invalid_client", "invalid client credentials")
AUTH_FAILURE = OAuthError("invalid_grant", "authentication failure")


@dataclass(frozen=True)
class _AuthCode:
    redirect_uri: str
    code_challenge: str | None
    expires_at: float


class TokenAuthority:
    """Issues and checks access tokens. Thread-safe: the server calls it from many handler threads."""

    def __init__(
        self,
        credentials: Credentials,
        jwt_public_key: Any,
        *,
        login_url: str,
        instance_url: str,
        token_ttl_seconds: float = DEFAULT_TOKEN_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.credentials = credentials
        self._jwt_key = jwt_public_key
        self._login_url = login_url
        self._instance_url = instance_url
        self._ttl = token_ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}  # access token -> expiry (epoch seconds)
        self._refresh_tokens = {credentials.refresh_token}
        self._codes: dict[str, _AuthCode] = {}

    # --- access tokens -------------------------------------------------------------------------------

    def is_valid(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header (``Bearer`` or the older ``OAuth`` scheme) holds a live token."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() not in ("bearer", "oauth") or not token:
            return False
        with self._lock:
            expiry = self._tokens.get(token.strip())
            return expiry is not None and expiry > self._clock()

    def expire_all(self) -> None:
        """Invalidate every issued access token (refresh tokens stay valid, as after a session timeout)."""
        with self._lock:
            self._tokens.clear()

    def _issue(self, *, with_refresh_token: bool = False) -> Response:
        now = self._clock()
        token = f"{self.credentials.org_id}!{secrets.token_urlsafe(72)}"
        identity = f"{self._login_url}/id/{self.credentials.org_id}/{self.credentials.user_id}"
        issued_at = str(int(now * 1000))
        # Salesforce signs id + issued_at with the consumer secret so a client can check the answer's origin.
        digest = hmac.new(
            self.credentials.client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256
        ).digest()
        body: dict[str, Any] = {
            "access_token": token,
            "instance_url": self._instance_url,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
            "signature": base64.b64encode(digest).decode(),
            "scope": "api refresh_token",
        }
        with self._lock:
            self._tokens = {t: exp for t, exp in self._tokens.items() if exp > now}
            self._tokens[token] = now + self._ttl
            if with_refresh_token:
                refresh = "5Aep861" + secrets.token_urlsafe(64)
                self._refresh_tokens.add(refresh)
                body["refresh_token"] = refresh
        return json_response(200, body)

    # --- /services/oauth2/token ----------------------------------------------------------------------

    def token(self, req: Request) -> Response:
        """``POST /services/oauth2/token``: dispatch on ``grant_type``."""
        if req.method != "POST":
            return OAuthError("invalid_request", "must use HTTP POST").response()
        form = {k: v[0] for k, v in parse_qs(req.body.decode("utf-8", "replace")).items()}
        grants = {
            "refresh_token": self._refresh_grant,
            "password": self._password_grant,
            JWT_GRANT: self._jwt_grant,
            "client_credentials": self._client_credentials_grant,
            "authorization_code": self._code_grant,
        }
        grant = grants.get(form.get("grant_type", ""))
        try:
            if grant is None:
                raise OAuthError("unsupported_grant_type", "grant type not supported")
            return grant(form, req)
        except OAuthError as exc:
            return exc.response()

    def _check_client(self, client_id: str | None, client_secret: str | None, *, secret_required: bool) -> None:
        if not client_id or not hmac.compare_digest(client_id, self.credentials.client_id):
            raise BAD_CLIENT
        if client_secret is None and not secret_required:
            return
        if not client_secret or not hmac.compare_digest(client_secret, self.credentials.client_secret):
            raise BAD_SECRET

    def _refresh_grant(self, form: dict[str, str], req: Request) -> Response:
        # The secret is optional for the refresh grant (connected apps may not require it) but checked if sent.
        self._check_client(form.get("client_id"), form.get("client_secret"), secret_required=False)
        with self._lock:
            known = form.get("refresh_token") in self._refresh_tokens
        if not known:
            raise OAuthError("invalid_grant", "expired access/refresh token")
        return self._issue()

    def _password_grant(self, form: dict[str, str], req: Request) -> Response:
        self._check_client(form.get("client_id"), form.get("client_secret"), secret_required=True)
        creds = self.credentials
        # The emulator treats every caller as outside the org's trusted IP ranges, so the security token is
        # always required, appended to the password as Salesforce expects.
        expected = creds.password + creds.security_token
        if form.get("username", "").lower() != creds.username or not hmac.compare_digest(
            form.get("password", ""), expected
        ):
            raise AUTH_FAILURE
        return self._issue()

    def _client_credentials_grant(self, form: dict[str, str], req: Request) -> Response:
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = req.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            try:
                client_id, _, client_secret = base64.b64decode(basic[6:].strip()).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise BAD_CLIENT from None
        self._check_client(client_id, client_secret, secret_required=True)
        return self._issue()

    def _jwt_grant(self, form: dict[str, str], req: Request) -> Response:
        assertion = form.get("assertion", "")
        try:
            claims = jwt.decode(
                assertion,
                self._jwt_key,
                algorithms=["RS256"],
                audience=[*SALESFORCE_AUDIENCES, self._login_url],
                options={"require": ["iss", "sub", "aud", "exp"]},
            )
        except jwt.InvalidAudienceError:
            raise OAuthError("invalid_grant", "audience is invalid") from None
        except jwt.InvalidTokenError:
            # Bad signature, expired exp, malformed token or missing claim. Salesforce answers "invalid assertion"
            # for signature and format problems; it is inferred to answer the same for an expired exp.
            raise OAuthError("invalid_grant", "invalid assertion") from None
        self._check_client(str(claims["iss"]), None, secret_required=False)
        if str(claims["sub"]).lower() != self.credentials.username:
            # Inferred: an unknown subject is refused like a user who has not pre-authorized the app.
            raise OAuthError("invalid_grant", "user hasn't approved this consumer")
        return self._issue()

    def _code_grant(self, form: dict[str, str], req: Request) -> Response:
        with self._lock:
            code = self._codes.pop(form.get("code", ""), None)  # single use, even when the request then fails
        verifier = form.get("code_verifier")
        # A PKCE client may be public (no secret); without PKCE the secret is required.
        pkce = code is not None and code.code_challenge is not None
        self._check_client(form.get("client_id"), form.get("client_secret"), secret_required=not pkce)
        if code is None or code.expires_at < self._clock():
            raise OAuthError("invalid_grant", "invalid authorization code")
        if form.get("redirect_uri") != code.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri must match configuration")
        if pkce and (not verifier or not hmac.compare_digest(_s256(verifier), code.code_challenge or "")):
            raise OAuthError("invalid_grant", "invalid code verifier")
        return self._issue(with_refresh_token=True)

    # --- /services/oauth2/authorize ------------------------------------------------------------------

    def authorize(self, req: Request) -> Response:
        """``GET /services/oauth2/authorize``: the demo user approves at once; 302 back with ``code`` and ``state``.

        Errors about the client or the redirect URI are answered here (400) rather than by redirecting, as
        OAuth requires: an unverified redirect URI must never receive a response.
        """
        client_id, redirect_uri = req.param("client_id"), req.param("redirect_uri")
        if client_id != self.credentials.client_id:
            return BAD_CLIENT.response()
        if not redirect_uri or not urlsplit(redirect_uri).scheme:
            return OAuthError("redirect_uri_mismatch", "redirect_uri must match configuration").response()
        state = req.param("state")
        params: dict[str, str]
        challenge = req.param("code_challenge")
        method = req.param("code_challenge_method", "S256")
        if req.param("response_type") != "code":
            params = {"error": "unsupported_response_type", "error_description": "response type not supported"}
        elif challenge is not None and method != "S256":
            params = {"error": "invalid_request", "error_description": "code_challenge_method must be S256"}
        else:
            code = secrets.token_urlsafe(48)
            with self._lock:
                self._codes[code] = _AuthCode(redirect_uri, challenge, self._clock() + AUTH_CODE_TTL_SECONDS)
            params = {"code": code}
        if state is not None:
            params["state"] = state
        separator = "&" if urlsplit(redirect_uri).query else "?"
        return Response(302, b"", None, headers={"Location": redirect_uri + separator + urlencode(params)})


def _s256(verifier: str) -> str:
    """PKCE's S256 transform: base64url(sha256(verifier)) without padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()

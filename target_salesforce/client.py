"""The one Salesforce API client of a run: session, renewal, retries, error mapping and API-usage tracking.

Sink threads share it, so it holds one session (renewed once when it expires, however many threads notice),
one connection pool, and the retry rules that keep a retried write from being applied twice: a request is re-sent
after a lost answer only when re-sending is harmless; otherwise ``OutcomeUnknown`` lets the writer reconcile.
"""

from __future__ import annotations

import email.utils
import logging
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
import requests
import simple_salesforce
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

from target_salesforce import retry_pause
from target_salesforce.auth import LoginUnavailable, Token, certificate_message, is_certificate_error, resolve_auth
from target_salesforce.budget import ApiBudget
from target_salesforce.errors import ApiLimitReached, AuthError, ConfigError, SalesforceApiError, TargetError

DEFAULT_API_VERSION = "62.0"
DEFAULT_MAX_RETRIES = 5
DEFAULT_TIMEOUT_SECONDS = 120
# Full-jitter exponential backoff: retry n waits a random time up to min(BACKOFF_MAX, BACKOFF_BASE * 2**(n-1)).
# Read when a client is built, so tests can shrink them for clients built deep inside a target run.
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0
# A Retry-After longer than this is cut short: a run should fail visibly rather than sleep for hours.
MAX_RETRY_AFTER_SECONDS = 300.0
# Sink threads (about 8) each with a few Collections requests in flight share the pool.
POOL_MAXSIZE = 16
# Only POST creates something new each time it is sent; PATCH here is an update or an upsert by key.
_NOT_IDEMPOTENT = frozenset({"POST"})
# Answers that mean "not processed, come back later", so re-sending is safe for any method.
_REFUSED_UNPROCESSED = frozenset({429, 503})
_LIMIT_INFO = "Sforce-Limit-Info"
# Request bodies are encoded by msgspec, not by requests' json.dumps, which cannot encode a Decimal: a number value
# of more digits than a float keeps is a Decimal (``convert._number``), sent as a JSON number of exactly its digits.
# Without an enc_hook, a value of any other type JSON cannot hold fails loudly (TypeError), as json.dumps would.
_JSON_BODY = msgspec.json.Encoder(decimal_format="number")

logger = logging.getLogger(__name__)


class OutcomeUnknown(TargetError):
    """A non-idempotent request was sent but its answer was lost: Salesforce may or may not have applied it.

    Raised instead of re-sending (which could create records twice) so the writer can reconcile, e.g. look the
    records up by their match field, or reject them with a reason the user can act on.
    """

    def __init__(self, method: str, path: str, reason: str) -> None:
        super().__init__(
            f"{method} {path}: {reason} after the request was sent; Salesforce may or may not have applied it, "
            "so it was not sent again"
        )
        self.method = method
        self.path = path


class _Retryable(Exception):
    """An attempt worth repeating: an unprocessed answer (kept for the final error) or a network failure."""

    def __init__(self, reason: str, response: requests.Response | None = None, retry_after: float | None = None):
        super().__init__(reason)
        self.response = response
        self.retry_after = retry_after


@dataclass(frozen=True)
class _Call:
    method: str
    path: str
    send: dict[str, Any]  # data, params and stream, passed to requests as they are
    headers: Mapping[str, str]
    idempotent: bool


class _Backoff:
    """tenacity wait: the server's Retry-After when it sent one, else full-jitter exponential backoff."""

    def __init__(self, base: float, cap: float) -> None:
        self._jitter = wait_random_exponential(multiplier=base, max=cap)

    def __call__(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, _Retryable) and error.retry_after is not None:
            return error.retry_after
        return self._jitter(state)


class SalesforceClient:
    """Thread-safe access to one org's REST API for the whole run. Nothing touches the network until first use."""

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        session: requests.Session | None = None,
        backoff_base: float | None = None,
        backoff_max: float | None = None,
    ) -> None:
        self._auth = resolve_auth(config)
        self.api_version = _api_version(config.get("api_version") or DEFAULT_API_VERSION)
        max_retries = config.get("max_retries")
        self._max_retries = DEFAULT_MAX_RETRIES if max_retries is None else int(max_retries)
        self._timeout = float(config.get("request_timeout") or DEFAULT_TIMEOUT_SECONDS)
        self._http = session or _pooled_session()
        self._backoff = _Backoff(
            BACKOFF_BASE_SECONDS * retry_pause.scale() if backoff_base is None else backoff_base,
            BACKOFF_MAX_SECONDS * retry_pause.scale() if backoff_max is None else backoff_max,
        )
        self._token_lock = threading.Lock()
        self._token: Token | None = None
        self._stats_lock = threading.Lock()
        self._call_count = 0
        self._api_usage: tuple[int, int] | None = None
        self._budget = ApiBudget.from_config(config)

    # --- what the run reports --------------------------------------------------------------------------

    @property
    def call_count(self) -> int:
        """API requests sent that reached (or may have reached) Salesforce, retries included; logins excluded."""
        return self._call_count

    @property
    def api_usage(self) -> tuple[int, int] | None:
        """The org's (used, limit) daily API requests from the latest ``Sforce-Limit-Info`` header."""
        return self._api_usage

    def check_budget(self) -> None:
        """Raise ApiBudgetReached once the org's usage has reached the run's ``max_api_usage_percent``.

        The usage comes from the latest answer's header; only before any answer is ``/limits`` asked (one call).
        """
        if not self._budget.enabled:
            return
        if self._api_usage is None:
            daily = self.json("GET", "limits").get("DailyApiRequests") or {}
            if self._api_usage is None and "Max" in daily:
                self._api_usage = (daily["Max"] - daily.get("Remaining", 0), daily["Max"])
        if self._api_usage is not None:
            self._budget.check(*self._api_usage)

    # --- the session -----------------------------------------------------------------------------------

    @property
    def instance_url(self) -> str:
        return self._session_token().instance_url

    def simple_salesforce(self) -> simple_salesforce.Salesforce:
        """simple-salesforce on the current session and connection pool, for callers that want its API.

        Its calls bypass this client's retries and renewal; prefer ``request`` for writes.
        """
        token = self._session_token()
        return simple_salesforce.Salesforce(
            instance_url=token.instance_url, session_id=token.access_token, session=self._http, version=self.api_version
        )

    def _session_token(self) -> Token:
        with self._token_lock:
            if self._token is None:
                self._token = self._login()
            return self._token

    def _renew(self, stale: Token) -> Token:
        """Replace ``stale`` once: threads that saw the same expired session get the one new session."""
        with self._token_lock:
            if self._token is stale:
                if not self._auth.renewable:
                    raise AuthError(
                        "Salesforce refused the access_token (INVALID_SESSION_ID: expired or revoked) and no "
                        "renewable credentials were given; set client_id + client_secret + refresh_token (or "
                        "another auth group) so the target can log in again"
                    )
                logger.info("The Salesforce session expired; logging in again")
                self._token = self._login()
            assert self._token is not None  # set by _session_token before any request could see it stale
            return self._token

    def _login(self) -> Token:
        retrying = self._retrying(LoginUnavailable, "Login")
        return retrying(self._auth.login, self._http, timeout=self._timeout)

    # --- requests --------------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | str | Iterable[bytes] | None = None,
        params: dict | None = None,
        headers: dict | None = None,
        idempotent: bool | None = None,
        stream: bool = False,
    ) -> requests.Response:
        """Send one API request with the session's bearer token and return Salesforce's 2xx answer.

        ``path`` is relative to ``/services/data/vXX.X/`` or absolute (``/services/...``). ``json`` is encoded
        here rather than by requests (see ``_JSON_BODY``). ``idempotent`` says whether re-sending after a lost answer
        is harmless; by default every method but POST is. ``data`` may be an iterable with a length, iterated anew
        on each attempt; with ``stream`` the body is left to be read.
        Raises OutcomeUnknown, AuthError, ApiLimitReached, SalesforceApiError or TargetError (network).
        """
        method = method.upper()
        if json is not None:
            data = _JSON_BODY.encode(json)
            headers = {"Content-Type": "application/json", **(headers or {})}  # what requests sets for json=
        call = _Call(
            method=method,
            path=path,
            send={"data": data, "params": params, "stream": stream},
            headers=headers or {},
            idempotent=method not in _NOT_IDEMPOTENT if idempotent is None else idempotent,
        )
        try:
            response = self._retrying(_Retryable, f"{method} {path}")(self._attempt, call)
        except _Retryable as exc:
            if exc.response is None:
                raise TargetError(f"{method} {path} failed {self._max_retries + 1} time(s): {exc}") from None
            response = exc.response
        if not response.ok:
            raise self._api_error(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """``request`` and its JSON answer; None when Salesforce answers without a body (204)."""
        response = self.request(method, path, **kwargs)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise TargetError(f"Salesforce answered {method} {path} with a body that is not JSON") from None

    def query_all(self, soql: str) -> list[dict]:
        """Every record a SOQL query returns, following ``nextRecordsUrl`` page by page."""
        page = self.json("GET", "query", params={"q": soql})
        records = list(page["records"])
        while not page.get("done", True) and page.get("nextRecordsUrl"):
            page = self.json("GET", page["nextRecordsUrl"])
            records.extend(page["records"])
        return records

    def _attempt(self, call: _Call) -> requests.Response:
        token = self._session_token()
        response = self._send(token, call)
        if response.status_code == 401:
            # A 401 means the request was not processed, so repeating it after renewal is safe for any method.
            response = self._send(self._renew(token), call)
            if response.status_code == 401:
                raise AuthError(
                    "Salesforce refused a session it had just issued (INVALID_SESSION_ID); check the connected "
                    "app's IP relaxation and session policies"
                )
        status = response.status_code
        if status in _REFUSED_UNPROCESSED:
            raise _Retryable(_describe(response), response, _retry_after(response))
        if status >= 500:
            # Other 5xx (gateway timeouts, internal errors) may come after the work was done.
            if not call.idempotent:
                raise OutcomeUnknown(call.method, call.path, _describe(response))
            raise _Retryable(_describe(response), response)
        return response

    def _send(self, token: Token, call: _Call) -> requests.Response:
        url = token.instance_url + (call.path if call.path.startswith("/") else self._data_path(call.path))
        headers = {**call.headers, "Authorization": f"Bearer {token.access_token}"}
        try:
            response = self._http.request(
                call.method, url, headers=headers, timeout=self._timeout, allow_redirects=False, **call.send
            )
        except requests.exceptions.SSLError as exc:
            if is_certificate_error(exc):
                raise TargetError(certificate_message(token.instance_url)) from None
            raise _Retryable("TLS handshake failed") from None  # nothing is sent before the handshake succeeds
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            if _never_sent(exc):
                raise _Retryable(f"cannot connect to {token.instance_url} ({_reason(exc)})") from None
            self._count_call()
            if not call.idempotent:
                raise OutcomeUnknown(call.method, call.path, f"no answer ({_reason(exc)})") from None
            raise _Retryable(f"no answer ({_reason(exc)})") from None
        self._count_call()
        self._note_usage(response)
        return response

    def _data_path(self, path: str) -> str:
        return f"/services/data/v{self.api_version}/{path}"

    def _retrying(self, retry_on: type[Exception], what: str) -> Retrying:
        def log(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            logger.warning(
                "%s: %s; retry %d of %d in %.1f s", what, error, state.attempt_number, self._max_retries, wait
            )

        return Retrying(
            stop=stop_after_attempt(self._max_retries + 1),
            wait=self._backoff,
            retry=retry_if_exception_type(retry_on),
            before_sleep=log,
            reraise=True,
        )

    def _count_call(self) -> None:
        with self._stats_lock:
            self._call_count += 1

    def _note_usage(self, response: requests.Response) -> None:
        """Keep the highest usage any answer reported: parallel requests (Collections rounds, a batch written in the
        background) answer in any order, and the last answer to arrive may carry an older count."""
        header = response.headers.get(_LIMIT_INFO)
        usage = simple_salesforce.Salesforce.parse_api_usage(header).get("api-usage") if header else None
        if usage is not None:
            with self._stats_lock:
                latest = (usage.used, usage.total)
                if self._api_usage is None or latest[1] != self._api_usage[1] or latest[0] > self._api_usage[0]:
                    self._api_usage = latest

    def _api_error(self, response: requests.Response) -> TargetError:
        code, message = _error_detail(response)
        if response.status_code == 403 and code == "REQUEST_LIMIT_EXCEEDED":
            usage = f", {self._api_usage[0]}/{self._api_usage[1]} used" if self._api_usage else ""
            return ApiLimitReached(
                f"the org's daily API request limit is used up (REQUEST_LIMIT_EXCEEDED{usage}); calls free up "
                "as Salesforce's rolling 24-hour window moves on"
            )
        return SalesforceApiError(response.status_code, code, message)


def _pooled_session() -> requests.Session:
    """A session whose pool holds a connection per concurrent thread. TLS verification stays requests' default
    (which honours REQUESTS_CA_BUNDLE); retries are ours, so the adapter makes none."""
    session = requests.Session()
    session.mount("https://", HTTPAdapter(pool_maxsize=POOL_MAXSIZE, max_retries=0))
    return session


def _api_version(value: Any) -> str:
    match = re.fullmatch(r"v?(\d{2,3}\.\d)", str(value).strip())
    if not match:
        raise ConfigError(f"api_version must look like 62.0; got {value!r}")
    return match.group(1)


def _never_sent(exc: requests.RequestException) -> bool:
    """Whether the connection failed before any byte of the request left (refused, unresolvable, connect timeout).

    requests wraps urllib3's connect failures as ``ConnectionError(MaxRetryError(reason=NewConnectionError))``;
    a drop after sending arrives as ``ConnectionError(ProtocolError)`` or a ``ReadTimeout`` instead.
    """
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    cause = exc.args[0] if exc.args else None
    if isinstance(cause, MaxRetryError):
        cause = cause.reason
    return isinstance(cause, NewConnectionError | ConnectTimeoutError)


def _reason(exc: BaseException) -> str:
    """A short name for a network failure: the innermost cause's type, without URLs or stack noise."""
    cause: Any = exc
    while cause.args and isinstance(cause.args[-1], BaseException):
        cause = cause.args[-1]
    if isinstance(cause, MaxRetryError) and cause.reason is not None:
        cause = cause.reason
    return type(cause).__name__


def _retry_after(response: requests.Response) -> float | None:
    """``Retry-After`` in seconds (a number or an HTTP date), capped at MAX_RETRY_AFTER_SECONDS."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def _error_detail(response: requests.Response) -> tuple[str, str]:
    """(errorCode, message) from Salesforce's JSON-array error body, or the best the body offers."""
    try:
        body = response.json()
    except ValueError:
        body = None
    first = body[0] if isinstance(body, list) and body else body
    if isinstance(first, dict):
        code = first.get("errorCode") or first.get("error") or f"HTTP_{response.status_code}"
        return str(code), str(first.get("message") or first.get("error_description") or "")
    text = " ".join(response.text.split())[:300]
    return f"HTTP_{response.status_code}", text or response.reason or ""


def _describe(response: requests.Response) -> str:
    code, _ = _error_detail(response)
    return f"HTTP {response.status_code} {code}"

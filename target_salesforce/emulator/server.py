"""The emulator's HTTPS server: TLS, routing, the auth check, API usage and limit, faults, latency, call log
and the ``/_emulator/`` test controls.

Two layers: ``Emulator`` maps a ``Request`` to a ``Response`` (or to "drop the connection") and holds every
cross-cutting rule in one place; ``EmulatorServer`` owns the sockets, the generated CA and key files, and
the threads. Protocol details live in oauth.py, rest.py, collections.py, composite.py and bulk.py.

Which requests the faults and counters touch (a decision, documented for test writers):
- API calls are requests under ``/services/data/vXX.X/``. Only they count toward the daily API usage, carry
  ``Sforce-Limit-Info`` and consume ``http_503_next``, ``drop_connection_next``, ``drop_after_processing_next``
  and ``expire_sessions_after_calls`` (the first three only on the calls ``only_calls``/``skip_calls`` aim them
  at). The token endpoint is on the login host, a different service in a
  real org, so token requests never fail by injected fault; a client's re-login therefore always works.
- A 503 and a dropped connection are decided before the auth check (they come from Salesforce's front end);
  refused calls (401, 403, 503, dropped) do not count toward the daily usage.
- ``GET /services/data/`` (the version list) needs no session and does not count, as in Salesforce.
- A Composite request (``POST .../composite``) is one API call whatever its subrequests: counted once, one
  ``Sforce-Limit-Info``, one call-log entry (listing its subrequests), and faults aim at it as a whole.
- Latency is slept before the request is handled and outside every lock, so concurrent clients overlap.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import ssl
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trustme
from cryptography import x509

from target_salesforce.emulator import rest
from target_salesforce.emulator.builtin_objects import builtin_schema
from target_salesforce.emulator.bulk import BulkIngest
from target_salesforce.emulator.collections import Collections
from target_salesforce.emulator.composite import Composite
from target_salesforce.emulator.faults import Faults
from target_salesforce.emulator.oauth import DEFAULT_TOKEN_TTL_SECONDS, Credentials, TokenAuthority
from target_salesforce.emulator.store import Store
from target_salesforce.emulator.wire import ApiError, Request, Response, json_response

log = logging.getLogger("salesforce_emulator")

# Enterprise Edition's daily allocation starts at 100,000 requests (plus 1,000 per user licence): the
# smallest production org a data-loading tool meets, and low enough that a runaway client notices.
DEFAULT_DAILY_API_LIMIT = 100_000
# A Bulk 2.0 job takes up to 150 MB; anything larger is refused before it is held in memory.
MAX_BODY_BYTES = 150 * 1024 * 1024
# How long an idle keep-alive connection (or a stalled TLS handshake) may hold a thread.
IDLE_TIMEOUT_SECONDS = 120

_API_PATH = re.compile(r"/services/data/v(\d+\.\d)(?:/(.*))?\Z", re.DOTALL)
SESSION_INVALID = ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")
LIMIT_EXCEEDED = ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
UNAVAILABLE = ApiError(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable, try again later.")


@dataclass
class Settings:
    """What the command line configures; faults may override ``latency_ms`` and ``daily_api_limit``."""

    latency_ms: int = 0
    daily_api_limit: int = DEFAULT_DAILY_API_LIMIT
    token_ttl_seconds: float = DEFAULT_TOKEN_TTL_SECONDS
    # Keep each call's request body in the call log: how a test reads exactly what a client sent (the store keeps
    # numbers as floats, see docs/emulator-design.md), off by default since a Bulk upload can be 100 MB.
    log_bodies: bool = False


class Emulator:
    """Request → Response for the whole emulator, without sockets (so every rule is testable in one place).

    ``handle`` returns None when the connection must be closed without an answer (the drop faults).
    """

    def __init__(self, store: Store, authority: TokenAuthority, faults: Faults, settings: Settings) -> None:
        self.store = store
        self.authority = authority
        self.faults = faults
        self.settings = settings
        self.rest = rest.RestApi(store, faults, api_usage=self.api_usage)
        self.collections = Collections(store, faults)
        self.bulk = BulkIngest(store, faults)
        self.composite = Composite(store, self._route)
        self._lock = threading.Lock()
        self._used = 0
        self._calls: list[dict[str, Any]] = []

    # --- the daily API limit -------------------------------------------------------------------------

    def _limit(self) -> int:
        override = self.faults.daily_api_limit
        return self.settings.daily_api_limit if override is None else override

    def api_usage(self) -> tuple[int, int]:
        """(calls counted today, daily limit), as ``Sforce-Limit-Info`` and ``/limits`` report them."""
        with self._lock:
            return self._used, self._limit()

    def _count_call(self) -> bool:
        """Count one API call; False (and not counted) when the daily limit is already used up."""
        with self._lock:
            if self._used >= self._limit():
                return False
            self._used += 1
            return True

    # --- dispatch ------------------------------------------------------------------------------------

    def handle(self, req: Request) -> Response | None:
        if req.path.startswith("/_emulator/"):
            return self._guarded(self._control, req)
        drop_after = False
        api = _API_PATH.match(req.path)
        if api:
            targeted = self.faults.targets(f"{req.method} {api.group(2) or ''}")
            if targeted and self.faults.take("drop_connection_next"):
                self._log(req, Response(0))
                return None
            self._sleep_latency()
            call = partial(self._api_call, version=api.group(1), path=api.group(2) or "", targeted=targeted)
            resp = self._guarded(call, req)
            resp.headers["Sforce-Limit-Info"] = "api-usage={}/{}".format(*self.api_usage())
            # Taken after the handler ran: the call is fully processed (a write stored, a job closed) and only
            # its answer is lost.
            drop_after = targeted and self.faults.take("drop_after_processing_next")
        else:
            self._sleep_latency()
            resp = self._guarded(self._unmetered, req)
        self._log(req, resp)
        return None if drop_after else resp

    def _guarded(self, handler: Callable[[Request], Response], req: Request) -> Response:
        """Run a handler; an ApiError is Salesforce's error array, anything else a logged 500."""
        try:
            return handler(req)
        except ApiError as exc:
            return exc.response()
        except Exception:
            log.error("unexpected error on %s %s\n%s", req.method, req.path, traceback.format_exc())
            return ApiError(500, "UNKNOWN_EXCEPTION", "An unexpected error occurred.").response()

    def _unmetered(self, req: Request) -> Response:
        """Login host endpoints and the version list: no session, no usage."""
        if req.path == "/services/oauth2/token":
            return self.authority.token(req)
        if req.path == "/services/oauth2/authorize":
            return self.authority.authorize(req)
        if req.path in ("/services/data", "/services/data/"):
            rest.require_method(req, "GET")
            return rest.versions()
        raise rest.NOT_FOUND

    def _api_call(self, req: Request, *, version: str, path: str, targeted: bool) -> Response:
        if float(version) < rest.MIN_VERSION:
            raise rest.NOT_FOUND
        if targeted and self.faults.take("http_503_next"):
            raise UNAVAILABLE
        if not self.authority.is_valid(req.headers.get("authorization")):
            raise SESSION_INVALID
        if self.faults.session_expires_now():
            self.authority.expire_all()
            raise SESSION_INVALID
        if not self._count_call():
            raise LIMIT_EXCEEDED
        return self._route(req, version, path)

    def _route(self, req: Request, version: str, path: str) -> Response:
        """The handler of an authenticated, counted call; Composite runs its subrequests through it too."""
        if path == "jobs/ingest" or path.startswith("jobs/ingest/"):
            return self.bulk.handle(req, version, path[len("jobs/ingest") :])
        if path == "composite/sobjects" or path.startswith("composite/sobjects/"):
            return self.collections.handle(req, version, path[len("composite/sobjects") :])
        if path == "composite" or path.startswith("composite/"):
            return self.composite.handle(req, version, path[len("composite") :])
        return self.rest.handle(req, version, path)

    def _sleep_latency(self) -> None:
        override = self.faults.latency_ms
        latency = self.settings.latency_ms if override is None else override
        if latency > 0:
            time.sleep(latency / 1000)

    def _log(self, req: Request, resp: Response) -> None:
        entry: dict[str, Any] = {"method": req.method, "path": req.path, "status": resp.status, "records": resp.records}
        if resp.subrequests is not None:
            entry["subrequests"] = resp.subrequests
        if self.settings.log_bodies:
            entry["body"] = req.body.decode("utf-8", errors="replace")
        with self._lock:
            self._calls.append(entry)

    # --- /_emulator/ controls (no auth, not logged, not metered) -------------------------------------

    def _control(self, req: Request) -> Response:
        route = (req.method, req.path.rstrip("/"))
        if route == ("POST", "/_emulator/reset"):
            self.reset()
            return Response(204, b"", None)
        if route == ("GET", "/_emulator/calls"):
            with self._lock:
                return json_response(200, list(self._calls))
        if route == ("GET", "/_emulator/faults"):
            return json_response(200, self.faults.snapshot())
        if route == ("POST", "/_emulator/faults"):
            settings = req.json() or {}
            if not isinstance(settings, dict):
                return json_response(400, {"error": "faults must be a JSON object"})
            try:
                self.faults.replace(settings)
            except ValueError as exc:
                return json_response(400, {"error": str(exc)})
            return json_response(200, self.faults.snapshot())
        return json_response(404, {"error": f"no control {req.method} {req.path}"})

    def reset(self) -> None:
        """Forget every record, Bulk job, query cursor, logged call, API usage and fault; keep schema and tokens."""
        self.store.reset()
        self.bulk.reset()
        self.rest.reset()
        self.faults.clear()
        with self._lock:
            self._calls.clear()
            self._used = 0

    def shutdown(self) -> None:
        self.bulk.shutdown()


# --- HTTP over TLS -------------------------------------------------------------------------------------


class _BodyTooLarge(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    """One connection: reads HTTP/1.1 requests (keep-alive) and hands them to the Emulator."""

    protocol_version = "HTTP/1.1"
    server_version = "salesforce-emulator"
    sys_version = ""
    timeout = IDLE_TIMEOUT_SECONDS
    # Headers and body go out in separate writes; without TCP_NODELAY, Nagle + delayed ACK add ~40 ms a call.
    disable_nagle_algorithm = True
    server: _TLSServer

    def setup(self) -> None:
        # The TLS handshake happens here, in the connection's own thread, so a slow client never blocks accept().
        self.request.settimeout(self.timeout)
        self.request = self.server.tls.wrap_socket(self.request, server_side=True)
        super().setup()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            # wrap_socket detached the accepted socket; the server only ever sees (and closes) that husk.
            self.connection.close()

    def _serve(self) -> None:
        url = urlsplit(self.path)
        try:
            body = self._read_body()
        except _BodyTooLarge:
            self.close_connection = True
            self._send(ApiError(413, "REQUEST_ENTITY_TOO_LARGE", "Request body too large").response())
            return
        except ValueError:
            self.close_connection = True
            self._send(ApiError(400, "INVALID_REQUEST", "Malformed Content-Length or chunk").response())
            return
        req = Request(
            method=self.command,
            path=url.path,
            query=parse_qs(url.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        resp = self.server.app.handle(req)
        if resp is None:
            self.close_connection = True  # finish() closes the socket without a word
            return
        self._send(resp)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        if length > MAX_BODY_BYTES:
            raise _BodyTooLarge
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while size := int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16):
            total += size
            if total > MAX_BODY_BYTES:
                raise _BodyTooLarge
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)  # the CRLF after each chunk
        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
            pass  # trailer headers, ignored
        return b"".join(parts)

    def _send(self, resp: Response) -> None:
        self.send_response(resp.status)
        if resp.content_type:
            self.send_header("Content-Type", resp.content_type)
        for name, value in resp.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(resp.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and resp.body:
            self.wfile.write(resp.body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    # Set once the bound port is known: the Emulator's OAuth answers name the server's own URL.
    app: Emulator

    def __init__(self, address: tuple[str, int], tls: ssl.SSLContext) -> None:
        super().__init__(address, _Handler)
        self.tls = tls

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up, time out or fail the handshake are routine; anything else is a bug worth a trace.
        err = sys.exc_info()[1]
        if isinstance(err, ssl.SSLError | ConnectionError | TimeoutError):
            log.debug("connection from %s ended: %s", client_address, err)
        else:
            log.error("error serving %s\n%s", client_address, traceback.format_exc())


class EmulatorServer:
    """A running emulator: the TLS listener, the Emulator behind it, and the files clients need.

    The CA bundle and the JWT signing key are written to ``state_dir`` (a fresh temporary directory unless
    given, removed on ``stop``). Call ``start()``, read ``ready_info()``, and ``stop()`` at the end.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        db: str | None = None,
        object_files: tuple[str, ...] = (),
        settings: Settings | None = None,
        state_dir: str | None = None,
    ) -> None:
        self._own_dir = state_dir is None
        self.state_dir = Path(state_dir or tempfile.mkdtemp(prefix="salesforce-emulator-"))
        self.state_dir.mkdir(parents=True, exist_ok=True)
        settings = settings or Settings()

        ca = trustme.CA(organization_name="Salesforce Emulator")
        identities = ["127.0.0.1", "localhost", *([host] if host not in ("127.0.0.1", "localhost", "") else [])]
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(*identities).configure_cert(tls)
        self.ca_bundle = self.state_dir / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_bundle))
        # The connected app's "digital signature" certificate: the JWT grant verifies against its public key.
        signer = ca.issue_cert("jwt-signer@emulator.example.com", key_type=trustme.KeyType.RSA)
        self.private_key = self.state_dir / "jwt-private-key.pem"
        _write_private(self.private_key, signer.private_key_pem.bytes())
        certificate = x509.load_pem_x509_certificate(signer.cert_chain_pems[0].bytes())

        schema = builtin_schema()
        for path in object_files:
            schema.load_file(path)
        store = Store(schema, db)

        self.httpd = _TLSServer((host, port), tls)
        url_host = "127.0.0.1" if host in ("", "0.0.0.0") else host
        self.base_url = f"https://{url_host}:{self.httpd.server_address[1]}"
        self.credentials = Credentials.generate()
        authority = TokenAuthority(
            self.credentials,
            certificate.public_key(),
            login_url=self.base_url,
            instance_url=self.base_url,
            token_ttl_seconds=settings.token_ttl_seconds,
        )
        self.app = Emulator(store, authority, Faults(), settings)
        self.httpd.app = self.app
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="emulator-accept", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.app.shutdown()
        if self._own_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def ready_info(self) -> dict[str, str]:
        """What the ready file holds: where to connect, what to trust, and working demo credentials."""
        creds = self.credentials
        return {
            "login_url": self.base_url,
            "instance_url": self.base_url,
            "ca_bundle": str(self.ca_bundle),
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
            "refresh_token": creds.refresh_token,
            "username": creds.username,
            "password": creds.password,
            "security_token": creds.security_token,
            "private_key": str(self.private_key),
        }


def _write_private(path: Path, data: bytes) -> None:
    """Write a key readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def write_ready_file(path: str, info: dict[str, Any]) -> None:
    """Write the ready JSON atomically (temp file + rename) so a poller never reads half of it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(info, fh)
    os.replace(tmp, target)

"""``target-salesforce-login``: get a refresh token with the OAuth authorization-code flow and PKCE (S256).

A one-request HTTP server on 127.0.0.1 receives the redirect; the code is exchanged at
``{login_url}/services/oauth2/token`` and the refresh token printed as a config-ready JSON snippet on stdout.
That snippet is the one place a secret is printed, on purpose; no log or error line carries one.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.server
import json
import os
import secrets
import sys
import threading
import webbrowser
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

from target_salesforce.auth import DEFAULT_LOGIN_URL

PROG = "target-salesforce-login"


class LoginError(Exception):
    """A failure reported as one line, exit 1."""


def pkce_pair() -> tuple[str, str]:
    """A fresh ``(code_verifier, code_challenge)`` for S256."""
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()
    return verifier, challenge


class _CallbackHandler(http.server.BaseHTTPRequestHandler):
    params: dict[str, str] | None = None

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != "/callback":
            self.send_error(404)
            return
        self.server.params = {k: v[0] for k, v in parse_qs(parts.query).items()}  # type: ignore[attr-defined]
        body = b"Login finished; you can close this window and return to the terminal.\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the request line carries the authorization code."""


def wait_for_callback(server: http.server.HTTPServer, timeout: float) -> dict[str, str]:
    """Serve requests until ``/callback`` arrives (or ``timeout`` passes)."""
    server.params = None  # type: ignore[attr-defined]
    done = threading.Event()

    def serve() -> None:
        while getattr(server, "params", None) is None and not done.is_set():
            server.handle_request()

    server.timeout = 0.5
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    thread.join(timeout)
    done.set()
    params = getattr(server, "params", None)
    if params is None:
        raise LoginError(f"no redirect arrived within {timeout:g} s; run the command again")
    return params


def exchange_code(
    login_url: str,
    client_id: str,
    client_secret: str | None,
    code: str,
    verifier: str,
    redirect_uri: str,
    timeout: float,
) -> dict[str, Any]:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": client_id,
        "code_verifier": verifier,
        "redirect_uri": redirect_uri,
    }
    if client_secret:
        form["client_secret"] = client_secret
    try:
        response = requests.post(f"{login_url}/services/oauth2/token", data=form, timeout=timeout)
    except requests.exceptions.RequestException as exc:
        raise LoginError(f"cannot reach {login_url} ({type(exc).__name__})") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise LoginError(f"{login_url}/services/oauth2/token answered HTTP {response.status_code} without OAuth JSON")
    if response.status_code != 200 or "error" in body:
        raise LoginError(f"token request refused: {body.get('error')} ({body.get('error_description', '')})")
    if not isinstance(body.get("refresh_token"), str):
        raise LoginError("no refresh_token in the answer; give the connected app the refresh_token scope")
    return body


def login(args: argparse.Namespace) -> dict[str, str]:
    login_url = args.login_url.rstrip("/")
    if urlsplit(login_url).scheme != "https":
        raise LoginError(f"--login-url must be an https:// URL; got {login_url!r}")
    client_secret = args.client_secret or os.environ.get("TARGET_SALESFORCE_CLIENT_SECRET")
    try:
        server = http.server.HTTPServer(("127.0.0.1", args.port), _CallbackHandler)
    except OSError as exc:
        raise LoginError(f"cannot listen on 127.0.0.1:{args.port} ({exc.strerror})") from None
    with server:
        redirect_uri = f"http://127.0.0.1:{server.server_address[1]}/callback"
        verifier, challenge = pkce_pair()
        state = secrets.token_urlsafe(24)
        query = {
            "response_type": "code",
            "client_id": args.client_id,
            "redirect_uri": redirect_uri,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": state,
            "scope": "api refresh_token",
        }
        url = f"{login_url}/services/oauth2/authorize?{urlencode(query)}"
        print(f"Open this URL to log in:\n{url}", file=sys.stderr, flush=True)
        if not args.no_browser:
            webbrowser.open(url)
        params = wait_for_callback(server, args.timeout)
    if "error" in params:
        raise LoginError(f"authorization refused: {params['error']} ({params.get('error_description', '')})")
    if not secrets.compare_digest(params.get("state", ""), state):
        raise LoginError("the redirect's state does not match this login; run the command again")
    if not params.get("code"):
        raise LoginError("the redirect carried no authorization code")
    body = exchange_code(login_url, args.client_id, client_secret, params["code"], verifier, redirect_uri, args.timeout)
    snippet = {"login_url": login_url, "client_id": args.client_id, "refresh_token": body["refresh_token"]}
    if isinstance(body.get("instance_url"), str):
        snippet["instance_url"] = body["instance_url"]
    return snippet


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Get a Salesforce refresh token (authorization code + PKCE).")
    p.add_argument("--login-url", default=DEFAULT_LOGIN_URL)
    p.add_argument("--client-id", required=True, help="the connected app's consumer key")
    p.add_argument("--client-secret", help="consumer secret (or env TARGET_SALESFORCE_CLIENT_SECRET); optional")
    p.add_argument("--port", type=int, default=0, help="local redirect port (0 = any free port)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the redirect")
    p.add_argument("--no-browser", action="store_true", help="only print the URL to open")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        snippet = login(args)
    except LoginError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: error: interrupted", file=sys.stderr)
        return 1
    print(json.dumps(snippet, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

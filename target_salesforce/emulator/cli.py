"""The ``salesforce-emulator`` command: start the emulator, announce it, serve until SIGTERM/SIGINT.

The announcement (one JSON object, on stdout and atomically in ``--ready-file``) is the only interface a
test harness or demo script needs: URLs, the CA bundle to trust, and working demo credentials.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import signal
import sys
import threading

from target_salesforce.emulator.oauth import DEFAULT_TOKEN_TTL_SECONDS
from target_salesforce.emulator.server import DEFAULT_DAILY_API_LIMIT, EmulatorServer, Settings, write_ready_file

log = logging.getLogger("salesforce_emulator")


def _non_negative(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return number


def _positive_float(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="salesforce-emulator",
        description=(
            "A local HTTPS emulator of Salesforce's OAuth, REST, sObject Collections, SOQL and Bulk 2.0 APIs. "
            "Once it accepts connections it prints one JSON object (login_url, instance_url, ca_bundle and "
            "demo credentials) on stdout and writes it to --ready-file. Stop it with SIGTERM or Ctrl-C."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=_non_negative, default=0, help="port; 0 picks a free one (default)")
    parser.add_argument("--ready-file", help="write the ready JSON here (atomically) once serving")
    parser.add_argument("--db", help="SQLite file for the records (default: in memory)")
    parser.add_argument(
        "--objects",
        nargs="+",
        action="extend",
        default=[],
        metavar="FILE",
        help="describe JSON of extra objects (a describe, a list of them, or {'sobjects': [...]})",
    )
    parser.add_argument(
        "--latency-ms", type=_non_negative, default=0, help="sleep this long before answering each call"
    )
    parser.add_argument(
        "--token-ttl-seconds",
        type=_positive_float,
        default=DEFAULT_TOKEN_TTL_SECONDS,
        help=f"access token lifetime (default {DEFAULT_TOKEN_TTL_SECONDS}, Salesforce's 2 hours)",
    )
    parser.add_argument(
        "--daily-api-limit",
        type=_non_negative,
        default=DEFAULT_DAILY_API_LIMIT,
        help=f"API calls allowed before 403 REQUEST_LIMIT_EXCEEDED (default {DEFAULT_DAILY_API_LIMIT:,}, "
        "an Enterprise Edition org's base allocation)",
    )
    parser.add_argument(
        "--log-bodies",
        action="store_true",
        help="keep each API call's request body (as text) in GET /_emulator/calls, to check what a client sent",
    )
    parser.add_argument(
        "--state-dir",
        help="keep the CA bundle and JWT key files here (default: a temporary directory removed on exit)",
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="stderr log level"
    )
    return parser


# Collect the youngest objects every 50,000 net allocations instead of 700 (see ``_tune_garbage_collector``).
GC_THRESHOLDS = (50_000, 20, 20)


def _tune_garbage_collector() -> None:
    """Spare a Bulk job the collector's overhead, measured at about 15 % of its CPU at the default thresholds.

    A job allocates several containers per row (parsed row, values, results), all freed when its 10,000-row
    chunk is done and none in a reference cycle: at Python's default threshold the collector runs every 70
    rows and, each time enough survive, walks every object of the process. Freezing what start-up built
    (modules, schema, server) keeps those out of every later collection; garbage cycles are still collected.
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings(
        latency_ms=args.latency_ms,
        daily_api_limit=args.daily_api_limit,
        token_ttl_seconds=args.token_ttl_seconds,
        log_bodies=args.log_bodies,
    )
    try:
        server = EmulatorServer(
            host=args.host,
            port=args.port,
            db=args.db,
            object_files=tuple(args.objects),
            settings=settings,
            state_dir=args.state_dir,
        )
    except (OSError, ValueError, KeyError) as exc:
        log.error("cannot start the emulator: %s", exc)
        return 1

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    _tune_garbage_collector()
    server.start()
    info = server.ready_info()
    if args.ready_file:
        write_ready_file(args.ready_file, info)
    print(json.dumps(info), flush=True)
    log.info("serving on %s", info["instance_url"])
    while not stop.wait(0.2):
        pass
    log.info("stopping")
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

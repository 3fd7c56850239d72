"""The `kdt` command: run a project's scanner profile from CI, follow it, print a summary, enforce thresholds.

Talks only to the server's JSON API (`<host>/api/v1/`) with a personal API token.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from kdt import __version__

EXIT_OK = 0
EXIT_THRESHOLD = 1
EXIT_RUN_FAILED = 2
EXIT_TIMEOUT = 3
EXIT_ERROR = 4

EXIT_CODES_HELP = """\
exit codes:
  0  success (the run finished and no threshold was exceeded; with --async: the run was queued)
  1  a --threshold-* was exceeded by the project's open findings
  2  the run failed or was canceled on the server
  3  timed out waiting (--timeout); the run goes on on the server
  4  usage, authentication, permission, connection or server error

environment:
  KDT_HOST   the console's address, e.g. https://console.example.com (or --host)
  KDT_TOKEN  a personal API token from Settings › API Tokens (or --token)

example:
  kdt scan -p payments -t tenableiovm -b - --threshold-crit 0 --threshold-high 5 --timeout 60
"""

SEVERITIES = ("critical", "high", "medium", "low")
THRESHOLDS = {"crit": "critical", "high": "high", "med": "medium", "low": "low"}


class KdtError(Exception):
    """A failure reported to the user as one line on stderr, ending the command with `code`."""

    def __init__(self, message: str, code: int = EXIT_ERROR):
        super().__init__(message)
        self.message = message
        self.code = code


class ArgumentParser(argparse.ArgumentParser):
    """argparse exits 2 on a usage error; here 2 means "the run failed", so usage errors exit 4."""

    def error(self, message: str):  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------
class Api:
    """The console's `/api/v1/`: JSON in and out, errors turned into `KdtError` with the server's words."""

    def __init__(self, host: str, token: str, timeout: float = 30.0):
        host = host.strip().rstrip("/")
        if host.endswith("/api/v1"):
            host = host[: -len("/api/v1")]
        if not host.startswith(("http://", "https://")):
            raise KdtError(f"KDT_HOST must start with https:// (or http://), not “{host}”.")
        self.host = host
        self.base = host + "/api/v1"
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers.update(
            {
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "User-Agent": f"kdt/{__version__}",
            }
        )
        # Reads are retried through short outages; starting a run is not (the server refuses duplicates anyway).
        retry = Retry(
            total=4,
            backoff_factor=1.0,
            status_forcelist=(502, 503, 504),
            allowed_methods={"GET"},
            raise_on_status=False,
        )
        self.session.mount("http://", HTTPAdapter(max_retries=retry))
        self.session.mount("https://", HTTPAdapter(max_retries=retry))

    def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        """Send one request; returns (status, JSON body) for 2xx and 409, raises KdtError otherwise."""
        url = self.base + path
        try:
            response = self.session.request(
                method, url, timeout=self.timeout, allow_redirects=False, **kwargs
            )
        except requests.exceptions.SSLError as exc:
            raise KdtError(
                f"TLS error talking to {self.host}: {exc}. Check the certificate (REQUESTS_CA_BUNDLE)."
            )
        except requests.exceptions.Timeout:
            raise KdtError(
                f"{self.host} did not answer within {self.timeout:.0f} s. Try again, or check KDT_HOST."
            )
        except requests.exceptions.RequestException as exc:
            raise KdtError(
                f"Cannot reach {self.host} ({type(exc).__name__}). Check KDT_HOST and the network."
            )
        try:
            body = response.json()
        except ValueError:
            body = None
        if body is None or not isinstance(body, (dict, list)):
            raise KdtError(
                f"{self.host} answered HTTP {response.status_code} without JSON: is KDT_HOST the console's address?"
            )
        if 200 <= response.status_code < 300 or response.status_code == 409:
            return response.status_code, body
        detail = body.get("detail") if isinstance(body, dict) else None
        detail = detail if isinstance(detail, str) else f"HTTP {response.status_code}"
        if response.status_code == 401:
            raise KdtError(f"Authentication failed: {detail}")
        raise KdtError(detail)

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params=params or None)[1]


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------
def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A plain-text table that reads well in a CI log."""
    cells = [[str(h) for h in headers], *[["" if v is None else str(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(value.ljust(widths[i]) for i, value in enumerate(row)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _clock() -> str:
    return datetime.now().strftime("%H:%M:%S")


def _date(value: str | None) -> str:
    if not value:
        return ""
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return value


def summary(run: dict[str, Any], open_findings: dict[str, int]) -> str:
    """The project's open findings by severity (what the thresholds check), then what this run changed."""
    headers = ["PROJECT", "PROFILE", "META DATA", "TOOL", "CRITICAL", "HIGH", "MEDIUM", "LOW", "DATE", "LINK"]
    row = [
        run["project"]["name"],
        run["profile_name"],
        run["meta_data"],
        run["tool"],
        *(open_findings.get(s, 0) for s in SEVERITIES),
        _date(run.get("finished_at") or run.get("created_at")),
        run["url"],
    ]
    lines = [
        "Open findings in the project (open or reopened, not triaged; the thresholds count these):",
        table(headers, [row]),
        "",
    ]
    if run["up_to_date"]:
        lines.append(f"This run (#{run['id']}) changed nothing. {run['message']}.")
    else:
        counts = run["counts"]
        lines.append(f"This run (#{run['id']}):")
        lines.append(
            table(
                ["NEW", "FIXED", "REOPENED", "UNCHANGED", "HOSTS"],
                [[counts["new"], counts["fixed"], counts["reopened"], counts["unchanged"], counts["hosts"]]],
            )
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------
def find_project(api: Api, name: str) -> dict[str, Any]:
    """The project called `name` exactly, or an error saying it is missing or not shared with the token's owner."""
    matches = api.get("/projects", name=name)
    if not matches:
        raise KdtError(f"Project “{name}” was not found, or the token's owner is not a member of it.")
    return matches[0]


def choose_profile(api: Api, project: dict[str, Any], tool: str | None, name: str | None) -> dict[str, Any]:
    """The project's profile for `tool` (and `--profile NAME` when there are several)."""
    if tool:
        known = [s["slug"] for s in api.get("/scanners")]
        if tool not in known:
            raise KdtError(f"Unknown scanner type “{tool}”. This server knows: {', '.join(known)}.")
    profiles = api.get(f"/projects/{project['id']}/profiles")
    candidates = [p for p in profiles if not tool or p["tool"] == tool]
    if name:
        candidates = [p for p in candidates if p["name"] == name]
    if not candidates:
        what = f"{tool} " if tool else ""
        named = f" named “{name}”" if name else ""
        raise KdtError(
            f"Project “{project['name']}” has no {what}scanner profile{named}. "
            "Add one in the project's Settings › Scanners › Add Scanner."
        )
    if len(candidates) > 1:
        names = ", ".join(f"“{p['name']}”" for p in candidates)
        raise KdtError(
            f"Project “{project['name']}” has several profiles ({names}); choose one with --profile NAME."
        )
    return candidates[0]


def start(api: Api, project: dict[str, Any], profile: dict[str, Any], log) -> dict[str, Any]:
    """Start a run; if one is already in progress, follow that run instead of failing."""
    status, body = api.call(
        "POST", f"/projects/{project['id']}/profiles/{profile['id']}/runs", json={"trigger": "cli"}
    )
    if status == 409:
        log(f"{body['detail']} Following run #{body['run_id']}.")
        return api.get(f"/runs/{body['run_id']}")
    return body


def follow(api: Api, run: dict[str, Any], timeout_minutes: float | None, poll: float, log) -> dict[str, Any]:
    """Poll the run until it finishes, printing each phase change and progress; KdtError(3) on timeout."""
    deadline = time.monotonic() + timeout_minutes * 60 if timeout_minutes is not None else None
    last_phase, last_progress = None, None
    while True:
        phase = run["phase"].lower() if not run["finished"] else f"finished: {run['status']}"
        if phase != last_phase:
            # A failed run's message is its last step; its error is printed separately.
            note = run["message"] if run["message"] and run["status"] != "failed" else ""
            log(f"[{_clock()}] Run #{run['id']} {phase}" + (f" — {note}" if note else ""))
            last_phase, last_progress = phase, None
        progress = (run["progress_done"], run["progress_total"], run["progress_percent"])
        if not run["finished"] and run["progress_percent"] is not None and progress != last_progress:
            log(
                f"[{_clock()}]   {run['progress_percent']}% "
                f"({run['progress_done']}/{run['progress_total']} {run.get('progress_unit', 'hosts')})"
            )
            last_progress = progress
        if run["finished"]:
            return run
        if deadline is not None and time.monotonic() >= deadline:
            raise KdtError(
                f"Timed out after {timeout_minutes:g} minutes waiting for run #{run['id']} (still {run['phase'].lower()}). "
                f"It goes on on the server: {run['url']}",
                EXIT_TIMEOUT,
            )
        pause = poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic()))
        time.sleep(pause)
        run = api.get(f"/runs/{run['id']}")


def check_thresholds(open_findings: dict[str, int], limits: dict[str, int]) -> list[str]:
    """The breaches of `limits` (severity → allowed open findings), as sentences."""
    return [
        f"{open_findings.get(severity, 0)} open {severity} findings exceed the threshold of {limit}"
        for severity, limit in limits.items()
        if open_findings.get(severity, 0) > limit
    ]


def cmd_scan(api: Api, args: argparse.Namespace) -> int:
    """`kdt scan`: start (or follow) a run, then summary and thresholds."""
    out = sys.stderr if args.json else sys.stdout

    def log(line: str) -> None:
        print(line, file=out, flush=True)

    if args.branch not in (None, "", "-"):
        log(f"Note: branch “{args.branch}” is ignored: infra scanners scan hosts, not branches.")
    limits = {
        severity: getattr(args, f"threshold_{flag}")
        for flag, severity in THRESHOLDS.items()
        if getattr(args, f"threshold_{flag}") is not None
    }
    project = find_project(api, args.project)
    profile = choose_profile(api, project, args.tool, args.profile)
    run = start(api, project, profile, log)
    if args.is_async:
        if limits:
            log("Note: thresholds are not checked with --async.")
        print(json.dumps(run, indent=2) if args.json else run["id"], flush=True)
        return EXIT_OK
    log(f"Run #{run['id']} of “{profile['name']}” in “{project['name']}”: {run['url']}")
    run = follow(api, run, args.timeout, args.poll, log)
    result: dict[str, Any] = dict(run)
    code = EXIT_OK
    if run["status"] != "succeeded":
        log(f"Run #{run['id']} {run['status']}: {run['error'] or run['message'] or 'no reason given'}")
        code = EXIT_RUN_FAILED
    else:
        # One read for both the table and the thresholds, so the two can never disagree.
        open_findings = api.get(f"/projects/{project['id']}")["open_findings"]
        result["open_findings"] = open_findings
        log("")
        log(summary(run, open_findings))
        if limits:
            breaches = check_thresholds(open_findings, limits)
            result["threshold_breaches"] = breaches
            log("")
            for severity, limit in limits.items():
                mark = "FAIL" if open_findings.get(severity, 0) > limit else "ok"
                log(f"{mark:>4}  open {severity}: {open_findings.get(severity, 0)} (threshold {limit})")
            if breaches:
                log("Threshold exceeded: " + "; ".join(breaches) + ".")
                code = EXIT_THRESHOLD
    if args.json:
        print(json.dumps(result, indent=2), flush=True)
    return code


def cmd_list(api: Api, args: argparse.Namespace) -> int:
    """`kdt list projects|scanners|profiles`."""
    if args.what == "projects":
        data = api.get("/projects")
        rows = [[p["id"], p["name"], p["url"]] for p in data]
        headers = ["ID", "NAME", "URL"]
    elif args.what == "scanners":
        data = api.get("/scanners")
        rows = [[s["slug"], s["label"], s["category"]] for s in data]
        headers = ["TYPE", "NAME", "CATEGORY"]
    else:
        if not args.project:
            raise KdtError("kdt list profiles needs -p PROJECT.")
        data = api.get(f"/projects/{find_project(api, args.project)['id']}/profiles")
        rows = [[p["id"], p["name"], p["tool"], p["bind_to"]["scan_name"], p["meta_data"]] for p in data]
        headers = ["ID", "NAME", "TYPE", "BOUND SCAN", "META DATA"]
    print(json.dumps(data, indent=2) if args.json else table(headers, rows))
    return EXIT_OK


# ---------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------
def _non_negative(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not “{value}”")
    if number < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return number


def _minutes(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected minutes, not “{value}”")
    if number < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return number


def build_parser() -> ArgumentParser:
    """The command line; options common to every command work before or after the command name."""
    common = ArgumentParser(add_help=False)
    common.add_argument("--host", default=argparse.SUPPRESS, help="console address (default: $KDT_HOST)")
    common.add_argument("--token", default=argparse.SUPPRESS, help="API token (default: $KDT_TOKEN)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON on stdout")

    parser = ArgumentParser(
        prog="kdt",
        description="Run Tenable Console scans from CI and fail the build on open findings.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"kdt {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    scan = commands.add_parser(
        "scan",
        parents=[common],
        help="run a project's scanner profile and wait for it",
        description="Start a run of the project's scanner profile, print each phase, then a summary.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    scan.add_argument("-p", "--project", required=True, help="project name")
    scan.add_argument("-t", "--tool", help="scanner type, e.g. tenableiovm (see `kdt list scanners`)")
    scan.add_argument("-b", "--branch", default="-", help="branch; `-` for none (infra scanners have none)")
    scan.add_argument("--profile", help="profile name, when the project has several of this type")
    scan.add_argument("--async", dest="is_async", action="store_true", help="print the run id and exit")
    scan.add_argument(
        "--timeout", type=_minutes, metavar="MINUTES", help="give up waiting after this long (exit 3)"
    )
    scan.add_argument("--poll", type=float, default=3.0, metavar="SECONDS", help=argparse.SUPPRESS)
    for flag, severity in THRESHOLDS.items():
        scan.add_argument(
            f"--threshold-{flag}",
            type=_non_negative,
            metavar="N",
            help=f"fail (exit 1) if the project has more than N open {severity} findings",
        )

    listing = commands.add_parser("list", parents=[common], help="list projects, scanners or profiles")
    listing.add_argument("what", choices=["projects", "scanners", "profiles"])
    listing.add_argument("-p", "--project", help="project name (for profiles)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `kdt` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.json = getattr(args, "json", False)
    host = getattr(args, "host", None) or os.environ.get("KDT_HOST", "")
    token = getattr(args, "token", None) or os.environ.get("KDT_TOKEN", "")
    try:
        if not host:
            raise KdtError("No server given: set KDT_HOST (or --host), e.g. https://console.example.com.")
        if not token:
            raise KdtError(
                "No API token given: set KDT_TOKEN (or --token); create one in Settings › API Tokens."
            )
        api = Api(host, token)
        return cmd_scan(api, args) if args.command == "scan" else cmd_list(api, args)
    except KdtError as exc:
        print(f"kdt: {exc.message}", file=sys.stderr, flush=True)
        return exc.code
    except KeyboardInterrupt:
        print("kdt: interrupted; a started run goes on on the server.", file=sys.stderr)
        return 130

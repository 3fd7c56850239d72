"""`/api/v1/`: projects, scanner profiles, runs, findings and scanner types, for CI and the `kdt` command line.

Permissions are the UI's: a project the caller cannot see answers 404, starting a run needs `can_edit`.
Every error is JSON `{"detail": "..."}`; malformed input is a 400, never a 500.
"""

from __future__ import annotations

import logging
from datetime import date
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import SuspiciousOperation
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse, QueryDict
from django.urls import reverse
from django_guid import get_guid
from ninja import NinjaAPI, Status, Swagger
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser

from accounts.permissions import deny
from integrations.connectors import CONNECTORS, SCANNER
from projects.choices import ACTIVE_RUN_STATUSES, SEVERITY_BADGE, Severity, Trigger
from projects.findings.filters import CHANGE_CHOICES, SORTS, STATE_CHOICES, TRIAGE_CHOICES, FindingFilters
from projects.findings.queries import COUNT_CAP, MAX_OFFSET, PAGE_SIZE, list_findings
from projects.models import Finding, Project, ScannerProfile, ScanRun
from projects.permissions import can_edit, visible_projects
from projects.runs.services import RunRefused, request_run

from . import schemas
from .auth import SessionAuth, TokenAuth, anonymous_message

log = logging.getLogger(__name__)


class ConsoleAPI(NinjaAPI):
    """NinjaAPI whose operations, schema and docs skip the site's login gate: they accept a token as well as a
    session (see `schema_access`). Only the bare `/api/v1/` keeps the usual redirect to the login page."""

    @property
    def urls(self):
        patterns, app_name, namespace = super().urls
        for pattern in patterns:
            if pattern.name != "api-root":
                login_not_required(pattern.callback)
        return patterns, app_name, namespace


def schema_access(view):
    """The schema and the docs need the same credentials as the API (a token or a session). A wrong token gets
    401; a browser with neither is sent to the login page for the docs, and gets 401 for the JSON schema."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            is_docs = request.resolver_match is not None and request.resolver_match.url_name == "openapi-view"
            if is_docs and "HTTP_AUTHORIZATION" not in request.META:
                return redirect_to_login(request.get_full_path())
            try:
                if not TokenAuth()(request):
                    raise AuthenticationError(message=anonymous_message())
            except AuthenticationError as exc:
                return JsonResponse(
                    {"detail": exc.message}, status=401, headers={"WWW-Authenticate": "Bearer"}
                )
        return view(request, *args, **kwargs)

    return wrapper


class BodyParser(Parser):
    """JSON bodies, and plain form posts (an HTML form or `curl -d trigger=cli`) read as the same fields."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        if request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
            return request.POST.dict()
        data = super().parse_body(request)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return data


api = ConsoleAPI(
    title="Tenable Console API",
    version="1",
    description=(
        "Start scans and read results from CI. Authenticate with a personal API token "
        "(`Authorization: Bearer kdt_…`, created in Settings › API Tokens) or a signed-in session "
        '(writes then need the X-CSRFToken header). Errors are `{"detail": "..."}`.'
    ),
    auth=[TokenAuth(), SessionAuth()],
    urls_namespace="api-v1",
    # Swagger UI from django-ninja's bundled static files ("ninja" in INSTALLED_APPS): no CDN, works offline.
    docs=Swagger(settings={"validatorUrl": None, "persistAuthorization": False}),
    docs_decorator=schema_access,
    parser=BodyParser(),
)


# ---------------------------------------------------------------------------
# Errors: always JSON with a message a person can act on
# ---------------------------------------------------------------------------
def _error(request: HttpRequest, status: int, detail: str, **extra: Any) -> HttpResponse:
    return api.create_response(request, {"detail": detail, **extra}, status=status)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    detail = anonymous_message() if exc.message == "Unauthorized" else exc.message
    response = _error(request, 401, detail)
    response["WWW-Authenticate"] = "Bearer"
    return response


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    detail = exc.message
    if exc.status_code == 400 and detail.startswith("Cannot parse request body"):
        detail = 'The request body must be a JSON object, e.g. {"trigger": "cli"}, or empty.'
    return _error(request, exc.status_code, detail)


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    problems = []
    for error in exc.errors:
        where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body", "payload"))
        problems.append(f"{where}: {error.get('msg', 'invalid')}" if where else error.get("msg", "invalid"))
    return _error(request, 400, "Invalid request. " + "; ".join(problems))


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _error(request, 404, "Not found. See /api/v1/docs for the available endpoints.")


@api.exception_handler(Exception)
def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    if isinstance(exc, SuspiciousOperation):  # e.g. a body over DATA_UPLOAD_MAX_MEMORY_SIZE
        return _error(request, 400, f"The request was refused: {exc}")
    log.exception("API error on %s %s", request.method, request.path)
    request_id = get_guid() or ""
    return _error(
        request,
        500,
        f"An unexpected error occurred; nothing was changed. Details are in the server log (request id {request_id}).",
        request_id=request_id,
    )


# ---------------------------------------------------------------------------
# Lookups that enforce the UI's permissions
# ---------------------------------------------------------------------------
def _project(request: HttpRequest, project_id: int) -> Project:
    """The project if the caller may see it; otherwise 404, so other projects' ids reveal nothing."""
    project = visible_projects(request.auth).filter(pk=project_id).first()
    if project is None:
        raise HttpError(404, f"Project {project_id} was not found, or you do not have access to it.")
    return project


def _absolute(request: HttpRequest, path: str) -> str:
    return request.build_absolute_uri(path)


def project_out(request: HttpRequest, project: Project) -> dict[str, Any]:
    """A project as the API shows it."""
    return {
        "id": project.pk,
        "name": project.name,
        "description": project.description,
        "url": _absolute(request, project.get_absolute_url()),
    }


def open_findings(project: Project) -> dict[str, int]:
    """Open, untriaged findings by effective severity: the UI's open list and the `kdt` thresholds."""
    counts = {label: 0 for label in SEVERITY_BADGE.values()}
    rows = (
        Finding.objects.filter(project=project)
        .needs_attention()
        .values("effective_severity")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        counts[SEVERITY_BADGE[row["effective_severity"]]] = row["n"]
    return counts


def profile_out(profile: ScannerProfile, active_run_id: int | None) -> dict[str, Any]:
    """A scanner profile without its webhook secret."""
    return {
        "id": profile.pk,
        "project_id": profile.project_id,
        "name": profile.name,
        "tool": profile.integration.connector,
        "bind_to": {
            "kind": profile.source_kind,
            "scan_id": profile.scan_id,
            "scan_name": profile.bound_label,
            "scope": profile.export_scope if profile.is_export else None,
        },
        "meta_data": profile.meta_data,
        "scan_tag": profile.scan_tag,
        "start_scan": profile.start_scan,
        "severity_shift": profile.severity_shift,
        "scheduler_enabled": profile.scheduler_enabled,
        "active_run_id": active_run_id,
    }


def run_out(request: HttpRequest, run: ScanRun) -> dict[str, Any]:
    """A run's status, phase, progress and counts: what `kdt` polls."""
    profile = run.profile
    return {
        "id": run.pk,
        "project": project_out(request, run.project),
        "profile_id": run.profile_id,
        "profile_name": profile.name if profile else "",
        "meta_data": profile.meta_data if profile else "",
        "tool": profile.integration.connector if profile else "upload",
        "trigger": run.trigger,
        "status": run.status,
        "phase": run.get_status_display(),
        "finished": not run.is_active,
        "message": run.message,
        "error": run.error,
        "progress_done": run.progress_done,
        "progress_total": run.progress_total,
        "progress_percent": run.progress_percent,
        "progress_unit": run.progress_unit,
        "counts": run.counts(),
        "up_to_date": run.up_to_date,
        "tenable_scan_id": run.tenable_scan_id,
        "tenable_status": run.tenable_status,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "url": _absolute(request, run.get_absolute_url()),
    }


def _runs() -> Any:
    return ScanRun.objects.select_related("project", "profile__integration")


# ---------------------------------------------------------------------------
# Endpoints
# ---------------------------------------------------------------------------
@api.get("/schema", include_in_schema=False)
def schema_redirect(request: HttpRequest) -> HttpResponse:
    """`/api/v1/schema` is the OpenAPI document at `/api/v1/openapi.json`."""
    return HttpResponseRedirect(reverse("api-v1:openapi-json"))


@api.get("/me", response=schemas.TokenOut, tags=["auth"], summary="Who am I")
def me(request: HttpRequest):
    """The caller's user name and role, and the token used (if any): a quick check of a CI configuration."""
    token = getattr(request, "api_token", None)
    return {
        "username": request.auth.get_username(),
        "role": request.auth.effective_role,
        "token_name": token.name if token else None,
        "token_expires": token.expires_at.date() if token and token.expires_at else None,
    }


@api.get("/scanners", response=list[schemas.ScannerOut], tags=["scanners"], summary="Scanner types")
def scanners(request: HttpRequest):
    """The scanner types this server knows (the `-t` of `kdt scan`)."""
    return [
        {"slug": slug, "label": c.label, "category": c.category}
        for slug, c in CONNECTORS.items()
        if c.kind == SCANNER  # ticketing destinations are not scanners
    ]


@api.get("/projects", response=list[schemas.ProjectOut], tags=["projects"], summary="List projects")
def projects(request: HttpRequest, name: str | None = None):
    """The projects the caller can see; `name` narrows to the one with exactly that name."""
    qs = visible_projects(request.auth).order_by("name")
    if name is not None:
        qs = qs.filter(name=name[:100])
    return [project_out(request, project) for project in qs]


@api.get(
    "/projects/{int:project_id}",
    response={200: schemas.ProjectDetailOut, 404: schemas.Error},
    tags=["projects"],
    summary="Get a project",
)
def project_detail(request: HttpRequest, project_id: int):
    """One project with its open findings by severity."""
    project = _project(request, project_id)
    return {
        **project_out(request, project),
        "can_start_runs": can_edit(request.auth, project),
        "open_findings": open_findings(project),
    }


@api.get(
    "/projects/{int:project_id}/profiles",
    response={200: list[schemas.ProfileOut], 404: schemas.Error},
    tags=["profiles"],
    summary="List a project's scanner profiles",
)
def profiles(request: HttpRequest, project_id: int):
    """The project's scanner profiles (Settings › Scanners), with the id of any run in progress."""
    project = _project(request, project_id)
    qs = project.profiles.select_related("integration").defer("webhook_secret", "webhook_previous_secret")
    active = dict(
        ScanRun.objects.filter(project=project, status__in=ACTIVE_RUN_STATUSES)
        .values_list("profile_id", "pk")
        .order_by()
    )
    return [profile_out(profile, active.get(profile.pk)) for profile in qs.order_by("name")]


@api.post(
    "/projects/{int:project_id}/profiles/{int:profile_id}/runs",
    response={
        202: schemas.RunOut,
        403: schemas.Error,
        404: schemas.Error,
        409: schemas.RunConflict,
        503: schemas.RunConflict,
    },
    tags=["runs"],
    summary="Start a run of a profile",
)
def start_run(
    request: HttpRequest, project_id: int, profile_id: int, payload: schemas.RunRequest | None = None
):
    """Queue a run of the profile (202 with the run). 409 with `run_id` if one is already in progress."""
    project = _project(request, project_id)
    profile = (
        ScannerProfile.objects.select_related("project", "integration")
        .filter(project=project, pk=profile_id)
        .first()
    )
    if profile is None:
        raise HttpError(404, f"Scanner profile {profile_id} was not found in project {project.name}.")
    if not can_edit(request.auth, project):
        deny(request, "run.start", profile)
        raise HttpError(
            403,
            f"You can read project {project.name} but not start its runs. "
            "Ask an admin to make you a member of the project.",
        )
    trigger = Trigger.CLI if payload and payload.trigger == "cli" else Trigger.API
    try:
        run = request_run(profile, trigger=trigger, user=request.auth)
    except RunRefused as refused:
        if refused.run is not None and refused.run.is_active:
            return Status(409, {"detail": refused.message, "run_id": refused.run.pk})
        if refused.run is not None:
            return Status(503, {"detail": refused.message, "run_id": refused.run.pk})
        raise HttpError(503, refused.message)
    return Status(202, run_out(request, _runs().get(pk=run.pk)))


@api.get(
    "/projects/{int:project_id}/runs",
    response={200: list[schemas.RunOut], 404: schemas.Error},
    tags=["runs"],
    summary="List a project's recent runs",
)
def runs(request: HttpRequest, project_id: int, profile: int | None = None, limit: int = 20):
    """The project's latest runs, newest first (`limit` 1-100), optionally of one profile."""
    project = _project(request, project_id)
    if not 1 <= limit <= 100:
        raise HttpError(400, "limit must be between 1 and 100.")
    qs = _runs().filter(project=project).order_by("-created_at", "-id")
    if profile is not None:
        qs = qs.filter(profile_id=profile)
    return [run_out(request, run) for run in qs[:limit]]


@api.get(
    "/runs/{int:run_id}",
    response={200: schemas.RunOut, 404: schemas.Error},
    tags=["runs"],
    summary="Get a run",
)
def run_detail(request: HttpRequest, run_id: int):
    """A run's status, phase, progress and counts."""
    run = _runs().filter(pk=run_id, project__in=visible_projects(request.auth)).first()
    if run is None:
        raise HttpError(404, f"Run {run_id} was not found, or you do not have access to its project.")
    return run_out(request, run)


# ---------------------------------------------------------------------------
# Findings: the UI's filters, checked strictly (a typo is a 400, not a silently different list)
# ---------------------------------------------------------------------------
def _keys(choices: list[tuple[str, str]]) -> list[str]:
    return [key for key, _ in choices]


def _is_int(value: str, lo: int, hi: int) -> bool:
    value = value.strip()
    return value.lstrip("-").isdigit() and len(value) < 20 and lo <= int(value) <= hi


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value.strip())
    except ValueError:
        return False
    return True


SEVERITY_HELP = "0 info, 1 low, 2 medium, 3 high, 4 critical"
LAST_PAGE = MAX_OFFSET // PAGE_SIZE
# name -> (check, what a valid value looks like, OpenAPI schema)
FINDING_FILTERS: dict[str, tuple[Any, str, dict[str, Any]]] = {
    "severity": (
        lambda v: all(_is_int(p, 0, 4) for p in v.split(",")),
        f"effective severities, repeatable or comma-separated ({SEVERITY_HELP})",
        {"type": "string", "example": "4,3"},
    ),
    "tenable_severity": (
        lambda v: all(_is_int(p, 0, 4) for p in v.split(",")),
        f"Tenable's own severities before Severity+/- ({SEVERITY_HELP})",
        {"type": "string"},
    ),
    "state": (
        lambda v: v in _keys(STATE_CHOICES),
        "one of " + ", ".join(_keys(STATE_CHOICES)) + " (default open: open or reopened)",
        {"type": "string", "enum": _keys(STATE_CHOICES)},
    ),
    "triage": (
        lambda v: v in _keys(TRIAGE_CHOICES),
        "one of "
        + ", ".join(_keys(TRIAGE_CHOICES))
        + " (default none; an expired acceptance counts as none)",
        {"type": "string", "enum": _keys(TRIAGE_CHOICES)},
    ),
    "q": (lambda v: True, "plugin id, CVE-… or text in the plugin name", {"type": "string"}),
    "host": (lambda v: True, "host name, IP prefix, FQDN or NetBIOS text", {"type": "string"}),
    "asset": (lambda v: _is_int(v, 1, 2**63 - 1), "a host id", {"type": "integer"}),
    "family": (lambda v: True, "exact plugin family", {"type": "string"}),
    "port": (lambda v: _is_int(v, 0, 65535), "a port 0-65535", {"type": "integer"}),
    "profile": (lambda v: _is_int(v, 1, 2**63 - 1), "a scanner profile id", {"type": "integer"}),
    "run": (lambda v: _is_int(v, 1, 2**63 - 1), "a run id (with `change`)", {"type": "integer"}),
    "change": (
        lambda v: v in _keys(CHANGE_CHOICES),
        "one of " + ", ".join(_keys(CHANGE_CHOICES)) + " (with `run`)",
        {"type": "string", "enum": _keys(CHANGE_CHOICES)},
    ),
    "first_seen_from": (_is_date, "a date, YYYY-MM-DD", {"type": "string", "format": "date"}),
    "first_seen_to": (_is_date, "a date, YYYY-MM-DD", {"type": "string", "format": "date"}),
    "last_seen_from": (_is_date, "a date, YYYY-MM-DD", {"type": "string", "format": "date"}),
    "last_seen_to": (_is_date, "a date, YYYY-MM-DD", {"type": "string", "format": "date"}),
    "sort": (
        lambda v: v.lstrip("-") in SORTS and v.count("-") <= 1,
        "one of " + ", ".join(SORTS) + ", with a leading - for descending (default -severity)",
        {"type": "string"},
    ),
    "page": (lambda v: _is_int(v, 1, LAST_PAGE), f"a page number 1-{LAST_PAGE}", {"type": "integer"}),
}


def parse_finding_filters(query: QueryDict) -> FindingFilters:
    """Check every parameter against the allowlist, then parse with the UI's own parser (same meaning)."""
    unknown = sorted(set(query) - set(FINDING_FILTERS))
    if unknown:
        names = ", ".join(unknown)[:200]
        raise HttpError(400, f"Unknown filter {names}. Known filters: {', '.join(FINDING_FILTERS)}.")
    for name, (check, expected, _) in FINDING_FILTERS.items():
        for value in query.getlist(name):
            if not check(value):
                shown = value[:60]
                raise HttpError(400, f"Invalid {name} “{shown}”: expected {expected}.")
    if ("run" in query) != ("change" in query):
        raise HttpError(400, "`run` and `change` go together, e.g. run=12&change=new.")
    return FindingFilters.from_query(query)


def finding_out(request: HttpRequest, finding: Finding) -> dict[str, Any]:
    """One row of the findings list."""
    return {
        "id": finding.pk,
        "plugin_id": finding.plugin.plugin_id,
        "plugin_name": finding.plugin.name,
        "family": finding.plugin.family,
        "severity": finding.effective_severity,
        "severity_label": Severity(finding.effective_severity).label,
        "tenable_severity": finding.severity,
        "host": finding.asset.name,
        "ip": finding.asset.ip,
        "port": finding.port,
        "protocol": finding.protocol,
        "state": finding.state,
        "triage": getattr(finding, "triage_status", finding.triage) or "",
        "first_seen": finding.first_seen,
        "last_seen": getattr(finding, "seen_at", finding.last_seen),
        "url": _absolute(request, finding.get_absolute_url()),
    }


@api.get(
    "/projects/{int:project_id}/findings",
    response={200: schemas.FindingPage, 400: schemas.Error, 404: schemas.Error},
    tags=["findings"],
    summary="List a project's findings",
    openapi_extra={
        "parameters": [
            {"name": name, "in": "query", "required": False, "description": expected, "schema": schema}
            for name, (_, expected, schema) in FINDING_FILTERS.items()
        ]
    },
)
def findings(request: HttpRequest, project_id: int):
    """The project's findings with the UI's filters and sorts, 50 a page. Defaults: open and not triaged."""
    project = _project(request, project_id)
    filters = parse_finding_filters(request.GET)
    page = list_findings(project, filters)
    next_url = None
    if page.has_next:
        next_url = _absolute(request, f"{request.path}?{filters.querystring(page=page.number + 1)}")
    return {
        "count": page.total,
        "count_cap": COUNT_CAP,
        "page": page.number,
        "page_size": PAGE_SIZE,
        "has_next": page.has_next,
        "next": next_url,
        "results": [finding_out(request, finding) for finding in page.rows],
    }

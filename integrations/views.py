from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.db.models import ProtectedError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, reswap, retarget, trigger_client_event

from accounts.htmx import close_drawer
from accounts.models import record
from accounts.permissions import admin_required

from . import services
from .connectors import CONNECTORS, SCANNER, TICKETING, connectors_by_category
from .forms import IntegrationForm, ReplaceKeysForm
from .models import SECRET_FIELDS, Integration
from .rights import advice
from .services import UNDECRYPTABLE, remember_result, same_api_url, test_connection


def _connections():
    # Listing never decrypts: an undecryptable key must not break the page (RELIABILITY §3.4).
    return Integration.objects.defer(*SECRET_FIELDS)


def _get(pk: int) -> Integration:
    return get_object_or_404(_connections(), pk=pk)


def _slug_or_404(slug: str) -> str:
    if slug not in CONNECTORS:
        raise Http404("Unknown scanner type.")
    return slug


@admin_required
@never_cache
@require_GET
def scanners(request: HttpRequest) -> HttpResponse:
    """Integrations: one tab per connector category (the scanners' Infra, …, and Ticketing), one card per
    connector with its connections."""
    categories = connectors_by_category((SCANNER, TICKETING))
    tab = request.GET.get("tab") or categories[0][0]
    if tab not in {slug for slug, _, _ in categories}:
        tab = categories[0][0]
    context = {
        "categories": categories,
        "tab": tab,
        "cards": _cards(tab, categories),
        "open_pk": request.GET.get("open", ""),
        "undecryptable": UNDECRYPTABLE,
        "rotation_days": settings.KEY_ROTATION_DAYS,
    }
    if request.htmx and request.htmx.target == "connector-cards":
        return render(request, "integrations/partials/_cards.html", context)
    return render(request, "integrations/scanners.html", context)


# The card's badge shows its best connection: green "Active" only once keys are saved and pass a test.
CARD_STATES = [
    ("connected", "Active", "success"),
    ("failing", "Needs attention", "danger"),
    ("unreadable", "Needs attention", "danger"),
    ("untested", "Not configured", "warning"),
    ("unconfigured", "Not configured", "warning"),
]


def _cards(tab: str, categories) -> list[dict]:
    connectors = next(c for slug, _, c in categories if slug == tab)
    connections = services.attach_advice(
        list(Integration.objects.for_listing().select_related("keys_set_by"))
    )
    cards = []
    for spec in connectors:
        mine = [c for c in connections if c.connector == spec.slug]
        states = {c.state for c in mine}
        badge = next(((label, tone) for state, label, tone in CARD_STATES if state in states), None)
        key_label = next((f.label for f in spec.credential_fields if f.name == "access_key"), "Key")
        cards.append(
            {
                "spec": spec,
                "connections": mine,
                "active": badge is not None,
                "badge": badge,
                "key_label": key_label,
                "secret_labels": spec.secret_labels(),
            }
        )
    return cards


@admin_required
@require_POST
def activate_connector(request: HttpRequest, slug: str) -> HttpResponse:
    """Activate a connector: reactivate its connections, or create the first one and open its settings."""
    spec = CONNECTORS[_slug_or_404(slug)]
    existing = _connections().filter(connector=slug)
    if existing.exists():
        existing.update(is_active=True)
        for integration in existing:
            record(request.user, "integration.activated", integration, request)
        target = f"{reverse('integrations:scanners')}?tab={spec.category}"
    else:
        name = spec.label if not Integration.objects.filter(name=spec.label).exists() else f"{spec.label} 2"
        integration = Integration.objects.create(
            connector=slug, name=name, is_active=True, api_url=spec.default_api_url, updated_by=request.user
        )
        record(request.user, "integration.activated", integration, request)
        keys = " and ".join(field.label for field in spec.credential_fields)
        messages.info(request, f"{spec.label} activated. Enter the {keys}, then Test Connection.")
        target = f"{reverse('integrations:scanners')}?tab={spec.category}&open={integration.pk}"
    return HttpResponseClientRedirect(target) if request.htmx else redirect(target)


@admin_required
@require_POST
def set_active(request: HttpRequest, pk: int, active: bool) -> HttpResponse:
    integration = _get(pk)
    Integration.objects.filter(pk=pk).update(is_active=active)
    record(
        request.user, "integration.activated" if active else "integration.deactivated", integration, request
    )
    messages.success(request, f"{integration.name} {'activated' if active else 'deactivated'}.")
    target = f"{reverse('integrations:scanners')}?tab={integration.spec.category}"
    return HttpResponseClientRedirect(target) if request.htmx else redirect(target)


@admin_required
@never_cache
@sensitive_post_parameters(*SECRET_FIELDS)
@require_http_methods(["GET", "POST"])
def connection_settings(request: HttpRequest, pk: int | None = None, slug: str | None = None) -> HttpResponse:
    """The settings panel (drawer): Connection Name, User Key, Secret Key, API URL; Test Connection; Save and Connect.

    Saving keys that fail the test is allowed only once the user has seen the failure (`confirm_failed`).
    """
    integration = _get(pk) if pk else Integration(connector=_slug_or_404(slug), is_active=True)
    form = IntegrationForm(request.POST or None, instance=integration, connector_slug=integration.connector)
    result = None
    if request.method == "POST" and form.is_valid():
        result = test_connection(integration, api_url=form.cleaned_data["api_url"], **form.credentials)
        if result.ok or request.POST.get("confirm_failed") == form.fingerprint():
            return _save(request, form, result)
        if request.htmx:
            # Swap only the result area so the typed keys stay in the browser's inputs for "Save anyway".
            response = render(
                request,
                "integrations/partials/_test_result.html",
                {"result": result, "confirm_token": form.fingerprint(), "integration": integration},
            )
            return reswap(retarget(response, "#test-result"), "innerHTML")
    context = {
        "form": form,
        "integration": integration,
        "result": result,
        "advice": _advice(integration, result.info if result else integration.key_info),
        "token_help": integration.spec.token_help,
    }
    if request.htmx:
        return render(request, "integrations/partials/_settings_drawer.html", context)
    return render(request, "integrations/settings.html", context)


def _save(request: HttpRequest, form: IntegrationForm, result) -> HttpResponse:
    created = form.instance.pk is None
    changed = form.changed_data
    integration = form.save(commit=False)
    integration.updated_by = request.user
    if form.changed_credentials:
        integration.keys_set_at, integration.keys_set_by = timezone.now(), request.user
    integration.save()
    if created:
        record(
            request.user,
            "integration.created",
            integration,
            request,
            connector=integration.connector,
            api_url=integration.api_url,
        )
    if form.changed_credentials or (changed and not created):
        # Field names only: never the values (RELIABILITY S7). The URL is not a secret: it says where keys go.
        where = {"api_url": integration.api_url, "previous_api_url": form.saved_api_url}
        record(
            request.user,
            "integration.changed",
            integration,
            request,
            fields=sorted({*changed, *form.changed_credentials}),
            **(where if "api_url" in changed and not created else {}),
        )
    remember_result(integration, result, request.user, request)
    if result.ok:
        messages.success(request, f"{integration.name}: Connection successful. {result.message}")
    else:
        messages.warning(
            request, f"{integration.name} saved, but the connection is failing: {result.message}"
        )
    target = f"{reverse('integrations:scanners')}?tab={integration.spec.category}"
    if request.htmx:
        return close_drawer(render(request, "partials/_messages.html"), refresh="integrationsChanged")
    return redirect(target)


@admin_required
@never_cache
@sensitive_post_parameters(*SECRET_FIELDS)
@require_POST
def test(request: HttpRequest, pk: int | None = None, slug: str | None = None) -> HttpResponse:
    """Test Connection: tests the values in the form (blank secrets mean the stored ones) and stores the outcome."""
    integration = _get(pk) if pk else Integration(connector=_slug_or_404(slug))
    saved_url = integration.api_url  # validation copies the submitted URL onto the instance
    form = IntegrationForm(request.POST, instance=integration, connector_slug=integration.connector)
    # Only the URL and keys matter here; a half-filled name must not block a test.
    form.is_valid()
    if "api_url" in form.errors:
        return render(
            request,
            "integrations/partials/_test_result.html",
            {"error": form.errors["api_url"][0], "url_label": integration.spec.api_url_label},
        )
    credentials = {name: form.cleaned_data.get(name, "") for name in form.credential_names}
    api_url = form.cleaned_data.get("api_url", "") or saved_url
    result = test_connection(integration, api_url=api_url, **credentials)
    context = {"result": result, "advice": _advice(integration, result.info), "integration": integration}
    response = render(request, "integrations/partials/_test_result.html", context)
    # Only a test of what is saved describes the saved connection; typed-in values are just a trial.
    if integration.pk and not any(credentials.values()) and same_api_url(api_url, saved_url):
        integration.api_url = saved_url
        remember_result(integration, result, request.user, request)
        return trigger_client_event(response, "integrationsChanged")
    record(
        request.user,
        "integration.tested",
        integration if integration.pk else None,
        request,
        ok=result.ok,
        result=result.message[:300],
        api_url=api_url,
    )
    return response


def _advice(integration: Integration, info) -> list:
    """Least-privilege advice for a saved connection's key (tested now, or as last tested); none for a new one."""
    if not integration.pk or info is None:
        return []
    return advice(info, services.needs_for([integration])[integration.pk])


@admin_required
@never_cache
@sensitive_post_parameters(*SECRET_FIELDS)
@require_http_methods(["GET", "POST"])
def replace_keys(request: HttpRequest, pk: int) -> HttpResponse:
    """Replace keys (rotation without downtime): the new pair is tested, checklist included, before anything
    changes; accepted, it replaces the old pair at once; refused, the old pair stays active and the drawer says why.
    """
    integration = _get(pk)
    form = ReplaceKeysForm(request.POST or None, integration=integration)
    replacement = None
    if request.method == "POST" and form.is_valid():
        replacement = services.replace_keys(integration, request.user, request, **form.credentials)
        if replacement.accepted:
            messages.success(
                request,
                f"{integration.name}: keys replaced; the old pair is no longer used. "
                f"{replacement.result.message}",
            )
            if request.htmx:
                return close_drawer(render(request, "partials/_messages.html"), refresh="integrationsChanged")
            return redirect(f"{reverse('integrations:scanners')}?tab={integration.spec.category}")
    context = {
        "form": form,
        "integration": integration,
        "replacement": replacement,
        "advice": [],  # a refusal's reason already says what the profiles would lack
    }
    if request.htmx:
        return render(request, "integrations/partials/_replace_keys_drawer.html", context)
    return render(request, "integrations/replace_keys.html", context)


@admin_required
@require_POST
def delete(request: HttpRequest, pk: int) -> HttpResponse:
    integration = _get(pk)
    try:
        integration.delete()
    except ProtectedError:
        messages.error(
            request,
            f"{integration.name} is in use (by scanner profiles, or by projects' Jira settings); "
            "delete or rebind them first.",
        )
    else:
        record(request.user, "integration.deleted", None, request, name=integration.name)
        messages.success(request, f"Connection {integration.name} deleted; its keys are gone.")
    target = f"{reverse('integrations:scanners')}?tab={integration.spec.category}"
    return HttpResponseClientRedirect(target) if request.htmx else redirect(target)

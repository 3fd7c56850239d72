"""The strict Content-Security-Policy (issue 13, RELIABILITY W5): signed in as an admin with data present, every
page of ours, the admin and the API docs, every drawer and the htmx swaps raise no CSP violation, console error,
uncaught exception or JS dialog, and each page is served with the strict policy. Imported findings whose texts
carry script payloads stay text on the findings list, finding, host and run pages."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from xml.sax.saxutils import escape, quoteattr

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from accounts.choices import Role
from api.models import ApiToken
from projects.models import Project, ScannerProfile, ScanRun
from projects.runs.services import import_upload
from tests.browser.conftest import PageWatch
from tests.browser.test_webhooks_browser import _history
from tests.conftest import login, make_user
from tests.integrations.conftest import make_integration
from tests.test_crawl import named_routes

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '"><img src=x onerror=alert(1)>'
PAYLOAD = f"{SCRIPT}{ATTRIBUTE}"

# GET routes the crawl does not open as a page: a file download, the first-run page (404 once a user exists,
# visited by its own test) and the API's bare root (a JSON 404 for a signed-in user).
NOT_PAGES = {"projects:findings_csv", "setup", "api-v1:api-root"}


def shot(page, name: str) -> None:
    """Full-page screenshots for a person to compare before and after (SCREENSHOT_DIR=…)."""
    if os.environ.get("SCREENSHOT_DIR"):
        os.makedirs(os.environ["SCREENSHOT_DIR"], exist_ok=True)
        safe = re.sub(r"[^\w.-]+", "-", name).strip("-")
        page.screenshot(path=os.path.join(os.environ["SCREENSHOT_DIR"], f"csp-{safe}.png"), full_page=True)


def settle(page) -> None:
    """No request in flight and no htmx request pending, so every swap (and its violations) has happened."""
    page.wait_for_load_state("networkidle")
    page.wait_for_function("() => !document.querySelector('.htmx-request')")


def payload_nessus(path, hosts: int = 2) -> str:
    """A Nessus v2 export whose host names, plugin names, outputs and texts are script payloads."""
    text = escape(PAYLOAD)
    items = "".join(
        f'<ReportItem port={quoteattr(str(443 + n))} svc_name="www" protocol="tcp" severity={quoteattr(str(4 - n))}'
        f" pluginID={quoteattr(str(91000 + n))} pluginName={quoteattr(f'{PAYLOAD} plugin {n}')}"
        f" pluginFamily={quoteattr(PAYLOAD)}>"
        f"<synopsis>{text}</synopsis><description>{text}\n\n- {text}</description><solution>{text}</solution>"
        f"<see_also>javascript:alert(1)\nhttps://example.com/{escape(ATTRIBUTE)}</see_also>"
        f"<cve>CVE-2024-0001</cve><risk_factor>High</risk_factor><cvss3_vector>{text}</cvss3_vector>"
        f"<plugin_output>{text}\nline two {text}</plugin_output></ReportItem>"
        for n in range(3)
    )
    body = "".join(
        f"<ReportHost name={quoteattr(f'{PAYLOAD}-{h}')}><HostProperties>"
        f'<tag name="host-ip">10.9.0.{h}</tag><tag name="host-fqdn">{escape(PAYLOAD)}.example.com</tag>'
        f'<tag name="netbios-name">{text}</tag><tag name="operating-system">{text}</tag>'
        f"</HostProperties>{items}</ReportHost>"
        for h in range(1, hosts + 1)
    )
    path.write_text(
        f'<?xml version="1.0" ?>\n<NessusClientData_v2><Report name={quoteattr(PAYLOAD)}>{body}</Report>'
        "</NessusClientData_v2>"
    )
    return os.fspath(path)


def import_payloads(project: Project, tmp_path, profile: ScannerProfile | None = None) -> ScanRun:
    """Import the payload export through the upload pipeline, as the Upload .nessus page does."""
    run = ScanRun.objects.create(project=project, profile=profile, trigger="upload", source_name=PAYLOAD)
    import_upload(run, payload_nessus(tmp_path / "payloads.nessus"))
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    return run


@pytest.fixture
def world(tenable_simulator, tmp_path):
    """An admin's view of a working install: a connection to the simulator, a project whose profile is bound to
    a simulated scan with a webhook, runs that succeeded, failed and are running, imported findings, an API
    token, a member and a viewer. Free texts carry script payloads."""
    sim = tenable_simulator.sim
    admin = make_user("admin", Role.ADMIN, first_name=PAYLOAD, is_staff=True, is_superuser=True)
    member = make_user("member", Role.MEMBER)
    make_user("viewer", Role.VIEWER)
    integration = make_integration(tenable_simulator.url)
    project = Project.objects.create(name="Payments", description=PAYLOAD)
    project.memberships.create(user=member, role="member")
    scan_id = sim.scan_id("completed")
    profile = ScannerProfile.objects.create(
        project=project,
        integration=integration,
        name=f"Weekly {PAYLOAD}",
        scan_id=scan_id,
        scan_name=PAYLOAD,
        meta_data=PAYLOAD,
        scan_tag=PAYLOAD[:100],
        webhook_url=f"https://hooks.example.com/in?x={ATTRIBUTE}",
    )
    _history(profile)  # a failed delivery with its attempts and a delivered one
    imported = import_payloads(project, tmp_path, profile)
    failed = ScanRun.objects.create(
        project=project,
        profile=profile,
        status="failed",
        error=f"Tenable.io answered: {PAYLOAD}",
        tenable_scan_name=PAYLOAD,
        log=PAYLOAD,
        finished_at=timezone.now(),
    )
    running = ScanRun.objects.create(
        project=project,
        trigger="upload",
        source_name=PAYLOAD,
        status="importing",
        progress_done=3,
        progress_total=10,
        message=PAYLOAD,
        started_at=timezone.now() - timedelta(seconds=30),
    )
    token, _ = ApiToken.issue(admin, PAYLOAD[:100])
    finding = imported.project.findings.order_by("pk").first()
    return {
        "sim": sim,
        "admin": admin,
        "integration": integration,
        "project": project,
        "profile": profile,
        "imported": imported,
        "failed": failed,
        "running": running,
        "token": token,
        "finding": finding,
        "scan_id": scan_id,
    }


def our_pages(world) -> list[tuple[str, str]]:
    """(route name, URL) of every GET route of ours, with the world's ids; integration, token and user routes
    take their own `pk`, any other namespace the project's ids."""
    project_ids = {
        "pk": world["project"].pk,
        "profile_pk": world["profile"].pk,
        "run_pk": world["imported"].pk,
        "finding_pk": world["finding"].pk,
        "asset_pk": world["finding"].asset_id,
        "delivery_pk": 1,
    }
    by_namespace = {
        "integrations": named_routes({"pk": world["integration"].pk}, slug="tenableiovm"),
        "tokens": named_routes({"pk": world["token"].pk}),
        "": named_routes({"pk": world["admin"].pk}),
        "projects": named_routes(project_ids),
        "api-v1": named_routes(
            project_ids | {"project_id": world["project"].pk, "run_id": world["imported"].pk}
        ),
    }
    # Routes that need a query string to show what they are for.
    queries = {
        "projects:profile_new": f"?integration={world['integration'].pk}",
        "projects:scan_summary": f"?integration={world['integration'].pk}&scan_id={world['scan_id']}",
    }
    pages = []
    for name, _ in named_routes():
        namespace = name.split(":")[0] if ":" in name else ""
        if name in NOT_PAGES:
            continue
        url = dict(by_namespace.get(namespace, by_namespace["projects"]))[name]  # e.g. a webhooks app
        pages.append((name, url + queries.get(name, "")))
    return pages


def visit(page, watch, name: str, url: str) -> int:
    response = page.goto(url)
    settle(page)
    shot(page, name)
    return response.status


def test_first_run_page_is_clean_under_the_strict_policy(page, watch, db):
    """Before any user exists: the setup page, and the dashboard it leads to."""
    page.goto("/setup/")
    expect(page.get_by_role("heading", name="Create the first admin")).to_be_visible()
    shot(page, "setup")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password", exact=True).fill("a-long-test-password-42")
    page.get_by_label("Password confirmation").fill("a-long-test-password-42")
    page.get_by_role("button", name="Create admin and sign in").click()
    expect(page.get_by_role("heading", name=re.compile("Welcome"))).to_be_visible()
    watch.assert_clean()


def test_every_page_and_drawer_is_clean_under_the_strict_policy(page, watch, live_server, world, client):
    """Crawl as an admin: every GET route (405s are POST-only routes), the admin, the API docs, then each drawer
    and the htmx swaps. Any CSP violation, console error, uncaught exception or dialog fails the test."""
    project, profile = world["project"], world["profile"]

    # Signed out: the sign-in page and a page that does not exist (its 404 is the one expected console error).
    visit(page, watch, "login", "/login/")
    watch.allowed_console = ["the server responded with a status of 404"]
    assert visit(page, watch, "not-found", "/no-such-page/") == 404
    watch.allowed_console = []
    login(page, "admin")

    # Every GET route of ours. POST-only routes answer 405, which the browser logs as a failed load.
    client.force_login(world["admin"])
    visited = []
    for name, url in our_pages(world):
        if client.get(url).status_code == 405:
            continue
        status = visit(page, watch, name, url)
        assert status < 400, (name, url, status)
        visited.append(name)
    assert {
        "dashboard",
        "projects:findings",
        "projects:run",
        "webhooks:detail",
        "api-v1:openapi-view",
    } <= set(visited)
    assert len(visited) >= 30, visited

    # Pages with query strings the routes above do not carry, and the failed run.
    for name, url in [
        ("failed-run", reverse("projects:run", args=[project.pk, world["failed"].pk])),
        (
            "findings-by-plugin",
            f"{reverse('projects:findings', args=[project.pk])}?group=plugin&state=any&triage=any",
        ),
        ("findings-by-host", f"{reverse('projects:findings', args=[project.pk])}?group=host"),
    ]:
        assert visit(page, watch, name, url) == 200

    # The API docs (Swagger UI) render, and the Django admin works.
    page.goto("/api/v1/docs")
    expect(page.locator(".swagger-ui .information-container")).to_be_visible()
    expect(page.get_by_text("/api/v1/projects", exact=True).first).to_be_visible()
    page.locator(".opblock-summary", has_text="/api/v1/me").click()  # Try it out: a real call from the docs
    page.get_by_role("button", name="Try it out").click()
    page.get_by_role("button", name="Execute").click()
    expect(page.locator(".live-responses-table tbody .response-col_status").first).to_have_text("200")
    shot(page, "swagger")
    integration_admin = "/admin/integrations/integration/"
    for url in [
        "/admin/",
        integration_admin,
        f"{integration_admin}{world['integration'].pk}/change/",
        "/admin/django_celery_beat/periodictask/add/",
    ]:
        assert visit(page, watch, url, url) == 200
    assert page.evaluate("() => typeof window.django?.jQuery") == "function"  # the admin's own scripts ran

    # Integrations: the settings drawer, Test Connection (htmx swap), Escape; Add connection; ?open= on load.
    page.goto("/integrations/")
    page.get_by_role("link", name="Settings for Tenable.io VM").click()
    drawer = page.get_by_role("dialog")
    expect(drawer).to_be_visible()
    drawer.get_by_role("button", name="Test Connection").click()
    expect(drawer.get_by_text("Connection successful")).to_be_visible()
    shot(page, "drawer-integration-tested")
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    page.get_by_role("link", name="Add connection").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    shot(page, "drawer-add-connection")
    page.get_by_role("dialog").get_by_role("link", name="Close").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    page.goto(f"/integrations/?tab=infra&open={world['integration'].pk}")
    expect(page.get_by_role("dialog")).to_be_visible()
    settle(page)

    # Project settings: Add Scanner (type radio swaps the drawer), Add, the profile drawer with a scan picked.
    page.goto(reverse("projects:scanners", args=[project.pk]))
    settle(page)
    page.get_by_role("link", name="Add Scanner").first.click()
    drawer = page.get_by_role("dialog")
    drawer.get_by_text("Infra", exact=True).click()
    drawer.get_by_role("radio", name=re.compile("Tenable.io VM")).check()
    shot(page, "drawer-add-scanner")
    drawer.get_by_role("button", name="Add").click()
    expect(drawer.get_by_role("heading", name="Add Tenable.io VM scanner")).to_be_visible()
    drawer.get_by_label("Bind to").select_option(str(world["sim"].scan_id("agent")))
    expect(drawer.locator("#scan-summary").get_by_text("Branch laptops", exact=True)).to_be_visible()
    drawer.get_by_role("checkbox", name="Scheduler").check()
    settle(page)
    shot(page, "drawer-profile-new")
    drawer.get_by_role("checkbox", name="Scheduler").uncheck()
    drawer.get_by_label("Profile Name").fill("Nightly")
    drawer.get_by_label("Meta Data").fill("team=payments")
    drawer.get_by_role("button", name="Save").click()  # closes the drawer (HX-Trigger) and refreshes the list
    expect(page.get_by_text("Scanner profile Nightly added.")).to_be_visible()
    expect(page.get_by_role("dialog")).to_have_count(0)
    settle(page)
    page.locator(f"#profile-{profile.pk}").get_by_role("link", name=f"Edit {profile.name}").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    settle(page)
    shot(page, "drawer-profile-edit")
    page.keyboard.press("Escape")

    # Findings: filters swap the results; the bulk-triage bar follows the selection; sorting and grouping swap.
    page.goto(reverse("projects:findings", args=[project.pk]))
    page.get_by_role("checkbox", name="Select all on this page").check()
    expect(page.get_by_text(re.compile(r"\d+ selected"))).to_be_visible()
    page.get_by_label("Action").select_option("risk_accepted")
    shot(page, "findings-bulk-bar")
    page.locator(".sev-toggle", has_text="Critical").first.click()
    settle(page)
    page.get_by_role("link", name="Host", exact=True).click()
    settle(page)
    page.get_by_label("Group").select_option("plugin")
    settle(page)
    page.get_by_label("Search", exact=True).fill("91001")
    settle(page)
    shot(page, "findings-swapped")

    # A finding's triage form (the Accept until field follows the choice) and the hosts filter.
    page.goto(reverse("projects:finding", args=[project.pk, world["finding"].pk]))
    page.get_by_label("Risk accepted").check()
    expect(page.get_by_label("Accept until")).to_be_visible()
    page.goto(reverse("projects:hosts", args=[project.pk]))
    page.get_by_label("Search hosts").fill("10.9")
    settle(page)

    # A running import polls until it finishes; the final fragment stops the polling.
    page.goto(reverse("projects:run", args=[project.pk, world["running"].pk]))
    expect(page.get_by_role("progressbar", name="Run progress")).to_be_visible()
    shot(page, "run-active")
    ScanRun.objects.filter(pk=world["running"].pk).update(
        status="succeeded", finished_at=timezone.now(), message="Imported 6 findings from 2 hosts"
    )
    expect(page.locator(".run-progress .badge", has_text="Succeeded")).to_be_visible()
    shot(page, "run-finished")

    # API tokens: create one, copy it, dismiss the message.
    page.goto(reverse("tokens:list"))
    page.get_by_label("Name").fill("CI pipeline")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_label("New token")).to_be_visible()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy", exact=True).click()
    expect(page.locator("#copy-status")).not_to_be_empty()
    shot(page, "token-created")
    alerts = page.locator("#messages .alert")
    count = alerts.count()
    if count:
        alerts.first.get_by_role("button", name="Dismiss").click()
        expect(alerts).to_have_count(count - 1)

    watch.assert_clean()


def test_imported_payloads_stay_text(page, watch, member, tmp_path):
    """RELIABILITY W5: findings imported from an export whose host names, plugin names, outputs and texts are
    `<script>` and `onerror=` payloads show them as text on the findings list (also after htmx swaps), the
    finding, host and run pages; nothing runs, no dialog opens, the policy reports nothing of ours."""
    project = Project.objects.create(name="Payments", description=PAYLOAD)
    project.memberships.create(user=member, role="member")
    run = import_payloads(project, tmp_path)
    failed = ScanRun.objects.create(
        project=project,
        trigger="upload",
        source_name=PAYLOAD,
        status="failed",
        error=f"Tenable.io: {PAYLOAD}",
    )
    finding = project.findings.order_by("pk").first()

    def shows_payloads_as_text() -> None:
        settle(page)
        expect(page.get_by_text(SCRIPT).filter(visible=True).first).to_be_visible()
        assert page.locator('img[src="x"]').count() == 0
        assert page.locator("script:not([src])").count() == 0
        assert page.evaluate("() => typeof window.alert") == "function" and page.dialogs == []

    login(page, member.username)
    findings_url = reverse("projects:findings", args=[project.pk])
    page.goto(f"{findings_url}?state=any&triage=any")
    shows_payloads_as_text()
    expect(page.get_by_role("link", name=f"{PAYLOAD} plugin 0")).to_have_count(2)  # one per host
    page.get_by_label("Search", exact=True).fill("plugin 1")
    shows_payloads_as_text()
    expect(page.get_by_role("link", name=f"{PAYLOAD} plugin 1")).to_have_count(2)
    page.get_by_label("Group").select_option("host")
    shows_payloads_as_text()
    page.get_by_label("Group").select_option("plugin")
    shows_payloads_as_text()
    shot(page, "xss-findings")

    for name, url in [
        ("xss-finding", reverse("projects:finding", args=[project.pk, finding.pk])),
        ("xss-host", reverse("projects:host", args=[project.pk, finding.asset_id])),
        ("xss-run", reverse("projects:run", args=[project.pk, run.pk])),
        ("xss-failed-run", reverse("projects:run", args=[project.pk, failed.pk])),
    ]:
        page.goto(url)
        shows_payloads_as_text()
        shot(page, name)
    page.goto(reverse("projects:finding", args=[project.pk, finding.pk]))
    expect(page.locator("pre.plugin-output")).to_contain_text(f"{SCRIPT}{ATTRIBUTE}")
    expect(page.get_by_role("link", name="javascript:alert(1)")).to_have_count(
        0
    )  # a see-also that is no link

    watch.assert_clean()


def test_destructive_actions_ask_once_through_data_confirm(page, watch, admin_user):
    """One confirmation mechanism (data-confirm, handled in app.js) for plain forms and htmx requests: each click
    asks once; Cancel sends nothing, OK goes ahead. Rotate secret and Revoke are plain forms, Delete an htmx POST."""
    from outbound.signing import generate_secret

    project = Project.objects.create(name="Payments")
    profile = ScannerProfile.objects.create(
        project=project,
        integration=make_integration("https://cloud.tenable.example"),
        name="Weekly",
        scan_id=42,
        meta_data="team=payments",
        webhook_url="https://hooks.example.com/tenable",
        webhook_secret=generate_secret(),
    )
    token, _ = ApiToken.issue(admin_user, "CI pipeline")
    secret = profile.webhook_secret
    webhook_url = reverse("webhooks:detail", args=[project.pk, profile.pk])
    scanners_url = reverse("projects:scanners", args=[project.pk])
    login(page, "admin")

    # Cancel (the page fixture dismisses every dialog): nothing is sent.
    page.goto(webhook_url)
    page.get_by_role("button", name="Rotate secret").click()
    page.goto(reverse("tokens:list"))
    page.get_by_role("button", name="Revoke").click()
    page.goto(scanners_url)
    page.get_by_role("link", name="Delete Weekly").click()
    settle(page)
    assert page.dialogs == [
        "Create a new signing secret? The current one keeps signing for 24 hours.",
        "Revoke “CI pipeline”? Anything using it stops working at once.",
        "Delete scanner profile Weekly and its schedule? Its run history goes with it; imported findings stay in "
        "the project.",
    ]
    profile.refresh_from_db()
    token.refresh_from_db()
    assert profile.webhook_secret == secret and token.revoked_at is None

    # OK: each action goes ahead, asked once.
    accepting = page.context.new_page()
    asked: list[str] = []
    accepting.dialogs = asked
    accepting.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    accepting_watch = PageWatch(accepting)
    accepting.goto(webhook_url)
    accepting.get_by_role("button", name="Rotate secret").click()
    expect(accepting.get_by_text("New signing secret created.")).to_be_visible()
    assert ScannerProfile.objects.get(pk=profile.pk).webhook_secret != secret
    accepting.goto(reverse("tokens:list"))
    accepting.get_by_role("button", name="Revoke").click()
    expect(accepting.get_by_text("Token “CI pipeline” revoked.")).to_be_visible()
    accepting.goto(scanners_url)
    accepting.get_by_role("link", name="Delete Weekly").click()
    expect(accepting.get_by_text("Scanner profile Weekly deleted with its schedule.")).to_be_visible()
    assert len(asked) == 3
    assert not ScannerProfile.objects.filter(pk=profile.pk).exists()
    token.refresh_from_db()
    assert token.revoked_at is not None

    for seen in (watch, accepting_watch):
        assert {kind: items for kind, items in seen.problems().items() if kind != "JS dialogs"} == {}

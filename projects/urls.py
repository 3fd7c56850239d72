"""Every URL of the projects app, grouped by the object it acts on. The views live in their rooms."""

from django.urls import path

from . import views
from .findings import views as findings
from .profiles import views as profiles
from .runs import views as runs

app_name = "projects"
urlpatterns = [
    # Projects and their members
    path("", views.project_list, name="list"),
    path("new/", views.project_create, name="create"),
    path("<int:pk>/", views.project_detail, name="detail"),
    path("<int:pk>/settings/", views.project_edit, name="edit"),
    path("<int:pk>/delete/", views.project_delete, name="delete"),
    path("<int:pk>/settings/members/", views.members, name="members"),
    path("<int:pk>/settings/members/<int:membership_pk>/role/", views.member_role, name="member_role"),
    path("<int:pk>/settings/members/<int:membership_pk>/remove/", views.member_remove, name="member_remove"),
    # Scanner profiles (Settings › Scanners)
    path("<int:pk>/settings/scanners/", profiles.scanners, name="scanners"),
    path("<int:pk>/settings/scanners/add/", profiles.add_scanner, name="add_scanner"),
    path("<int:pk>/settings/scanners/new/", profiles.profile_new, name="profile_new"),
    path("<int:pk>/settings/scanners/scan-summary/", profiles.scan_summary, name="scan_summary"),
    path("<int:pk>/settings/scanners/<int:profile_pk>/", profiles.profile_edit, name="profile"),
    path(
        "<int:pk>/settings/scanners/<int:profile_pk>/delete/", profiles.profile_delete, name="profile_delete"
    ),
    # Runs (and uploads, which are runs too)
    path("<int:pk>/profiles/<int:profile_pk>/run/", runs.run_now, name="run_now"),
    path("<int:pk>/runs/", runs.run_list, name="runs"),
    path("<int:pk>/runs/<int:run_pk>/", runs.run_detail, name="run"),
    path("<int:pk>/runs/<int:run_pk>/cancel/", runs.run_cancel, name="run_cancel"),
    path("<int:pk>/upload/", runs.upload, name="upload"),
    # Findings and hosts
    path("<int:pk>/findings/", findings.findings_list, name="findings"),
    path("<int:pk>/findings.csv", findings.findings_csv, name="findings_csv"),
    path("<int:pk>/findings/triage/", findings.findings_bulk_triage, name="findings_triage"),
    path("<int:pk>/findings/<int:finding_pk>/", findings.finding_detail, name="finding"),
    path("<int:pk>/findings/<int:finding_pk>/triage/", findings.finding_triage, name="finding_triage"),
    path("<int:pk>/findings/<int:finding_pk>/untriage/", findings.finding_untriage, name="finding_untriage"),
    path("<int:pk>/hosts/", findings.host_list, name="hosts"),
    path("<int:pk>/hosts/<int:asset_pk>/", findings.host_detail, name="host"),
]

"""Project › Settings › Jira and the ticket actions on findings, under the project's own URLs."""

from django.urls import path

from . import views

app_name = "tickets"
_SETTINGS = "<int:pk>/settings/jira/"
urlpatterns = [
    path(_SETTINGS, views.mapping, name="mapping"),
    path(_SETTINGS + "lookup/", views.lookup, name="lookup"),
    path(_SETTINGS + "test/", views.test_mapping, name="test"),
    path(_SETTINGS + "preview/", views.preview, name="preview"),
    path(_SETTINGS + "sync/", views.sync_now, name="sync"),
    path(_SETTINGS + "syncs/", views.syncs, name="syncs"),
    path(_SETTINGS + "remove/", views.remove, name="remove"),
    path("<int:pk>/findings/<int:finding_pk>/jira/", views.finding_ticket, name="finding"),
    path("<int:pk>/findings/jira/", views.bulk_create, name="bulk"),
]

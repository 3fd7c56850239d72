"""Settings › API Tokens (the API itself is mounted from `api.views.api`)."""

from django.urls import path

from . import token_views

app_name = "tokens"
urlpatterns = [
    path("", token_views.token_list, name="list"),
    path("<int:pk>/revoke/", token_views.token_revoke, name="revoke"),
]

"""A scanner profile's Webhook page and its actions, under the profile's own URL."""

from django.urls import path

from . import views

app_name = "webhooks"
_PROFILE = "<int:pk>/settings/scanners/<int:profile_pk>/webhook/"
urlpatterns = [
    path(_PROFILE, views.webhook, name="detail"),
    path(_PROFILE + "test/", views.webhook_test, name="test"),
    path(_PROFILE + "rotate/", views.webhook_rotate, name="rotate"),
    path(_PROFILE + "enable/", views.webhook_enable, name="enable"),
    path(_PROFILE + "deliveries/<int:delivery_pk>/redeliver/", views.webhook_redeliver, name="redeliver"),
]

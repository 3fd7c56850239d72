"""The site's URLs plus one view that fails, for the unhandled-exception tests (RELIABILITY W9)."""

from __future__ import annotations

from django.urls import path

from config.urls import handler500
from config.urls import urlpatterns as site_urlpatterns

SENTINEL = "SENTINEL-boom-5e1f"

__all__ = ["SENTINEL", "handler500", "urlpatterns"]


def boom(request):
    raise RuntimeError(f"{SENTINEL}: SECRET_KEY FERNET_KEYS DATABASES in an exception message")


urlpatterns = [*site_urlpatterns, path("boom/", boom, name="boom")]

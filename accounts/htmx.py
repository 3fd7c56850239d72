"""The drawer protocol's one answer to a valid POST, through django-htmx's helpers (no raw HX-* headers)."""

from __future__ import annotations

from django.http import HttpResponse
from django_htmx.http import reswap, retarget, trigger_client_event

MESSAGES = "#messages"


def into_messages(response: HttpResponse) -> HttpResponse:
    """Swap this response into the page's messages area instead of the element that asked."""
    return reswap(retarget(response, MESSAGES), "innerHTML")


def close_drawer(response: HttpResponse, *, refresh: str) -> HttpResponse:
    """Show the response in the messages area, refresh the list behind the drawer (`refresh`), close the drawer.

    Both events fire after the swap, the refresh first: it bubbles to <body> from the drawer's form, which
    closing the drawer detaches (and htmx resolves the retarget from it too).
    """
    into_messages(response)
    trigger_client_event(response, refresh, after="swap")
    return trigger_client_event(response, "closeDrawer", after="swap")

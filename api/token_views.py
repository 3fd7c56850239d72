"""Settings › API Tokens: each user creates, lists and revokes their own tokens; a new token is shown once."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import record

from .models import ApiToken

EXPIRY_CHOICES = [("30", "30 days"), ("90", "90 days"), ("365", "1 year"), ("", "No expiry")]


class TokenForm(forms.Form):
    """Name a token after where it will live (a CI pipeline, a laptop) and choose how long it lasts."""

    name = forms.CharField(
        label="Token name",
        max_length=100,
        help_text="Where it will be used, e.g. “GitLab CI – payments”.",
        widget=forms.TextInput(attrs={"placeholder": "GitHub Actions – payments", "autocomplete": "off"}),
    )
    expires_in = forms.ChoiceField(
        label="Expiry",
        choices=EXPIRY_CHOICES,
        initial="90",
        required=False,
        help_text="An expired token stops working; create a new one to replace it.",
    )

    def clean_name(self) -> str:
        return self.cleaned_data["name"].strip()

    def expires_at(self):
        days = self.cleaned_data.get("expires_in")
        return timezone.now() + timedelta(days=int(days)) if days else None


@never_cache
@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest) -> HttpResponse:
    """The user's tokens and the create form; after a valid POST the new token is shown once, in this response."""
    form = TokenForm(request.POST or None)
    new_token = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            token, new_token = ApiToken.issue(request.user, form.cleaned_data["name"], form.expires_at())
            record(
                request.user,
                "api_token.created",
                token,
                request,
                name=token.name,
                prefix=token.prefix,
                expires=token.expires_at.date().isoformat() if token.expires_at else "never",
            )
            form = TokenForm()
        else:
            status = 400
    tokens = ApiToken.objects.filter(user=request.user).order_by("revoked_at", "-created_at")
    # never_cache (no-store): the raw token is in this response only and must not land in any cache.
    return render(
        request,
        "api/tokens.html",
        {
            "form": form,
            "tokens": tokens,
            "new_token": new_token,
            "api_url": request.build_absolute_uri("/").rstrip("/"),
        },
        status=status,
    )


@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    """Revoke one of the user's own tokens (others' ids answer 404); it stops working at once."""
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    changed = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    if changed:
        record(request.user, "api_token.revoked", token, request, name=token.name, prefix=token.prefix)
        messages.success(request, f"Token “{token.name}” revoked. Anything still using it now gets 401.")
    return redirect("tokens:list")

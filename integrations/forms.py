from __future__ import annotations

from urllib.parse import urlsplit

from django import forms
from django.utils.crypto import salted_hmac

from .connectors import TICKETING, CredentialField
from .models import Integration
from .services import is_allowed_for, is_loopback, not_allowed, same_api_url, url_changed


def credential_field(declared: CredentialField, *, required: bool, help_text: str) -> forms.CharField:
    """A form field for one declared credential: secret ones are write-only (never rendered back)."""
    return forms.CharField(
        label=declared.label,
        required=required,
        strip=True,
        max_length=200,
        help_text=help_text,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off", "spellcheck": "false"})
        if declared.secret
        else forms.TextInput(),
    )


class IntegrationForm(forms.ModelForm):
    """Connection Name, the connector's declared credentials (write-only) and the API URL.

    A blank secret keeps the stored one, so editing the name never requires re-entering keys; changing the
    API URL does, because saved keys are only ever sent to the URL they were saved with (RELIABILITY S8).
    """

    api_url = forms.URLField(label="API URL", max_length=300, assume_scheme="https")

    class Meta:
        model = Integration
        fields = ["name", "api_url"]
        labels = {"name": "Connection Name", "api_url": "API URL"}
        help_texts = {
            "name": "A unique name for this connection, e.g. the Tenable.io container it reaches.",
        }

    def __init__(self, *args, connector_slug: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.connector = connector_slug
        self.spec = self.instance.spec
        self.fields["api_url"].initial = self.spec.default_api_url
        self.fields["api_url"].help_text = self.spec.api_url_help
        self.fields["api_url"].label = self.spec.api_url_label
        has_keys = bool(self.instance.pk and self.instance.access_key_hint)
        # Read before validation: ModelForm copies the submitted URL onto the instance while cleaning.
        self.saved_api_url = self.instance.api_url if self.instance.pk else ""
        self.has_saved_keys = has_keys
        self.credential_names = []
        for declared in self.spec.credential_fields:
            help_text = declared.help_text
            if has_keys and declared.secret:
                help_text += " Leave blank to keep the saved key."
            self.fields[declared.name] = credential_field(
                declared, required=not has_keys or not declared.secret, help_text=help_text
            )
            if not declared.secret and self.instance.pk:
                # Not a secret (an account's e-mail): shown, and sent again with every save.
                self.fields[declared.name].initial = getattr(self.instance, declared.name, "")
            self.credential_names.append(declared.name)
        # Credentials first, as in the vendor's settings panel, then the advanced API URL.
        self.order_fields(["name", *self.credential_names, "api_url"])

    def clean_api_url(self) -> str:
        url = self.cleaned_data["api_url"].strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme != "https" and not (
            parts.scheme == "http" and parts.hostname and is_loopback(parts.hostname)
        ):
            raise forms.ValidationError(
                "Use an https:// URL (plain http is allowed only for 127.0.0.1 / localhost)."
            )
        if parts.username is not None or parts.password is not None:
            raise forms.ValidationError(
                "Remove the user name and password from the URL; keys go in the fields above."
            )
        if not is_allowed_for(url, self.spec):
            raise forms.ValidationError(not_allowed(self.spec))
        if self.spec.kind == TICKETING:
            # A ticketing site serves its API at its root: a pasted page address (…/browse/SEC-1) is its site.
            url = f"{parts.scheme}://{parts.netloc}"
        return url

    def clean(self):
        cleaned = super().clean()
        url = cleaned.get("api_url")
        if (
            url
            and self.has_saved_keys
            and not same_api_url(url, self.saved_api_url)
            and not all(cleaned.get(name) for name in self.credential_names)
        ):
            self.add_error("api_url", url_changed(self.spec))
        return cleaned

    @property
    def credentials(self) -> dict[str, str]:
        """The credentials typed into the form; blanks mean 'use the stored value'."""
        return {name: self.cleaned_data.get(name, "") for name in self.credential_names}

    @property
    def changed_credentials(self) -> list[str]:
        return [name for name, value in self.credentials.items() if value]

    def fingerprint(self) -> str:
        """An HMAC of exactly what was submitted, so "Save anyway" saves only what the user saw fail."""
        values = [
            self.cleaned_data.get("name", ""),
            self.cleaned_data.get("api_url", ""),
            *self.credentials.values(),
        ]
        return salted_hmac("integration-save-anyway", "\x1f".join(values)).hexdigest()[:40]

    def save(self, commit: bool = True) -> Integration:
        integration = super().save(commit=False)
        for name, value in self.credentials.items():
            if value:
                setattr(integration, name, value)
        if self.credentials.get("access_key"):
            integration.access_key_hint = self.credentials["access_key"][-4:]
        if commit:
            integration.save()
        return integration


class ReplaceKeysForm(forms.Form):
    """Replace keys: a whole new pair (every declared credential, required), tested before anything changes."""

    def __init__(self, *args, integration: Integration, **kwargs):
        super().__init__(*args, **kwargs)
        self.spec = integration.spec
        for declared in self.spec.credential_fields:
            self.fields[declared.name] = credential_field(
                declared, required=True, help_text=f"The new {declared.label}."
            )

    @property
    def credentials(self) -> dict[str, str]:
        return {name: self.cleaned_data[name] for name in self.spec.credential_names()}

"""Deploy checks for the encryption keys (RELIABILITY §3.4): fail fast, before users meet an undecryptable key."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.db import DatabaseError

MIN_FERNET_KEY_LENGTH = 32


def encrypted_models():
    """(model, encrypted field names) for every model that stores a secret."""
    from django.apps import apps
    from fernet_fields import EncryptedField

    for model in apps.get_models():
        names = [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedField)]
        if names:
            yield model, names


def undecryptable_rows(limit: int | None = None) -> list[str]:
    """`model pk` labels of stored secrets the current FERNET_KEYS cannot decrypt (values never loaded into errors)."""
    from cryptography.fernet import InvalidToken

    failures: list[str] = []
    for model, names in encrypted_models():
        pks = model.objects.values_list("pk", flat=True).order_by("pk")
        for pk in pks[:limit] if limit else pks:
            try:
                model.objects.only("pk", *names).get(pk=pk)
            except InvalidToken:
                failures.append(f"{model._meta.label} {pk}")
    return failures


@register(Tags.security, deploy=True)
def check_fernet_keys(app_configs=None, **kwargs):
    keys = getattr(settings, "FERNET_KEYS", None) or []
    fallbacks = set(getattr(settings, "SECRET_KEY_FALLBACKS", []))
    errors = []
    if not keys:
        errors.append(
            Error(
                "FERNET_KEYS is not set: stored Tenable keys would be encrypted with SECRET_KEY.",
                hint="Generate one with `python -c 'import secrets; print(secrets.token_urlsafe(48))'`.",
                id="integrations.E001",
            )
        )
    for key in keys:
        if key == settings.SECRET_KEY or key in fallbacks:
            errors.append(
                Error("A FERNET_KEYS entry equals SECRET_KEY or a fallback.", id="integrations.E002")
            )
        elif len(key) < MIN_FERNET_KEY_LENGTH:
            errors.append(
                Error(
                    f"A FERNET_KEYS entry is shorter than {MIN_FERNET_KEY_LENGTH} characters.",
                    id="integrations.E003",
                )
            )
    if keys and not errors:
        try:
            failures = undecryptable_rows(limit=50)
        except DatabaseError:
            failures = []  # tables not migrated yet: nothing stored to check
        if failures:
            errors.append(
                Error(
                    f"Stored secrets cannot be decrypted with FERNET_KEYS: {', '.join(failures[:10])}.",
                    hint="Restore the previous key as a second FERNET_KEYS entry, or re-enter the keys in the app.",
                    id="integrations.E004",
                )
            )
    return errors

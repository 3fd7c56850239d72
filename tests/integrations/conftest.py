from __future__ import annotations

import pytest

from integrations.checks import encrypted_models
from integrations.models import Integration
from tests.tenable_fixtures import SIM_ACCESS_KEY, SIM_SECRET_KEY


def reset_fernet_caches() -> None:
    """EncryptedField caches its keys per process; tests that change FERNET_KEYS must drop them (RELIABILITY §3.1)."""
    for model, names in encrypted_models():
        for name in names:
            field = model._meta.get_field(name)
            for attr in ("keys", "fernet_keys", "fernet"):
                field.__dict__.pop(attr, None)


@pytest.fixture
def fernet_keys(settings):
    """Set FERNET_KEYS for one test: `fernet_keys(["new", "old"])`."""

    def use(keys: list[str]) -> None:
        settings.FERNET_KEYS = keys
        reset_fernet_caches()

    yield use
    reset_fernet_caches()


def make_integration(
    url: str, access_key: str = SIM_ACCESS_KEY, secret_key: str = SIM_SECRET_KEY, **extra
) -> Integration:
    values = {"connector": "tenableiovm", "name": "Tenable.io VM", "is_active": True, "api_url": url}
    values.update(extra)
    return Integration.objects.create(
        access_key=access_key, secret_key=secret_key, access_key_hint=access_key[-4:], **values
    )

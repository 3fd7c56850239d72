from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the FERNET_KEYS deploy checks)

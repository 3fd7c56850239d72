from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Users and audit"

    def ready(self) -> None:
        from . import middleware, throttling  # noqa: F401  (connect their signal receivers)

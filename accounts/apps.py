from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Users and audit"

    def ready(self) -> None:
        from . import throttling  # noqa: F401  (connects the sign-in audit receivers)

from django.contrib import admin

from .models import Integration


@admin.register(Integration)
class IntegrationAdmin(admin.ModelAdmin):
    """Read-mostly view for superusers; keys are managed in the app and never rendered here (RELIABILITY S4)."""

    list_display = ["name", "connector", "is_active", "api_url", "last_test_ok", "last_tested_at"]
    fields = [
        "name",
        "connector",
        "is_active",
        "api_url",
        "access_key_hint",
        "keys_set_at",
        "keys_set_by",
        "last_tested_at",
        "last_test_ok",
        "last_test_message",
        "failing_since",
    ]
    # The API URL changes only in the app, where a new URL requires new keys (RELIABILITY S8).
    readonly_fields = [
        "connector",
        "api_url",
        "access_key_hint",
        "keys_set_at",
        "keys_set_by",
        "last_tested_at",
        "last_test_ok",
        "last_test_message",
        "failing_since",
    ]
    actions = None

    def get_queryset(self, request):
        return super().get_queryset(request).defer("access_key", "secret_key")

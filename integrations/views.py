from __future__ import annotations

from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.permissions import admin_required

from .connectors import connectors_by_category
from .models import Integration


@admin_required
@require_GET
def scanners(request):
    categories = connectors_by_category()
    tab = request.GET.get("tab") or categories[0][0]
    connections = Integration.objects.defer("access_key", "secret_key")
    return render(
        request,
        "integrations/scanners.html",
        {"categories": categories, "tab": tab, "connections": connections},
    )

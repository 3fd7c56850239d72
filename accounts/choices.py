from __future__ import annotations

from django.db import models


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"


ROLE_HELP = {
    Role.ADMIN: "Integrations, users and every project",
    Role.MEMBER: "Edits and runs the projects they belong to",
    Role.VIEWER: "Reads the projects they belong to",
}

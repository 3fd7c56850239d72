"""Who is calling: key pairs per role, the calls each role may make, what each user may view, and tags.

Roles and the calls they allow follow TENABLE_API.md ("Roles and permissions per call"). Asset visibility
comes from permission configurations: Can View on All Assets, or on one tag for the Basic user.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .catalogue import uuid_of
from .data import TAGS
from .responses import json_response

BASIC, SCAN_OPERATOR, STANDARD, SCAN_MANAGER, ADMINISTRATOR = 16, 24, 32, 40, 64
ROLE_NAMES = {16: "Basic", 24: "Scan Operator", 32: "Standard", 40: "Scan Manager", 64: "Administrator"}
# The published key pairs, one per role (the constructor's access_key/secret_key is an Administrator too).
ROLE_KEYS = {
    "basic": ("sim-basic-access", "sim-basic-secret"),
    "scan_operator": ("sim-operator-access", "sim-operator-secret"),
    "standard": ("sim-standard-access", "sim-standard-secret"),
    "scan_manager": ("sim-manager-access", "sim-manager-secret"),
    "administrator": ("sim-admin-access", "sim-admin-secret"),
}
_USERS = {
    # role key: (permissions, username, display name, scan user_permissions)
    "basic": (BASIC, "vm-readonly@example.com", "Read-only integration", 16),
    "scan_operator": (SCAN_OPERATOR, "scan-operator@example.com", "Scan Operator", 32),
    "standard": (STANDARD, "standard-user@example.com", "Standard user", 64),
    "scan_manager": (SCAN_MANAGER, "scan-manager@example.com", "Scan Manager", 128),
    "administrator": (ADMINISTRATOR, "admin@example.com", "Administrator", 128),
    "main": (ADMINISTRATOR, "secops@example.com", "SecOps Integration", 128),
}
BASIC_VIEW_TAG = 0  # index in TAGS of the one tag the Basic user may view (Location: Dallas)


@dataclass(frozen=True, slots=True)
class User:
    """The user behind a key pair: role number, identity, and the tags it may view (None: All Assets)."""

    role: str
    permissions: int
    username: str
    name: str
    scan_permissions: int
    view_tags: tuple[str, ...] | None
    uuid: str

    def may_view(self, asset_tags: list[str]) -> bool:
        return self.view_tags is None or any(t in self.view_tags for t in asset_tags)


class Access:
    """Authentication per key pair, `/session`, `/api/v3/access-control/permissions/users/me`, tags."""

    seed: int
    keys: tuple[str, str]
    forbidden_keys: tuple[str, str]
    tag_values: dict[str, dict[str, str]]
    _lock: threading.RLock
    _users: dict[tuple[str, str], User]
    _born: int

    def _make_users(self, role_keys: dict[str, tuple[str, str]]) -> dict[tuple[str, str], User]:
        tag_uuids = list(self.tag_values)
        users = {}
        for role, pair in [*role_keys.items(), ("main", self.keys)]:
            permissions, username, name, scan_permissions = _USERS[role]
            view = (tag_uuids[BASIC_VIEW_TAG],) if permissions == BASIC else None
            uuid = uuid_of(self.seed, 0x05E, len(users))
            users[tuple(pair)] = User(role, permissions, username, name, scan_permissions, view, uuid)
        return users

    def user(self, access_key: str) -> User | None:
        """The user of a published access key (for tests: its role, what it may view)."""
        return next((u for (a, _), u in self._users.items() if a == access_key), None)

    def _auth(self, header: str | None) -> tuple[str, str | None, User | None]:
        """(valid/forbidden/invalid/missing, access key, user) for an X-ApiKeys header."""
        if not header:
            return "missing", None, None
        parts = {}
        for piece in header.split(";"):
            name, sep, value = piece.strip().partition("=")
            if sep:
                parts[name.strip().lower()] = value.strip()
        pair = (parts.get("accesskey"), parts.get("secretkey"))
        if pair == self.forbidden_keys:
            return "forbidden", pair[0], None
        user = self._users.get(pair)  # type: ignore[arg-type]
        if user is not None:
            return "valid", pair[0], user
        return "invalid", None, None

    # -- endpoints ----------------------------------------------------------------------------------

    def _session(self, start_response: Callable, *, user: User, **_: Any) -> list[bytes]:
        body = {
            "id": 2_309_095 if user.role == "main" else 2_309_100 + user.permissions,
            "uuid": user.uuid,
            "username": user.username,
            "email": user.username,
            "name": user.name,
            "type": "local",
            "permissions": user.permissions,
            "container_id": 7012,
            "container_uuid": uuid_of(self.seed, 0xC0),
            "container_name": "Example Corp",
            "enabled": True,
            "lastlogin": self._born - 3600,
        }
        return json_response(start_response, 200, body)

    def _my_permissions(self, start_response: Callable, *, user: User, **_: Any) -> list[bytes]:
        """The user's permission configurations, shaped like Tenable's (objects AllAssets or Tag)."""
        if user.view_tags is None:
            grants = [(["CanView", "CanScan"], [{"type": "AllAssets"}], "All Assets [CanView, CanScan]")]
        else:
            grants = []
            for tag_uuid in user.view_tags:
                tag = self.tag_values[tag_uuid]
                label = f"{tag['category_name']}:{tag['value']}"
                grants.append(
                    (["CanView"], [{"type": "Tag", "uuid": tag_uuid, "name": label}], f"{label} [CanView]")
                )
        granted = [
            {
                "permission_uuid": uuid_of(self.seed, 0x9E2, user.permissions, n),
                "name": name,
                "subjects": [{"type": "User", "uuid": user.uuid, "name": user.username}],
                "actions": actions,
                "objects": objects,
                "created_at": (self._born - 90 * 86400) * 1000,
                "created_by": "admin@example.com",
            }
            for n, (actions, objects, name) in enumerate(grants)
        ]
        return json_response(
            start_response, 200, {"permissions_available": [], "permissions_granted": granted}
        )

    def _tag_value_body(self, value: str) -> dict[str, Any]:
        tag = self.tag_values[value]
        categories = list(dict.fromkeys(c for c, _ in TAGS))
        return {
            "uuid": value,
            "category_uuid": uuid_of(self.seed, 0xCA7, categories.index(tag["category_name"])),
            "category_name": tag["category_name"],
            "value": tag["value"],
            "description": "",
            "type": "static",
            "created_at": "2023-01-01T00:00:00.000Z",
            "created_by": "secops@example.com",
            "updated_at": "2023-01-01T00:00:00.000Z",
            "updated_by": "secops@example.com",
        }

    def _tag_value(self, start_response: Callable, *, value: str, **_: Any) -> list[bytes]:
        if value not in self.tag_values:
            return json_response(start_response, 404, {"error": "Tag value not found"})
        return json_response(start_response, 200, self._tag_value_body(value))

    def _tag_values(self, start_response: Callable, *, user: User, query_all: dict, **_: Any) -> list[bytes]:
        """`GET /tags/values`: the tag values this user may see, filtered (`f=field:op:value`, `ft`), sorted, paged."""
        values = [
            self._tag_value_body(v) for v in self.tag_values if user.view_tags is None or v in user.view_tags
        ]
        tests = [_tag_filter(f) for f in query_all.get("f", [])]
        combine = any if (query_all.get("ft", ["AND"])[-1]).upper() == "OR" else all
        if tests:
            values = [v for v in values if combine(test(v) for test in tests)]
        for spec in reversed((query_all.get("sort", [""])[-1]).split(",")):
            field_name, _, direction = spec.partition(":")
            if field_name:
                values.sort(key=lambda v: str(v.get(field_name, "")).lower(), reverse=direction == "desc")
        offset = int(query_all.get("offset", ["0"])[-1] or 0)
        limit = int(query_all.get("limit", ["5000"])[-1] or 5000)
        page = values[offset : offset + limit]
        body = {"values": page, "pagination": {"offset": offset, "limit": limit, "total": len(values)}}
        return json_response(start_response, 200, body)


def _tag_filter(spec: str) -> Callable[[dict[str, Any]], bool]:
    """One `field:operator:value[,value]` filter of the tags list (operators eq and match)."""
    field_name, _, rest = spec.partition(":")
    operator, _, raw = rest.partition(":")
    wanted = [w.lower() for w in raw.split(",")]
    if operator == "match":
        return lambda v: any(w in str(v.get(field_name, "")).lower() for w in wanted)
    return lambda v: str(v.get(field_name, "")).lower() in wanted

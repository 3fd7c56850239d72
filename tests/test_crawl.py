"""Every URL pattern of ours, as (name, path) with real arguments: the login-gate and secret-leak tests walk them."""

from __future__ import annotations

import re

from django.urls import URLPattern, URLResolver, get_resolver


def named_routes(ids: dict[str, int] | None = None, slug: str = "x") -> list[tuple[str, str]]:
    """(namespaced name, path) for every named non-admin route; `<int:x>` comes from `ids` (default 1)."""
    ids = ids or {}

    def fill(route: str) -> str:
        route = re.sub(r"<int:(\w+)>", lambda m: str(ids.get(m.group(1), 1)), route)
        return re.sub(r"<(?:str|slug|uuid):\w+>", slug, route)

    def walk(patterns, prefix="", namespace=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                if p.app_name != "admin":
                    ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
                    yield from walk(p.url_patterns, prefix + str(p.pattern), ns)
            elif isinstance(p, URLPattern) and p.name:
                yield namespace + p.name, "/" + fill(prefix + str(p.pattern))

    return list(walk(get_resolver().url_patterns))


def crawl_urls(client, ids: dict[str, int]):
    """Yield (url, response) for a GET of every route, as a full page and as an htmx fragment."""
    for _, url in named_routes(ids, slug="tenableiovm"):
        for headers in ({}, {"HX-Request": "true"}):
            yield url, client.get(url, headers=headers)


def test_live_regions_are_only_the_message_areas():
    """Screen readers announce live regions whole: only short message areas may be one (issue 13), never a
    table of results or a drawer."""
    import re
    from pathlib import Path

    allowed = {'id="messages"', 'id="test-result"', 'id="replace-result"', 'id="copy-status"'}
    templates = Path(__file__).resolve().parents[1] / "templates"
    for template in templates.rglob("*.html"):
        for tag in re.findall(r"<[^>]*aria-live[^>]*>", template.read_text()):
            assert any(name in tag for name in allowed), (template.name, tag)

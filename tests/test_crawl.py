"""Walk every URL pattern of ours with real ids, as a signed-in user (used by the secret-leak tests)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, get_resolver


def crawl_urls(client, ids: dict[str, int]):
    """Yield (url, response) for a GET of every named, non-admin route, filling `<int:x>` from `ids` (default 1)."""

    def walk(patterns, prefix=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                if p.app_name != "admin":
                    yield from walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern) and p.name:
                route = prefix + str(p.pattern)
                for converter in p.pattern.converters:
                    route = route.replace(f"<int:{converter}>", str(ids.get(converter, 1)))
                    route = route.replace(f"<slug:{converter}>", "tenableiovm")
                yield "/" + route

    for url in walk(get_resolver().url_patterns):
        for headers in ({}, {"HX-Request": "true"}):
            yield url, client.get(url, headers=headers)

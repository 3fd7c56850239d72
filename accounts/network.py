"""Where a request comes from: the client's address, honouring TRUSTED_PROXY_COUNT reverse proxies.

Behind a proxy every request arrives from the proxy's address; counting sign-in failures by that address would
lock the whole site out at once. Each trusted proxy appends the address it received from to X-Forwarded-For,
so with N proxies the client is the N-th entry from the right; entries further left were sent by the client
and are never trusted.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings


def client_ip(request) -> str | None:
    """The client's IP address: REMOTE_ADDR, or the entry the nearest trusted proxies vouch for."""
    remote = request.META.get("REMOTE_ADDR") or None
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if len(hops) < proxies:
        return remote
    candidate = hops[-proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote

"""Where outgoing webhooks may go, and the one function that sends them (no Django).

The SSRF rules follow RELIABILITY.md §1.5: validate the URL, resolve the host, refuse if ANY address is
not public, then connect only to the checked address (DNS pinning) with the original host name kept for
the Host header, SNI and certificate verification. Redirects are never followed.
"""

from __future__ import annotations

import functools
import http.client
import ipaddress
import re
import socket
import ssl
import string
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote, urlsplit

import certifi

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Ranges refused even where CPython calls them global (100.64/10 is not "private"; 224/4 and the IPv6
# transition prefixes can be "global"), after the Sentry and requests-hardened lists.
BLOCKED_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "255.255.255.255/32",
        "::/96",  # ::, ::1 and the deprecated IPv4-compatible ::a.b.c.d
        "::1/128",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "2001::/32",  # Teredo
        "2002::/16",
        "fd00:ec2::254/128",
    )
)

_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_ENCODED_BREAK = re.compile(r"%0[0ad]", re.IGNORECASE)


class RestrictedDestination(ValueError):
    """A webhook URL refused by policy; `message` is safe to show to the user.

    `transient` is True when the refusal may go away by itself (the host did not resolve).
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient


@dataclass(frozen=True)
class ParsedDestination:
    """A URL that passed `validate_url`: host is lower-case ASCII or a normalised IP, path includes the query."""

    scheme: str
    host: str
    port: int

    path: str

    @property
    def host_header(self) -> str:
        """The Host header value, as the receiver expects it for the original URL."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if DEFAULT_PORTS[self.scheme] == self.port else f"{host}:{self.port}"


@dataclass(frozen=True)
class DeliveryResult:
    """Outcome of one POST: `status` is None when no response arrived; `error` is None only for a 2xx."""

    status: int | None
    duration_ms: int
    error: str | None
    retry_after: float | None
    body_excerpt: str


def _refuse(reason: str) -> RestrictedDestination:
    return RestrictedDestination(f"Webhook destination not allowed: {reason}")


def _parse_allowed(entries: Iterable[str]) -> list[tuple[IPNetwork, int | None]]:
    """Turn "10.0.0.0/8", "127.0.0.1", "127.0.0.1:8443" or "[::1]:8443" into (network, port or None)."""
    parsed = []
    for entry in entries:
        entry = entry.strip()
        try:
            if entry.startswith("["):
                host, _, port = entry[1:].partition("]:")
                parsed.append((ipaddress.ip_network(host), int(port)))
            elif entry.count(":") == 1:
                host, _, port = entry.partition(":")
                parsed.append((ipaddress.ip_network(host), int(port)))
            else:
                parsed.append((ipaddress.ip_network(entry, strict=False), None))
        except ValueError as exc:
            raise ValueError(f"invalid allowed private address entry: {entry!r}") from exc
    return parsed


def _address_refusal(ip: IPAddress, port: int, allowed: list[tuple[IPNetwork, int | None]]) -> str | None:
    """What kind of address `ip` is when it may not be contacted ("a private address"), else None."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is not is_loopback until mapped
    if any(ip in net and allowed_port in (None, port) for net, allowed_port in allowed):
        return None
    if ip.is_global and not ip.is_multicast and not any(ip in net for net in BLOCKED_NETWORKS):
        return None
    kinds = [
        (ip.is_loopback, "a loopback"),
        (ip.is_unspecified, "an unspecified"),
        (ip.is_link_local, "a link-local"),
        (ip.is_multicast, "a multicast"),
        (ip.is_private, "a private"),
    ]
    return next((kind for matches, kind in kinds if matches), "a non-public") + " address"


def _ip_literal(host: str, bracketed: bool) -> IPAddress | None:
    """The address a host written as an IP literal stands for, in any form a resolver accepts."""
    if bracketed:
        if "%" in host:
            raise _refuse("IPv6 zone identifiers are not accepted.")
        try:
            ip = ipaddress.IPv6Address(host)
        except ValueError:
            raise _refuse(f"{host} is not a valid IPv6 address.")
        return ip.ipv4_mapped or ip
    # As in the WHATWG URL standard: a host whose last label is a number must be an IPv4 address,
    # and inet_aton reads the legacy forms (127.1, 2130706433, 0x7f000001, 0177.0.0.1).
    if not _NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        raise _refuse(f"{host} is not a valid IP address.")


def validate_url(
    url: str, *, allow_http: bool = False, allowed_private: Iterable[str] = ()
) -> ParsedDestination:
    """Check a webhook URL's syntax and policy without DNS; raise RestrictedDestination if refused.

    Host names are checked again after resolution by `resolve_and_check` (at save and at send time).
    """
    if len(url) > MAX_URL_LENGTH:
        raise _refuse(f"the URL is longer than {MAX_URL_LENGTH} characters.")
    # urlsplit silently drops tabs and line breaks, so look at the raw text first.
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url) or _ENCODED_BREAK.search(url):
        raise _refuse("the URL contains spaces, line breaks or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _refuse("the URL is not valid.")
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes:
        raise _refuse(f"only {' and '.join(schemes)} URLs are accepted.")
    if "@" in parts.netloc:
        raise _refuse("user names and passwords in the URL are not accepted.")
    host = (parts.hostname or "").removesuffix(".")
    if not host:
        raise _refuse("the URL has no host.")
    port = DEFAULT_PORTS[parts.scheme] if port is None else port
    if port not in (80, 443) and port < 1024:
        raise _refuse(f"port {port} is not allowed; use 443, 80 or a port from 1024 up.")

    allowed = _parse_allowed(allowed_private)
    ip = _ip_literal(host, bracketed=parts.netloc.startswith("["))
    if ip is not None:
        refusal = _address_refusal(ip, port, allowed)
        if refusal:
            raise _refuse(f"{ip} is {refusal}. Use a public https URL.")
        host = str(ip)
    else:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise _refuse(f"{host} is not a valid host name.")
        if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in host.split(".")):
            raise _refuse(f"{host} is not a valid host name.")
        # localhost names never reach DNS on most systems, so judge them as the loopback they are.
        if host == "localhost" or host.endswith(".localhost"):
            if _address_refusal(ipaddress.IPv4Address("127.0.0.1"), port, allowed):
                raise _refuse(f"{host} is a loopback address. Use a public https URL.")

    path = quote(parts.path or "/", safe=string.punctuation)  # only non-ASCII gets encoded
    if parts.query:
        path += "?" + quote(parts.query, safe=string.punctuation)
    return ParsedDestination(scheme=parts.scheme, host=host, port=port, path=path)


def resolve_and_check(host: str, port: int, *, allowed_private: Iterable[str] = ()) -> list[str]:
    """Resolve `host` and return its addresses, refusing if ANY of them is not public.

    One bad record is enough to refuse (Sentry's rule): a mixed answer is how rebinding attacks start.
    """
    allowed = _parse_allowed(allowed_private)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        infos = []
    if not infos:
        raise RestrictedDestination(f"Webhook host {host} cannot be resolved.", transient=True)
    addresses: list[str] = []
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        refusal = _address_refusal(ip, port, allowed)
        if refusal:
            where = f"{ip} is" if str(ip) == host else f"{host} resolves to {ip},"
            raise _refuse(f"{where} {refusal}. Use a public https URL.")
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        if str(ip) not in addresses:
            addresses.append(str(ip))
    return addresses


@functools.cache
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=certifi.where())


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline passed")
    return left


class _PinnedConnection(http.client.HTTPConnection):
    """HTTP(S) to already-checked addresses only; the host name is used for SNI and the certificate."""

    def __init__(self, dest: ParsedDestination, addresses: list[str], deadline: float) -> None:
        super().__init__(dest.host, dest.port)
        self.dest, self.addresses, self.deadline = dest, addresses, deadline

    def connect(self) -> None:
        # Our own socket instead of socket.create_connection, which would resolve the name again.
        error: OSError | None = None
        for ip in self.addresses:
            sock = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.settimeout(_remaining(self.deadline))
                sock.connect((ip, self.dest.port))
                break
            except TimeoutError:
                sock.close()
                raise
            except OSError as exc:
                sock.close()
                error = exc
        else:
            raise error or OSError("no address to connect to")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.dest.scheme == "https":
            sock = _tls_context().wrap_socket(sock, server_hostname=self.dest.host)
        self.sock = sock


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), or None."""
    value = (value or "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _read_capped(response: http.client.HTTPResponse, max_body: int, deadline: float) -> bytes:
    """Up to `max_body` bytes of the body; a slow, broken or endless body just ends the read.

    Each read waits at most the socket timeout set before the response, so the overall bound is
    below twice the delivery timeout even for a receiver that trickles bytes.
    """
    chunks: list[bytes] = []
    size = 0
    try:
        while size < max_body and _remaining(deadline):
            chunk = response.read1(min(16384, max_body - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except (OSError, http.client.HTTPException):
        pass
    return b"".join(chunks)


def _describe(exc: Exception, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"timeout after {timeout:g} s"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not accepted: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "connection closed without a response"
    if isinstance(exc, http.client.HTTPException):
        return f"invalid HTTP response ({type(exc).__name__})"
    return f"connection failed: {getattr(exc, 'strerror', None) or exc}"


def deliver(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float = 15.0,
    max_body: int = 65536,
    allow_http: bool = False,
    allowed_private: Iterable[str] = (),
) -> DeliveryResult:
    """POST `body` to `url` once, without redirects, within `timeout` seconds overall.

    Raises RestrictedDestination before connecting if policy refuses the URL; network and HTTP failures
    come back as a DeliveryResult with `error` set.
    """
    started = time.monotonic()
    allowed_private = list(allowed_private)
    dest = validate_url(url, allow_http=allow_http, allowed_private=allowed_private)
    addresses = resolve_and_check(dest.host, dest.port, allowed_private=allowed_private)

    conn = _PinnedConnection(dest, addresses, deadline=started + timeout)
    request_headers = {k: v for k, v in headers.items() if k.lower() not in ("host", "accept-encoding")}
    # The excerpt is logged as text, so ask for an uncompressed body.
    request_headers |= {"Host": dest.host_header, "Accept-Encoding": "identity"}
    status = retry_after = None
    error: str | None = None
    excerpt = b""
    try:
        conn.request("POST", dest.path, body=body, headers=request_headers)
        conn.sock.settimeout(_remaining(conn.deadline))
        with conn.getresponse() as response:
            status = response.status
            retry_after = _retry_after(response.getheader("Retry-After"))
            excerpt = _read_capped(response, max_body, conn.deadline)
        if 300 <= status < 400:
            error = f"redirect ({status}) not followed; update the webhook URL"
        elif not 200 <= status < 300:
            error = f"HTTP {status} {response.reason}".strip()
    except (OSError, http.client.HTTPException) as exc:
        error = _describe(exc, timeout)
    finally:
        conn.close()
    return DeliveryResult(
        status=status,
        duration_ms=int((time.monotonic() - started) * 1000),
        error=error,
        retry_after=retry_after,
        body_excerpt=excerpt.decode("utf-8", errors="replace"),
    )

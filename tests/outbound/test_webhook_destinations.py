"""Webhook destinations: SSRF refusals (H1-H3) and the pinned, no-redirect sender (H4-H6).

Nothing here leaves the machine: DNS is faked, refused destinations meet a connect spy that raises,
and real deliveries go to loopback receivers that the tests allow explicitly.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
import trustme
from standardwebhooks.webhooks import Webhook

from outbound import destinations as webhook_destinations
from outbound import signing as webhook_signing
from outbound.destinations import (
    ParsedDestination,
    RestrictedDestination,
    deliver,
    resolve_and_check,
    validate_url,
)

LOOPBACK = {"allow_http": True, "allowed_private": ["127.0.0.1/32"]}


@pytest.fixture
def connects(monkeypatch):
    """Every outgoing connect is recorded and refused, so a test can never reach the network."""
    calls = []

    def spy(sock, address):
        calls.append(address[:2])
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(socket.socket, "connect", spy)
    return calls


@pytest.fixture
def dns(monkeypatch):
    """A fake resolver: `dns.answers[host]` is a list of addresses or a callable returning one."""
    fake = SimpleNamespace(answers={}, calls=[])

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        fake.calls.append(host)
        answer = fake.answers.get(host)
        if answer is None:
            try:
                answer = [str(ipaddress.ip_address(host))]
            except ValueError:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answer = answer() if callable(answer) else answer
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port, 0, 0))
            if ":" in a
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in answer
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return fake


class _Server(ThreadingHTTPServer):
    block_on_close = False  # a deliberately slow handler must not hold up teardown


class Receiver:
    """A loopback HTTP(S) server that records each request and answers with `respond(handler)`."""

    def __init__(self, respond, tls: ssl.SSLContext | None = None):
        self.requests = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(
                    SimpleNamespace(
                        path=self.path, headers={k.lower(): v for k, v in self.headers.items()}, body=body
                    )
                )
                try:
                    respond(self)
                except OSError:
                    pass  # the sender hung up, which some tests intend

            def log_message(self, *args):
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        if tls:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    started = []

    def start(respond, tls=None):
        started.append(Receiver(respond, tls))
        return started[-1]

    yield start
    for r in started:
        r.close()


def reply(status, headers=(), body=b""):
    def respond(handler):
        handler.send_response(status)
        for name, value in headers:
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return respond


# --- H1: URL policy, before any DNS or connection ---------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://LOCALHOST./hook",
        "https://api.localhost/hook",
        "https://[::1]/hook",
        "https://0.0.0.0/hook",
        "https://127.1/hook",
        "https://2130706433/hook",
        "https://0x7f000001/hook",
        "https://0177.0.0.1/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[::ffff:169.254.169.254]/latest/meta-data/",
        "https://10.0.0.5:8443/hook",
    ],
)
def test_loopback_and_private_literals_are_refused_without_connecting(url, connects, dns):
    with pytest.raises(RestrictedDestination, match="Use a public https URL"):
        validate_url(url)
    with pytest.raises(RestrictedDestination):
        deliver(url, b"{}", {})
    assert connects == []
    assert dns.calls == []


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "gopher://example.com/_GET",
        "ftp://example.com/hook",
        "javascript:alert(1)",
        "http://example.com/hook",
        "https://user:pass@example.com/hook",
        "https://user@example.com/hook",
        "https://example.com/hook\r\nX-Injected: 1",
        "https://example.com/hook%0d%0aX-Injected:%201",
        "https://example.com/hook%0A",
        "https://example.com/\thook",
        "https://example.com/" + "a" * 2048,
        "https://example.com:22/hook",
        "https://example.com:25/hook",
        "https://example.com:0/hook",
        "https://example.com:99999/hook",
        "https:///hook",
        "https://exa mple.com/hook",
        "https://-bad-.example.com/hook",
        "https://1.2.3.4.5/hook",
        "https://[fe80::1%25eth0]/hook",
    ],
)
def test_bad_urls_are_refused_without_connecting(url, connects, dns):
    with pytest.raises(RestrictedDestination, match=r"^Webhook destination not allowed: "):
        validate_url(url)
    with pytest.raises(RestrictedDestination):
        deliver(url, b"{}", {})
    assert connects == []
    assert dns.calls == []


def test_refusal_message_is_user_facing():
    with pytest.raises(RestrictedDestination) as refused:
        validate_url("https://10.0.0.5/hook")
    assert refused.value.message == (
        "Webhook destination not allowed: 10.0.0.5 is a private address. Use a public https URL."
    )
    assert str(refused.value) == refused.value.message
    assert isinstance(refused.value, ValueError)
    assert refused.value.transient is False


def test_good_urls_are_normalised():
    assert validate_url("https://Hooks.Example.com/in?a=1&b=2#frag") == ParsedDestination(
        "https", "hooks.example.com", 443, "/in?a=1&b=2"
    )
    assert validate_url("https://example.com") == ParsedDestination("https", "example.com", 443, "/")
    assert validate_url("https://example.com:8443/x").port == 8443
    assert validate_url("http://example.com/x", allow_http=True).port == 80
    assert validate_url("https://93.184.216.34/x").host == "93.184.216.34"
    assert validate_url("https://bücher.example/ö").host == "xn--bcher-kva.example"
    assert validate_url("https://bücher.example/ö").path == "/%C3%B6"
    assert validate_url("https://[2606:2800:220:1::1]:8443/").host_header == "[2606:2800:220:1::1]:8443"


def test_allowed_private_entries_open_exactly_what_they_name():
    assert validate_url("http://127.0.0.1:8443/", allow_http=True, allowed_private=["127.0.0.1:8443"])
    assert validate_url("https://10.1.2.3/", allowed_private=["10.0.0.0/8"])
    assert validate_url("https://[::1]:9000/", allowed_private=["[::1]:9000"])
    assert validate_url("https://localhost:9000/", allowed_private=["127.0.0.1"]).host == "localhost"
    with pytest.raises(RestrictedDestination):
        validate_url("https://127.0.0.1:8444/", allowed_private=["127.0.0.1:8443"])
    with pytest.raises(RestrictedDestination):
        validate_url("https://127.0.0.2/", allowed_private=["127.0.0.1/32"])
    with pytest.raises(ValueError, match="invalid allowed private"):
        validate_url("https://example.com/", allowed_private=["not-an-ip"])


# --- H2 / H3: after DNS, every record must be public, and we connect to the one we checked --------

PRIVATE_ANSWERS = [
    "169.254.169.254",
    "fd00:ec2::254",
    "10.0.0.5",
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",
    "224.0.0.1",
    "fe80::1",
    "127.0.0.1",
    "::1",
    "0.0.0.0",
    "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe",
    "2002:a9fe:a9fe::1",
    "198.18.0.1",
    "255.255.255.255",
]


@pytest.mark.parametrize("address", PRIVATE_ANSWERS)
def test_host_resolving_to_a_private_address_is_refused(address, dns, connects):
    dns.answers["evil.test"] = [address]
    with pytest.raises(RestrictedDestination, match=r"evil\.test resolves to .*Use a public https URL"):
        resolve_and_check("evil.test", 443)
    with pytest.raises(RestrictedDestination):
        deliver("https://evil.test/hook", b"{}", {})
    assert connects == []


@pytest.mark.parametrize(
    "answer",
    [
        ["93.184.216.34", "10.0.0.5"],
        ["2606:2800:220:1:248:1893:25c8:1946", "fd00::1"],
        ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "169.254.169.254"],
    ],
)
def test_one_private_record_among_public_ones_refuses_the_host(answer, dns, connects):
    dns.answers["mixed.test"] = answer
    with pytest.raises(RestrictedDestination, match=r"private|link-local"):
        deliver("https://mixed.test/hook", b"{}", {})
    assert connects == []


def test_public_records_are_returned_in_order_without_duplicates(dns):
    dns.answers["ok.test"] = ["93.184.216.34", "::ffff:93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]
    assert resolve_and_check("ok.test", 443) == ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]


def test_unresolvable_host_is_refused_as_transient(dns, connects):
    with pytest.raises(RestrictedDestination, match="cannot be resolved") as refused:
        deliver("https://nowhere.test/hook", b"{}", {})
    assert refused.value.transient is True
    assert connects == []


def test_dns_rebinding_cannot_swap_the_connect_target(dns, connects):
    answers = iter([["93.184.216.34"]])
    dns.answers["rebind.test"] = lambda: next(answers, ["169.254.169.254"])

    result = deliver("https://rebind.test/hook", b"{}", {}, timeout=2)

    assert connects == [("93.184.216.34", 443)]  # the checked address, not a second lookup
    assert dns.calls == ["rebind.test"]
    assert result.status is None
    assert result.error == "connection refused"


def test_rebinding_between_save_and_send_is_caught_at_send(dns, connects):
    answers = iter([["93.184.216.34"]])
    dns.answers["rebind.test"] = lambda: next(answers, ["169.254.169.254"])
    dest = validate_url("https://rebind.test/hook")
    assert resolve_and_check(dest.host, dest.port) == ["93.184.216.34"]  # the check when saving

    with pytest.raises(RestrictedDestination, match=r"169\.254\.169\.254"):
        deliver("https://rebind.test/hook", b"{}", {})
    assert connects == []


# --- H4-H6: real deliveries to allowed loopback receivers --------------------------------------


def test_signed_delivery_arrives_intact_at_the_pinned_address(receiver, dns):
    server = receiver(reply(204))
    dns.answers["hooks.example.test"] = ["127.0.0.1"]
    secret = webhook_signing.generate_secret()
    body = b'{"type": "run.completed", "run": 42}'
    headers = webhook_signing.headers(webhook_signing.new_message_id(), int(time.time()), body, [secret])

    result = deliver(f"http://hooks.example.test:{server.port}/in?team=1", body, headers, **LOOPBACK)

    assert (result.status, result.error, result.retry_after) == (204, None, None)
    assert result.duration_ms >= 0
    [received] = server.requests
    assert received.path == "/in?team=1"
    assert received.body == body
    assert received.headers["host"] == f"hooks.example.test:{server.port}"
    assert {k: received.headers[k] for k in headers} == headers
    Webhook(secret).verify(received.body, received.headers)


def test_response_body_is_returned_as_an_excerpt(receiver):
    server = receiver(reply(200, body=b"accepted \xe2\x9c\x93"))
    result = deliver(f"http://127.0.0.1:{server.port}/", b"{}", {}, **LOOPBACK)
    assert (result.status, result.error, result.body_excerpt) == (200, None, "accepted ✓")


def test_redirect_is_not_followed(receiver):
    server = receiver(reply(302, [("Location", "http://169.254.169.254/latest/meta-data/")]))
    result = deliver(f"http://127.0.0.1:{server.port}/hook", b"{}", {}, **LOOPBACK)
    assert len(server.requests) == 1
    assert result.status == 302
    assert result.error == "redirect (302) not followed; update the webhook URL"


def test_server_error_is_a_failure(receiver):
    server = receiver(reply(500, body=b"boom"))
    result = deliver(f"http://127.0.0.1:{server.port}/", b"{}", {}, **LOOPBACK)
    assert (result.status, result.error, result.body_excerpt) == (
        500,
        "HTTP 500 Internal Server Error",
        "boom",
    )
    assert result.retry_after is None


def test_retry_after_in_seconds_and_as_a_date(receiver):
    server = receiver(reply(429, [("Retry-After", "120")]))
    result = deliver(f"http://127.0.0.1:{server.port}/", b"{}", {}, **LOOPBACK)
    assert (result.status, result.retry_after) == (429, 120.0)
    assert result.error.startswith("HTTP 429")

    later = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    server = receiver(reply(503, [("Retry-After", later)]))
    result = deliver(f"http://127.0.0.1:{server.port}/", b"{}", {}, **LOOPBACK)
    assert result.status == 503
    assert 55 <= result.retry_after <= 60

    server = receiver(reply(503, [("Retry-After", "soon")]))
    assert deliver(f"http://127.0.0.1:{server.port}/", b"{}", {}, **LOOPBACK).retry_after is None


def test_slow_receiver_times_out(receiver):
    def slow(handler):
        time.sleep(3)
        reply(200)(handler)

    server = receiver(slow)
    started = time.monotonic()
    result = deliver(f"http://127.0.0.1:{server.port}/", b"{}", {}, timeout=1, **LOOPBACK)
    assert time.monotonic() - started < 2
    assert result.status is None
    assert result.error == "timeout after 1 s"


def test_endless_body_is_read_only_up_to_the_cap(receiver):
    def endless(handler):
        handler.send_response(200)
        handler.end_headers()
        chunk = b"x" * 65536
        while True:
            handler.wfile.write(chunk)

    server = receiver(endless)
    tracemalloc.start()
    started = time.monotonic()
    try:
        result = deliver(f"http://127.0.0.1:{server.port}/", b"{}", {}, max_body=100_000, **LOOPBACK)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 5
    assert (result.status, result.error) == (200, None)
    assert len(result.body_excerpt) == 100_000
    assert peak < 2_000_000


def test_connection_refused_is_reported_not_raised():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again before the delivery, so nothing listens
    result = deliver(f"http://127.0.0.1:{port}/", b"{}", {}, **LOOPBACK)
    assert (result.status, result.error) == (None, "connection refused")


# --- TLS: connect to the pinned IP, but verify the certificate for the original host name ---------


@pytest.fixture
def tls(monkeypatch, dns):
    ca = trustme.CA()
    dns.answers["hooks.example.test"] = ["127.0.0.1"]
    client = ssl.create_default_context()
    ca.configure_trust(client)
    sni = []

    def server_context(name):
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(name).configure_cert(context)
        context.sni_callback = lambda sock, server_name, ctx: sni.append(server_name)
        return context

    def trust_test_ca():
        monkeypatch.setattr(webhook_destinations, "_tls_context", lambda: client)

    return SimpleNamespace(server_context=server_context, trust_test_ca=trust_test_ca, sni=sni)


def test_https_sends_sni_and_verifies_the_original_host_name(receiver, tls):
    tls.trust_test_ca()
    server = receiver(reply(200), tls=tls.server_context("hooks.example.test"))
    result = deliver(f"https://hooks.example.test:{server.port}/in", b"{}", {}, allowed_private=["127.0.0.1"])
    assert (result.status, result.error) == (200, None)
    assert tls.sni == ["hooks.example.test"]
    assert server.requests[0].headers["host"] == f"hooks.example.test:{server.port}"


def test_https_certificate_for_another_name_is_rejected(receiver, tls):
    tls.trust_test_ca()
    server = receiver(reply(200), tls=tls.server_context("other.example.test"))
    result = deliver(f"https://hooks.example.test:{server.port}/in", b"{}", {}, allowed_private=["127.0.0.1"])
    assert result.status is None
    assert result.error.startswith("TLS certificate not accepted: Hostname mismatch")
    assert server.requests == []


def test_https_certificate_from_an_unknown_ca_is_rejected(receiver, tls):
    server = receiver(reply(200), tls=tls.server_context("hooks.example.test"))
    result = deliver(f"https://hooks.example.test:{server.port}/in", b"{}", {}, allowed_private=["127.0.0.1"])
    assert result.status is None
    assert result.error.startswith("TLS certificate not accepted")
    assert server.requests == []

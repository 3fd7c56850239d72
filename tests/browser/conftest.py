"""Browser-test helpers for the strict Content-Security-Policy (issue 13): a watcher that records every CSP
violation, console error, uncaught exception and JS dialog a page produces, and the policy each page was served
with."""

from __future__ import annotations

import pytest

# Forwards the browser's own violation events to Python; installed before any script of the page runs.
VIOLATION_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolation({
    directive: e.effectiveDirective, blocked: e.blockedURI, source: e.sourceFile,
    line: e.lineNumber, sample: e.sample, page: location.href,
    element: e.target && e.target.outerHTML ? e.target.outerHTML.slice(0, 200) : String(e.target),
  });
});
"""

# The directives every HTML page must carry (RELIABILITY W5, issue 13).
REQUIRED_DIRECTIVES = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'self'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
}


def parse_policy(header: str) -> dict[str, str]:
    """`"default-src 'self'; img-src 'self' data:"` as {directive: sources}."""
    parts = (part.strip().split(None, 1) for part in header.split(";") if part.strip())
    return {part[0]: part[1] if len(part) > 1 else "" for part in parts}


def policy_problems(header: str | None) -> list[str]:
    """What makes a served policy weaker than the one required; empty when it is strict enough."""
    if not header:
        return ["no Content-Security-Policy header"]
    policy = parse_policy(header)
    problems = [
        f"{name} is {policy.get(name)!r}, expected {sources!r}"
        for name, sources in REQUIRED_DIRECTIVES.items()
        if policy.get(name) != sources
    ]
    problems += [
        f"{word} allowed" for word in ("'unsafe-inline'", "'unsafe-eval'", "*") if word in header.split()
    ]
    return problems


class PageWatch:
    """Everything a page did that a strict CSP or a careful front end must never produce."""

    def __init__(self, page) -> None:
        self.page = page
        self.violations: list[dict] = []
        self.console_errors: list[tuple[str, str]] = []
        self.page_errors: list[str] = []
        self.documents: list[tuple[str, int, str | None, str]] = []  # url, status, CSP header, content type
        self.allowed_console: list[str] = []
        page.expose_function("__cspViolation", lambda violation: self.violations.append(violation))
        page.add_init_script(VIOLATION_LISTENER)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.page_errors.append(f"{page.url}: {error}"))
        page.on("response", self._response)

    def _console(self, message) -> None:
        if message.type != "error":
            return
        text = message.text
        if message.location.get("url", "").endswith("/favicon.ico"):
            return  # pages without an icon link (JSON, the admin): the browser's own guess, not the page's
        if any(allowed in text for allowed in self.allowed_console):
            return
        self.console_errors.append((message.location.get("url", ""), text))

    def _response(self, response) -> None:
        if response.request.resource_type == "document":
            headers = response.headers
            self.documents.append(
                (
                    response.url,
                    response.status,
                    headers.get("content-security-policy"),
                    headers.get("content-type", ""),
                )
            )

    @property
    def dialogs(self) -> list[str]:
        return self.page.dialogs

    def weak_policies(self) -> list[tuple[str, list[str]]]:
        """HTML documents served without the strict policy."""
        return [
            (url, problems)
            for url, _, header, content_type in self.documents
            if content_type.startswith("text/html") and (problems := policy_problems(header))
        ]

    def problems(self) -> dict[str, list]:
        """Every kind of problem seen, by kind; empty when the page was clean."""
        found = {
            "CSP violations": self.violations,
            "uncaught exceptions": self.page_errors,
            "console errors": self.console_errors,
            "JS dialogs": self.dialogs,
            "pages without the strict policy": self.weak_policies(),
        }
        return {kind: items for kind, items in found.items() if items}

    def assert_clean(self) -> None:
        assert self.problems() == {}


@pytest.fixture
def watch(page) -> PageWatch:
    return PageWatch(page)

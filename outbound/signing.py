"""Standard Webhooks secrets and signatures (https://www.standardwebhooks.com/), no Django."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from secrets import token_bytes, token_urlsafe

SECRET_PREFIX = "whsec_"


def generate_secret() -> str:
    """A new endpoint secret: `whsec_` + base64 of 32 random bytes (the spec asks for 24 to 64)."""
    return SECRET_PREFIX + base64.b64encode(token_bytes(32)).decode("ascii")


def new_message_id() -> str:
    """A fresh `webhook-id`; keep it for every retry of the same event so receivers can deduplicate."""
    return "msg_" + token_urlsafe(18)


def _key(secret: str) -> bytes:
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        # Secrets from other tools may come without base64 padding.
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError("webhook secret is not valid base64") from exc
    if not key:
        raise ValueError("webhook secret is empty")
    return key


def sign(msg_id: str, timestamp: int, body: bytes, secrets: list[str]) -> str:
    """The `webhook-signature` value: one `v1,<base64 HMAC-SHA256>` per secret, newest first.

    Blank secrets are skipped, so a missing previous secret can be passed as "" during rotation.
    """
    signed = f"{msg_id}.{int(timestamp)}.".encode() + body
    signatures = [
        "v1," + base64.b64encode(hmac.new(_key(s), signed, hashlib.sha256).digest()).decode("ascii")
        for s in secrets
        if s
    ]
    if not signatures:
        raise ValueError("no webhook secret to sign with")
    return " ".join(signatures)


def headers(msg_id: str, timestamp: int, body: bytes, secrets: list[str]) -> dict[str, str]:
    """The request headers for one delivery attempt; `timestamp` is the attempt time in Unix seconds."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp)),
        "webhook-signature": sign(msg_id, timestamp, body, secrets),
        "content-type": "application/json",
    }

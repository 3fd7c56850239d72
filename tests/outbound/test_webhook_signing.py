"""Standard Webhooks signing: the spec's known answer, interop with the reference library, rotation (H8)."""

from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from outbound import signing as webhook_signing

VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_known_answer_vector():
    assert webhook_signing.sign(VECTOR_ID, VECTOR_TS, VECTOR_BODY, [VECTOR_SECRET]) == VECTOR_SIGNATURE


def test_generated_secret_is_32_random_bytes():
    secret = webhook_signing.generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert secret != webhook_signing.generate_secret()


def test_message_ids_are_unique_and_prefixed():
    first, second = webhook_signing.new_message_id(), webhook_signing.new_message_id()
    assert first.startswith("msg_") and len(first) > 20
    assert first != second


def test_headers_verify_with_the_reference_library():
    secret = webhook_signing.generate_secret()
    body = b'{"type": "run.completed", "data": {"id": 7, "name": "caf\xc3\xa9"}}'
    headers = webhook_signing.headers(webhook_signing.new_message_id(), int(time.time()), body, [secret])

    assert headers["content-type"] == "application/json"
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature", "content-type"}
    assert Webhook(secret).verify(body, headers) == {
        "type": "run.completed",
        "data": {"id": 7, "name": "café"},
    }
    with pytest.raises(WebhookVerificationError):
        Webhook(webhook_signing.generate_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body + b" ", headers)


def test_rotation_signs_with_both_secrets_newest_first():
    old, new = webhook_signing.generate_secret(), webhook_signing.generate_secret()
    body = b'{"ok": true}'
    msg_id, ts = webhook_signing.new_message_id(), int(time.time())
    headers = webhook_signing.headers(msg_id, ts, body, [new, old])

    signatures = headers["webhook-signature"].split(" ")
    assert signatures == [
        webhook_signing.sign(msg_id, ts, body, [new]),
        webhook_signing.sign(msg_id, ts, body, [old]),
    ]
    for secret in (old, new):
        Webhook(secret).verify(body, headers)


def test_blank_previous_secret_is_skipped_but_no_secret_at_all_is_an_error():
    secret = webhook_signing.generate_secret()
    assert webhook_signing.sign("msg_1", 1, b"{}", [secret, ""]) == webhook_signing.sign(
        "msg_1", 1, b"{}", [secret]
    )
    with pytest.raises(ValueError):
        webhook_signing.sign("msg_1", 1, b"{}", [""])
    with pytest.raises(ValueError):
        webhook_signing.sign("msg_1", 1, b"{}", ["whsec_not*base64"])

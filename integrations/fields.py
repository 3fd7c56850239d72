"""An encrypted text field that never serialises its value (so `dumpdata` and fixtures cannot leak it)."""

from __future__ import annotations

from fernet_fields import EncryptedTextField


class SecretField(EncryptedTextField):
    """Fernet-encrypted at rest under FERNET_KEYS; write-only everywhere else.

    `dumpdata` would otherwise emit the decrypted plaintext (RELIABILITY S6): it serialises as "".
    Restoring from a dump therefore means re-entering keys, which is the point.
    """

    def value_to_string(self, obj) -> str:
        return ""

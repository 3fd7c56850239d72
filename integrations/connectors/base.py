"""What every connector declares and implements. No Django here: forms and masking are built from the declaration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

# Categories in the order the Integrations › Scanners tabs show them.
CATEGORIES: list[tuple[str, str]] = [("infra", "Infra"), ("sast", "SAST"), ("dast", "DAST"), ("sca", "SCA")]


@dataclass(frozen=True)
class CredentialField:
    """One credential input: `name` is the model attribute, `secret` makes it write-only and encrypted."""

    name: str
    label: str
    secret: bool
    help_text: str = ""


class Connector:
    """A scanner service. Subclasses declare their identity and credentials and implement the calls."""

    do_not_call_in_templates = True  # templates read the class's declarations; they must not instantiate it
    slug: ClassVar[str]
    label: ClassVar[str]
    category: ClassVar[str]
    description: ClassVar[str] = ""
    credential_fields: ClassVar[tuple[CredentialField, ...]] = ()
    token_instructions: ClassVar[str] = ""
    default_api_url: ClassVar[str] = ""

"""What scanner profiles need their connection's key to do (issue 15), answered for integrations.

Integrations asks through `integrations.signals.profile_needs` (it never imports projects), for least-privilege
advice on the connection and to refuse replacement keys that would break these profiles. Capability keys are the
connector contract's (`integrations.connectors.base.CAN_*`); `integrations.rights.profile_warning(info, needs)`
turns one profile's needs into the sentence of what its key lacks.
"""

from __future__ import annotations

from django.dispatch import receiver

from integrations.connectors.base import CAN_READ_SCAN_RESULTS, CAN_START_SCANS
from integrations.signals import profile_needs as profile_needs_signal

from .models import ScannerProfile


def profile_needs(profile: ScannerProfile) -> list[str]:
    """The capabilities one profile needs, in the order a run uses them: a profile bound to a scan reads its
    results, and with Start Scan on it also starts the scan."""
    needs = [CAN_READ_SCAN_RESULTS]
    if profile.start_scan:
        needs.append(CAN_START_SCANS)
    return needs


@receiver(profile_needs_signal, dispatch_uid="projects.profile_needs")
def answer_profile_needs(sender, integrations, **kwargs) -> dict[int, dict[str, list[str]]]:
    """{integration pk: {capability key: ["“Profile” (Project)", …]}} for the profiles using these connections."""
    answer: dict[int, dict[str, list[str]]] = {}
    profiles = (
        ScannerProfile.objects.filter(integration__in=integrations)
        .select_related("project")
        .only("name", "start_scan", "integration_id", "project__name")
        .order_by("project__name", "name")
    )
    for profile in profiles:
        for key in profile_needs(profile):
            labels = answer.setdefault(profile.integration_id, {}).setdefault(key, [])
            labels.append(f"“{profile.name}” ({profile.project.name})")
    return answer

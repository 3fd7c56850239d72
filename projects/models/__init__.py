"""The projects app's models, one module per object: project, profile, run, finding."""

from .export import ExportChunk, ExportLease
from .finding import Asset, Finding, FindingEvent, FindingQuerySet, Plugin
from .profile import ScannerProfile
from .project import Membership, Project
from .run import RunAsset, ScanRun

__all__ = [
    "Asset",
    "ExportChunk",
    "ExportLease",
    "Finding",
    "FindingEvent",
    "FindingQuerySet",
    "Membership",
    "Plugin",
    "Project",
    "RunAsset",
    "ScanRun",
    "ScannerProfile",
]

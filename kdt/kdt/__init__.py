"""`kdt`: start Tenable Console scans from CI, follow them, and fail the build on finding thresholds."""

__version__ = "0.1.0"

"""Runs: requesting one and the pipeline a worker executes (`services`), the import engine (`importer`),
the Celery tasks, and the run pages with upload (`views`)."""

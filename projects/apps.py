from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "projects"
    verbose_name = "Projects"

    def ready(self) -> None:
        # The schedule clean-up receiver, and the tasks (services publish them by name, so they must be registered).
        from . import needs, tasks  # noqa: F401  (needs answers integrations' profile_needs signal)
        from .profiles import schedules  # noqa: F401

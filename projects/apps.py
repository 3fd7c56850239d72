from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "projects"
    verbose_name = "Projects"

    def ready(self) -> None:
        from . import signals, webhooks  # noqa: F401  (schedule clean-up; webhook re-enable on URL save)

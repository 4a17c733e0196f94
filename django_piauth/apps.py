from django.apps import AppConfig


class PiAuthConfig(AppConfig):
    name = "django_piauth"
    label = "django_piauth"
    verbose_name = "Pi authentication"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)

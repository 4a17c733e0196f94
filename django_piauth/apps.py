from importlib.util import find_spec

from django.apps import AppConfig


class PiAuthConfig(AppConfig):
    name = "django_piauth"
    label = "django_piauth"
    verbose_name = "Pi authentication"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, receivers  # noqa: F401  (checks register themselves)

        receivers.connect()
        from . import checks_payments, checks_safe  # noqa: F401  (SAFE, payment checks)

        if find_spec("drf_spectacular") is not None:  # the openapi extra is installed
            from . import openapi  # noqa: F401  (drf-spectacular finds its extensions)

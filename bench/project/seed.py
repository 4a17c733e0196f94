"""Migrate the benchmark database and make the DRF Token row: prints the token key.

    DJANGO_SETTINGS_MODULE=bench.project.settings python -m bench.project.seed
"""

import django
from django.core.management import call_command


def main() -> None:
    django.setup()
    call_command("migrate", verbosity=0, interactive=False)

    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user, _ = get_user_model().objects.get_or_create(username="bench-drf-token")
    token, _ = Token.objects.get_or_create(user=user)
    print(token.key)


if __name__ == "__main__":
    main()

"""``manage.py demo_setup``: create (or reset) the demo superuser and say how to sign in.

Run ``manage.py migrate`` first. DEMO ONLY: the password is fixed and printed.
"""

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

DEMO_ADMIN_USERNAME = "admin"
DEMO_ADMIN_PASSWORD = "pi-demo-admin"  # local demo only; published on purpose


class Command(BaseCommand):
    help = "Create or reset the demo superuser 'admin' and print the admin URL and password."

    def add_arguments(self, parser):
        parser.add_argument(
            "--base-url",
            default=f"http://127.0.0.1:{os.environ.get('PORT', '8000')}",
            help="Where the site runs (default: http://127.0.0.1:$PORT, PORT defaulting to 8000).",
        )

    def handle(self, *args, base_url: str, **options):
        user_model = get_user_model()
        user, created = user_model._default_manager.get_or_create(
            **{user_model.USERNAME_FIELD: DEMO_ADMIN_USERNAME}
        )
        user.is_active = True
        user.is_staff = True
        user.is_superuser = True
        user.set_password(DEMO_ADMIN_PASSWORD)
        user.save()
        base_url = base_url.rstrip("/")
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo superuser {'created' if created else 'reset'} (local demo only):"
            )
        )
        self.stdout.write(f"  admin URL: {base_url}/admin/")
        self.stdout.write(f"  username:  {DEMO_ADMIN_USERNAME}")
        self.stdout.write(f"  password:  {DEMO_ADMIN_PASSWORD}")

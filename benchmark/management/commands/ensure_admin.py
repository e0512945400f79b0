"""``manage.py ensure_admin``: make sure an admin account exists for the embedded mode."""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Create the superuser GEPPETTO_ADMIN_USER (default 'admin') if no superuser exists. "
        "The password comes from GEPPETTO_ADMIN_PASSWORD, or is generated and printed once."
    )

    def handle(self, *args, **options):
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write("An admin account exists already.")
            return
        username = os.environ.get("GEPPETTO_ADMIN_USER", "admin")
        password = os.environ.get("GEPPETTO_ADMIN_PASSWORD")
        generated = not password
        password = password or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        if generated:
            self.stdout.write(
                self.style.WARNING(
                    f"Admin account created: user {username!r}, password {password} "
                    "(shown once; change it in the admin)"
                )
            )
        else:
            self.stdout.write(f"Admin account {username!r} created from GEPPETTO_ADMIN_PASSWORD.")

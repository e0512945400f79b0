from django.apps import AppConfig


class ParticipantsConfig(AppConfig):
    """Studies, recruitment, the task player, sessions, responses and integrity flags."""

    name = "participants"
    verbose_name = "Participants"

    def ready(self):
        """Put the admin login behind a lockout after repeated failures.

        Researchers reach participant data through the admin, so its login is where
        guessing must stop; the URL conf picks up the wrapped view when it is built.
        """
        from django.contrib import admin

        from participants.security import lockout_login

        admin.site.login = lockout_login(admin.site.login)

"""System checks for what settings.py cannot refuse outright: a project that starts, but will not do what its
owner expects. They run with every management command that checks, the release phase's migrate among them,
so their warnings are in each deploy's log. https://docs.djangoproject.com/en/5.2/topics/checks/
"""

from django.conf import settings
from django.core import checks

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", ""}
HINT = "Add an email add-on and set the EMAIL_* config vars and DEFAULT_FROM_EMAIL from it: see docs/email.md."


@checks.register("email")
def email_settings(app_configs, **kwargs):
    """On a dyno, email.W001: no email server. Django then sends to SMTP on localhost, which a dyno doesn't
    have: every password reset fails and the error reports to ADMINS are dropped unseen. email.W002: a server
    but Django's placeholder sender, which every provider refuses."""
    # IS_HEROKU_APP: on a dyno, not in the build nor in Heroku CI; settings.py defines it.
    if not settings.IS_HEROKU_APP or settings.EMAIL_BACKEND != SMTP_BACKEND:
        return []
    if settings.EMAIL_HOST in LOCAL_HOSTS:
        return [
            checks.Warning(
                f"No email server is configured: Django sends email to {settings.EMAIL_HOST or 'localhost'}:"
                f"{settings.EMAIL_PORT}, where nothing listens on a dyno, so password resets fail and error "
                "reports to ADMINS are lost.",
                hint=HINT,
                id="email.W001",
            )
        ]
    if settings.DEFAULT_FROM_EMAIL.endswith("@localhost") or settings.SERVER_EMAIL.endswith("@localhost"):
        return [
            checks.Warning(
                f"Email is sent from {settings.DEFAULT_FROM_EMAIL} (DEFAULT_FROM_EMAIL) and {settings.SERVER_EMAIL} "
                "(SERVER_EMAIL): email providers refuse a sender outside the domains they have verified.",
                hint="Set DEFAULT_FROM_EMAIL to an address on your verified domain, e.g. noreply@example.com.",
                id="email.W002",
            )
        ]
    return []

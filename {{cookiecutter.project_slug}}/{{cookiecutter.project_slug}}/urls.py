"""URL configuration for {{ cookiecutter.project_slug }}.

https://docs.djangoproject.com/en/5.2/topics/http/urls/
"""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from heroku_runtime.views import welcome

# The admin's header and page titles: the project's name, not "Django administration". The password reset
# pages below use the admin's templates but are not the admin's views, so they are given the same titles.
admin.site.site_header = admin.site.site_title = settings.PROJECT_NAME
ADMIN_TITLES = {"site_header": admin.site.site_header, "site_title": admin.site.site_title}

urlpatterns = [
    # /health/ and the staff page /pgbouncer/.
    path("", include("heroku_runtime.urls")),
    path("", include("example.urls")),  # the example app (settings.INSTALLED_APPS): / and its task form
    # / when nothing above answers it (example/ deleted): a page that says the app runs and how to add a view.
    path("", welcome, name="welcome"),
    # The admin login's "Forgotten your login credentials?" link, shown once a URL is named
    # admin_password_reset: Django's password reset views, at the paths django.contrib.auth.urls uses. The
    # email goes out through EMAIL_HOST (docs/email.md).
    # https://docs.djangoproject.com/en/5.2/ref/contrib/admin/#adding-a-password-reset-feature
    path(
        "accounts/password_reset/",
        auth_views.PasswordResetView.as_view(extra_context=ADMIN_TITLES),
        name="admin_password_reset",
    ),
    path(
        "accounts/password_reset/done/",
        auth_views.PasswordResetDoneView.as_view(extra_context=ADMIN_TITLES),
        name="password_reset_done",
    ),
    path(
        "accounts/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(extra_context=ADMIN_TITLES),
        name="password_reset_confirm",
    ),
    path(
        "accounts/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(extra_context=ADMIN_TITLES),
        name="password_reset_complete",
    ),
    path("admin/", admin.site.urls),
]

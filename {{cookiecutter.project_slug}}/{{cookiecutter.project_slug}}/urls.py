"""URL configuration for {{ cookiecutter.project_slug }}.

https://docs.djangoproject.com/en/5.2/topics/http/urls/
"""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    # /health/ and the staff page /pgbouncer/.
    path("", include("heroku_runtime.urls")),
    path("", include("example.urls")),  # the example app (settings.INSTALLED_APPS): / and its task form
    path("admin/", admin.site.urls),
]

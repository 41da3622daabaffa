"""The project's URLs as they are once example/ is deleted: heroku_runtime's, the welcome page, the admin."""

from django.contrib import admin
from django.urls import include, path

from heroku_runtime.views import welcome

urlpatterns = [
    path("", include("heroku_runtime.urls")),
    path("", welcome, name="welcome"),
    path("admin/", admin.site.urls),
]

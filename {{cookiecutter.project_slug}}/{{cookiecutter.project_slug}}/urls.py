"""URL configuration for {{ cookiecutter.project_slug }}.

https://docs.djangoproject.com/en/5.2/topics/http/urls/
"""

from django.contrib import admin
from django.urls import path

from core import {% if cookiecutter.use_worker %}tasks, {% endif %}views

urlpatterns = [
    path("", views.index, name="index"),
    path("health/", views.health, name="health"),
    path("pgbouncer/", views.pgbouncer_stats, name="pgbouncer_stats"),
{% if cookiecutter.use_worker %}
    path("tasks/example/", tasks.enqueue_example, name="enqueue_example"),
{% endif %}
    path("admin/", admin.site.urls),
]

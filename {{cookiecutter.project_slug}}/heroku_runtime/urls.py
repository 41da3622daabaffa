from django.urls import path

from heroku_runtime import views

urlpatterns = [
    path("health/", views.health, name="health"),
    path("pgbouncer/", views.pgbouncer_stats, name="pgbouncer_stats"),
]

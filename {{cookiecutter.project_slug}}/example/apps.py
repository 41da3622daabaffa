from django.apps import AppConfig


class ExampleConfig(AppConfig):
    """Your starting point: a page, a model{% if cookiecutter.use_worker %} and a task the worker runs{% endif %}. Delete this folder and its
    lines in settings.INSTALLED_APPS and urls.py when your own app replaces it."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "example"

import pytest


@pytest.fixture(autouse=True)
def plain_static_files(settings):
    # The manifest storage needs collectstatic's output; tests render templates without running it.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }

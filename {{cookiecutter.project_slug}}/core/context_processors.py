"""Values every template gets (settings.TEMPLATES lists this module)."""

import json

# The name given when the project was baked; tojson keeps any quote or backslash in it as data.
PROJECT_NAME = json.loads(r'''{{ cookiecutter.project_name | tojson }}''')


def project(request):
    return {"project_name": PROJECT_NAME}

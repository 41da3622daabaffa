from django.urls import path

from example import {% if cookiecutter.use_worker %}tasks, {% endif %}views

urlpatterns = [
    path("", views.index, name="index"),
{% if cookiecutter.use_worker %}
    path("tasks/example/", tasks.enqueue_example, name="enqueue_example"),
{% endif %}
]

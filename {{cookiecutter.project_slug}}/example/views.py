from django.apps import apps
from django.shortcuts import render

from example.models import ExampleResult


def index(request, status=200):
    context = {
        "result_count": ExampleResult.objects.count(),
        "recent_results": ExampleResult.objects.order_by("-updated_at")[:10],
        "tasks_enabled": apps.is_installed("django_q"),
    }
    return render(request, "example/index.html", context, status=status)

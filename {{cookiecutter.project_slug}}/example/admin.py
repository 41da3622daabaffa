from django.contrib import admin

from example.models import ExampleResult


@admin.register(ExampleResult)
class ExampleResultAdmin(admin.ModelAdmin):
    list_display = ["key", "digest", "runs", "updated_at"]
    search_fields = ["key"]
    readonly_fields = ["updated_at"]

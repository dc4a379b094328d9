"""The Celery app. tenant-schemas-celery carries the tenant schema in each task's headers
and restores it in the worker, so a task runs in the schema it was sent from."""

import os

from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aegis.settings.dev")

app = CeleryApp("aegis")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

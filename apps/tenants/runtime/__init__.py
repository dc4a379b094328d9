"""Tenant runtimes: one OpenClaw gateway per tenant, behind one interface.

`get_backend()` returns the backend chosen by settings.RUNTIME_BACKEND:
- `local`  (apps/tenants/runtime/local.py): a real OpenClaw gateway as a supervised process.
- `docker` (apps/tenants/runtime/docker.py): the same through the Docker Engine API.
"""

from apps.tenants.runtime.base import RuntimeBackend, RuntimeFailure, RuntimeStatus, get_backend

__all__ = ["RuntimeBackend", "RuntimeFailure", "RuntimeStatus", "get_backend"]

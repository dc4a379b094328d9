"""Base classes every API view builds on."""

from __future__ import annotations

from rest_framework import viewsets
from rest_framework.exceptions import NotFound


class TenantScopedViewSet(viewsets.GenericViewSet):
    """Fail-closed tenant scoping for public-schema tables that carry `tenant_id`.

    Subclasses implement `scoped_queryset()`; `get_queryset` (which they may not override)
    always narrows it to the tenant bound to the request's credential. Another tenant's id
    therefore gives 404, never data. Tenant-schema models are isolated by the schema itself.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__:
            raise TypeError(f"{cls.__name__}: implement scoped_queryset(), not get_queryset()")

    def scoped_queryset(self):
        return self.queryset.all()

    def get_queryset(self):
        tenant = getattr(self.request.auth, "tenant", None)
        if tenant is None:
            raise NotFound()
        queryset = self.scoped_queryset()
        return queryset.filter(tenant=tenant)

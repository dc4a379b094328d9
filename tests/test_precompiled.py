"""aegis.precompiled.PrecompiledLookup gives what the queryset it compiles gives."""

from __future__ import annotations

import uuid

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from aegis.api.authentication import ACTIVE_USER
from aegis.precompiled import PrecompiledLookup
from apps.accounts.models import Role, User
from apps.accounts.services import add_member

pytestmark = pytest.mark.django_db


def orm(pk):
    return User.objects.select_related("tenant", "membership").filter(pk=pk, is_active=True).first()


def snapshot(instance) -> dict | None:
    """Every column of the instance and of what select_related cached on it, and how it was loaded."""
    if instance is None:
        return None

    def columns(obj):
        return None if obj is None else (type(obj), {f.attname: getattr(obj, f.attname)
                                                     for f in obj._meta.concrete_fields}, obj._state.db,
                                         obj._state.adding)

    cached = instance._state.fields_cache
    return {"user": columns(instance), **{name: columns(value) for name, value in cached.items()}}


@pytest.fixture
def people(tenant_a):
    member = add_member(tenant=tenant_a, email="member@acme.example", password="correct-horse-battery",
                        name="Member", role=Role.TENANT_MEMBER)
    admin = User.objects.create_user("root@aegis.example", "correct-horse-battery", name="Root",
                                     role=Role.PLATFORM_ADMIN)
    gone = add_member(tenant=tenant_a, email="gone@acme.example", password="correct-horse-battery",
                      name="Gone", role=Role.TENANT_MEMBER)
    User.objects.filter(pk=gone.pk).update(is_active=False)
    return {"member": member, "admin": admin, "gone": gone}


def test_the_active_user_lookup_gives_the_querysets_instances(people):
    for person in people.values():
        for value in (person.pk, str(person.pk)):
            assert snapshot(ACTIVE_USER.first(value)) == snapshot(orm(value)), person.email
    assert ACTIVE_USER.first(people["gone"].pk) is None
    assert ACTIVE_USER.first(uuid.uuid4()) is None and ACTIVE_USER.first(None) is None

    member = ACTIVE_USER.first(people["member"].pk)
    assert member.tenant.schema_name and member.membership.user is member  # both sides of the relation cached
    admin = ACTIVE_USER.first(people["admin"].pk)
    assert admin.tenant is None and getattr(admin, "membership", None) is None
    with pytest.raises(User.membership.RelatedObjectDoesNotExist):
        admin.membership  # noqa: B018 (as with select_related: no row, no membership)


def test_one_query_and_no_other(people):
    ACTIVE_USER.first(people["member"].pk)  # compiled by now
    with CaptureQueriesContext(connection) as queries:
        ACTIVE_USER.first(people["member"].pk)
    statements = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith("SET search_path")]
    assert len(statements) == 1 and '"accounts_user"."is_active"' in statements[0]


def test_a_malformed_value_fails_as_the_orm_does():
    with pytest.raises(ValidationError):
        orm("not-a-uuid")
    with pytest.raises(ValidationError):
        ACTIVE_USER.first("not-a-uuid")


def test_querysets_it_cannot_reproduce_are_refused():
    lookup = PrecompiledLookup(lambda pk: User.objects.filter(pk=pk).prefetch_related("membership"),
                               field=User._meta.pk, sample=uuid.UUID(int=1))
    with pytest.raises(ValueError, match="prefetches"):
        lookup.first(uuid.uuid4())
    twice = PrecompiledLookup(lambda pk: User.objects.filter(pk=pk).exclude(pk=pk), field=User._meta.pk,
                              sample=uuid.UUID(int=1))
    with pytest.raises(ValueError, match="2 of the query's parameters"):
        twice.first(uuid.uuid4())

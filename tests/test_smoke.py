def test_two_tenants_have_their_own_schemas(tenant_a, tenant_b):
    from django_tenants.utils import schema_exists

    assert schema_exists(tenant_a.schema_name)
    assert schema_exists(tenant_b.schema_name)
    assert tenant_a.status == "active"

from django.db import connection


class PublicSchemaMiddleware:
    """Every request starts and ends in the public schema.

    Aegis does not route tenants by host name: the API binds the tenant to the credential,
    and the admin console switches schema explicitly. Resetting here means a schema set by
    one request can never leak into the next one served by the same connection.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        connection.set_schema_to_public()
        try:
            return self.get_response(request)
        finally:
            connection.set_schema_to_public()

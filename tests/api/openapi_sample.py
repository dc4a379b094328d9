"""A small API of its own, for testing the OpenAPI machinery (aegis.api.schema and the response
conformance check) independently of the real endpoints. Used as a URLconf by tests/api/test_openapi.py.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.viewsets import GenericViewSet

from aegis.api.exceptions import ApiError, ErrorCode
from aegis.api.pagination import FeedPagination
from aegis.api.permissions import admins, anyone, members
from aegis.api.schema import error_response, errors
from aegis.api.serializers import StrictSerializer

THING_ID = "0b7e4a4e-6c35-4b1a-9c0e-3d2f1f7a9e10"


class OwnerSerializer(serializers.Serializer):
    display_name = serializers.CharField()


class ThingSerializer(StrictSerializer):
    """A thing (strict: its request component is closed, its response component is not)."""

    id = serializers.UUIDField(read_only=True)
    name = serializers.CharField(max_length=50)
    created_at = serializers.DateTimeField(read_only=True)
    note = serializers.CharField(allow_null=True, required=False)
    owner = OwnerSerializer(allow_null=True, read_only=True)
    size = serializers.IntegerField(min_value=1, max_value=10)


def thing(**overrides) -> dict:
    return {"id": THING_ID, "name": "Widget", "created_at": "2026-01-02T03:04:05.000000Z", "note": None,
            "owner": {"display_name": "Ada"}, "size": 3, **overrides}


class ThingViewSet(GenericViewSet):
    serializer_class = ThingSerializer
    access = {
        "list": anyone(),
        "retrieve": members(scope="agents:read"),
        "create": admins(scope="agents:write", tenant_schema=True),
        "feed": anyone(),
        "broken": anyone(),
    }

    @extend_schema(summary="List things")
    def list(self, request):
        page = self.paginate_queryset([thing(), thing(name="Gadget", note="shiny", owner=None)])
        return self.get_paginated_response(page)

    @extend_schema(summary="Get a thing", parameters=[OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH)])
    def retrieve(self, request, pk=None):
        return Response(thing())

    @extend_schema(summary="Create a thing", responses={201: ThingSerializer, **errors(409)})
    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(thing(**serializer.validated_data), status=201)

    @extend_schema(summary="Feed of things", responses=ThingSerializer(many=True))
    @action(detail=False, methods=["get"], pagination_class=FeedPagination)
    def feed(self, request):
        """Not used as the summary: extend_schema gives one."""
        return Response({"data": [thing()], "pagination": {"next": None, "page_size": 50}})

    @action(detail=False, methods=["get"])
    def broken(self, request):
        """Answers with what its documentation does not promise

        The query parameter `mode` picks how.
        """
        mode = request.query_params.get("mode")
        if mode == "extra-field":
            return Response(thing(secret="x"))
        if mode == "wrong-type":
            return Response(thing(size="three"))
        if mode == "naive-time":
            return Response(thing(created_at="2026-01-02T03:04:05"))
        if mode == "teapot":
            return Response(thing(), status=418)
        if mode == "conflict":
            raise ApiError(409, ErrorCode.CONFLICT, "Undocumented conflict.")
        return Response(thing())


class PingView(APIView):
    access = {"post": anyone(), "delete": members()}

    @extend_schema(
        summary="Ping",
        request=inline_serializer("PingRequestBody", {"echo": serializers.CharField()}),
        responses={
            200: inline_serializer("Pong", {"echo": serializers.CharField(), "echo_count": serializers.IntegerField()}),
            409: error_response(409, ErrorCode.CONFLICT),
        },
    )
    def post(self, request):
        echo = request.data.get("echo", "")
        if echo == "conflict":
            raise ApiError(409, ErrorCode.CONFLICT, "Pinged twice.")
        return Response({"echo": echo, "echo_count": 1})

    @extend_schema(summary="Forget the pings", responses={204: None})
    def delete(self, request):
        return Response(status=204)


class ThingListOnly(GenericViewSet):
    """A view whose action has no access rule (fails closed)."""

    serializer_class = ThingSerializer
    access = {}

    @extend_schema(summary="Nobody may list these")
    def list(self, request):
        return Response({"data": [], "pagination": {"page": 1, "page_size": 25, "total": 0, "total_pages": 0}})


def _urls():
    from django.urls import include, path
    from rest_framework.routers import SimpleRouter

    router = SimpleRouter(trailing_slash=False)
    router.register("things", ThingViewSet, basename="thing")
    router.register("locked", ThingListOnly, basename="locked")
    return [
        path("api/v1/", include([*router.urls, path("ping", PingView.as_view())])),
    ]


urlpatterns = _urls()
handler404 = "aegis.urls.handler404"
handler500 = "aegis.urls.handler500"

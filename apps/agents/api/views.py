"""The tenant's agents, their channels, skill installs, effective configuration, activity and
metrics. Thin: the rules live in apps.agents.services, the reads in apps.agents.selectors.

Agent rows live in the tenant's own schema, to which authentication has already switched the
connection, so plain GenericViewSets are right here (TenantScopedViewSet is for public tables
with a tenant_id): another tenant's ids are simply not found (404).

Agents carry `ETag: "<revision>"`. PATCH, DELETE, pause and resume honour `If-Match` (412
PRECONDITION_FAILED when stale) and work without it (last write wins, revision still bumped).
"""

from __future__ import annotations

import re

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from aegis.api.pagination import FeedPagination
from aegis.api.permissions import admins, members
from aegis.api.schema import error_response, errors
from aegis.api.serializers import validated_body, validated_query
from aegis.api.wire import datetime_formatter
from apps.agents import selectors, services
from apps.agents.api.serializers import (
    ActivityFilterSerializer,
    ActivitySerializer,
    AgentCreateSerializer,
    AgentFilterSerializer,
    AgentSerializer,
    AgentUpdateSerializer,
    ChannelCreateSerializer,
    ChannelSerializer,
    ChannelUpdateSerializer,
    EffectiveConfigSerializer,
    MetricsQuerySerializer,
    MetricsSerializer,
    SkillInstallationSerializer,
    SkillInstallCreateSerializer,
    SkillInstallUpdateSerializer,
    TenantActivityFilterSerializer,
    agent_summary,
)
from apps.agents.models import Agent, SkillInstallation
from apps.agents.resolver import effective_config

UUID_PATH = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

AGENTS_READ = members("agents:read", tenant_schema=True)
AGENTS_WRITE = admins("agents:write", tenant_schema=True)
ACTIVITY_READ = members("activity:read", tenant_schema=True)

_REVISION = re.compile(r'^(?:W/)?"?([0-9]{1,10})"?$')


def expected_revision(request) -> int | None:
    """The revision an `If-Match` header names; None when absent or `*` (any revision)."""
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    match = _REVISION.match(header.strip())
    if match is None:
        raise serializers.ValidationError({"if_match": ['Send one ETag from an earlier response, e.g. "3".']})
    return int(match.group(1))


def with_etag(response: Response, agent: Agent) -> Response:
    response["ETag"] = f'"{agent.revision}"'
    return response


# --- OpenAPI fragments ----------------------------------------------------------------------------

IF_MATCH = OpenApiParameter(
    "If-Match", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
    description='The agent\'s ETag from an earlier response (`"3"`): refuse the change with 412 if the agent has '
                "changed since. Without it the change applies to the current revision.")
ETAG = OpenApiParameter("ETag", OpenApiTypes.STR, OpenApiParameter.HEADER, response=[200, 201],
                        description='The agent\'s revision, e.g. `"4"`.')
LOCATION = OpenApiParameter("Location", OpenApiTypes.URI, OpenApiParameter.HEADER, response=[201],
                            description="The new agent's URL.")
AGENT_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The agent's id.")
CHANNEL_ID = OpenApiParameter("channelId", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The channel's id.")
SKILL_ID = OpenApiParameter("skillId", OpenApiTypes.UUID, OpenApiParameter.PATH,
                            description="The installed skill's id (a skill is installed at most once per agent).")
STALE = error_response(412, description="PRECONDITION_FAILED: `If-Match` names an older revision; "
                                        "`details.currentRevision` gives the current one.")
INVALID_IF_MATCH = error_response(400, description="VALIDATION_ERROR: invalid body, or an `If-Match` that is not one "
                                                   "ETag (`details.ifMatch`).")
LIMIT = "`LIMIT_REACHED`: the tenant's resource limit is reached (`details.limit`, `details.current`)"


# --- Agents ---------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="List agents", tags=["agents"], parameters=[AgentFilterSerializer],
        description="Each agent with a summary of its channels and its own skill installs.",
        responses={200: AgentSerializer(many=True), **errors(400)}),
    create=extend_schema(
        summary="Create an agent", tags=["agents"], request=AgentCreateSerializer,
        description="Starts as `draft` (or `active` if asked). The key, the agent's id in the runtime, is derived "
                    "from the name when not given. Capped by the tenant's `maxAgents`.",
        parameters=[ETAG, LOCATION],
        responses={201: AgentSerializer, **errors(400),
                   409: error_response(409, description=f"CONFLICT: the name or key is taken; or {LIMIT}.")}),
    retrieve=extend_schema(summary="Get an agent", tags=["agents"], parameters=[ETAG],
                           responses={200: AgentSerializer, **errors(404)}),
    partial_update=extend_schema(
        summary="Change an agent", tags=["agents"], request=AgentUpdateSerializer, parameters=[IF_MATCH, ETAG],
        description="Only the fields sent change. `status` changes through pause/resume; `key` never changes.",
        responses={200: AgentSerializer, 400: INVALID_IF_MATCH, **errors(404),
                   409: error_response(409, description="CONFLICT: another agent has this name."), 412: STALE}),
    destroy=extend_schema(
        summary="Delete an agent", tags=["agents"], parameters=[IF_MATCH],
        description="Deletes the agent with its channels, skill installs, activity and metrics.",
        responses={204: None, 400: INVALID_IF_MATCH, **errors(404), 412: STALE}),
)
class AgentViewSet(viewsets.GenericViewSet):
    serializer_class = AgentSerializer
    lookup_value_regex = UUID_PATH
    access = {
        "list": AGENTS_READ,
        "retrieve": AGENTS_READ,
        "config": AGENTS_READ,
        "metrics": ACTIVITY_READ,
        "create": AGENTS_WRITE,
        "partial_update": AGENTS_WRITE,
        "destroy": AGENTS_WRITE,
        "pause": AGENTS_WRITE,
        "resume": AGENTS_WRITE,
    }

    def get_queryset(self):
        if self.action == "list":
            return selectors.agents(**validated_query(AgentFilterSerializer, self.request.query_params))
        if self.action == "config":
            # The resolver reads the agent's own installs and their skills.
            return Agent.objects.defer("search_vector").prefetch_related(
                Prefetch("skill_installations", queryset=SkillInstallation.objects.select_related("skill")))
        if self.action == "retrieve":
            return selectors.with_relations(Agent.objects.all())
        return Agent.objects.defer("search_vector")

    def _detail(self, agent: Agent, status_code: int = status.HTTP_200_OK) -> Response:
        fresh = selectors.agent_detail(agent.pk).get()
        return with_etag(Response(AgentSerializer(fresh).data, status=status_code), fresh)

    def _services_kwargs(self) -> dict:
        return {"tenant": self.request.auth.tenant, "actor": self.request.auth.actor, "request": self.request}

    def list(self, request, *args, **kwargs):
        # Rows, not model instances (selectors.summary_rows): the same items AgentSerializer gives,
        # the total counted by the page's own query.
        page = self.paginator.paginate_counted(self.get_queryset(), request, view=self)
        datetime_text = datetime_formatter()
        return self.get_paginated_response([agent_summary(row, datetime_text) for row in page])

    def create(self, request, *args, **kwargs):
        data = validated_body(AgentCreateSerializer, request.data)
        agent = services.create_agent(**data, **self._services_kwargs())
        response = self._detail(agent, status.HTTP_201_CREATED)
        response["Location"] = request.build_absolute_uri(reverse("agent-detail", kwargs={"pk": agent.pk}))
        return response

    def retrieve(self, request, *args, **kwargs):
        agent = self.get_object()
        return with_etag(Response(AgentSerializer(agent).data), agent)

    def partial_update(self, request, *args, **kwargs):
        agent = self.get_object()
        revision = expected_revision(request)
        changes = validated_body(AgentUpdateSerializer, request.data)
        agent = services.update_agent(agent_id=agent.pk, changes=changes, expected_revision=revision,
                                      **self._services_kwargs())
        return self._detail(agent)

    def destroy(self, request, *args, **kwargs):
        agent = self.get_object()
        services.delete_agent(agent_id=agent.pk, expected_revision=expected_revision(request),
                              **self._services_kwargs())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Pause an agent", tags=["agents"], request=None, parameters=[IF_MATCH, ETAG],
        description="active -> paused: the runtime stops answering as this agent.",
        responses={200: AgentSerializer, 400: INVALID_IF_MATCH, **errors(404), 412: STALE,
                   409: error_response(409, description="INVALID_STATE: only an active agent can be paused "
                                                        "(`details.status` is its status).")})
    @action(detail=True, methods=["post"])
    def pause(self, request, *args, **kwargs):
        agent = self.get_object()
        agent = services.pause_agent(agent_id=agent.pk, expected_revision=expected_revision(request),
                                     **self._services_kwargs())
        return self._detail(agent)

    @extend_schema(
        summary="Resume or activate an agent", tags=["agents"], request=None, parameters=[IF_MATCH, ETAG],
        description="paused -> active, and draft -> active (there is no separate activate call).",
        responses={200: AgentSerializer, 400: INVALID_IF_MATCH, **errors(404), 412: STALE,
                   409: error_response(409, description="INVALID_STATE: only a draft or paused agent can be resumed "
                                                        "(`details.status` is its status).")})
    @action(detail=True, methods=["post"])
    def resume(self, request, *args, **kwargs):
        agent = self.get_object()
        agent = services.resume_agent(agent_id=agent.pk, expected_revision=expected_revision(request),
                                      **self._services_kwargs())
        return self._detail(agent)

    @extend_schema(
        summary="Get an agent's effective configuration", tags=["agents"],
        description="The merge of the Shared Toolbox, the agent's role (with this tenant's overrides) and the "
                    "agent's own settings, as the runtime receives it. Each value says which layer set it "
                    "(platform, tenant, toolbox, role, agent); skills an agent switched off are listed apart.",
        responses={200: EffectiveConfigSerializer, **errors(404)})
    @action(detail=True, methods=["get"])
    def config(self, request, *args, **kwargs):
        agent = self.get_object()
        return Response(EffectiveConfigSerializer(effective_config(agent, request.auth.tenant)).data)

    @extend_schema(
        summary="Get an agent's metrics", tags=["activity"], parameters=[MetricsQuerySerializer],
        description="Hourly or daily buckets of messages, tokens, cost, errors and latency, with totals. Every "
                    "bucket of the window is present (zeros where nothing happened). At most 744 hourly or 366 "
                    "daily buckets per request; `from` and `to` between 1970-01-01 and 9999-01-01 (UTC).",
        responses={200: MetricsSerializer, **errors(400, 404)})
    @action(detail=True, methods=["get"])
    def metrics(self, request, *args, **kwargs):
        agent = self.get_object()
        window = validated_query(MetricsQuerySerializer, request.query_params)["window"]
        return Response(MetricsSerializer(selectors.metrics_series(agent=agent, window=window)).data)


class AgentChildViewSet(viewsets.GenericViewSet):
    """Resources under /agents/{id}/: an unknown agent is a 404 before anything else."""

    def get_agent(self) -> Agent:
        if not hasattr(self, "_agent"):
            self._agent = get_object_or_404(Agent.objects.defer("search_vector"), pk=self.kwargs["id"])
        return self._agent

    def _services_kwargs(self) -> dict:
        return {"tenant": self.request.auth.tenant, "actor": self.request.auth.actor, "request": self.request,
                "agent_id": self.get_agent().pk}


# --- Channels -------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List an agent's channels", tags=["agent channels"], parameters=[AGENT_ID],
                       responses={200: ChannelSerializer(many=True), **errors(404)}),
    create=extend_schema(
        summary="Connect a channel", tags=["agent channels"], parameters=[AGENT_ID], request=ChannelCreateSerializer,
        description="Secrets are write-only: responses show `secretsSet` and `secretHints` (last four characters), "
                    "never a secret. The channel is `pending` until verified. Capped by the tenant's "
                    "`maxChannelsPerAgent`.",
        responses={201: ChannelSerializer, **errors(400, 404),
                   409: error_response(409, description="CONFLICT: the agent has a channel of this name; "
                                                        f"or {LIMIT}.")}),
    partial_update=extend_schema(
        summary="Change a channel", tags=["agent channels"], parameters=[AGENT_ID, CHANNEL_ID],
        request=ChannelUpdateSerializer,
        description="Only the fields sent change. `config` is replaced; `secrets` merge (a null removes one). New "
                    "secrets or settings put the channel back to `pending`.",
        responses={200: ChannelSerializer, **errors(400, 404),
                   409: error_response(409, description="CONFLICT: the agent has a channel of this name.")}),
    destroy=extend_schema(summary="Remove a channel", tags=["agent channels"], parameters=[AGENT_ID, CHANNEL_ID],
                          responses={204: None, **errors(404)}),
)
class AgentChannelViewSet(AgentChildViewSet):
    serializer_class = ChannelSerializer
    lookup_url_kwarg = "channelId"
    lookup_value_regex = UUID_PATH
    access = {
        "list": AGENTS_READ,
        "create": AGENTS_WRITE,
        "partial_update": AGENTS_WRITE,
        "destroy": AGENTS_WRITE,
        "verify": AGENTS_WRITE,
    }

    def get_queryset(self):
        # Responses never need the encrypted secrets (hints are kept apart).
        return selectors.channels(agent=self.get_agent()).defer("secrets")

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ChannelSerializer(page, many=True).data)

    def create(self, request, *args, **kwargs):
        data = validated_body(ChannelCreateSerializer, request.data)
        channel = services.create_channel(channel_type=data.pop("type"), **data, **self._services_kwargs())
        return Response(ChannelSerializer(channel).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        channel = self.get_object()
        changes = validated_body(ChannelUpdateSerializer, request.data, channel_type=channel.type)
        channel = services.update_channel(channel_id=channel.pk, changes=changes, **self._services_kwargs())
        return Response(ChannelSerializer(channel).data)

    def destroy(self, request, *args, **kwargs):
        channel = self.get_object()
        services.delete_channel(channel_id=channel.pk, **self._services_kwargs())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Verify a channel", tags=["agent channels"], parameters=[AGENT_ID, CHANNEL_ID], request=None,
        description="Checks the channel's secrets and records the outcome: `connected`, or `error` with "
                    "`lastError` (still 200: the check ran). Depending on the deployment's CHANNEL_VERIFIER this "
                    "checks the secrets' format offline (`local`) or asks Slack (`auth.test`) / Telegram (`getMe`) "
                    "(`http`).",
        responses={200: ChannelSerializer, **errors(404),
                   409: error_response(409, description="INVALID_STATE: the channel is disabled; CONFLICT: it "
                                                        "changed during the check.")})
    @action(detail=True, methods=["post"])
    def verify(self, request, *args, **kwargs):
        channel = self.get_object()
        channel = services.verify_channel(channel_id=channel.pk, **self._services_kwargs())
        return Response(ChannelSerializer(channel).data)


# --- Skill installations --------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List an agent's skill installs", tags=["agent skills"], parameters=[AGENT_ID],
                       description="The agent's own installs and switch-offs; the skills it inherits show in "
                                   "GET agents/{id}/config.",
                       responses={200: SkillInstallationSerializer(many=True), **errors(404)}),
    create=extend_schema(
        summary="Install a skill on an agent", tags=["agent skills"], parameters=[AGENT_ID],
        request=SkillInstallCreateSerializer,
        description="Only approved skills install (400 with `details.skill` otherwise). `config` is validated "
                    "against the skill's own JSON Schema, merged over the Shared Toolbox's settings of the same "
                    "skill. `enabled: false` switches off a skill the agent inherits.",
        responses={201: SkillInstallationSerializer, **errors(400, 404),
                   409: error_response(409, description="CONFLICT: the agent already has this skill (any version); "
                                                        "`details.skillId` names that install.")}),
    partial_update=extend_schema(
        summary="Change an agent's skill install", tags=["agent skills"], parameters=[AGENT_ID, SKILL_ID],
        request=SkillInstallUpdateSerializer, responses={200: SkillInstallationSerializer, **errors(400, 404)}),
    destroy=extend_schema(
        summary="Remove an agent's skill install", tags=["agent skills"], parameters=[AGENT_ID, SKILL_ID],
        description="The agent goes back to what it inherits (a removed switch-off re-enables the inherited skill).",
        responses={204: None, **errors(404)}),
)
class AgentSkillViewSet(AgentChildViewSet):
    serializer_class = SkillInstallationSerializer
    lookup_field = "skill_id"
    lookup_url_kwarg = "skillId"
    lookup_value_regex = UUID_PATH
    access = {
        "list": AGENTS_READ,
        "create": AGENTS_WRITE,
        "partial_update": AGENTS_WRITE,
        "destroy": AGENTS_WRITE,
    }

    def get_queryset(self):
        return selectors.skill_installations(agent=self.get_agent())

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(SkillInstallationSerializer(page, many=True).data)

    def create(self, request, *args, **kwargs):
        data = validated_body(SkillInstallCreateSerializer, request.data)
        installation = services.install_skill(skill_id=data.pop("skill"), **data, **self._services_kwargs())
        return Response(SkillInstallationSerializer(installation).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        installation = self.get_object()
        changes = validated_body(SkillInstallUpdateSerializer, request.data)
        installation = services.update_installation(skill_id=installation.skill_id, changes=changes,
                                                    **self._services_kwargs())
        return Response(SkillInstallationSerializer(installation).data)

    def destroy(self, request, *args, **kwargs):
        installation = self.get_object()
        services.uninstall_skill(skill_id=installation.skill_id, **self._services_kwargs())
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Activity -------------------------------------------------------------------------------------

_FEED = ("Newest first, cursor-paginated: pass `pagination.next` back as `?cursor=` for the next page (stable "
         "while new events arrive).")


@extend_schema_view(list=extend_schema(
    summary="List an agent's activity", tags=["activity"], description=_FEED,
    parameters=[AGENT_ID, ActivityFilterSerializer],
    responses={200: ActivitySerializer(many=True), **errors(400, 404)}))
class AgentActivityViewSet(AgentChildViewSet):
    serializer_class = ActivitySerializer
    pagination_class = FeedPagination
    access = {"list": ACTIVITY_READ}

    def get_queryset(self):
        filters = validated_query(ActivityFilterSerializer, self.request.query_params)
        return selectors.activity(agent_id=self.get_agent().pk, kinds=filters.get("kind"),
                                  channel_id=filters.get("channel"))

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ActivitySerializer(page, many=True).data)


@extend_schema_view(list=extend_schema(
    summary="List the tenant's agent activity", tags=["activity"], description=_FEED,
    parameters=[TenantActivityFilterSerializer],
    responses={200: ActivitySerializer(many=True), **errors(400)}))
class ActivityViewSet(viewsets.GenericViewSet):
    serializer_class = ActivitySerializer
    pagination_class = FeedPagination
    access = {"list": ACTIVITY_READ}

    def get_queryset(self):
        filters = validated_query(TenantActivityFilterSerializer, self.request.query_params)
        return selectors.activity(agent_id=filters.get("agent"), kinds=filters.get("kind"),
                                  channel_id=filters.get("channel"))

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ActivitySerializer(page, many=True).data)


"""Live events: what the WebSocket streams (/ws/v1/activity/, /ws/v1/platform/) carry.

Streams. `tenant:<tenant id>` (a tenant's agent activity, agent status, runtime health and its
own status) and `platform` (tenant status changes, alerts, runtime health of every tenant).

An event is `{"type", "id", "timestamp", "data"}`. `id` is the entry id of the event in the
stream's Redis Stream (`<ms>-<seq>`), so ids increase within a stream, and a client that
reconnects asks for what came after the last id it saw (aegis.realtime replays it from there).

Publishing appends the event to the Redis Stream `<EVENTS_STREAM_PREFIX>:<stream>` (XADD with
MAXLEN ~ EVENTS_STREAM_MAXLEN, and the key expires EVENTS_STREAM_TTL seconds after its last
event), then sends it to the channel-layer group of the stream (`tenant.<id>` or `platform`),
which the consumers of this process and of every other one listen to. Both happen in one Lua
call for the append, which also returns the id of the entry before it (`prev`): publishers in
several processes can reach the group out of order, so a consumer that receives an event whose
`prev` it has not delivered reads the missing ones from the stream before it (no gaps, no
reordering), and ignores any id it already delivered (no duplicates).

Call `publish_on_commit` from code that writes the database: the event leaves only once the
transaction commits, never for a change that rolls back. Publishing never raises: when Redis
is down or slow (every call is bounded by EVENTS_PUBLISH_TIMEOUT), the failure is logged and
counted in this process (`publish_failures`: a counter kept in Redis would be unreadable exactly
then), and for EVENTS_RETRY_AFTER seconds later events are counted as failed without trying,
so a dead Redis costs a request at most one timeout. The REST API stays the source of truth: a
client that missed events reloads state from it (the stream holds only recent events).

The Redis used is the channel layer's (CHANNEL_LAYERS[EVENTS_CHANNEL_LAYER], a channels_redis
RedisChannelLayer): one Redis to configure, and the one fan-out needs anyway. Its per-event-loop
connection pools are reused rather than a second set kept here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.core.signals import setting_changed
from django.db import connection, transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

logger = logging.getLogger(__name__)

PLATFORM_STREAM = "platform"
MESSAGE_TYPE = "aegis.event"  # the channel-layer message type: AsyncConsumer.aegis_event handles it

# Read the id of the newest entry, append, refresh the key's expiry: atomically, so `prev` is
# exactly the entry before this one, whichever process publishes.
_APPEND_SCRIPT = """
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 't', ARGV[3], 'ts', ARGV[4], 'd', ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[2])
if #last > 0 then return {id, last[1][1]} end
return {id, ''}
"""

EVENT_ID = re.compile(r"^(\d{1,20})-(\d{1,20})$")
PAYLOAD_LIMIT = 8 * 1024  # bytes of JSON; larger activity payloads are left to the REST API

# In-process counters (read them as events.published / events.publish_failures).
published = 0
publish_failures = 0
_counter_lock = threading.Lock()
_retry_at = 0.0  # monotonic time before which publishing is not attempted (Redis just failed)


# --- Settings ---------------------------------------------------------------------------------------


_settings_cache: dict[str, Any] = {}


def _setting(name: str, default):
    # Read on every event and socket read: Django's settings object raises and catches an
    # AttributeError for each unset name, which showed up in profiles; tests change settings,
    # so the cache is dropped on setting_changed.
    try:
        return _settings_cache[name]
    except KeyError:
        value = _settings_cache[name] = getattr(settings, name, default)
        return value


@receiver(setting_changed)
def _forget_settings(**kwargs) -> None:
    _settings_cache.clear()


def stream_prefix() -> str:
    return _setting("EVENTS_STREAM_PREFIX", "aegis:events")


def _layer_alias() -> str:
    return _setting("EVENTS_CHANNEL_LAYER", "default")


def _timeout() -> float:
    return float(_setting("EVENTS_PUBLISH_TIMEOUT", 0.5))


# --- Names and ids ----------------------------------------------------------------------------------


def tenant_stream(tenant_id) -> str:
    return f"tenant:{tenant_id}"


def stream_key(stream: str) -> str:
    return f"{stream_prefix()}:{stream}"


def group_name(stream: str) -> str:
    """The channel-layer group of a stream (group names allow no colon)."""
    return stream.replace(":", ".")


def parse_id(event_id: str) -> tuple[int, int]:
    """`<ms>-<seq>` as a comparable tuple; "0" means before everything. ValueError otherwise."""
    if event_id == "0":
        return (0, 0)
    match = EVENT_ID.match(event_id) if isinstance(event_id, str) else None
    if match is None:
        raise ValueError(f"not an event id: {event_id!r}")
    return int(match[1]), int(match[2])


def event_text(event_id: str, event_type: str, timestamp: str, data_json: str) -> str:
    """The event as sent on the socket, built once per event rather than once per socket."""
    return (f'{{"type": {json.dumps(event_type)}, "id": "{event_id}", "timestamp": {json.dumps(timestamp)}, '
            f'"data": {data_json}}}')


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value is not None else None


# --- Redis access -------------------------------------------------------------------------------------


def _redis(key: str):
    """The channel layer's Redis connection for `key`, pooled per running event loop."""
    layer = get_channel_layer(_layer_alias())
    if not hasattr(layer, "connection"):
        raise RuntimeError(f"live events need a channels_redis RedisChannelLayer, not {type(layer).__name__}")
    return layer, layer.connection(layer.consistent_hash(key))


async def _append_and_send(stream: str, event_type: str, timestamp: str, data_json: str) -> str:
    key = stream_key(stream)
    layer, redis = _redis(key)
    script = redis.register_script(_APPEND_SCRIPT)
    raw_id, raw_prev = await script(keys=[key], args=[int(_setting("EVENTS_STREAM_MAXLEN", 10_000)),
                                                      int(_setting("EVENTS_STREAM_TTL", 86_400)),
                                                      event_type, timestamp, data_json])
    event_id, prev = raw_id.decode(), raw_prev.decode() or None
    await layer.group_send(group_name(stream), {
        "type": MESSAGE_TYPE, "id": event_id, "prev": prev, "event": event_type,
        "text": event_text(event_id, event_type, timestamp, data_json),
    })
    return event_id


class _LoopReads:
    """Stream reads of one event loop: at most READ_CONCURRENCY in flight, and identical reads
    in flight at the same time share one Redis call. The sockets of a tenant in a process see
    the same events, so when a fan-out message is lost or a burst ends they all ask for the
    same range at once; without this, hundreds of identical reads would each take a connection
    from the channel layer's pool (100 by default) and starve the layer itself."""

    def __init__(self):
        self.semaphore = asyncio.Semaphore(int(_setting("EVENTS_READ_CONCURRENCY", 8)))
        self.inflight: dict[tuple, asyncio.Task] = {}


_loop_reads: dict[asyncio.AbstractEventLoop, _LoopReads] = {}


def _reads_of(loop: asyncio.AbstractEventLoop) -> _LoopReads:
    reads = _loop_reads.get(loop)
    if reads is None:
        for closed in [other for other in _loop_reads if other.is_closed()]:
            del _loop_reads[closed]
        reads = _loop_reads[loop] = _LoopReads()
    return reads


async def _shared_read(key: tuple, read):
    loop = asyncio.get_running_loop()
    reads = _reads_of(loop)
    task = reads.inflight.get(key)
    if task is None:
        async def run():
            async with reads.semaphore, asyncio.timeout(_read_timeout()):
                return await read()

        task = reads.inflight[key] = loop.create_task(run())

        def forget(done: asyncio.Task) -> None:
            reads.inflight.pop(key, None)
            if not done.cancelled():
                done.exception()  # retrieved here too, in case every waiter has gone

        task.add_done_callback(forget)
    # One waiter giving up (its socket closed) must not cancel the read the others wait for.
    return await asyncio.shield(task)


async def read_after(stream: str, after: str, *, until: str = "+", count: int = 500) -> list[tuple[str, str, str]]:
    """Up to `count` events of the stream with ids after `after` (exclusive) and up to `until`
    (inclusive), oldest first, as (id, type, socket text)."""
    key = stream_key(stream)
    start = "-" if parse_id(after) == (0, 0) else f"({after}"

    async def read():
        _, redis = _redis(key)
        entries = await redis.xrange(key, min=start, max=until, count=count)
        events = []
        for raw_id, fields in entries:
            event_id, event_type = raw_id.decode(), fields[b"t"].decode()
            events.append((event_id, event_type,
                           event_text(event_id, event_type, fields[b"ts"].decode(), fields[b"d"].decode())))
        return events

    return await _shared_read(("range", key, start, until, count), read)


async def latest_id(stream: str, *, fresh: bool = False) -> str | None:
    """The id of the stream's newest event (None: no event kept). `fresh`: read after this
    call started, never joining a read already in flight."""
    key = stream_key(stream)

    async def read():
        _, redis = _redis(key)
        entries = await redis.xrevrange(key, max="+", min="-", count=1)
        return entries[0][0].decode() if entries else None

    return await _shared_read(("latest", key, object() if fresh else None), read)


async def latest_ids(streams: list[str]) -> dict[str, str | None]:
    """The newest event id of each stream, pipelined: one round trip per Redis host."""
    layer = get_channel_layer(_layer_alias())
    by_host: dict[int, list[tuple[str, str]]] = {}
    for stream in streams:
        key = stream_key(stream)
        by_host.setdefault(layer.consistent_hash(key), []).append((stream, key))
    tips: dict[str, str | None] = {}
    reads = _reads_of(asyncio.get_running_loop())
    async with reads.semaphore, asyncio.timeout(_read_timeout()):
        for index, items in by_host.items():
            pipeline = layer.connection(index).pipeline(transaction=False)
            for _, key in items:
                pipeline.xrevrange(key, max="+", min="-", count=1)
            for (stream, _), entries in zip(items, await pipeline.execute(), strict=True):
                tips[stream] = entries[0][0].decode() if entries else None
    return tips


async def oldest_id(stream: str) -> str | None:
    key = stream_key(stream)

    async def read():
        _, redis = _redis(key)
        entries = await redis.xrange(key, min="-", max="+", count=1)
        return entries[0][0].decode() if entries else None

    return await _shared_read(("oldest", key), read)


def _read_timeout() -> float:
    return float(_setting("EVENTS_READ_TIMEOUT", 2.0))


# --- Publishing -----------------------------------------------------------------------------------------


class _PublisherLoop:
    """One event loop per process, on a daemon thread, for publishing from synchronous code.

    asgiref's async_to_sync would start a loop (and so a new Redis connection) per call outside
    an ASGI server; this loop keeps its channel-layer pool. Created lazily and again after a
    fork (Celery's prefork workers), since a thread does not survive one.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid: int | None = None

    def get(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="aegis-events-publisher", daemon=True).start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop


_publisher = _PublisherLoop()


def _encode(data: Mapping[str, Any]) -> str:
    return json.dumps(data, cls=DjangoJSONEncoder, separators=(",", ":"))


def _backing_off() -> bool:
    global publish_failures
    if time.monotonic() >= _retry_at:
        return False
    with _counter_lock:
        publish_failures += 1
    return True


def _succeeded() -> None:
    global published
    with _counter_lock:
        published += 1


def _failed(stream: str, event_type: str, exc: BaseException, *, redis_down: bool = True) -> None:
    global publish_failures, _retry_at
    retry_after = float(_setting("EVENTS_RETRY_AFTER", 2.0)) if redis_down else 0.0
    with _counter_lock:
        publish_failures += 1
        if redis_down:
            _retry_at = time.monotonic() + retry_after
    if redis_down:
        logger.warning("live event %s on %s not published (%s: %s); skipping events for %.1f s", event_type, stream,
                       type(exc).__name__, str(exc) or "timed out", retry_after)
    else:  # a bug in the caller's data, not an outage: no back-off
        logger.error("live event %s on %s not published: %s", event_type, stream, exc, exc_info=exc)


def _publish_encoded(stream: str, event_type: str, data_json: str) -> str | None:
    if _backing_off():
        return None
    try:
        future = asyncio.run_coroutine_threadsafe(_append_and_send(stream, event_type, _now(), data_json),
                                                  _publisher.get())
        try:
            event_id = future.result(timeout=_timeout())
        except BaseException:
            future.cancel()
            raise
    except Exception as exc:
        _failed(stream, event_type, exc)
        return None
    _succeeded()
    return event_id


def publish(stream: str, event_type: str, data: Mapping[str, Any]) -> str | None:
    """Publish now, from synchronous code; returns the event id, or None if it was not published.
    Never raises. From code that writes the database, use publish_on_commit instead."""
    try:
        data_json = _encode(data)
    except (TypeError, ValueError) as exc:
        _failed(stream, event_type, exc, redis_down=False)
        return None
    return _publish_encoded(stream, event_type, data_json)


async def apublish(stream: str, event_type: str, data: Mapping[str, Any]) -> str | None:
    """publish() for async code (runs on the caller's loop). Never raises."""
    try:
        data_json = _encode(data)
    except (TypeError, ValueError) as exc:
        _failed(stream, event_type, exc, redis_down=False)
        return None
    if _backing_off():
        return None
    try:
        async with asyncio.timeout(_timeout()):
            event_id = await _append_and_send(stream, event_type, _now(), data_json)
    except Exception as exc:
        _failed(stream, event_type, exc)
        return None
    _succeeded()
    return event_id


def publish_on_commit(stream: str, event_type: str, data: Mapping[str, Any], *, using: str | None = None) -> None:
    """Publish once the current transaction commits (at once outside one). `data` is encoded
    now, so later changes to the objects it came from do not leak into the event."""
    try:
        data_json = _encode(data)
    except (TypeError, ValueError) as exc:
        _failed(stream, event_type, exc, redis_down=False)
        return
    transaction.on_commit(partial(_publish_encoded, stream, event_type, data_json), using=using, robust=True)


def stats() -> dict[str, int]:
    """For /metrics: events published and not published by this process since it started."""
    return {"published": published, "publish_failures": publish_failures}


# --- What the event sources publish -------------------------------------------------------------------
# Data keys are camelCase like the REST API's, and name the same fields.


def _agent_ref(agent) -> dict:
    return {"id": str(agent.pk), "key": agent.key, "name": agent.name}


def activity_data(activity) -> dict:
    """An AgentActivity as /api/v1/agents/{id}/activity lists it (payload left out when large)."""
    from apps.agents.models import Agent, AgentActivity

    if AgentActivity.agent.is_cached(activity):
        agent = _agent_ref(activity.agent)
    else:
        row = Agent.objects.filter(pk=activity.agent_id).values("key", "name").first() or {"key": None, "name": None}
        agent = {"id": str(activity.agent_id), **row}
    data = {
        "id": str(activity.pk), "agent": agent, "channelId": str(activity.channel_id) if activity.channel_id else None,
        "kind": activity.kind, "summary": activity.summary, "payload": activity.payload,
        "tokensIn": activity.tokens_in, "tokensOut": activity.tokens_out, "costUsd": str(activity.cost_usd),
        "latencyMs": activity.latency_ms, "createdAt": _iso(activity.created_at),
    }
    if len(_encode(activity.payload or {})) > PAYLOAD_LIMIT:
        data["payload"], data["payloadOmitted"] = None, True
    return data


def publish_activity(activity, *, tenant_id) -> None:
    """agent.activity on the tenant's stream, after commit. The post_save receiver below calls
    it for every AgentActivity saved one by one; code that bulk_creates activity calls it per row."""
    publish_on_commit(tenant_stream(tenant_id), "agent.activity", activity_data(activity))


def publish_agent_status(tenant, agent, *, before: str) -> None:
    """agent.status_changed on the tenant's stream, after commit (pause, resume, error...)."""
    if before == agent.status:
        return
    publish_on_commit(tenant_stream(tenant.pk), "agent.status_changed", {
        "agent": _agent_ref(agent), "status": agent.status, "previousStatus": before,
        "statusReason": agent.status_reason, "revision": agent.revision,
    })


def publish_tenant_change(tenant, *, action: str, before: Mapping[str, Any]) -> None:
    """A tenant status change (the audit action names the event: tenant.suspended,
    tenant.reactivated, tenant.provisioned, ...), after commit, on the platform stream and on
    the tenant's own (where tenant.suspended and tenant.decommissioned close the sockets).
    Does nothing when the status did not change."""
    previous = before.get("status")
    if previous is None or str(previous) == str(tenant.status):
        return
    data = {"tenantId": str(tenant.pk), "slug": tenant.slug, "companyName": tenant.company_name,
            "status": str(tenant.status), "previousStatus": str(previous), "reason": tenant.status_reason}
    publish_on_commit(PLATFORM_STREAM, action, data)
    publish_on_commit(tenant_stream(tenant.pk), action, data)


def alert_data(alert) -> dict:
    return {
        "id": str(alert.pk), "tenantId": str(alert.tenant_id) if alert.tenant_id else None,
        "severity": alert.severity, "kind": alert.kind, "message": alert.message, "status": alert.status,
        "dedupKey": alert.dedup_key, "createdAt": _iso(alert.created_at),
        "acknowledgedAt": _iso(alert.acknowledged_at), "acknowledgedBy": _user_id(alert, "acknowledged_by_id"),
        "resolvedAt": _iso(alert.resolved_at), "resolvedBy": _user_id(alert, "resolved_by_id"),
    }


def _user_id(alert, field: str) -> str | None:
    value = getattr(alert, field)
    return str(value) if value else None


def publish_alert(alert, event_type: str):
    """alert.created / alert.acknowledged / alert.resolved on the platform stream, after commit.
    Returns the alert, so a service can `return events.publish_alert(alert, ...)`."""
    publish_on_commit(PLATFORM_STREAM, event_type, alert_data(alert))
    return alert


def alert_raised(alert):
    """After monitoring's raise_alert upsert: alert.created when the row was inserted. A refresh
    of an open alert (the same failing check again) is not news; the upsert sets updated_at
    then, so only an inserted row has created_at == updated_at."""
    if alert.created_at == alert.updated_at:
        publish_alert(alert, "alert.created")
    return alert


def publish_health_change(tenant, old: str | None, new: str, sample) -> None:
    """runtime.health_changed on the tenant's and the platform stream, after commit, when a
    ContainerHealth sample's status differs from the previous sample's (`old`; None for the
    first sample). The health checker calls it after saving each sample; equal statuses are
    ignored, so it may call it every time."""
    if old == new:
        return
    data = {
        "tenantId": str(tenant.pk), "status": new, "previousStatus": old,
        "sample": {"id": str(sample.pk), "status": sample.status, "cpuPercent": sample.cpu_percent,
                   "memoryMb": sample.memory_mb, "uptimeSeconds": sample.uptime_seconds,
                   "checkedAt": _iso(sample.checked_at)},
    }
    publish_on_commit(tenant_stream(tenant.pk), "runtime.health_changed", data)
    publish_on_commit(PLATFORM_STREAM, "runtime.health_changed", data)


# --- Receivers for rows whose creation is the event --------------------------------------------------


def current_tenant_id():
    """The id of the tenant whose schema the connection is in (None in public or the template).
    tenant_context() leaves the Tenant on the connection; schema_context() only its schema name."""
    from django_tenants.utils import get_public_schema_name

    from apps.tenants.models import Tenant

    schema = connection.schema_name
    if schema == get_public_schema_name():
        return None
    tenant = getattr(connection, "tenant", None)
    if isinstance(tenant, Tenant) and tenant.schema_name == schema:
        return tenant.pk
    return Tenant.objects.filter(schema_name=schema).values_list("pk", flat=True).first()


def _on_activity_saved(sender, instance, created, raw=False, **kwargs) -> None:
    if not created or raw:
        return
    tenant_id = current_tenant_id()
    if tenant_id is not None:
        publish_activity(instance, tenant_id=tenant_id)


def connect_receivers() -> None:
    """Called once from AgentsConfig.ready(). Activity rows are appended by several writers (the
    agent services, the runtime's activity intake), so their creation is caught at the model;
    state changes are published by the services that make them, which know before and after."""
    post_save.connect(_on_activity_saved, sender="agents.AgentActivity", dispatch_uid="aegis.events.activity")

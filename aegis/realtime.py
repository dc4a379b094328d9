"""The WebSocket side of the live event streams (aegis.events is the publishing side).

Protocol (`aegis.v1`), shared by /ws/v1/activity/ and /ws/v1/platform/:

Authentication, with the access token never in the URL (URLs end up in access logs):
- subprotocols `["aegis.v1", "bearer.<access token>"]`: the server accepts with `aegis.v1`
  (never echoing the token) and authenticates at once; or
- connect (offering `aegis.v1` or nothing), then send `{"type": "auth", "token": "..."}` as the
  first message within WEBSOCKET_AUTH_TIMEOUT seconds (default 5).
Then the server sends `{"type": "ready", "stream": ..., "lastEventId": ..., "expiresAt": ...}`
followed by events `{"type", "id", "timestamp", "data"}`.

Resuming: `since` (an event id) in the auth message, or `?since=<id>` in the URL with the
header form (an event id is no secret), replays the events after it from the stream, then
continues live, in id order, without gaps or duplicates. `lastEventId` in `ready` is where a
client that passed no `since` starts from. `{"type": "resume", "since": "<id>"}` on an open
socket restarts the stream after that id (events already received after it come again). If
`since` is older than the oldest event kept, `{"type": "resync", "oldestEventId": ...}` comes
first: some events may be gone, reload state over REST.

Token expiry: the socket closes with 4401 when the access token expires, unless the client
sends `{"type": "auth", "token": "<fresh token>"}` for the same account before then, which moves
the deadline (answered with `{"type": "reauthenticated", "expiresAt": ...}`). The account is
checked again on every auth message. `{"type": "ping"}` is answered with `{"type": "pong"}`.

Errors: the server accepts the handshake first, so browsers can see why it closes; it sends
`{"type": "error", "error": {"code", "message", "details"}}` (the REST API's codes), then closes:

    4400  MALFORMED_REQUEST / VALIDATION_ERROR   not a JSON object with a type; bad `since`
    4401  TOKEN_INVALID / NOT_AUTHENTICATED      bad, expired or no token; account changed
    4403  PERMISSION_DENIED / MFA_REQUIRED /     wrong role for this stream, membership suspended,
          TENANT_SUSPENDED / TENANT_DECOMMISSIONED  tenant suspended (also when it happens live)
    4408  NOT_AUTHENTICATED                      no auth message in time
    1013  SERVICE_UNAVAILABLE                    Redis unreachable; try again later

Delivery. Each process subscribes to a stream's channel-layer group once (StreamHub) and
hands every event to its sockets' inboxes. A socket joins the hub before it reads anything,
holds live events in a buffer while it replays from the Redis Stream, then flushes the buffer
skipping ids it already sent. Each event carries the id of the stream entry before it: when that
was not handed out, or the message is late, the hub reads the missing events from the stream
first (a message dropped by a full channel-layer queue, two publishers arriving out of order, a
backlog); a sweep of the stream tips every second finds events whose message never came. The
client-facing protocol is documented in docs/realtime.md.

Database access (the account check) happens only in database_sync_to_async functions that set
their schema themselves: django-tenants' schema does not follow the hop into the thread pool.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from django_tenants.utils import get_public_schema_name, schema_context
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken

from aegis import events
from aegis.api.exceptions import ErrorCode

logger = logging.getLogger(__name__)

SUBPROTOCOL = "aegis.v1"
BEARER_PREFIX = "bearer."
PENDING_LIMIT = 1000  # live events held while replaying; older ones are re-read from the stream
REPLAY_BATCH = 500
SETTLE_SECONDS = 1.0  # quiet time after an event before the stream's tip is checked once
INBOX_LIMIT = 1000  # events waiting for a slow socket; older ones are re-read from the stream
HUB_LINGER_SECONDS = 60.0
HUB_LAG_MS = 25  # a message this much older than its id is late: read the stream instead
HUB_SWEEP_SECONDS = 1.0
HUB_CHANNEL_PREFIX = "aegis-hub"
GROUP_RENEW_SECONDS = 3600.0

CLOSE_MALFORMED = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_AUTH_TIMEOUT = 4408
CLOSE_TRY_AGAIN_LATER = 1013


class Refusal(Exception):
    """Why the socket is refused or closed: an application close code and the REST error shape."""

    def __init__(self, close_code: int, code: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.close_code, self.code, self.message, self.details = close_code, code, message, details or {}


@dataclass(frozen=True)
class Principal:
    user_id: str
    role: str
    tenant_id: str | None
    mfa: bool
    expires_at: datetime


def decode_token(raw) -> AccessToken:
    """Signature, expiry and token type; no database."""
    if not isinstance(raw, str) or not raw:
        raise Refusal(CLOSE_UNAUTHENTICATED, ErrorCode.NOT_AUTHENTICATED, "An access token is required.")
    try:
        return AccessToken(raw)
    except TokenError as exc:
        raise Refusal(CLOSE_UNAUTHENTICATED, ErrorCode.TOKEN_INVALID,
                      "The access token is invalid or expired.") from exc


@database_sync_to_async
def load_principal(token: AccessToken) -> Principal:
    """The account behind the token, checked as AccessTokenAuthentication checks it for REST."""
    from apps.accounts.models import TeamMember, User
    from apps.tenants.models import Tenant

    # Users, memberships and tenants are public-schema tables; say so, whatever the pooled
    # thread's connection was last set to.
    with schema_context(get_public_schema_name()):
        user = (User.objects.select_related("tenant", "membership")
                .filter(pk=token.get("sub"), is_active=True).first())
        if (user is None or user.role != token.get("role")
                or str(user.tenant_id or "") != str(token.get("tid") or "")):
            raise Refusal(CLOSE_UNAUTHENTICATED, ErrorCode.TOKEN_INVALID,
                          "The access token no longer matches the account.")
        membership = getattr(user, "membership", None) if user.tenant_id else None
        if membership is not None and membership.status == TeamMember.Status.SUSPENDED:
            raise Refusal(CLOSE_FORBIDDEN, ErrorCode.PERMISSION_DENIED, "Your membership of this tenant is suspended.")
        tenant = user.tenant
        if tenant is not None and tenant.status == Tenant.Status.SUSPENDED:
            raise Refusal(CLOSE_FORBIDDEN, ErrorCode.TENANT_SUSPENDED, "This tenant is suspended; contact support.",
                          {"reason": tenant.status_reason})
        if tenant is not None and tenant.status == Tenant.Status.DECOMMISSIONED:
            raise Refusal(CLOSE_FORBIDDEN, ErrorCode.TENANT_DECOMMISSIONED, "This tenant has been decommissioned.")
    return Principal(user_id=str(user.pk), role=user.role, tenant_id=str(user.tenant_id) if user.tenant_id else None,
                     mfa=bool(token.get("mfa")), expires_at=datetime.fromtimestamp(token["exp"], tz=UTC))


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _valid_since(since) -> str | None:
    if since is None:
        return None
    try:
        events.parse_id(since)
    except ValueError:
        raise Refusal(CLOSE_MALFORMED, ErrorCode.VALIDATION_ERROR, "`since` must be an event id such as "
                      "1712345678901-0.", {"since": since if isinstance(since, str) else None}) from None
    return since


class _Subscription:
    """A process's subscription to one stream: one channel-layer channel in the stream's group."""

    def __init__(self, stream: str):
        self.stream, self.group = stream, events.group_name(stream)
        self.consumers: set[EventStreamConsumer] = set()
        self.channel: str | None = None
        self.ready = asyncio.Event()
        self.error: BaseException | None = None
        self.tasks: list[asyncio.Task] = []
        self.linger: asyncio.TimerHandle | None = None
        self.last_id = "0"  # the newest event handed to the sockets
        self.last_key: tuple[int, int] = (0, 0)
        self.handing_out = asyncio.Lock()  # the receive loop and the sweep take turns


class StreamHub:
    """Receives each stream's events once per process and hands them to that process's sockets.

    With one channel-layer channel per socket, channels_redis wakes every socket's receive (new
    tasks, asyncio.wait, a shared lock) for every event, and pops the next event only once all of
    them have run: in bench/activity_stream.py, 1,000 sockets at 20 events/s then waited 10.9 s
    (p50) for their events, against 17 ms this way. Here a process joins the stream's group once;
    each socket has an in-memory inbox and its own pump. One hub per event loop (the server has
    one; tests start many).
    """

    def __init__(self):
        self.subscriptions: dict[str, _Subscription] = {}
        self.background: set[asyncio.Task] = set()
        self.sweeper: asyncio.Task | None = None

    async def join(self, stream: str, consumer: EventStreamConsumer) -> None:
        """Subscribed when this returns: every event published afterwards reaches `consumer`."""
        subscription = self.subscriptions.get(stream)
        if subscription is None:
            subscription = self.subscriptions[stream] = _Subscription(stream)
            try:
                layer = get_channel_layer()
                # Its own channel prefix: CHANNEL_LAYERS gives these channels a short queue
                # (channel_capacity), see _hand_out.
                subscription.channel = await layer.new_channel(prefix=HUB_CHANNEL_PREFIX)
                await layer.group_add(subscription.group, subscription.channel)
                tip = await events.latest_id(stream, fresh=True)
                if tip is not None:
                    subscription.last_id, subscription.last_key = tip, events.parse_id(tip)
            except BaseException as exc:
                self.subscriptions.pop(stream, None)
                subscription.error = exc
                subscription.ready.set()
                raise
            subscription.tasks = [asyncio.ensure_future(self._receive(subscription, layer)),
                                  asyncio.ensure_future(self._keep_membership(subscription, layer))]
            subscription.ready.set()
            if self.sweeper is None or self.sweeper.done():
                self.sweeper = asyncio.ensure_future(self._sweep())
        else:
            await subscription.ready.wait()
            if subscription.error is not None:
                raise subscription.error
        if subscription.linger is not None:
            subscription.linger.cancel()
            subscription.linger = None
        subscription.consumers.add(consumer)

    def leave(self, stream: str, consumer: EventStreamConsumer) -> None:
        subscription = self.subscriptions.get(stream)
        if subscription is None:
            return
        subscription.consumers.discard(consumer)
        if not subscription.consumers and subscription.linger is None:
            # Kept a while: sockets reconnect, and a new channel per reconnect would churn the group.
            subscription.linger = asyncio.get_running_loop().call_later(HUB_LINGER_SECONDS, self._drop, subscription)

    def _drop(self, subscription: _Subscription) -> None:
        subscription.linger = None
        if subscription.consumers or self.subscriptions.get(subscription.stream) is not subscription:
            return
        del self.subscriptions[subscription.stream]
        for task in subscription.tasks:
            task.cancel()
        discarding = asyncio.ensure_future(self._discard(subscription))
        self.background.add(discarding)
        discarding.add_done_callback(self.background.discard)

    @staticmethod
    async def _discard(subscription: _Subscription) -> None:
        with contextlib.suppress(Exception):  # Redis gone: the membership expires by itself
            await get_channel_layer().group_discard(subscription.group, subscription.channel)

    @classmethod
    async def _receive(cls, subscription: _Subscription, layer) -> None:
        while True:
            try:
                message = await layer.receive(subscription.channel)
                await cls._hand_out(subscription, message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis down: sockets catch up from the stream once it is back
                logger.warning("live stream %s: receiving failed: %s", subscription.stream, exc)
                await asyncio.sleep(1.0)

    @classmethod
    async def _hand_out(cls, subscription: _Subscription, message: dict) -> None:
        """Hand the sockets every event up to this one, in stream order, each once.

        channels_redis pops one message per four Redis round trips, and a busy process can pop
        slower than events come; its queue then holds stale messages, and new ones wait behind
        them (measured: 0.7 s behind with the default queue of 100 under CPU contention). So a
        message that arrives late (its id, a Redis timestamp, is older than HUB_LAG_MS) or after
        a gap (its `prev` was not handed out) makes the hub read everything new from the stream in
        one call; the queued messages behind it are then skipped, and the hub channels' short
        queue (channel_capacity in CHANNEL_LAYERS) bounds how many there can be. Messages refused
        by a full queue are found the same way, or by the sweep.
        """
        async with subscription.handing_out:
            key = events.parse_id(message["id"])
            if key <= subscription.last_key:
                return
            prev = message.get("prev")
            late = time.time() * 1000 - key[0] > HUB_LAG_MS
            if late or (prev and prev != subscription.last_id and events.parse_id(prev) > subscription.last_key):
                await cls._read_new(subscription)
                return
            cls._offer(subscription, message)

    @staticmethod
    def _offer(subscription: _Subscription, message: dict) -> None:
        for consumer in tuple(subscription.consumers):
            consumer.offer(message)
        subscription.last_id, subscription.last_key = message["id"], events.parse_id(message["id"])

    @classmethod
    async def _read_new(cls, subscription: _Subscription) -> None:
        """Hand out what the stream holds after the last event handed out (caller holds the lock)."""
        while True:
            batch = await events.read_after(subscription.stream, subscription.last_id, count=REPLAY_BATCH)
            for event_id, event_type, text in batch:
                cls._offer(subscription, {"id": event_id, "prev": subscription.last_id, "event": event_type,
                                          "text": text})
            if len(batch) < REPLAY_BATCH:
                return

    async def _sweep(self) -> None:
        """Every HUB_SWEEP_SECONDS, one pipelined read of the tips of this process's streams: an
        event whose message never arrived (a full queue, Redis restarting) reaches the sockets
        within that time, even when no later event follows it."""
        while True:
            await asyncio.sleep(HUB_SWEEP_SECONDS)
            subscriptions = [s for s in self.subscriptions.values() if s.ready.is_set() and s.error is None]
            if not subscriptions:
                continue
            try:
                tips = await events.latest_ids([s.stream for s in subscriptions])
                for subscription in subscriptions:
                    tip = tips.get(subscription.stream)
                    if tip is not None and events.parse_id(tip) > subscription.last_key:
                        async with subscription.handing_out:
                            await self._read_new(subscription)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.info("live streams: sweep skipped: %s", exc)

    @staticmethod
    async def _keep_membership(subscription: _Subscription, layer) -> None:
        # channels_redis forgets group members after group_expiry (a day): renew well before.
        while True:
            await asyncio.sleep(GROUP_RENEW_SECONDS)
            with contextlib.suppress(Exception):
                await layer.group_add(subscription.group, subscription.channel)


_hubs: dict[asyncio.AbstractEventLoop, StreamHub] = {}


def hub() -> StreamHub:
    loop = asyncio.get_running_loop()
    found = _hubs.get(loop)
    if found is None:
        for closed in [other for other in _hubs if other.is_closed()]:
            del _hubs[closed]
        found = _hubs[loop] = StreamHub()
    return found


class EventStreamConsumer(AsyncJsonWebsocketConsumer, abc.ABC):
    """One socket following one stream. Subclasses say which stream a token may follow."""

    # No channel-layer channel of its own: the process's StreamHub feeds its inbox.
    channel_layer_alias = None

    @abc.abstractmethod
    def stream_for(self, token: AccessToken) -> str:
        """The stream this token follows here, or a Refusal (role checks from the claims)."""

    def closing_refusal(self, event_type: str) -> Refusal | None:
        """A Refusal when a live event of this type must end the socket."""
        return None

    # --- Connection and messages ---------------------------------------------------------------

    async def connect(self):
        self.principal: Principal | None = None
        self.stream: str | None = None
        self.joined = False
        self.closing = False
        self.syncing = True  # until the first replay is done, live events wait in `pending`
        self.pending: deque[dict] = deque(maxlen=PENDING_LIMIT)
        self.dropped = False  # `pending` overflowed: re-read from the stream before going live
        self.last_id: str | None = None  # the newest id sent (or where the client said it was)
        self.last_key: tuple[int, int] = (0, 0)  # parse_id(last_id), kept alongside
        self.inbox: deque[dict] = deque()
        self.inbox_ready = asyncio.Event()
        self.horizon: tuple[int, int] = (0, 0)  # stream tip when the account was checked
        self.tasks: dict[str, asyncio.Task] = {}
        self.sending = asyncio.Lock()  # one sender at a time: live delivery, or a sync
        self.event_arrived = asyncio.Event()

        offered = self.scope.get("subprotocols") or []
        bearer = [p for p in offered if p.startswith(BEARER_PREFIX)]
        await self.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
        if bearer:
            if SUBPROTOCOL not in offered:
                return await self.refuse(Refusal(CLOSE_MALFORMED, ErrorCode.MALFORMED_REQUEST,
                                                 f"Offer the {SUBPROTOCOL} subprotocol with the bearer token."))
            since = parse_qs(self.scope.get("query_string", b"").decode("latin-1")).get("since", [None])[-1]
            await self.authenticate(bearer[0][len(BEARER_PREFIX):], since)
        else:
            self.start_task("auth_timeout", self.auth_deadline())

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        try:
            content = json.loads(text_data) if text_data is not None else None
        except ValueError:
            content = None
        if not isinstance(content, dict) or not isinstance(content.get("type"), str):
            return await self.refuse(Refusal(CLOSE_MALFORMED, ErrorCode.MALFORMED_REQUEST,
                                             'Messages are JSON objects with a "type".'))
        await self.receive_json(content)

    async def receive_json(self, content, **kwargs):
        if self.closing:
            return
        kind = content["type"]
        if kind == "auth":
            if self.principal is None:
                return await self.authenticate(content.get("token"), content.get("since"))
            return await self.reauthenticate(content.get("token"))
        if self.principal is None:
            return await self.refuse(Refusal(CLOSE_UNAUTHENTICATED, ErrorCode.NOT_AUTHENTICATED,
                                             'Authenticate first: {"type": "auth", "token": "..."}.'))
        if kind == "resume":
            try:
                since = _valid_since(content.get("since"))
            except Refusal as refusal:
                return await self.refuse(refusal)
            if since is None:
                return await self.refuse(Refusal(CLOSE_MALFORMED, ErrorCode.VALIDATION_ERROR, "resume needs `since`."))
            return self.start_sync(since)
        if kind == "ping":
            return await self.send_json({"type": "pong"})
        await self.send_error(ErrorCode.VALIDATION_ERROR, f"Unknown message type {kind!r}.",
                              {"allowed": ["auth", "resume", "ping"]})

    async def disconnect(self, code):
        self.closing = True
        for task in self.tasks.values():
            task.cancel()
        if self.joined:
            hub().leave(self.stream, self)

    # --- Authentication ---------------------------------------------------------------------------

    async def authenticate(self, raw_token, since) -> None:
        self.cancel_task("auth_timeout")
        try:
            since = _valid_since(since)
            token = decode_token(raw_token)
            stream = self.stream_for(token)
        except Refusal as refusal:
            return await self.refuse(refusal)
        self.stream = stream
        try:
            # Join before reading the tip and before checking the account: an event committed
            # after the check is then either after the tip (delivered) or seen by the check.
            await hub().join(stream, self)
            self.joined = True
            self.start_task("pump", self.pump())
            tip = await events.latest_id(stream, fresh=True)  # after the join, not before
        except Exception as exc:
            logger.warning("live stream %s unavailable: %s", stream, exc)
            return await self.refuse(Refusal(CLOSE_TRY_AGAIN_LATER, ErrorCode.SERVICE_UNAVAILABLE,
                                             "Live events are unavailable right now; try again shortly."))
        try:
            self.principal = await load_principal(token)
        except Refusal as refusal:
            return await self.refuse(refusal)
        self.horizon = events.parse_id(tip) if tip else (0, 0)
        self.schedule_expiry()
        await self.send_json({"type": "ready", "protocol": SUBPROTOCOL, "stream": stream, "lastEventId": tip,
                              "expiresAt": _iso(self.principal.expires_at)})
        self.start_sync(since or tip or "0")
        self.start_task("settle", self.settle_watch())

    async def reauthenticate(self, raw_token) -> None:
        try:
            token = decode_token(raw_token)
            if str(token.get("sub")) != self.principal.user_id or self.stream_for(token) != self.stream:
                raise Refusal(CLOSE_FORBIDDEN, ErrorCode.PERMISSION_DENIED,
                              "A token for another account or stream cannot take over this socket.")
            principal = await load_principal(token)
        except Refusal as refusal:
            return await self.refuse(refusal)
        self.principal = principal
        self.schedule_expiry()
        await self.send_json({"type": "reauthenticated", "expiresAt": _iso(principal.expires_at)})

    def schedule_expiry(self) -> None:
        self.cancel_task("expiry")
        self.start_task("expiry", self.expire_at(self.principal.expires_at))

    async def expire_at(self, moment: datetime) -> None:
        await asyncio.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))
        await self.refuse(Refusal(CLOSE_UNAUTHENTICATED, ErrorCode.TOKEN_INVALID,
                                  "The access token expired; reconnect with a fresh one (or send one before expiry).",
                                  {"reason": "expired"}))

    async def auth_deadline(self) -> None:
        timeout = float(getattr(settings, "WEBSOCKET_AUTH_TIMEOUT", 5.0))
        await asyncio.sleep(timeout)
        await self.refuse(Refusal(CLOSE_AUTH_TIMEOUT, ErrorCode.NOT_AUTHENTICATED,
                                  f"No auth message within {timeout:g} s.", {"timeoutSeconds": timeout}))

    # --- Delivery -----------------------------------------------------------------------------------

    def start_sync(self, since: str | None) -> None:
        """Send the events after `since` (None: after the last one sent) from the stream, then
        the live ones buffered meanwhile, then go live."""
        self.cancel_task("sync")
        self.syncing = True  # from now on live events wait in `pending`
        self.start_task("sync", self.sync(since))

    async def sync(self, since: str | None) -> None:
        try:
            async with self.sending:  # a live event being sent finishes first
                if since is not None:
                    self.last_id, self.last_key = since, events.parse_id(since)
                    oldest = await events.oldest_id(self.stream)
                    if oldest is not None and (0, 0) < self.last_key < events.parse_id(oldest):
                        await self.send_json({"type": "resync", "oldestEventId": oldest, "message":
                                              "Events after `since` may have expired; reload state over REST."})
                while True:
                    self.dropped = False
                    await self.catch_up()
                    while self.pending and not self.closing:
                        await self.deliver(self.pending.popleft())
                    if not self.dropped or self.closing:
                        break
                self.syncing = False  # no await between the empty buffer and this: nothing slips past
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("replay of %s failed: %s", self.stream, exc)
            await self.refuse(Refusal(CLOSE_TRY_AGAIN_LATER, ErrorCode.SERVICE_UNAVAILABLE,
                                      "Live events are unavailable right now; try again shortly."))

    async def catch_up(self, until: str = "+") -> None:
        """Send what the stream holds after the last id sent (up to `until`)."""
        while not self.closing:
            batch = await events.read_after(self.stream, self.last_id, until=until, count=REPLAY_BATCH)
            for event_id, event_type, text in batch:
                await self.send_event(event_id, event_type, text)
                if self.closing:
                    return
            if len(batch) < REPLAY_BATCH:
                return

    def offer(self, message: dict) -> None:
        """From the hub: queue a live event for this socket's pump (never blocks the hub)."""
        if self.closing:
            return
        if len(self.inbox) >= INBOX_LIMIT:
            self.inbox.popleft()  # a socket this far behind: the event is re-read from the stream
        self.inbox.append(message)
        self.inbox_ready.set()

    async def pump(self) -> None:
        """Hands the inbox to aegis_event, in order, one at a time."""
        while not self.closing:
            await self.inbox_ready.wait()
            self.inbox_ready.clear()
            while self.inbox and not self.closing:
                await self.aegis_event(self.inbox.popleft())

    async def aegis_event(self, message: dict) -> None:
        if self.closing:
            return
        self.event_arrived.set()
        if self.syncing:
            if len(self.pending) == PENDING_LIMIT:
                self.dropped = True  # the deque drops the oldest; sync() reads it from the stream
            self.pending.append(message)
            return
        try:
            async with self.sending:
                await self.deliver(message)
        except Exception as exc:  # the stream could not be read to fill a gap
            logger.warning("live stream %s: catching up failed: %s", self.stream, exc)
            await self.refuse(Refusal(CLOSE_TRY_AGAIN_LATER, ErrorCode.SERVICE_UNAVAILABLE,
                                      "Live events are unavailable right now; try again shortly."))

    async def deliver(self, message: dict) -> None:
        event_id = message["id"]
        key = events.parse_id(event_id)
        if key <= self.last_key:
            return  # already sent (replayed, or caught up)
        prev = message.get("prev")
        if prev and prev != self.last_id and events.parse_id(prev) > self.last_key:
            await self.catch_up(until=event_id)  # something before it has not arrived: read it
            return
        await self.send_event(event_id, message["event"], message["text"], key)

    async def settle_watch(self) -> None:
        """Once a burst of events is over, check the stream's tip once. A dropped event is found
        by the next one (its `prev`), but the last of a burst has no next one; this finds it."""
        while not self.closing:
            await self.event_arrived.wait()
            self.event_arrived.clear()
            while True:  # until SETTLE_SECONDS pass without an event
                await asyncio.sleep(SETTLE_SECONDS)
                if not self.event_arrived.is_set():
                    break
                self.event_arrived.clear()
            if self.syncing or self.closing:
                continue
            try:
                tip = await events.latest_id(self.stream)
            except Exception as exc:
                logger.info("live stream %s: settle check skipped: %s", self.stream, exc)
                continue
            if tip is not None and events.parse_id(tip) > self.last_key and not self.syncing:
                self.start_sync(None)

    async def send_event(self, event_id: str, event_type: str, text: str, key: tuple[int, int] | None = None) -> None:
        await self.send(text_data=text)
        self.last_id, self.last_key = event_id, key or events.parse_id(event_id)
        # Only events after the tip read at the account check: older ones were already reflected
        # in that check (a replayed suspension of a since reactivated tenant closes nothing).
        if self.last_key > self.horizon:
            refusal = self.closing_refusal(event_type)
            if refusal is not None:
                await self.refuse(refusal)

    # --- Closing -------------------------------------------------------------------------------------

    async def send_error(self, code: str, message: str, details: dict | None = None) -> None:
        await self.send_json({"type": "error", "error": {"code": code, "message": message, "details": details or {}}})

    async def refuse(self, refusal: Refusal) -> None:
        """Say why, then close with the application code."""
        if self.closing:
            return
        self.closing = True
        current = asyncio.current_task()
        for task in self.tasks.values():
            if task is not current:
                task.cancel()
        with contextlib.suppress(Exception):
            await self.send_error(refusal.code, refusal.message, refusal.details)
        await self.close(code=refusal.close_code, reason=refusal.code)

    def start_task(self, name: str, coroutine) -> None:
        self.tasks[name] = asyncio.ensure_future(coroutine)

    def cancel_task(self, name: str) -> None:
        task = self.tasks.pop(name, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

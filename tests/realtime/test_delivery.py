"""Delivery: tenant isolation, the event envelope, replay since an id, no gaps, no duplicates."""

from __future__ import annotations

import asyncio
import re

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from aegis import events
from aegis.realtime import EventStreamConsumer
from tests.realtime.conftest import TRANSACTIONAL
from tests.realtime.helpers import ACTIVITY, close, open_socket, receive_events

pytestmark = TRANSACTIONAL


async def receive_until(communicator, marker: str) -> list[dict]:
    """Frames up to and including the event whose data.marker is `marker`."""
    received = []
    while not received or received[-1].get("data", {}).get("marker") != marker:
        received.extend(await receive_events(communicator, 1))
    return received


def test_a_tenant_socket_receives_its_own_events_and_never_another_tenants(world):
    stream_a, stream_b = events.tenant_stream(world.tenant_a.pk), events.tenant_stream(world.tenant_b.pk)

    async def scenario():
        socket_a, _ = await open_socket(ACTIVITY, world.token(world.user_a))
        socket_b, _ = await open_socket(ACTIVITY, world.token(world.user_b), header=False)
        for n in range(3):
            await events.apublish(stream_a, "test.event", {"tenant": "a", "n": n})
            await events.apublish(stream_b, "test.event", {"tenant": "b", "n": n})
        # Published last: had B's events been routed to A's socket, they would arrive before this.
        await events.apublish(stream_a, "test.event", {"tenant": "a", "marker": "end"})
        await events.apublish(stream_b, "test.event", {"tenant": "b", "marker": "end"})
        got = await receive_until(socket_a, "end"), await receive_until(socket_b, "end")
        await close(socket_a, socket_b)
        return got

    got_a, got_b = async_to_sync(scenario)()
    assert [e["data"] for e in got_a] == [{"tenant": "a", "n": 0}, {"tenant": "a", "n": 1}, {"tenant": "a", "n": 2},
                                         {"tenant": "a", "marker": "end"}]
    assert {e["data"]["tenant"] for e in got_b} == {"b"} and len(got_b) == 4
    event = got_a[0]
    assert list(event) == ["type", "id", "timestamp", "data"]
    assert event["type"] == "test.event"
    assert re.fullmatch(r"\d+-\d+", event["id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", event["timestamp"])
    ids = [events.parse_id(e["id"]) for e in got_a]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


@pytest.mark.parametrize("header", [True, False], ids=["since-in-query", "since-in-auth-message"])
def test_a_reconnecting_client_gets_what_it_missed_then_live_events_without_duplicates(world, header):
    stream = events.tenant_stream(world.tenant_a.pk)
    ids = [events.publish(stream, "test.event", {"n": n}) for n in range(1, 6)]
    assert all(ids)

    async def scenario():
        socket, ready = await open_socket(ACTIVITY, world.token(world.user_a), since=ids[1], header=header)
        replayed = await receive_events(socket, 3)
        for n in (6, 7):
            await events.apublish(stream, "test.event", {"n": n})
        await events.apublish(stream, "test.event", {"marker": "end"})
        live = await receive_until(socket, "end")
        await close(socket)
        return ready, replayed, live

    ready, replayed, live = async_to_sync(scenario)()
    assert ready["lastEventId"] == ids[4]
    assert [(e["id"], e["data"]["n"]) for e in replayed] == [(ids[2], 3), (ids[3], 4), (ids[4], 5)]
    assert [e["data"] for e in live] == [{"n": 6}, {"n": 7}, {"marker": "end"}]


def test_events_published_while_replaying_are_sent_once_and_in_order(world, monkeypatch):
    """Subscribe first, buffer, replay, then flush the buffer skipping what the replay sent."""
    stream = events.tenant_stream(world.tenant_a.pk)
    ids = [events.publish(stream, "test.event", {"n": n}) for n in range(1, 4)]
    read_after = events.read_after
    calls = []

    async def read_with_live_publishes(stream_name, after, **kwargs):
        if calls:
            return await read_after(stream_name, after, **kwargs)
        calls.append(after)
        # In the stream before the read: replayed, and its live copy (buffered) must be skipped.
        await events.apublish(stream_name, "test.event", {"n": "during-replay-1"})
        batch = await read_after(stream_name, after, **kwargs)
        # After the read: only the buffered live copies carry these.
        await events.apublish(stream_name, "test.event", {"n": "during-replay-2"})
        await events.apublish(stream_name, "test.event", {"marker": "end"})
        for _ in range(500):  # hold the replay until the three live copies reached the consumer
            if len(arrivals) == 3:
                break
            await asyncio.sleep(0.01)
        return batch

    arrivals = []
    handle_event = EventStreamConsumer.aegis_event

    async def recording_handler(consumer, message):
        arrivals.append(consumer.syncing)
        await handle_event(consumer, message)

    monkeypatch.setattr(events, "read_after", read_with_live_publishes)
    monkeypatch.setattr(EventStreamConsumer, "aegis_event", recording_handler)

    async def scenario():
        socket, _ = await open_socket(ACTIVITY, world.token(world.user_a), since=ids[0])
        received = await receive_until(socket, "end")
        await close(socket)
        return received

    received = async_to_sync(scenario)()
    assert calls == [ids[0]]
    assert arrivals == [True, True, True]  # all three went through the buffer
    assert [e["data"].get("n", e["data"].get("marker")) for e in received] == [
        2, 3, "during-replay-1", "during-replay-2", "end"]
    assert len({e["id"] for e in received}) == len(received)


def test_resume_on_an_open_socket_restarts_after_the_given_id(world):
    stream = events.tenant_stream(world.tenant_a.pk)

    async def scenario():
        socket, _ = await open_socket(ACTIVITY, world.token(world.user_a))
        first = [await events.apublish(stream, "test.event", {"n": n}) for n in (1, 2, 3)]
        live = await receive_events(socket, 3)
        await socket.send_json_to({"type": "resume", "since": first[0]})
        again = await receive_events(socket, 2)
        await events.apublish(stream, "test.event", {"n": 4, "marker": "end"})
        after = await receive_until(socket, "end")
        await close(socket)
        return live, again, after

    live, again, after = async_to_sync(scenario)()
    assert [e["data"]["n"] for e in live] == [1, 2, 3]
    assert [e["data"]["n"] for e in again] == [2, 3]
    assert [e["data"]["n"] for e in after] == [4]


def test_a_since_older_than_the_oldest_kept_event_asks_the_client_to_resync(world):
    stream = events.tenant_stream(world.tenant_a.pk)
    events.publish(stream, "test.event", {"n": 1})

    async def scenario():
        socket, _ = await open_socket(ACTIVITY, world.token(world.user_a), since="1-0")
        notice = (await receive_events(socket, 1))[0]
        replayed = await receive_events(socket, 2)  # tenant.provisioned (from the fixture), then n=1
        await close(socket)
        return notice, replayed

    notice, replayed = async_to_sync(scenario)()
    assert notice["type"] == "resync" and re.fullmatch(r"\d+-\d+", notice["oldestEventId"])
    assert [e["type"] for e in replayed] == ["tenant.provisioned", "test.event"]


@pytest.mark.parametrize("published", [
    # A live event names the entry before it; a socket that never got that one reads it first.
    pytest.param([("test.event", 1), ("test.lost", 2), ("test.event", 3)], id="read-before-the-next-event"),
    # No later event names it as `prev`: the consumer checks the stream's tip after a lull.
    pytest.param([("test.event", 1), ("test.lost", 2)], id="last-of-a-burst-found-after-a-lull"),
    # Nothing before or after it: the process's periodic sweep of stream tips finds it.
    pytest.param([("test.lost", 1)], id="alone-found-by-the-sweep"),
])
def test_an_event_whose_fan_out_was_lost_still_arrives_in_order(world, monkeypatch, published):
    stream = events.tenant_stream(world.tenant_a.pk)

    async def scenario():
        socket, _ = await open_socket(ACTIVITY, world.token(world.user_a))
        layer = get_channel_layer()
        group_send = layer.group_send

        async def lossy_group_send(group, message):
            if message["event"] != "test.lost":  # as if a full channel-layer queue had dropped it
                await group_send(group, message)

        monkeypatch.setattr(layer, "group_send", lossy_group_send)
        for event_type, n in published:
            await events.apublish(stream, event_type, {"n": n})
        received = await receive_events(socket, len(published))
        await close(socket)
        return received

    received = async_to_sync(scenario)()
    assert [(e["type"], e["data"]["n"]) for e in received] == published

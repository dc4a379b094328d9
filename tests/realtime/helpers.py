"""Driving the stream consumers from tests: connect, authenticate, read events, expect a close."""

from __future__ import annotations

import json
from urllib.parse import unquote, urlparse

from asgiref.testing import ApplicationCommunicator

from aegis.asgi import application

ACTIVITY = "/ws/v1/activity/"
PLATFORM = "/ws/v1/platform/"
WAIT = 5  # seconds a single frame may take to arrive before a test fails (never asserted on)


class WebsocketCommunicator(ApplicationCommunicator):
    """channels.testing.WebsocketCommunicator without its package, whose __init__ imports daphne
    (not a dependency here: uvicorn serves the ASGI app)."""

    def __init__(self, app, path: str, subprotocols: list[str] | None = None):
        parsed = urlparse(path)
        super().__init__(app, {"type": "websocket", "path": unquote(parsed.path), "query_string": parsed.query.encode(),
                               "headers": [], "subprotocols": subprotocols or []})

    async def connect(self, timeout: float = WAIT) -> tuple[bool, str | int | None]:
        await self.send_input({"type": "websocket.connect"})
        response = await self.receive_output(timeout)
        if response["type"] == "websocket.close":
            return False, response.get("code", 1000)
        return True, response.get("subprotocol")

    async def send_to(self, text_data: str) -> None:
        await self.send_input({"type": "websocket.receive", "text": text_data})

    async def send_json_to(self, data) -> None:
        await self.send_to(json.dumps(data))

    async def receive_json_from(self, timeout: float = WAIT):
        response = await self.receive_output(timeout)
        assert response["type"] == "websocket.send", response
        return json.loads(response["text"])

    async def disconnect(self, code: int = 1000, timeout: float = WAIT) -> None:
        await self.send_input({"type": "websocket.disconnect", "code": code})
        await self.wait(timeout)


async def open_socket(path: str, token: str | None = None, *, since: str | None = None, header: bool = True):
    """A connected socket, authenticated with the subprotocol header (`header`) or the first
    message; returns (communicator, ready message)."""
    if header and token is not None:
        query = f"?since={since}" if since else ""
        communicator = WebsocketCommunicator(application, path + query, subprotocols=["aegis.v1", f"bearer.{token}"])
    else:
        communicator = WebsocketCommunicator(application, path, subprotocols=["aegis.v1"])
    connected, subprotocol = await communicator.connect(timeout=WAIT)
    assert connected and subprotocol == "aegis.v1"
    if not header and token is not None:
        await communicator.send_json_to({"type": "auth", "token": token, **({"since": since} if since else {})})
    if token is None:
        return communicator, None
    ready = await communicator.receive_json_from(timeout=WAIT)
    return communicator, ready


async def next_frame(communicator) -> dict:
    """The next output of the consumer: {"type": "websocket.send", ...} or {"type": "websocket.close", ...}."""
    return await communicator.receive_output(timeout=WAIT)


async def receive_events(communicator, count: int) -> list[dict]:
    received = []
    for _ in range(count):
        received.append(await communicator.receive_json_from(timeout=WAIT))
    return received


async def expect_refusal(communicator) -> tuple[dict, int]:
    """The error message and the close code that end the socket."""
    message = await next_frame(communicator)
    assert message["type"] == "websocket.send", message
    error = json.loads(message["text"])
    assert error["type"] == "error", error
    close = await next_frame(communicator)
    assert close["type"] == "websocket.close", close
    return error["error"], close["code"]


async def close(*communicators) -> None:
    for communicator in communicators:
        await communicator.disconnect(timeout=WAIT)

"""Settings of the server that bench/activity_stream.py starts: the production settings, with
the live-event keys under a prefix of the bench's own (BENCH_EVENTS_PREFIX), so a run never
mixes with a dev server or another run on the same Redis, and its keys can be deleted after."""

import os

from aegis.settings.prod import *  # noqa: F403

_prefix = os.environ["BENCH_EVENTS_PREFIX"]
CHANNEL_LAYERS = {"default": {**CHANNEL_LAYERS["default"],  # noqa: F405
                              "CONFIG": {**CHANNEL_LAYERS["default"]["CONFIG"], "prefix": f"{_prefix}:channels"}}}  # noqa: F405
EVENTS_STREAM_PREFIX = f"{_prefix}:events"

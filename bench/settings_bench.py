"""Settings of the server that bench/api_throughput.py starts: the production settings, unchanged,
except for the URLconf, which adds the bench-only baseline view (bench/bench_urls.py).

Never used outside the bench: the production URLconf (aegis.urls) does not know the baseline.
Every value still comes from the environment, as in production (the bench sets it).
"""

from aegis.settings.prod import *  # noqa: F403

ROOT_URLCONF = "bench.bench_urls"

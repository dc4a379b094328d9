"""Benchmark: live activity delivery over /ws/v1/activity/ at 100 and 1,000 connected clients,
next to a bare Redis pub/sub round trip measured in the same run.

How to run (from the repository root):

    .venv/bin/python -m aegis.devservices exec -- .venv/bin/python bench/activity_stream.py --markdown

Options: `--scenarios 100x200,1000x20,1000x200` (clients x events per second, the events split
evenly over two tenants, so each client receives half of them), `--duration S` (publishing
seconds per scenario, default 10), `--drain S` (how long to wait for the last events once
publishing stops, default 30), `--workers N` (uvicorn processes, default 2 as in the
Dockerfile), `--client-processes N` (default 2), `--markdown`.

What it does, in one run, loopback only, stopping by itself:

1. A scratch database `aegis_bench_ws_<pid>` on the server of DATABASE_URL (the dev database is
   never touched): `manage.py migrate_platform`, then two tenants with one tenant admin each,
   created through the services. It is dropped at the end, and the run's Redis keys (live
   events and channel-layer groups live under a prefix of this run) are deleted.
2. The app under uvicorn (`aegis.asgi:application`, production settings with bench secrets,
   bench/settings_activity.py) on 127.0.0.1.
3. Per scenario:
   - baseline: a process publishing JSON messages to a Redis pub/sub channel at the scenario's
     rate for its duration, one subscriber in this process: publish-to-receipt latency;
   - live stream: N WebSocket clients (the `websockets` package, subprotocol authentication,
     no permessage-deflate; half per tenant, spread over the client processes) connect and wait
     for `ready`; a separate process publishes `bench.event` events at the fixed rate through
     aegis.events.publish, alternating the two tenants' streams, each carrying its send time;
     each client records every event's publish-to-receipt latency. After the last event (or
     `--drain` seconds) the clients compare what they got with the ids the publisher returned:
     lost, duplicated and out-of-order deliveries are counted.
   Server, clients and publisher are separate processes on the same cores (the bench says the
   load average when each scenario starts). CPU columns: the server's processes (uvicorn and its
   workers) and the client processes, from publishing start to the end of the drain.
4. A table. Exit status 0 when no event was lost, duplicated or reordered, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import multiprocessing
import os
import resource
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import support  # noqa: E402
from bench.support import log  # noqa: E402

CONNECT_CONCURRENCY = 50  # clients opening their socket at once (each costs a database query)
MAX_CLIENTS, MAX_RATE, MAX_DURATION = 5000, 5000, 120
BENCH_PASSWORD = "bench-password-1234"  # the admins never sign in: the bench issues their tokens


# --- The scratch database -----------------------------------------------------------------------------


def bench_environment(database_url: str, redis_url: str, prefix: str) -> dict[str, str]:
    return {**support.server_environment("bench.settings_activity", database_url, redis_url),
            "BENCH_EVENTS_PREFIX": prefix, "LOG_LEVEL": "WARNING"}


def load_tenants() -> list[dict]:
    """Two active tenants with an admin each; their streams and access tokens."""
    from aegis import events
    from aegis.api.authentication import issue_access_token
    from apps.accounts.models import Role
    from apps.accounts.services import add_member
    from apps.tenants import services

    tenants = []
    for name in ("Stream One", "Stream Two"):
        tenant = services.provision(services.create_tenant(company_name=name, admin_email="owner@bench.example"))
        admin = add_member(tenant=tenant, email=f"admin@{tenant.slug}.example", password=BENCH_PASSWORD,
                           role=Role.TENANT_ADMIN)
        tenants.append({"id": str(tenant.pk), "stream": events.tenant_stream(tenant.pk),
                        "token": str(issue_access_token(admin, mfa_verified=False))})
    return tenants


def delete_redis_keys(redis_url: str, prefix: str) -> int:
    import redis

    client = redis.Redis.from_url(redis_url)
    deleted = 0
    batch = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    for start in range(0, len(batch), 500):
        deleted += client.delete(*batch[start:start + 500])
    client.close()
    return deleted


# --- The server -----------------------------------------------------------------------------------------


def server_cpu_seconds(master: int) -> float:
    """User + system CPU of the uvicorn master and its workers."""
    return support.process_cpu_seconds(support.server_pids(master))


# --- The publisher (its own process) ----------------------------------------------------------------------


def publisher(env: dict[str, str], mode: str, targets: list[str], rate: float, count: int, start_at: float,
              results) -> None:
    """Publish `count` events at `rate`/s from `start_at` (wall clock), round robin over `targets`
    (streams, or one pub/sub channel for the baseline). Each carries its send time."""
    os.environ.update(env)
    import django

    django.setup()
    from aegis import events

    published: list[tuple[int, str | None]] = []
    failures = 0
    if mode == "baseline":
        import redis

        client = redis.Redis.from_url(env["REDIS_URL"])
        client.ping()
    for seq in range(count):
        delay = start_at + seq / rate - time.time()
        if delay > 0:
            time.sleep(delay)
        payload = {"seq": seq, "sentAt": time.time()}
        target = seq % len(targets)
        if mode == "baseline":
            client.publish(targets[0], json.dumps(payload))
            continue
        event_id = events.publish(targets[target], "bench.event", payload)
        failures += event_id is None
        published.append((target, event_id))
    results.put({"published": published, "failures": failures, "finished_at": time.time()})


def start_publisher(env, mode, targets, rate, duration, lead=1.0):
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    count = round(rate * duration)
    start_at = time.time() + lead + 2.0  # the spawned process imports Django first
    process = context.Process(target=publisher, args=(env, mode, targets, rate, count, start_at, results))
    process.start()
    return process, results, count


# --- Clients (in their own processes) ------------------------------------------------------------------------


@dataclass
class Client:
    tenant: int
    ids: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    last_expected: str | None = None
    error: str | None = None


async def run_client(url: str, token: str, client: Client, opening: asyncio.Semaphore, ready: asyncio.Event) -> None:
    from websockets.asyncio.client import connect

    try:
        async with opening:
            # No permessage-deflate: small JSON frames gain little from it, and compressing per
            # socket would make the clients, not the server, the bottleneck on this machine.
            ws = await connect(url, subprotocols=["aegis.v1", f"bearer.{token}"], compression=None,
                               ping_interval=None, open_timeout=120, close_timeout=5, max_queue=None)
            greeting = json.loads(await ws.recv())
            if greeting.get("type") != "ready":
                raise RuntimeError(f"not ready: {greeting}")
        ready.set()
        async with ws:
            async for raw in ws:
                received_at = time.time()
                message = json.loads(raw)
                if message.get("type") != "bench.event":
                    continue
                client.latencies.append(received_at - message["data"]["sentAt"])
                client.ids.append(message["id"])
                if message["id"] == client.last_expected:
                    client.done.set()
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        client.error = f"{type(exc).__name__}: {exc}"
    finally:
        ready.set()
        client.done.set()


async def client_group(url: str, tokens: list[str], tenants: list[int], commands, reports) -> None:
    clients = [Client(tenant=tenant) for tenant in tenants]
    readies = [asyncio.Event() for _ in clients]
    opening = asyncio.Semaphore(CONNECT_CONCURRENCY)
    tasks = [asyncio.ensure_future(run_client(url, tokens[c.tenant], c, opening, r)) for c, r in zip(clients, readies,
                                                                                                    strict=True)]
    await asyncio.gather(*(r.wait() for r in readies))
    reports.put({"ready": len(clients), "errors": [c.error for c in clients if c.error]})
    cpu_started = time.process_time()
    command = await asyncio.to_thread(commands.get)
    expected = command["expected"]
    for client in clients:
        wanted = expected[client.tenant]
        client.last_expected = wanted[-1] if wanted else None
        if client.last_expected is None or client.last_expected in client.ids:
            client.done.set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(c.done.wait() for c in clients)), timeout=command["drain"])
    cpu_seconds = time.process_time() - cpu_started
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    report = {"deliveries": 0, "expected": 0, "lost": 0, "duplicates": 0, "out_of_order": 0, "latencies": [],
              "errors": sorted({c.error for c in clients if c.error}), "cpu_seconds": cpu_seconds}
    for client in clients:
        wanted, got = expected[client.tenant], client.ids
        report["expected"] += len(wanted)
        report["deliveries"] += len(got)
        report["duplicates"] += len(got) - len(set(got))
        report["lost"] += len(set(wanted) - set(got))
        parsed = [tuple(int(part) for part in event_id.split("-")) for event_id in got]
        report["out_of_order"] += sum(1 for a, b in itertools.pairwise(parsed) if b <= a)
        report["latencies"].extend(client.latencies)
    reports.put(report)


def client_process(url: str, tokens: list[str], tenants: list[int], commands, reports) -> None:
    raise_file_limit(len(tenants))
    support.run_async(client_group(url, tokens, tenants, commands, reports))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


@dataclass
class Result:
    name: str
    clients: int
    rate: float
    deliveries: int = 0
    expected: int = 0
    p50: float = 0.0
    p99: float = 0.0
    worst: float = 0.0
    lost: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    publish_failures: int = 0
    cpu: str = ""
    cpu_per_delivery: float = 0.0
    client_cpu: str = ""
    errors: list[str] = field(default_factory=list)


def measure_baseline(env, redis_url: str, prefix: str, rate: float, duration: float) -> Result:
    return support.run_async(_baseline(env, redis_url, prefix, rate, duration))


async def _baseline(env, redis_url: str, prefix: str, rate: float, duration: float) -> Result:
    import redis.asyncio as aioredis

    channel = f"{prefix}:baseline"
    subscriber = aioredis.Redis.from_url(redis_url)
    pubsub = subscriber.pubsub()
    await pubsub.subscribe(channel)
    process, results, count = start_publisher(env, "baseline", [channel], rate, duration)
    latencies: list[float] = []
    deadline = time.monotonic() + duration + 60
    while len(latencies) < count and time.monotonic() < deadline:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
        if message is not None:
            latencies.append(time.time() - json.loads(message["data"])["sentAt"])
    await asyncio.to_thread(results.get, True, 30)
    process.join(timeout=30)
    await pubsub.aclose()
    await subscriber.aclose()
    result = Result("Redis pub/sub baseline (1 subscriber)", 1, rate, deliveries=len(latencies), expected=count)
    result.lost = count - len(latencies)
    if latencies:
        result.p50, result.p99, result.worst = percentile(latencies, 0.5), percentile(latencies, 0.99), max(latencies)
    return result


def measure_stream(env, port: int, tenants: list[dict], clients_count: int, rate: float, duration: float,
                   drain: float, server_pid: int, processes: int) -> Result:
    url = f"ws://127.0.0.1:{port}/ws/v1/activity/"
    context = multiprocessing.get_context("spawn")
    reports = context.Queue()
    groups = []
    tokens = [t["token"] for t in tenants]
    assignments = [index % 2 for index in range(clients_count)]
    for part in range(processes):
        share = assignments[part::processes]
        if share:
            commands = context.Queue()
            process = context.Process(target=client_process, args=(url, tokens, share, commands, reports))
            process.start()
            groups.append((process, commands))
    started = time.monotonic()
    result = Result(f"live stream, {clients_count:,} clients", clients_count, rate)
    for _ in groups:
        ready = reports.get(timeout=600)
        result.errors.extend(ready["errors"])
    log(f"{clients_count} clients connected in {time.monotonic() - started:.1f} s "
        f"({len(groups)} client processes)")
    cpu_before, wall_before = server_cpu_seconds(server_pid), time.monotonic()
    process, results, _count = start_publisher(env, "stream", [t["stream"] for t in tenants], rate, duration)
    outcome = results.get(timeout=duration + 120)
    process.join(timeout=30)
    result.publish_failures = outcome["failures"]
    expected: dict[int, list[str]] = {0: [], 1: []}
    for target, event_id in outcome["published"]:
        if event_id is not None:
            expected[target].append(event_id)
    for _, commands in groups:
        commands.put({"expected": expected, "drain": drain})
    latencies: list[float] = []
    client_cpu = 0.0
    for _ in groups:
        report = reports.get(timeout=drain + 120)
        client_cpu += report["cpu_seconds"]
        for name in ("deliveries", "expected", "lost", "duplicates", "out_of_order"):
            setattr(result, name, getattr(result, name) + report[name])
        latencies.extend(report["latencies"])
        result.errors.extend(report["errors"])
    cpu_seconds, wall = server_cpu_seconds(server_pid) - cpu_before, time.monotonic() - wall_before
    for group_process, _ in groups:
        group_process.join(timeout=30)
    if latencies:
        result.p50, result.p99, result.worst = percentile(latencies, 0.5), percentile(latencies, 0.99), max(latencies)
    result.cpu = f"{cpu_seconds / wall:.2f}"
    result.cpu_per_delivery = cpu_seconds / max(1, result.deliveries) * 1e6
    result.client_cpu = f"{client_cpu / wall:.2f}"
    return result


# --- Main ---------------------------------------------------------------------------------------------------


def table(results: list[Result], markdown: bool) -> str:
    header = ["measurement", "events/s", "deliveries", "p50", "p99", "max", "lost", "dup", "out of order",
              "publish failures", "server CPU (cores)", "server CPU per delivery", "clients' CPU (cores)"]
    rows = [[r.name, f"{r.rate:g}", f"{r.deliveries:,}/{r.expected:,}", f"{r.p50 * 1000:.1f} ms",
             f"{r.p99 * 1000:.1f} ms", f"{r.worst * 1000:.1f} ms", str(r.lost), str(r.duplicates), str(r.out_of_order),
             str(r.publish_failures), r.cpu or "-", f"{r.cpu_per_delivery:.0f} µs" if r.cpu_per_delivery else "-",
             r.client_cpu or "-"] for r in results]
    if markdown:
        return support.markdown_table(header, rows)
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)) for row in [header, *rows])


def raise_file_limit(clients: int) -> None:
    # Each client is one socket here and one in the server; keep headroom for Redis and PostgreSQL.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, max(soft, clients * 2 + 1024))
    if wanted > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    if wanted < clients + 256:
        sys.exit(f"the open file limit ({hard}) is too low for {clients} clients")


def parse_scenarios(text: str) -> list[tuple[int, float]]:
    scenarios = []
    for part in text.split(","):
        clients, _, rate = part.partition("x")
        scenarios.append((int(clients), float(rate)))
    return scenarios


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default="100x200,1000x20,1000x200",
                        help="clients x events per second (all tenants together), comma-separated")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--drain", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    scenarios = parse_scenarios(args.scenarios)
    if not (all(0 < c <= MAX_CLIENTS and 0 < r <= MAX_RATE for c, r in scenarios)
            and 0 < args.duration <= MAX_DURATION and 0 < args.drain <= 300 and 1 <= args.workers <= 8
            and 1 <= args.client_processes <= 8):
        parser.error(f"out of range: clients 1-{MAX_CLIENTS}, rate 1-{MAX_RATE}, duration 1-{MAX_DURATION}, "
                     "drain 1-300, workers 1-8, client processes 1-8")
    source_url, redis_url = support.service_urls()
    raise_file_limit(max(c for c, _ in scenarios))

    database = f"aegis_bench_ws_{os.getpid()}"
    prefix = f"aegis-bench-ws-{os.getpid()}"
    env = bench_environment(support.database_url_with(source_url, database), redis_url, prefix)
    os.environ.update(env)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks
    results: list[Result] = []
    server = None
    log_file = tempfile.NamedTemporaryFile("w+", prefix="aegis-bench-ws-", suffix=".log", delete=False)  # noqa: SIM115
    support.create_database(source_url, database)
    try:
        log(f"scratch database {database} migrated in {support.migrate_platform(env):.1f} s")
        import django

        django.setup()
        from django.db import connections

        tenants = load_tenants()
        connections.close_all()
        port = support.free_port()
        server = support.start_server(env, port, args.workers, log_file, access_log=False)
        support.wait_healthy(server, port)
        log(f"uvicorn ({args.workers} workers) on 127.0.0.1:{port}; server log: {log_file.name}")

        for clients, rate in scenarios:
            log(f"scenario: {clients} clients, {rate:g} events/s for {args.duration:g} s; load average "
                + " ".join(f"{value:.1f}" for value in os.getloadavg()))
            results.append(measure_baseline(env, redis_url, prefix, rate, args.duration))
            results.append(measure_stream(env, port, tenants, clients, rate, args.duration, args.drain, server.pid,
                                          args.client_processes))
    finally:
        if server is not None:
            support.stop_server(server)
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        support.drop_database(source_url, database)
        log(f"dropped {database}; deleted {delete_redis_keys(redis_url, prefix)} Redis keys")

    print(table(results, markdown=False))
    if args.markdown:
        print()
        print(table(results, markdown=True))
    for result in results:
        for error in result.errors[:5]:
            log(f"{result.name}: client error: {error}")
    lost = sum(r.lost for r in results if r.name.startswith("live"))
    duplicates = sum(r.duplicates + r.out_of_order for r in results if r.name.startswith("live"))
    if lost or duplicates or len(results) < 2 * len(scenarios):
        log(f"FAIL: {lost} events lost, {duplicates} duplicated or out of order; server log: {log_file.name}")
        return 1
    Path(log_file.name).unlink(missing_ok=True)
    log("PASS: no event lost, duplicated or reordered")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: creating one tenant schema by copying the template, next to replaying the same
schema's DDL with psql, in the same run against the same server.

How to run (from the repository root; no Makefile needed):

    DJANGO_SETTINGS_MODULE=aegis.settings.dev \\
        .venv/bin/python -m aegis.devservices exec -- .venv/bin/python bench/tenant_schema.py

`aegis.devservices exec` starts the embedded PostgreSQL/Redis if DATABASE_URL/REDIS_URL are
unset and exports them; with DATABASE_URL already set it uses that server. Options:
`--repeat N` (default 15), `--migrations N` (default 3; 0 skips the migrations figure),
`--markdown` (also print the result as a Markdown table, as in docs/performance.md).

What it does: sets up Django, migrates the template schema (apps.tenants.schemas.migrate_template),
dumps it once with `pg_dump --schema-only --schema=tenant_template --no-owner --no-privileges`
(binaries from the pgserver wheel, else from PATH), then, interleaved, N times each:

  create_schema (Python call)  apps.tenants.schemas.create_schema(name), end to end: catalog
                               read, DDL generation, the DDL in one round trip, commit.
    of which: catalog + DDL    schema_ddl(name) alone (reading the template's catalog).
    of which: executing DDL    running that generated SQL in one transaction.
  psql replay                  `psql -q -v ON_ERROR_STOP=1 -f dump.sql` with the schema name
                               rewritten to a fresh one: process start-up, connection and
                               authentication included, each statement in its own transaction
                               (psql's default autocommit), as an operator would replay it.
  psql replay, one transaction the same with --single-transaction (one commit, like create_schema).
  psql start-up only           `psql -c 'SELECT 1'`: the fixed cost inside both psql figures.
  migrations (context)         CREATE SCHEMA + every tenant migration into it (migrate_schemas):
                               the cost that copying the template avoids; it grows with every
                               migration the project adds, the copy does not.

It prints each median (and min/max), and the ratio create_schema / psql replay (target <= 2).
Every schema it creates is dropped at the end, even on failure.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aegis.settings.dev")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from apps.tenants import schemas  # noqa: E402

PREFIX = f"bench_{os.getpid()}_"


def pg_binary(name: str) -> str:
    """The client shipped with the embedded server (same major version), else the one on PATH."""
    try:
        import pgserver

        candidate = Path(pgserver.__file__).parent / "pginstall" / "bin" / name
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    found = shutil.which(name)
    if not found:
        sys.exit(f"{name} not found: install the PostgreSQL client or the pgserver wheel")
    return found


def libpq_env() -> dict[str, str]:
    """PG* variables for psql/pg_dump from DATABASE_URL (a unix-socket host arrives %-encoded)."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        sys.exit("DATABASE_URL is not set: run through `python -m aegis.devservices exec --`")
    parts = urlsplit(url)
    hostport = parts.netloc.rpartition("@")[2]  # parsed by hand: urlsplit lower-cases a socket path
    if hostport.startswith("["):  # [IPv6]:port
        host, _, rest = hostport[1:].partition("]")
        port = rest.lstrip(":")
    else:
        host, _, port = hostport.partition(":")
    env = dict(os.environ)
    env.update({
        "PGHOST": unquote(host) or "localhost",
        "PGDATABASE": unquote(parts.path.lstrip("/")),
        "PGUSER": unquote(parts.username or "postgres"),
    })
    if port:
        env["PGPORT"] = port
    if parts.password:
        env["PGPASSWORD"] = unquote(parts.password)
    return env


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def drop(name: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA IF EXISTS {connection.ops.quote_name(name)} CASCADE")


def leftover_schemas() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)", [PREFIX])
        return [row[0] for row in cursor.fetchall()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--migrations", type=int, default=3, help="repetitions of the migrations figure (0: skip)")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()

    env = libpq_env()
    psql, pg_dump = pg_binary("psql"), pg_binary("pg_dump")
    template = schemas.template_schema()
    schemas.migrate_template()

    with tempfile.TemporaryDirectory() as tmp:
        dump = subprocess.run(
            [pg_dump, "--schema-only", f"--schema={template}", "--no-owner", "--no-privileges"],
            env=env, check=True, capture_output=True, text=True,
        ).stdout
        pattern = re.compile(rf"\b{re.escape(template)}\b")

        def psql_replay(name: str, *extra: str) -> None:
            path = Path(tmp) / f"{name}.sql"
            path.write_text(pattern.sub(name, dump))  # written before the clock starts
            cmd = [psql, "-q", "-X", "-v", "ON_ERROR_STOP=1", *extra, "-f", str(path)]

            def run() -> None:
                subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)

            return run

        def psql_startup() -> None:
            subprocess.run([psql, "-q", "-X", "-c", "SELECT 1"], env=env, check=True, stdout=subprocess.DEVNULL)

        results: dict[str, list[float]] = {key: [] for key in (
            "create_schema", "catalog", "execute", "psql", "psql1", "startup", "migrations")}
        try:
            # Warm-up (catalog caches, page cache, binaries), not measured.
            schemas.create_schema(PREFIX + "warm_cs")
            psql_replay(PREFIX + "warm_psql")()
            for i in range(args.repeat):
                results["create_schema"].append(timed(lambda i=i: schemas.create_schema(f"{PREFIX}cs_{i}")))

                name, parts = f"{PREFIX}split_{i}", {}

                def split(name=name, parts=parts) -> None:
                    start = time.perf_counter()
                    ddl = schemas.schema_ddl(name)
                    parts["catalog"] = time.perf_counter() - start
                    start = time.perf_counter()
                    with transaction.atomic(), connection.cursor() as cursor:
                        cursor.execute(ddl)
                    parts["execute"] = time.perf_counter() - start

                split()
                results["catalog"].append(parts["catalog"])
                results["execute"].append(parts["execute"])

                results["psql"].append(timed(psql_replay(f"{PREFIX}psql_{i}")))
                results["psql1"].append(timed(psql_replay(f"{PREFIX}psql1_{i}", "--single-transaction")))
                results["startup"].append(timed(psql_startup))
            for i in range(args.migrations):
                name = f"{PREFIX}mig_{i}"

                def migrate(name=name) -> None:
                    with connection.cursor() as cursor:
                        cursor.execute(f"CREATE SCHEMA {connection.ops.quote_name(name)}")
                    call_command("migrate_schemas", schema_name=name, interactive=False, verbosity=0)
                    connection.set_schema_to_public()

                results["migrations"].append(timed(migrate))
        finally:
            connection.set_schema_to_public()
            for name in leftover_schemas():
                drop(name)
            assert not leftover_schemas()

    report(results, args, template, len(dump.splitlines()))


def report(results: dict[str, list[float]], args, template: str, dump_lines: int) -> None:
    def ms(values: list[float]) -> str:
        if not values:
            return "skipped"
        return (f"{statistics.median(values) * 1000:8.1f} ms  "
                f"(min {min(values) * 1000:.1f}, max {max(values) * 1000:.1f}, n={len(values)})")

    median = {key: statistics.median(values) if values else None for key, values in results.items()}
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'p')", [template])
        tables = cursor.fetchone()[0]
    rows = [
        ("create_schema (Python call, end to end)", "create_schema"),
        ("  of which: catalog read + DDL generation", "catalog"),
        ("  of which: executing the DDL (one round trip, one commit)", "execute"),
        ("psql replay of pg_dump DDL (autocommit; incl. process start-up)", "psql"),
        ("psql replay, --single-transaction (incl. process start-up)", "psql1"),
        ("psql start-up + connect + SELECT 1 (fixed cost in both psql rows)", "startup"),
        ("context: CREATE SCHEMA + all tenant migrations", "migrations"),
    ]
    print(f"PostgreSQL {server}; template {template!r}: {tables} tables, pg_dump DDL {dump_lines} lines")
    for label, key in rows:
        print(f"{label:<70} {ms(results[key])}")
    ratio = median["create_schema"] / median["psql"]
    ratio_1 = median["create_schema"] / median["psql1"]
    print(f"\nratio create_schema / psql replay                 = {ratio:.2f}  (target <= 2: "
          f"{'met' if ratio <= 2 else 'NOT met'})")
    print(f"ratio create_schema / psql --single-transaction   = {ratio_1:.2f}")
    net = median["psql"] - median["startup"]
    if net > 0:
        print(f"ratio create_schema / (psql replay - start-up)    = {median['create_schema'] / net:.2f}"
              "  (DDL work only on the psql side: the strictest comparison)")
    if median["migrations"]:
        print(f"migrations / create_schema                        = "
              f"{median['migrations'] / median['create_schema']:.0f}x")
    if args.markdown:
        print("\n| measurement | median | min | max | n |\n| --- | ---: | ---: | ---: | ---: |")
        for label, key in rows:
            values = results[key]
            if values:
                print(f"| {label.strip()} | {statistics.median(values) * 1000:.1f} ms | "
                      f"{min(values) * 1000:.1f} ms | {max(values) * 1000:.1f} ms | {len(values)} |")


if __name__ == "__main__":
    main()

"""Shared pieces of the ops commands (manage.py provision_tenant, tenant_status, runtime,
rerender_configs, purge_decommissioned): tenant lookup, tables, JSON and progress output.

No progress-bar library is installed; long work prints one counted line per item instead
(`[3/40] acme: applied`), which also reads well in logs and CI output.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from django.core.management.base import CommandError, OutputWrapper
from django.core.serializers.json import DjangoJSONEncoder

from apps.tenants.models import Tenant


def get_tenant(slug: str) -> Tenant:
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        raise CommandError(f"no tenant with slug {slug!r} (manage.py tenant_status lists them)")
    return tenant


def write_json(stdout: OutputWrapper, data: Any) -> None:
    stdout.write(json.dumps(data, cls=DjangoJSONEncoder, indent=2, sort_keys=True))


def write_table(stdout: OutputWrapper, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    rows = [["-" if cell is None or cell == "" else str(cell) for cell in row] for row in rows]
    widths = [max([len(header), *(len(row[i]) for row in rows)]) for i, header in enumerate(headers)]
    line = "  ".join("{:<%d}" % width for width in widths)  # noqa: UP031 (a format built per column)
    stdout.write(line.format(*headers).rstrip())
    stdout.write(line.format(*("-" * width for width in widths)).rstrip())
    for row in rows:
        stdout.write(line.format(*row).rstrip())


class Progress:
    """`[i/n] label: outcome` lines, unless quiet (verbosity 0 or --json)."""

    def __init__(self, stdout: OutputWrapper, total: int, *, quiet: bool = False):
        self.stdout, self.total, self.quiet, self.done = stdout, total, quiet, 0

    def step(self, label: str, outcome: str, style=None) -> None:
        self.done += 1
        if not self.quiet:
            text = f"[{self.done}/{self.total}] {label}: {outcome}"
            self.stdout.write(style(text) if style else text)

"""The runbook keeps up with the code: every alert kind the code raises has its row in
docs/operations.md (what it means, what to do), and every beat entry is listed there."""

import re
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent.parent
RUNBOOK = (ROOT / "docs" / "operations.md").read_text()
KIND = re.compile(r"""(?:kind=|_ALERT = )["']([a-z_]+\.[a-z_]+)["']""")


def test_every_alert_kind_the_code_raises_is_in_the_runbook():
    kinds = {kind for path in (ROOT / "apps").rglob("*.py") for kind in KIND.findall(path.read_text())}
    assert {"provisioning.failed", "runtime.unhealthy", "purge.failed"} <= kinds  # the pattern still matches
    missing = sorted(kind for kind in kinds if f"| `{kind}` |" not in RUNBOOK)
    assert not missing, f"add these alert kinds to the alerts table in docs/operations.md: {missing}"


def test_every_beat_entry_is_in_the_runbook():
    missing = sorted(name for name in settings.CELERY_BEAT_SCHEDULE if f"| `{name}` |" not in RUNBOOK)
    assert not missing, f"add these beat entries to docs/operations.md: {missing}"

"""The runbook keeps up with the settings: every environment variable the settings read is
documented in docs/operations.md, and the README opens with the two setup commands."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV_READ = re.compile(r"""\benv(?:\.\w+)?\(\s*["']([A-Z][A-Z0-9_]*)["']""")


def test_every_environment_variable_of_the_settings_is_documented():
    read = {name for path in (ROOT / "aegis" / "settings").glob("*.py") for name in ENV_READ.findall(path.read_text())}
    runbook = (ROOT / "docs" / "operations.md").read_text()
    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "FIELD_ENCRYPTION_KEYS"} <= read  # the pattern still matches
    undocumented = sorted(name for name in read if f"`{name}`" not in runbook)
    assert not undocumented, f"add these to the table in docs/operations.md: {undocumented}"


def test_readme_opens_with_make_run_and_make_test():
    first_lines = (ROOT / "README.md").read_text().splitlines()[:4]
    assert first_lines[0].startswith("```")
    assert first_lines[1].startswith("make run ") and first_lines[2].startswith("make test ")
    assert first_lines[3] == "```"

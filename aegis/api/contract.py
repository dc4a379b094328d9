"""Keeps the generated parts of docs/api-contract.md in step with the code.

    python -m aegis.api.contract          # rewrite the generated sections (`make contract`)
    python -m aegis.api.contract --check  # exit 1 if they are out of date

The endpoint table comes from the OpenAPI document drf-spectacular generates (each
operation's summary, and the `x-aegis-access` that aegis.api.schema derives from the view's
`access` rules); the error-code table from aegis.api.schema.ERROR_CODES; the scope table from
aegis.api.permissions.API_KEY_SCOPES. Each lives between a pair of markers:

    <!-- BEGIN GENERATED: endpoints -->
    ...
    <!-- END GENERATED: endpoints -->

and the prose around them is written by hand.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

CONTRACT_PATH = Path(__file__).resolve().parent.parent.parent / "docs" / "api-contract.md"
METHOD_ORDER = ("get", "post", "put", "patch", "delete")
SECTIONS = ("endpoints", "error-codes", "api-key-scopes")


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def who_may_call(access: dict) -> str:
    """A compact form of `x-aegis-access` for the endpoint table."""
    if access.get("policy") == "custom":
        return "custom (see view)"
    if access.get("nobody"):
        return "**nobody** (no access rule)"
    if access.get("anonymous"):
        return "anyone"
    roles = [f"{role} (TOTP)" if role == "platform_admin" else role for role in access.get("roles", [])]
    parts = [", ".join(roles)] if roles else []
    if access.get("apiKeyScope"):
        parts.append(f"key `{access['apiKeyScope']}`")
    text = "; ".join(parts) or "nobody"
    if access.get("tenantReady"):
        text += " ‡"
    return text


def endpoints_table(document: dict) -> str:
    rows = ["| Method | Path | Who may call | Purpose |", "| --- | --- | --- | --- |"]
    for path in sorted(document.get("paths", {})):
        item = document["paths"][path]
        for method in METHOD_ORDER:
            operation = item.get(method)
            if operation is None:
                continue
            rows.append(f"| {method.upper()} | `{path}` | {_cell(who_may_call(operation.get('x-aegis-access', {})))} "
                        f"| {_cell(operation.get('summary') or '—')} |")
    if len(rows) == 2:
        rows.append("| — | — | — | (no endpoints yet) |")
    rows += ["", "‡ needs the tenant's workspace: 409 `TENANT_NOT_READY` while the tenant is provisioning."]
    return "\n".join(rows)


def error_codes_table() -> str:
    from aegis.api.schema import ERROR_CODE_VALUES, ERROR_CODES

    rows = ["| Code | HTTP | Meaning |", "| --- | --- | --- |"]
    for code in ERROR_CODE_VALUES:
        doc = ERROR_CODES.get(code)
        rows.append(f"| `{code}` | {doc.status if doc else '?'} | {_cell(doc.meaning) if doc else '(undocumented)'} |")
    return "\n".join(rows)


def api_key_scopes_table() -> str:
    from aegis.api.permissions import API_KEY_SCOPES

    rows = ["| Scope | Grants |", "| --- | --- |"]
    rows += [f"| `{scope}` | {_cell(grants)} |" for scope, grants in API_KEY_SCOPES.items()]
    return "\n".join(rows)


def generated_sections(document: dict) -> dict[str, str]:
    return {
        "endpoints": endpoints_table(document),
        "error-codes": error_codes_table(),
        "api-key-scopes": api_key_scopes_table(),
    }


def render(text: str, document: dict) -> str:
    """`text` (the contract) with each generated section replaced by its current content."""
    for name, content in generated_sections(document).items():
        pattern = re.compile(
            rf"(<!-- BEGIN GENERATED: {re.escape(name)} -->\n).*?(<!-- END GENERATED: {re.escape(name)} -->)",
            re.DOTALL)
        if not pattern.search(text):
            raise ValueError(f"docs/api-contract.md has no markers for the generated section {name!r}")
        text = pattern.sub(lambda match, content=content: f"{match.group(1)}{content}\n{match.group(2)}", text)
    return text


def current_document() -> dict:
    import json

    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(schema, renderer_context={}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/api-contract.md is out of date")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aegis.settings.test")
    import django

    django.setup()
    text = CONTRACT_PATH.read_text()
    updated = render(text, current_document())
    if args.check:
        if updated != text:
            print("docs/api-contract.md is out of date: run `make contract`.", file=sys.stderr)
            return 1
        return 0
    if updated != text:
        CONTRACT_PATH.write_text(updated)
        print("docs/api-contract.md updated.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Container health probe (the Dockerfile's HEALTHCHECK): GET /healthz on the local web server.

Run it as a script (`python aegis/healthcheck.py`), not as a module: it then imports neither
Django nor the aegis package and stays cheap. It sends a Host header Django accepts, since the
production settings answer 400 to hosts outside ALLOWED_HOSTS: HEALTHCHECK_HOST, else the first
ALLOWED_HOSTS entry (a ".example.com" pattern becomes "example.com", "*" becomes "localhost").
"""

import os
import sys
import urllib.request


def probe_host() -> str:
    if os.environ.get("HEALTHCHECK_HOST"):
        return os.environ["HEALTHCHECK_HOST"]
    first = os.environ.get("ALLOWED_HOSTS", "localhost").split(",")[0].strip()
    return first.lstrip("*").lstrip(".") or "localhost"


def main() -> int:
    port = int(os.environ.get("PORT", "8000"))
    request = urllib.request.Request(f"http://127.0.0.1:{port}/healthz", headers={"Host": probe_host()})
    try:
        with urllib.request.urlopen(request, timeout=4) as response:  # noqa: S310 (fixed http://127.0.0.1 URL)
            return 0 if response.status == 200 else 1
    except OSError as exc:
        print(f"/healthz failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

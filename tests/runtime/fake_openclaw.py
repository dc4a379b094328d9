"""A stand-in for the `openclaw` CLI, installed by tests/runtime/test_local_backend.py as
OPENCLAW_HOME/bin/openclaw, so the local backend's process handling (launch, environment,
pidfile, probes, stop escalation, helpers in their own session, logs) runs for real in well
under a second per test. The real gateway runs in tests/runtime/test_e2e_gateway.py.

`gateway run`: serves /health, /readyz and /rpc/<method> (token checked) on 127.0.0.1:--port,
records its argv and environment, writes log lines to the config's `logging.file`, and starts
a helper in its own session like OpenClaw's spawn broker. The file `mode` beside `bin/` picks a
behaviour: normal, stubborn (ignores SIGTERM), crash (exits at once), channel-failing (/readyz
503 on telegram), starting (/readyz 503 on its start-up sidecars, forever).

`gateway call METHOD --port P`: asks the running fake, with the token from
OPENCLAW_GATEWAY_TOKEN; agents.list answers from the config file as it is now (hot reload).
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HOME = Path(__file__).resolve().parent.parent


def option(args, name, default=None):
    return args[args.index(name) + 1] if name in args else default


def mode() -> str:
    path = HOME / "mode"
    return path.read_text().strip() if path.exists() else "normal"


def config() -> dict:
    try:
        return json.loads(Path(os.environ["OPENCLAW_CONFIG_PATH"]).read_text())
    except (OSError, ValueError):
        return {}


def log(message: str) -> None:
    path = (config().get("logging") or {}).get("file")
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:
            f.write(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "message": message,
                                "_meta": {"logLevelName": "INFO", "name": '{"subsystem":"gateway"}'}}) + "\n")


def run(args) -> None:
    port = int(option(args, "--port"))
    behaviour = mode()
    record = {"argv": sys.argv, "env": dict(os.environ), "pid": os.getpid()}
    Path(os.environ["OPENCLAW_STATE_DIR"]).mkdir(parents=True, exist_ok=True)
    (Path(os.environ["OPENCLAW_STATE_DIR"]) / "fake-start.json").write_text(json.dumps(record))
    print("fake gateway starting", flush=True)
    if behaviour == "crash":
        print("fatal: cannot start (fake crash)", flush=True)
        sys.exit(3)
    # Like the spawn broker: a helper that moves to its own session, out of the gateway's group.
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    if behaviour == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    token = os.environ.get("OPENCLAW_GATEWAY_TOKEN")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/health":
                return self.answer(200, {"ok": True, "status": "live"})
            if self.path == "/readyz":
                if behaviour == "channel-failing":
                    return self.answer(503, {"ready": False, "failing": ["telegram"]})
                if behaviour == "starting":
                    return self.answer(503, {"ready": False, "failing": ["startup-sidecars"]})
                return self.answer(200, {"ready": True, "failing": []})
            if self.path.startswith("/rpc/"):
                if self.headers.get("Authorization") != f"Bearer {token}":
                    return self.answer(401, {"ok": False, "error": {"message": "unauthorized: gateway token mismatch"}})
                entries = (config().get("agents") or {}).get("entries") or {}
                if self.path == "/rpc/agents.list":
                    return self.answer(200, {"agents": [{"id": key} for key in sorted(entries)]})
                return self.answer(200, {"ok": True, "agents": [{"agentId": key} for key in sorted(entries)]})
            return self.answer(404, {"error": "not found"})

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    log(f"http server listening on {port}")
    server.serve_forever()


def call(args) -> None:
    method, port = args[2], option(args, "--port")
    request = urllib.request.Request(f"http://127.0.0.1:{port}/rpc/{method}",
                                     headers={"Authorization": f"Bearer {os.environ.get('OPENCLAW_GATEWAY_TOKEN')}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (http://127.0.0.1)
            print(response.read().decode())
    except urllib.error.HTTPError as exc:
        print(exc.read().decode())
        sys.exit(1)
    except OSError as exc:
        print(json.dumps({"ok": False, "error": {"message": f"Gateway not reachable ({exc})"}}))
        sys.exit(1)


if __name__ == "__main__":
    argv = sys.argv[1:]
    if argv[:2] == ["gateway", "run"]:
        run(argv)
    elif argv[:2] == ["gateway", "call"]:
        call(argv)
    else:
        sys.exit(f"fake openclaw: unsupported {argv}")

"""``sweeps dashboard --serve``: the dashboard on http://127.0.0.1:PORT, rebuilt from MLflow
every ``refresh_s`` seconds while trials finish; the page reloads itself just as often.

It serves the one page and nothing else: ``/`` and ``/dashboard.html`` answer with it, every
other path 404 (the folder it is written to holds the study's databases: `optuna.db` and
`mlflow.db` are never served, no folder is listed); only GET and HEAD are answered; a request
whose ``Host`` is not this address (a DNS-rebinding page in the user's browser) gets 421.
"""

from __future__ import annotations

import http.server
import threading
import time
from pathlib import Path

from dashboards.page import build_dashboard

PAGE_PATHS = ("/", "/dashboard.html")


def _handler(page: Path, allowed_hosts: set[str]) -> type[http.server.BaseHTTPRequestHandler]:
    class PageOnly(http.server.BaseHTTPRequestHandler):
        server_version = "sweeps-dashboard"
        sys_version = ""

        def do_GET(self) -> None:
            self._answer(body=True)

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def _answer(self, body: bool) -> None:
            if self.headers.get("Host", "").lower() not in allowed_hosts:
                return self.send_error(421, "this server answers only to its own address")
            if self.path.split("?", 1)[0] not in PAGE_PATHS:
                return self.send_error(404, "only the dashboard is served here")
            content = page.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(content)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("X-Frame-Options", "DENY")
            self.end_headers()
            if body:
                self.wfile.write(content)

        def log_message(self, format: str, *args) -> None:  # no line per request
            pass

    return PageOnly


def serve_dashboard(
    tracking_uri: str, experiment: str, folder: Path, host: str, port: int, refresh_s: int
) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    page = folder / "dashboard.html"
    build_dashboard(tracking_uri, experiment, page, refresh_s)
    server = http.server.ThreadingHTTPServer((host, port), http.server.BaseHTTPRequestHandler)
    bound = server.server_port
    names = {host, "localhost", "127.0.0.1"} if host in ("127.0.0.1", "localhost") else {host}
    hosts = {f"{n}:{bound}" for n in names} | (names if bound == 80 else set())
    server.RequestHandlerClass = _handler(page, hosts)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    print(
        f"dashboard on http://{host}:{bound}/dashboard.html, rebuilt every "
        f"{refresh_s} s (Ctrl-C stops)",
        flush=True,
    )
    try:
        while True:
            time.sleep(refresh_s)
            build_dashboard(tracking_uri, experiment, page, refresh_s)
    except KeyboardInterrupt:
        return 0
    finally:
        server.shutdown()
        server.server_close()

"""``sweeps dashboard --serve``: the dashboard on http://127.0.0.1:PORT, rebuilt from MLflow
every ``refresh_s`` seconds while trials finish; the page reloads itself just as often."""

from __future__ import annotations

import functools
import http.server
import threading
import time
from pathlib import Path

from dashboards.page import build_dashboard


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # no line per request on the terminal
        pass


def serve_dashboard(
    tracking_uri: str, experiment: str, folder: Path, host: str, port: int, refresh_s: int
) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    page = folder / "dashboard.html"
    build_dashboard(tracking_uri, experiment, page, refresh_s)
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer((host, port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    print(
        f"dashboard on http://{host}:{server.server_port}/dashboard.html, rebuilt every "
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
